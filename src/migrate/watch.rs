//! What a running migration is doing right now, read from a second connection: its
//! statement, how long it has run, what it waits for, who blocks it, and the progress
//! PostgreSQL reports for index builds, VACUUM, CLUSTER and ANALYZE.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_postgres::Client;

/// One look at the runner's session.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Snapshot {
    pub query: String,
    pub elapsed_s: f64,
    pub wait: Option<String>,
    pub blocked_by: Vec<i32>,
    /// e.g. `building index: scanning table, 1234/5000 blocks (24%)`.
    pub progress: Option<String>,
}

/// Looks at session `pid`; `None` when it is idle or gone.
pub async fn observe(client: &Client, pid: i32) -> Option<Snapshot> {
    let row = client
        .query_opt(
            "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 120),
                    extract(epoch FROM clock_timestamp() - query_start)::float8,
                    CASE WHEN wait_event_type IS NOT NULL THEN wait_event_type || ':' || wait_event END,
                    pg_blocking_pids(pid)
             FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
            &[&pid],
        )
        .await
        .ok()??;
    let progress = progress(client, pid).await;
    Some(Snapshot {
        query: row.get(0),
        elapsed_s: row.get(1),
        wait: row.get(2),
        blocked_by: row.get(3),
        progress,
    })
}

async fn progress(client: &Client, pid: i32) -> Option<String> {
    let views = [
        (
            "building index",
            "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total
             FROM pg_stat_progress_create_index WHERE pid = $1",
        ),
        (
            "vacuum",
            "SELECT phase, heap_blks_scanned, heap_blks_total, 0::bigint, 0::bigint
             FROM pg_stat_progress_vacuum WHERE pid = $1",
        ),
        (
            "cluster",
            "SELECT phase, heap_blks_scanned, heap_blks_total, heap_tuples_written, 0::bigint
             FROM pg_stat_progress_cluster WHERE pid = $1",
        ),
        (
            "analyze",
            "SELECT phase, sample_blks_scanned, sample_blks_total, 0::bigint, 0::bigint
             FROM pg_stat_progress_analyze WHERE pid = $1",
        ),
    ];
    for (what, sql) in views {
        if let Ok(Some(r)) = client.query_opt(sql, &[&pid]).await {
            let phase: String = r.get(0);
            let (bd, bt, td, tt): (i64, i64, i64, i64) = (r.get(1), r.get(2), r.get(3), r.get(4));
            let amount = if bt > 0 {
                format!(", {bd}/{bt} blocks ({}%)", bd * 100 / bt)
            } else if tt > 0 {
                format!(", {td}/{tt} tuples ({}%)", td * 100 / tt)
            } else {
                String::new()
            };
            return Some(format!("{what}: {phase}{amount}"));
        }
    }
    None
}

impl Snapshot {
    /// One line for the live view.
    pub fn line(&self) -> String {
        let mut s = format!("{:.0}s  {}", self.elapsed_s, self.query);
        if let Some(p) = &self.progress {
            s.push_str(&format!("  [{p}]"));
        }
        if !self.blocked_by.is_empty() {
            s.push_str(&format!(
                "  BLOCKED by pid {}",
                self.blocked_by
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        } else if let Some(w) = &self.wait {
            s.push_str(&format!("  (waiting on {w})"));
        }
        s
    }
}

/// The second connection of a run, opened on first use.
pub(crate) struct MonitorConn {
    url: Option<String>,
    client: tokio::sync::OnceCell<Option<Arc<Client>>>,
}

impl MonitorConn {
    pub(crate) fn new(url: Option<&str>) -> Self {
        MonitorConn {
            url: url.map(str::to_string),
            client: tokio::sync::OnceCell::new(),
        }
    }

    async fn get(&self) -> Option<Arc<Client>> {
        let url = self.url.as_deref()?;
        self.client
            .get_or_init(|| async { crate::pg::connect(url).await.ok().map(Arc::new) })
            .await
            .clone()
    }
}

/// A second connection that, while a migration runs, notes the sessions blocking it.
pub(crate) struct Monitor {
    task: tokio::task::JoinHandle<()>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Monitor {
    /// Starts watching `pid` on the run's monitor connection (opened once per run: a
    /// connection per migration would cost more than a small migration does).
    pub(crate) async fn start(monitor: &MonitorConn, pid: i32) -> Option<Monitor> {
        let client = monitor.get().await?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let out = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                // Sleeping first: most migrations finish before anyone could block them,
                // and then the watch costs nothing.
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Ok(rows) = client
                    .query(
                        "SELECT pid, usename::text, coalesce(state, '?'), left(query, 120)
                         FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids($1))",
                        &[&pid],
                    )
                    .await
                {
                    if !rows.is_empty() {
                        let found: Vec<String> = rows
                            .iter()
                            .map(|r| {
                                format!(
                                    "pid {} (user {}, {}: {})",
                                    r.get::<_, i32>(0),
                                    r.get::<_, String>(1),
                                    r.get::<_, String>(2),
                                    r.get::<_, String>(3).replace('\n', " ")
                                )
                            })
                            .collect();
                        if let Ok(mut s) = out.lock() {
                            *s = found;
                        }
                    }
                }
            }
        });
        Some(Monitor { task, seen })
    }

    pub(crate) fn stop(self) -> Vec<String> {
        self.task.abort();
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}
