//! How a run behaves (lock waits, timeouts, retries, what is allowed) and what it reports
//! as it goes.

use super::*;

/// How a run behaves around locks: how long to wait for another runner, the per-migration
/// `lock_timeout` and `statement_timeout`, and how often a migration that timed out on a
/// lock is retried.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub lock_wait: Duration,
    pub lock_timeout: Duration,
    pub statement_timeout: Option<Duration>,
    pub retries: u32,
    /// Where to open a second connection that names the sessions blocking a migration.
    pub monitor_url: Option<String>,
    /// Where progress messages go (the CLI prints them on stderr).
    pub notify: fn(&str),
    /// Migrations allowed to run with high-risk findings this once (`--allow-destructive`).
    pub allow_destructive: Vec<String>,
    /// The backup taken before this run (by `deploy`), recorded in the log.
    pub backup: Option<String>,
    /// Structured progress, for `deploy --json` and the live view.
    pub on_event: OnEvent,
}

/// Where a run's [`RunEvent`]s go: a closure, so a caller keeps what it needs (the
/// migration running now, the events for a JSON document) in its own state.
#[derive(Clone)]
pub struct OnEvent(std::sync::Arc<dyn Fn(&RunEvent) + Send + Sync>);

impl OnEvent {
    pub fn new(f: impl Fn(&RunEvent) + Send + Sync + 'static) -> OnEvent {
        OnEvent(std::sync::Arc::new(f))
    }

    /// Events dropped.
    pub fn none() -> OnEvent {
        OnEvent::new(|_| {})
    }

    pub fn emit(&self, e: &RunEvent) {
        (self.0)(e)
    }
}

impl std::fmt::Debug for OnEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnEvent(..)")
    }
}

/// What a run reports as it goes.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    LockWait {
        holder: String,
    },
    MigrationStarted {
        name: String,
        outside_transaction: bool,
    },
    MigrationFinished {
        name: String,
        ms: u64,
    },
    MigrationFailed {
        name: String,
        error: String,
    },
    Retry {
        name: String,
        attempt: u32,
        blocked_by: String,
    },
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            lock_wait: Duration::from_secs(300),
            lock_timeout: Duration::from_secs(5),
            statement_timeout: None,
            retries: 3,
            monitor_url: None,
            notify: |_| {},
            allow_destructive: Vec::new(),
            backup: None,
            on_event: OnEvent::none(),
        }
    }
}

/// Parses `500ms`, `5s`, `2m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 500ms, 5s, 2m"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("`{s}` is not a duration like 500ms, 5s, 2m")),
    })
}
