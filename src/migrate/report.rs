//! `migrate history`: every recorded attempt, compared with the folder.

use super::*;

/// One row of `migrate history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryItem {
    pub name: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    /// Whether the file on disk still has the recorded checksum; None when it is gone.
    pub checksum_ok: Option<bool>,
    pub rolled_back_at: Option<String>,
    pub failed: bool,
}

/// Every row of `_prisma_migrations`, oldest first, compared with the folder.
pub async fn history_report(
    client: &impl GenericClient,
    migrations: &[Migration],
) -> Result<Vec<HistoryItem>, MigrateError> {
    Ok(history::read(client)
        .await?
        .into_iter()
        .map(|r| HistoryItem {
            checksum_ok: migrations
                .iter()
                .find(|m| m.name == r.migration_name)
                .map(|m| m.matches_checksum(&r.checksum)),
            failed: r.is_failed(),
            name: r.migration_name,
            started_at: r.started_at,
            finished_at: r.finished_at,
            duration_ms: r.duration_ms,
            rolled_back_at: r.rolled_back_at,
        })
        .collect())
}
