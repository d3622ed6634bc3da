//! What a running migration is doing right now, read from a second connection: its
//! statement, how long it has run, what it waits for, who blocks it, and the progress
//! PostgreSQL reports for index builds, VACUUM, CLUSTER and ANALYZE.

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
