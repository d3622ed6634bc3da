//! `migrate up --json`: one document whatever happened, with the run's events.

use crate::migrate;

/// `up --json`'s events, kept for the one JSON document it prints at the end.
#[derive(Clone, Default)]
pub(super) struct Events(std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>);

impl Events {
    /// Where the run sends its events: into this list.
    pub(super) fn sink(&self) -> migrate::OnEvent {
        let kept = self.0.clone();
        migrate::OnEvent::new(move |e| {
            if let Ok(v) = serde_json::to_value(e) {
                kept.lock().unwrap_or_else(|p| p.into_inner()).push(v);
            }
        })
    }

    pub(super) fn take(&self) -> Vec<serde_json::Value> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// What a failed `up --json` prints: what it applied, what failed and why, what it did
/// not run, and every event, as one document (the error also goes to stderr).
pub(super) fn up_failure_json(
    e: &anyhow::Error,
    pending: Vec<String>,
    events: Vec<serde_json::Value>,
) -> serde_json::Value {
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
        "error": crate::cli::describe(e),
    })
}
