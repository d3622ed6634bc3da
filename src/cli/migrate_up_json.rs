//! `migrate up --json`: one document whatever happened, with the run's events.

use crate::migrate;

/// `up --json`'s events, kept for the one JSON document it prints at the end.
static EVENTS: std::sync::Mutex<Vec<serde_json::Value>> = std::sync::Mutex::new(Vec::new());

pub(super) fn collect_event(e: &migrate::RunEvent) {
    if let Ok(v) = serde_json::to_value(e) {
        EVENTS.lock().unwrap_or_else(|p| p.into_inner()).push(v);
    }
}

pub(super) fn take_events() -> Vec<serde_json::Value> {
    std::mem::take(&mut *EVENTS.lock().unwrap_or_else(|p| p.into_inner()))
}

/// What a failed `up --json` prints: what it applied, what failed and why, what it did
/// not run, and every event, as one document (the error also goes to stderr).
pub(super) fn up_failure_json(e: &anyhow::Error, pending: Vec<String>) -> serde_json::Value {
    let events = take_events();
    let named = |kind: &str| -> Vec<serde_json::Value> {
        events
            .iter()
            .filter(|v| v["event"] == kind)
            .map(|v| v["name"].clone())
            .collect()
    };
    let failed = events
        .iter()
        .rfind(|v| v["event"] == "migration_failed")
        .map(|v| serde_json::json!({ "name": v["name"], "error": v["error"] }));
    let not_run = match e.downcast_ref::<migrate::MigrateError>() {
        Some(migrate::MigrateError::Stopped(s)) => s.not_run.clone(),
        // nothing was stopped midway: what is still pending, less the one that failed
        _ => pending
            .into_iter()
            .filter(|n| failed.as_ref().is_none_or(|f| f["name"] != n.as_str()))
            .collect(),
    };
    serde_json::json!({
        "applied": named("migration_finished"),
        "failed": failed,
        "not_run": not_run,
        "events": events,
        "error": super::describe(e),
    })
}
