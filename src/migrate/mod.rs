//! The migration runner: Prisma's migrations folder and `_prisma_migrations` table,
//! applied one migration per transaction under Prisma's advisory lock.
//!
//! The algorithm is written once over small primitives ([`source`], [`history`],
//! [`plan_status`]) so that linting, approval and rollback can be added around it.

pub mod alert;
pub mod approval;
pub mod backfill;
pub mod deploy;
mod error;
pub mod fix;
pub mod health;
pub mod history;
pub mod lint;
mod lock;
pub mod plan;
mod scaffold;
pub mod source;
mod status;
pub mod txcontrol;

use lock::with_lock;
pub use scaffold::new_migration;
pub use status::*;
mod options;
pub use deploy::interruptible;
pub use options::{parse_duration, OnEvent, RunEvent, RunOptions};
mod report;
mod runner;
pub use report::{history_report, HistoryItem};
pub use runner::apply_in_transaction;
use runner::*;
use watch::{Monitor, MonitorConn};

pub use error::{MigrateError, OwnTransactionsFailure, Stopped};
mod outside;

pub use outside::outside_transaction;
use outside::run_outside_transaction;
pub mod watch;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::{Client, GenericClient, Transaction};

pub use source::{checksum, load_dir, Migration};

use crate::pg::{PgContext as _, PgError};

/// A migration's statements and lint findings: parsed once per run, used by the gate,
/// the log and the runner.
#[derive(Debug, Clone)]
pub struct Linted {
    pub statements: Vec<lint::Statement>,
    pub findings: Vec<lint::Finding>,
}

impl Migration {
    /// Parses and lints this migration; a syntax error names the file, line and column.
    pub fn lint(&self) -> Result<Linted, MigrateError> {
        let statements =
            lint::split(&self.sql).map_err(|e| MigrateError::syntax(self.file(), e))?;
        let mut findings = lint::lint_statements(&statements);
        // dataforge's runner sets lock_timeout for every migration it applies
        findings.retain(|f| f.rule != "missing-lock-timeout");
        Ok(Linted {
            statements,
            findings,
        })
    }
}

/// Applies pending migrations (all, or up to and including `to`), each with its history
/// row in one transaction, holding Prisma's advisory lock on this connection for the whole
/// run and releasing it on every path. Returns the names applied. A failure leaves that
/// migration's changes rolled back and a failed row in the history, as Prisma does.
pub async fn up(
    client: &mut Client,
    migrations: &[Migration],
    to: Option<&str>,
    opts: &RunOptions,
) -> Result<Vec<String>, MigrateError> {
    if let Some(name) = to {
        find(migrations, name)?;
    }
    with_lock(client, opts, async |c: &mut Client| {
        up_locked(c, migrations, to, opts).await
    })
    .await
}

/// The migration named `name`, or an error listing the ones there are.
pub fn find<'a>(migrations: &'a [Migration], name: &str) -> Result<&'a Migration, MigrateError> {
    migrations
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| MigrateError::Unknown {
            name: name.to_string(),
            known: migrations
                .iter()
                .map(|m| m.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// How far `down` goes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownTo {
    /// The newest N applied migrations.
    Steps(usize),
    /// Every applied migration after this one (which stays applied).
    After(String),
    /// Exactly these, newest first, which must be the newest applied (a deploy's own).
    Only(Vec<String>),
}

/// Rolls back applied migrations, newest first, each by its `down.sql` in one transaction
/// with its history: the `_prisma_migrations` row is marked rolled back (so Prisma and
/// dataforge both see it pending again) and the rollback is logged. Refuses, before
/// touching anything, when a migration to roll back has no `down.sql` or is missing from
/// the folder. Returns the names rolled back.
pub async fn down(
    client: &mut Client,
    migrations: &[Migration],
    to: DownTo,
    opts: &RunOptions,
) -> Result<Vec<String>, MigrateError> {
    if let DownTo::After(name) = &to {
        find(migrations, name)?;
    }
    with_lock(client, opts, async |c: &mut Client| {
        down_locked(c, migrations, &to).await
    })
    .await
}

async fn down_locked(
    client: &mut Client,
    migrations: &[Migration],
    to: &DownTo,
) -> Result<Vec<String>, MigrateError> {
    history::ensure_log_table(&*client).await?;
    let entries = status(&*client, migrations).await?;
    let applied: Vec<&Entry> = entries
        .iter()
        .filter(|e| matches!(e.state, State::Applied { .. } | State::MissingOnDisk { .. }))
        .collect();
    // newest first
    let mut targets: Vec<&Entry> = applied.into_iter().rev().collect();
    match to {
        DownTo::Steps(n) => targets.truncate(*n),
        DownTo::After(name) => targets.retain(|e| e.name.as_str() > name.as_str()),
        DownTo::Only(names) => {
            targets.truncate(names.len());
            let got: Vec<&str> = targets.iter().map(|e| e.name.as_str()).collect();
            if got != names.iter().map(String::as_str).collect::<Vec<_>>() {
                return Err(MigrateError::CannotRollBack {
                    name: names.join(", "),
                    why: format!(
                        "they are not the newest applied migrations (those are {}): another \
                         run applied or undid migrations since",
                        got.join(", ")
                    ),
                });
            }
        }
    }
    // check every target before changing anything
    let mut plan = Vec::new();
    for e in &targets {
        let Some(m) = migrations.iter().find(|m| m.name == e.name) else {
            return Err(MigrateError::CannotRollBack {
                name: e.name.clone(),
                why: "it is applied but missing from the migrations folder".into(),
            });
        };
        let Some(down_sql) = &m.down else {
            return Err(MigrateError::CannotRollBack {
                name: e.name.clone(),
                why: format!("it has no down.sql (write {}/down.sql to undo it)", m.name),
            });
        };
        plan.push((m, down_sql));
    }
    let server_version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .pg(|| "asking for the server version".into())?
        .get(0);
    let mut done = Vec::new();
    for (m, down_sql) in plan {
        let started = std::time::Instant::now();
        // the same detection as for migration.sql: a concurrent index drop (the natural
        // undo of a concurrent build) or the file's own BEGIN/COMMIT runs statement by
        // statement, as psql would
        let down_file = m.file().with_file_name("down.sql");
        let statements =
            lint::split(down_sql).map_err(|e| MigrateError::syntax(down_file.clone(), e))?;
        let why = outside_transaction(&statements, server_version).or_else(|| {
            (txcontrol::shape(&statements) == txcontrol::Shape::Own)
                .then(|| "it opens and commits transactions of its own".to_string())
        });
        if let Some(why) = &why {
            for (i, st) in statements.iter().enumerate() {
                client.batch_execute(&st.text).await.map_err(|e| {
                    MigrateError::DownFailedOutside {
                        name: m.name.clone(),
                        at: format!(
                            "statement {} of {} ({}:{}:{})",
                            i + 1,
                            statements.len(),
                            down_file.display(),
                            st.line,
                            st.column
                        ),
                        why: why.clone(),
                        source: Box::new(PgError::query(
                            format!("running {}", down_file.display()),
                            e,
                        )),
                    }
                })?;
            }
        }
        let run_in_tx = why.is_none();
        let tx = client
            .transaction()
            .await
            .pg(|| format!("starting a transaction for {}", m.name))?;
        let step = async {
            if run_in_tx {
                tx.batch_execute(down_sql)
                    .await
                    .pg(|| format!("running {}/down.sql", m.name))?;
            }
            history::mark_rolled_back(&tx, &m.name).await?;
            history::log(
                &tx,
                &m.name,
                history::Action::Down,
                &m.checksum,
                started,
                &history::Facts::default(),
            )
            .await
        }
        .await;
        match step {
            Ok(()) => {
                tx.commit()
                    .await
                    .pg(|| format!("committing the rollback of {}", m.name))?;
                done.push(m.name.clone());
            }
            Err(source) => {
                return Err(MigrateError::DownFailed {
                    name: m.name.clone(),
                    source,
                })
            }
        }
    }
    Ok(done)
}

/// How `resolve` settles a migration by hand, as `prisma migrate resolve` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The change is in the database (applied by hand, or a baseline): record it applied.
    Applied,
    /// A failed attempt was cleaned up by hand: stop counting it, so `up` can retry.
    RolledBack,
}

/// Settles `names` without running any SQL, under the migration lock, each with its
/// history in one transaction. `Applied` refuses a migration already applied;
/// `RolledBack` refuses one that is not failed.
pub async fn resolve(
    client: &mut Client,
    migrations: &[Migration],
    names: &[String],
    how: Resolution,
    opts: &RunOptions,
) -> Result<(), MigrateError> {
    let targets: Vec<&Migration> = names
        .iter()
        .map(|n| find(migrations, n))
        .collect::<Result<_, _>>()?;
    with_lock(client, opts, async |c: &mut Client| {
        resolve_locked(c, migrations, &targets, how).await
    })
    .await
}

async fn resolve_locked(
    client: &mut Client,
    migrations: &[Migration],
    targets: &[&Migration],
    how: Resolution,
) -> Result<(), MigrateError> {
    history::ensure_table(&*client).await?;
    history::ensure_log_table(&*client).await?;
    let entries = status(&*client, migrations).await?;
    for m in targets {
        let state = &entries
            .iter()
            .find(|e| e.name == m.name)
            .expect("listed")
            .state;
        match (how, state) {
            (Resolution::Applied, State::Applied { .. } | State::Modified { .. }) => {
                return Err(MigrateError::Resolve {
                    name: m.name.clone(),
                    why: "it is already applied".into(),
                })
            }
            (Resolution::RolledBack, s) if !matches!(s, State::Failed { .. }) => {
                return Err(MigrateError::Resolve {
                    name: m.name.clone(),
                    why: "it is not a failed migration (only failed ones can be resolved as rolled back; \
                          `dataforge migrate down` undoes applied ones)"
                        .into(),
                })
            }
            _ => {}
        }
    }
    for m in targets {
        let started = std::time::Instant::now();
        let tx = client
            .transaction()
            .await
            .pg(|| format!("starting a transaction for {}", m.name))?;
        history::mark_failed_rolled_back(&tx, &m.name).await?;
        let action = match how {
            Resolution::Applied => {
                history::insert_applied_without_running(&tx, &m.name, &m.checksum).await?;
                history::Action::ResolveApplied
            }
            Resolution::RolledBack => history::Action::ResolveRolledBack,
        };
        history::log(
            &tx,
            &m.name,
            action,
            &m.checksum,
            started,
            &history::Facts::default(),
        )
        .await?;
        tx.commit()
            .await
            .pg(|| format!("committing the resolution of {}", m.name))?;
    }
    Ok(())
}

/// The pending migrations up to and including `to` (all when None): what a baseline of a
/// database that already has the schema records as applied.
pub fn baseline_targets(
    migrations: &[Migration],
    entries: &[Entry],
    to: Option<&str>,
) -> Vec<String> {
    migrations
        .iter()
        .filter(|m| to.is_none_or(|t| m.name.as_str() <= t))
        .filter(|m| {
            entries
                .iter()
                .any(|e| e.name == m.name && e.state == State::Pending)
        })
        .map(|m| m.name.clone())
        .collect()
}

/// Runs `m` with its history rows in two pipelined queries: the started row (with `own`, after
/// opening the transaction and setting the run's timeouts); then the migration's SQL, the
/// finished row and the log (and with `own`, `COMMIT`) in one query string. The file has
/// parsed, so its text is whole statements; a newline ends a trailing `--` comment. The
/// SQL leads its string so `pg_stat_activity`, and the live view, show the migration.
/// Without `own` the caller's transaction holds it all. On an error the transaction is
/// left for the caller to roll back.
/// A migration's SQL as the runner's transaction holds it: the file as it is, or, for a
/// file that is one `BEGIN … COMMIT` of its own, its `BEGIN` (with its isolation level)
/// and `SET TRANSACTION` statements opening the runner's transaction and the statements
/// between as the body — so the author's transaction is the one that runs, atomic.
pub(crate) struct Transactional {
    opening: Option<String>,
    body: String,
    /// For a rebuilt body: where each statement starts in it (characters) and in the file
    /// (bytes), so a server position maps back to `file:line:col`.
    places: Vec<(usize, usize)>,
}

impl Transactional {
    fn of(m: &Migration, statements: &[lint::Statement], shape: &txcontrol::Shape) -> Self {
        match shape {
            txcontrol::Shape::Wrapped { opening, body } => Transactional {
                opening: Some(
                    opening
                        .iter()
                        .map(|&i| statements[i].text.as_str())
                        .collect::<Vec<_>>()
                        .join(";\n"),
                ),
                body: body
                    .iter()
                    .map(|&i| statements[i].text.as_str())
                    .collect::<Vec<_>>()
                    .join(";\n"),
                places: body
                    .iter()
                    .scan(0usize, |chars, &i| {
                        let at = *chars;
                        *chars += statements[i].text.chars().count() + 2; // ";\n"
                        Some((at, statements[i].offset))
                    })
                    .collect(),
            },
            _ => Transactional {
                opening: None,
                body: m.sql.clone(),
                places: Vec::new(),
            },
        }
    }
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
            duration_ms: finished.then_some(1000),
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
        assert!(
            err.contains("dataforge migrate resolve --rolled-back 1_a"),
            "{err}"
        );
    }
}
