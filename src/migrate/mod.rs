//! The migration runner: Prisma's migrations folder and `_prisma_migrations` table,
//! applied one migration per transaction under Prisma's advisory lock.
//!
//! The algorithm is written once over small primitives ([`source`], [`history`],
//! [`plan_status`]) so that linting, approval and rollback can be added around it.

pub mod history;
pub mod source;

use std::path::PathBuf;

use serde::Serialize;
use tokio_postgres::{Client, GenericClient, Transaction};

pub use source::{checksum, load_dir, Migration};

use crate::pg::{PgContext as _, PgError};

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot read the migrations folder {}: {source} (choose one with --dir DIR)", .dir.display())]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", .path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is missing: every migration folder needs one", .path.display())]
    MissingScript { path: PathBuf },
    #[error(
        "migration {name} failed earlier and is recorded as failed in _prisma_migrations \
         (started {started_at}{logs}). Fix the database and the script by hand, then mark \
         the attempt rolled back (`prisma migrate resolve --rolled-back {name}`, or \
         UPDATE \"_prisma_migrations\" SET rolled_back_at = now() WHERE migration_name = '{name}' \
         AND finished_at IS NULL) and run `dataforge migrate up` again"
    )]
    PreviouslyFailed {
        name: String,
        started_at: String,
        logs: String,
    },
    #[error(
        "migration {name} was changed after it was applied (checksum {recorded} recorded, \
         {on_disk} on disk). Restore the applied file, and put the change in a new migration"
    )]
    Modified {
        name: String,
        recorded: String,
        on_disk: String,
    },
    #[error("migration {name} failed: {source}; nothing of it was applied, and the attempt is recorded in _prisma_migrations")]
    Failed {
        name: String,
        #[source]
        source: PgError,
    },
    #[error(transparent)]
    Pg(#[from] PgError),
}

/// Where one migration stands against the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    Applied {
        finished_at: String,
    },
    Pending,
    Failed {
        started_at: String,
        logs: Option<String>,
    },
    Modified {
        recorded: String,
        on_disk: String,
    },
    MissingOnDisk {
        finished_at: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub name: String,
    #[serde(flatten)]
    pub state: State,
}

impl Entry {
    /// Whether this entry needs someone's attention (exit code 1 for `status`).
    pub fn needs_attention(&self) -> bool {
        !matches!(self.state, State::Applied { .. })
    }
}

/// Compares the folder with the history: pure, so it is tested without a database.
pub fn plan_status(migrations: &[Migration], history: &[history::HistoryRow]) -> Vec<Entry> {
    let mut out = Vec::new();
    for m in migrations {
        let rows: Vec<_> = history
            .iter()
            .filter(|r| r.migration_name == m.name && r.rolled_back_at.is_none())
            .collect();
        let state = if let Some(r) = rows.iter().find(|r| r.is_applied()) {
            if r.checksum != m.checksum {
                State::Modified {
                    recorded: r.checksum.clone(),
                    on_disk: m.checksum.clone(),
                }
            } else {
                State::Applied {
                    finished_at: r.finished_at.clone().unwrap_or_default(),
                }
            }
        } else if let Some(r) = rows.iter().find(|r| r.is_failed()) {
            State::Failed {
                started_at: r.started_at.clone(),
                logs: r.logs.clone(),
            }
        } else {
            State::Pending
        };
        out.push(Entry {
            name: m.name.clone(),
            state,
        });
    }
    for r in history {
        if r.rolled_back_at.is_none()
            && !migrations.iter().any(|m| m.name == r.migration_name)
            && !out.iter().any(|e| e.name == r.migration_name)
        {
            out.push(Entry {
                name: r.migration_name.clone(),
                state: State::MissingOnDisk {
                    finished_at: r.finished_at.clone(),
                },
            });
        }
    }
    out
}

/// Reads the history and compares it with `migrations`.
pub async fn status(
    client: &impl GenericClient,
    migrations: &[Migration],
) -> Result<Vec<Entry>, MigrateError> {
    let rows = history::read(client).await?;
    Ok(plan_status(migrations, &rows))
}

/// The pending migrations, in order, after refusing on failed or modified ones.
fn pending<'a>(
    migrations: &'a [Migration],
    entries: &[Entry],
) -> Result<Vec<&'a Migration>, MigrateError> {
    for e in entries {
        match &e.state {
            State::Failed { started_at, logs } => {
                return Err(MigrateError::PreviouslyFailed {
                    name: e.name.clone(),
                    started_at: started_at.clone(),
                    logs: logs
                        .as_deref()
                        .map(|l| format!("; error: {}", l.trim()))
                        .unwrap_or_default(),
                })
            }
            State::Modified { recorded, on_disk } => {
                return Err(MigrateError::Modified {
                    name: e.name.clone(),
                    recorded: recorded.clone(),
                    on_disk: on_disk.clone(),
                })
            }
            _ => {}
        }
    }
    Ok(migrations
        .iter()
        .filter(|m| {
            entries
                .iter()
                .any(|e| e.name == m.name && e.state == State::Pending)
        })
        .collect())
}

/// Applies every pending migration, each with its history row in one transaction, holding
/// Prisma's advisory lock on this connection for the whole run and releasing it on every
/// path. Returns the names applied. A failure leaves that migration's changes rolled back
/// and a failed row in the history, as Prisma does.
pub async fn up(
    client: &mut Client,
    migrations: &[Migration],
) -> Result<Vec<String>, MigrateError> {
    client
        .execute(
            "SELECT pg_advisory_lock($1)",
            &[&history::ADVISORY_LOCK_KEY],
        )
        .await
        .pg(|| "taking the migration lock".into())?;
    let result = up_locked(client, migrations).await;
    let unlock = client
        .execute(
            "SELECT pg_advisory_unlock($1)",
            &[&history::ADVISORY_LOCK_KEY],
        )
        .await
        .pg(|| "releasing the migration lock".into());
    let applied = result?;
    unlock?;
    Ok(applied)
}

async fn up_locked(
    client: &mut Client,
    migrations: &[Migration],
) -> Result<Vec<String>, MigrateError> {
    history::ensure_table(&*client).await?;
    let entries = status(&*client, migrations).await?;
    let todo = pending(migrations, &entries)?;
    let mut applied = Vec::new();
    for m in todo {
        let tx = client
            .transaction()
            .await
            .pg(|| format!("starting a transaction for {}", m.name))?;
        match apply_one(&tx, m).await {
            Ok(()) => {
                tx.commit()
                    .await
                    .pg(|| format!("committing migration {}", m.name))
                    .map_err(|source| MigrateError::Failed {
                        name: m.name.clone(),
                        source,
                    })?;
                applied.push(m.name.clone());
            }
            Err(source) => {
                drop(tx);
                let logs = source.to_string();
                history::insert_failed(&*client, &m.name, &m.checksum, &logs).await?;
                return Err(MigrateError::Failed {
                    name: m.name.clone(),
                    source,
                });
            }
        }
    }
    Ok(applied)
}

async fn apply_one(tx: &Transaction<'_>, m: &Migration) -> Result<(), PgError> {
    let id = history::insert_started(tx, &m.name, &m.checksum).await?;
    tx.batch_execute(&m.sql)
        .await
        .pg(|| format!("running {}/migration.sql", m.name))?;
    history::mark_finished(tx, &id).await
}

/// Applies pending migrations inside a transaction the caller owns, so that schema and
/// data land together or not at all (used by `seed` on an empty database).
pub async fn apply_in_transaction(
    tx: &Transaction<'_>,
    migrations: &[Migration],
) -> Result<Vec<String>, MigrateError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&history::ADVISORY_LOCK_KEY],
    )
    .await
    .pg(|| "taking the migration lock".into())?;
    history::ensure_table(tx).await?;
    let entries = status(tx, migrations).await?;
    let mut applied = Vec::new();
    for m in pending(migrations, &entries)? {
        apply_one(tx, m)
            .await
            .map_err(|source| MigrateError::Failed {
                name: m.name.clone(),
                source,
            })?;
        applied.push(m.name.clone());
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::history::HistoryRow;
    use super::*;

    fn row(name: &str, checksum: &str, finished: bool, rolled_back: bool) -> HistoryRow {
        HistoryRow {
            id: format!("id-{name}"),
            checksum: checksum.into(),
            migration_name: name.into(),
            started_at: "2025-01-01 00:00:00+00".into(),
            finished_at: finished.then(|| "2025-01-01 00:00:01+00".into()),
            rolled_back_at: rolled_back.then(|| "2025-01-02 00:00:00+00".into()),
            logs: (!finished).then(|| "boom".into()),
            applied_steps_count: finished as i32,
        }
    }

    #[test]
    fn status_covers_every_state() {
        let ms = vec![
            Migration::new("1_a", "A", None),
            Migration::new("2_b", "B", None),
            Migration::new("3_c", "C", None),
            Migration::new("4_d", "D", None),
        ];
        let hist = vec![
            row("1_a", &checksum("A"), true, false),
            row("2_b", &checksum("old"), true, false),
            row("3_c", &checksum("C"), false, false),
            row("4_d", &checksum("D"), false, true),
            row("0_gone", "x", true, false),
        ];
        let s = plan_status(&ms, &hist);
        let states: Vec<_> = s.iter().map(|e| (e.name.as_str(), &e.state)).collect();
        assert!(matches!(states[0], ("1_a", State::Applied { .. })));
        assert!(matches!(states[1], ("2_b", State::Modified { .. })));
        assert!(matches!(states[2], ("3_c", State::Failed { .. })));
        assert!(matches!(states[3], ("4_d", State::Pending)));
        assert!(matches!(states[4], ("0_gone", State::MissingOnDisk { .. })));
    }

    #[test]
    fn a_failed_migration_blocks_further_runs_with_recovery_steps() {
        let ms = vec![Migration::new("1_a", "A", None)];
        let s = plan_status(&ms, &[row("1_a", &checksum("A"), false, false)]);
        let err = pending(&ms, &s).unwrap_err().to_string();
        assert!(err.contains("migration 1_a failed earlier"), "{err}");
        assert!(err.contains("rolled_back_at"), "{err}");
    }
}
