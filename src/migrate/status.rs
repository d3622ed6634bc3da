//! Where each migration stands: the folder compared with `_prisma_migrations` (pure, so
//! it is tested without a database), what is pending, and what a deploy must settle first.

use super::*;

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
            if !m.matches_checksum(&r.checksum) {
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
pub(super) fn pending<'a>(
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
    let todo: Vec<&Migration> = migrations
        .iter()
        .filter(|m| {
            entries
                .iter()
                .any(|e| e.name == m.name && e.state == State::Pending)
        })
        .collect();
    check_rewrites(migrations, entries, &todo)?;
    Ok(todo)
}

/// A `lint --fix` rewrite replaces its original: never both. Refuses a pending rewrite
/// whose original is applied or still in the folder, and a pending original whose
/// rewrite is applied.
pub fn check_rewrites(
    migrations: &[Migration],
    entries: &[Entry],
    todo: &[&Migration],
) -> Result<(), MigrateError> {
    let recorded = |name: &str| {
        entries
            .iter()
            .any(|e| e.name == name && e.state != State::Pending)
    };
    for m in todo {
        if let Some(r) = migrations
            .iter()
            .find(|r| r.rewrite_of.as_deref() == Some(m.name.as_str()) && recorded(&r.name))
        {
            return Err(MigrateError::OriginalOfAppliedRewrite {
                rewrite: r.name.clone(),
                original: m.name.clone(),
            });
        }
        let Some(original) = &m.rewrite_of else {
            continue;
        };
        let err = |f: fn(String, String) -> MigrateError| Err(f(m.name.clone(), original.clone()));
        if recorded(original) {
            return err(|rewrite, original| MigrateError::RewriteOfApplied { rewrite, original });
        }
        if migrations.iter().any(|o| &o.name == original) {
            return err(|rewrite, original| MigrateError::RewriteBesideOriginal {
                rewrite,
                original,
            });
        }
    }
    Ok(())
}

/// What the pre-deploy gate found: entries that must be fixed before a deploy.
pub fn verify_problems(entries: &[Entry]) -> Vec<&Entry> {
    entries
        .iter()
        .filter(|e| {
            matches!(
                e.state,
                State::Failed { .. } | State::Modified { .. } | State::MissingOnDisk { .. }
            )
        })
        .collect()
}
