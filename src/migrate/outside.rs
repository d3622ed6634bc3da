//! Migrations that run statement by statement rather than in one transaction: those
//! PostgreSQL refuses to run in a transaction block (`CREATE INDEX CONCURRENTLY`, …) and
//! those with transaction control of their own, applied as psql applies them. Each
//! statement commits on its own (or in the file's own transaction), the started history
//! row is committed first, and a failure says what stayed applied.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::*;
use crate::pg::{PgContext as _, PgError};

/// Why a migration of these statements cannot run inside a transaction, if it cannot:
/// PostgreSQL refuses some statements in a transaction block.
pub fn outside_transaction(statements: &[lint::Statement], server_version: i32) -> Option<String> {
    statements.iter().find_map(|s| {
        s.node
            .as_ref()
            .and_then(|n| needs_autocommit(n, server_version))
    })
}

fn needs_autocommit(node: &pg_query::NodeEnum, server_version: i32) -> Option<String> {
    use pg_query::NodeEnum as N;
    let has_concurrently = |params: &[pg_query::Node]| {
        params.iter().any(|p| {
            matches!(p.node.as_ref(), Some(N::DefElem(d)) if d.defname.eq_ignore_ascii_case("concurrently"))
        })
    };
    let what = match node {
        N::IndexStmt(i) if i.concurrent => "CREATE INDEX CONCURRENTLY",
        N::DropStmt(d) if d.concurrent => "DROP INDEX CONCURRENTLY",
        N::ReindexStmt(r) if has_concurrently(&r.params) => "REINDEX CONCURRENTLY",
        N::VacuumStmt(v) if v.is_vacuumcmd => "VACUUM",
        N::CreatedbStmt(_) => "CREATE DATABASE",
        N::DropdbStmt(_) => "DROP DATABASE",
        N::AlterSystemStmt(_) => "ALTER SYSTEM",
        N::CreateTableSpaceStmt(_) => "CREATE TABLESPACE",
        N::DropTableSpaceStmt(_) => "DROP TABLESPACE",
        N::AlterEnumStmt(e)
            if server_version < 120000 && !e.new_val.is_empty() && e.old_val.is_empty() =>
        {
            "ALTER TYPE … ADD VALUE before PostgreSQL 12"
        }
        _ => return None,
    };
    Some(what.to_string())
}

/// Runs a migration that cannot run in a transaction: statement by statement, each
/// committed on its own, with the started history row committed first (so a crash midway
/// leaves a failed row, as Prisma would). Before a `CREATE INDEX CONCURRENTLY`, an INVALID
/// index of the same name, left by an earlier failed build, is dropped. A statement that
/// times out on a lock is retried from that statement.
pub(super) async fn run_outside_transaction(
    client: &mut Client,
    m: &Migration,
    statements: &[lint::Statement],
    opts: &RunOptions,
    monitor_conn: &MonitorConn,
    pid: i32,
    facts: &history::Facts,
) -> Result<(), MigrateError> {
    let started = Instant::now();
    let id = history::insert_started(&*client, &m.name, &m.checksum).await?;
    let fail = |source: PgError, at: String, blocked_by: String| MigrateError::FailedOutside {
        name: m.name.clone(),
        at,
        source: Box::new(source),
        blocked_by,
    };
    client
        .batch_execute(&format!(
            "SET lock_timeout = {}; SET statement_timeout = {}",
            opts.lock_timeout.as_millis(),
            opts.statement_timeout.map(|d| d.as_millis()).unwrap_or(0)
        ))
        .await
        .pg(|| "setting lock_timeout and statement_timeout".into())?;
    // the file's own transactions, followed as the server follows them: what a COMMIT
    // made permanent, and what an open block holds until its COMMIT or ROLLBACK
    let own = statements
        .iter()
        .any(|s| txcontrol::kind(s) != txcontrol::Kind::Other);
    let mut in_block = false;
    let mut held: Vec<String> = Vec::new();
    let mut committed: Vec<String> = Vec::new();
    let result: Result<(), MigrateError> = async {
        for (i, st) in statements.iter().enumerate() {
            let (line, col) = (st.line, st.column);
            let at = format!(
                "statement {} of {} ({}:{line}:{col})",
                i + 1,
                statements.len(),
                m.file().display()
            );
            let what = {
                let words: Vec<&str> = st.text.split_ascii_whitespace().take(4).collect();
                format!(
                    "`{}…` ({}:{line}:{col})",
                    words.join(" "),
                    m.file().display()
                )
            };
            let kind = txcontrol::kind(st);
            // Where the run is, in the history row, before each statement: a run killed
            // (kill -9, a lost connection) leaves a row that says how far it got. Not
            // inside the file's own open transaction, where the note would share its fate.
            if !in_block {
                history::record_failure(
                    &*client,
                    &id,
                    // a few words, the same length for every statement: a long
                    // migration must not rewrite a growing list before each one
                    &format!(
                        "interrupted: dataforge was running {at} outside a transaction when \
                         the run ended; {} statement(s) before it committed, that one may \
                         have. Check the database, make the migration safe to re-run, then \
                         `dataforge migrate resolve --rolled-back {}`",
                        committed.len(),
                        m.name
                    ),
                )
                .await
                .map_err(|e| fail(e, at.clone(), String::new()))?;
            }
            let mut attempt = 0;
            loop {
                if let Some(pg_query::NodeEnum::IndexStmt(ix)) = st.node.as_ref() {
                    if ix.concurrent {
                        drop_invalid_index(&*client, &ix.idxname, opts)
                            .await
                            .map_err(|e| fail(e, at.clone(), String::new()))?;
                    }
                }
                let monitor = Monitor::start(monitor_conn, pid).await;
                let result = client
                    .batch_execute(&st.text)
                    .await
                    .pg(|| format!("running {at}"));
                let blockers = monitor.map(Monitor::stop).unwrap_or_default();
                let Err(source) = result else {
                    match kind {
                        txcontrol::Kind::Begin => in_block = true,
                        txcontrol::Kind::Commit => {
                            committed.append(&mut held);
                            in_block = false;
                        }
                        txcontrol::Kind::Rollback => {
                            held.clear();
                            in_block = false;
                        }
                        txcontrol::Kind::Other if in_block => held.push(what.clone()),
                        txcontrol::Kind::Other => committed.push(what.clone()),
                        _ => {}
                    }
                    break;
                };
                let blocked_by = if blockers.is_empty() {
                    String::new()
                } else {
                    format!("; blocked by {}", blockers.join(", "))
                };
                // inside the file's own open transaction the block is aborted: no retry
                if source.sqlstate() == Some("55P03") && attempt < opts.retries && !in_block {
                    attempt += 1;
                    let wait = Duration::from_secs(1 << (attempt - 1).min(5));
                    (opts.notify)(&format!(
                        "{}: {at}: lock timeout{blocked_by}; retry {attempt} of {} in {wait:?}",
                        m.name, opts.retries
                    ));
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(fail(source, at, blocked_by));
            }
        }
        Ok(())
    }
    .await;
    // a file that ends inside a block it opened: psql ends the session there, and the
    // server rolls the block back
    let unclosed = result.is_ok() && in_block;
    let mut rolled_back = String::new();
    if (result.is_err() || unclosed) && in_block {
        let _ = client.batch_execute("ROLLBACK").await;
        if !held.is_empty() {
            rolled_back = format!(
                " (its open transaction was rolled back, with {})",
                held.join(", ")
            );
        }
    }
    let changed = !committed.is_empty();
    let committed = if committed.is_empty() {
        "nothing of it was committed".to_string()
    } else {
        format!(
            "these statements committed and stay applied: {}",
            committed.join(", ")
        )
    };
    let result = match result {
        Ok(()) if unclosed => Err(MigrateError::FailedOwnTransactions(Box::new(
            OwnTransactionsFailure {
                name: m.name.clone(),
                at: "the end of the file".into(),
                cause: "it ends inside a transaction it opened (BEGIN without COMMIT), which \
                    psql leaves to be rolled back"
                    .into(),
                blocked_by: String::new(),
                committed,
                rolled_back,
            },
        ))),
        Err(MigrateError::FailedOutside {
            name,
            at,
            source,
            blocked_by,
        }) if own => Err(MigrateError::FailedOwnTransactions(Box::new(
            OwnTransactionsFailure {
                name,
                at,
                cause: source.to_string(),
                blocked_by,
                committed,
                rolled_back,
            },
        ))),
        other => other,
    };
    let reset = client
        .batch_execute("RESET lock_timeout; RESET statement_timeout")
        .await
        .pg(|| "resetting lock_timeout and statement_timeout".into());
    if let Err(e) = result {
        let _ = history::log_failed(
            &*client,
            &m.name,
            &m.checksum,
            started,
            facts,
            &e.to_string(),
        )
        .await;
        // stopped by a lock before any statement changed anything: pending, not failed
        match e {
            MigrateError::FailedOutside {
                name,
                source,
                blocked_by,
                ..
            } if source.sqlstate() == Some("55P03") && !changed => {
                history::delete_started(&*client, &id).await?;
                return Err(MigrateError::LockTimeoutPending {
                    name,
                    tries: format!("{} attempt(s) of {:?}", opts.retries + 1, opts.lock_timeout),
                    blocked_by,
                    source,
                });
            }
            e => {
                history::record_failure(&*client, &id, &e.to_string()).await?;
                return Err(e);
            }
        }
    }
    reset?;
    // One query string runs as one implicit transaction: both rows or neither. The
    // progress note goes: a finished row has no logs, as Prisma writes it.
    client
        .batch_execute(&format!(
            r#"UPDATE "_prisma_migrations" SET logs = NULL WHERE id = {}; {}"#,
            crate::pg::quote_literal(&id),
            history::finished_sql(&id, &m.name, &m.checksum, facts)
        ))
        .await
        .pg(|| format!("recording {}", m.name))?;
    Ok(())
}

/// Drops the index `name` if it exists and is INVALID (what a failed or cancelled
/// `CREATE INDEX CONCURRENTLY` leaves behind), so the build can be retried.
async fn drop_invalid_index(client: &Client, name: &str, opts: &RunOptions) -> Result<(), PgError> {
    if name.is_empty() {
        return Ok(());
    }
    let rows = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname)
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relname = $1 AND NOT i.indisvalid AND pg_table_is_visible(c.oid)",
            &[&name],
        )
        .await
        .pg(|| format!("looking for an invalid index {name}"))?;
    for row in rows {
        let qualified: String = row.get(0);
        (opts.notify)(&format!(
            "dropping INVALID index {qualified} left by an earlier failed concurrent build"
        ));
        client
            .batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {qualified}"))
            .await
            .pg(|| format!("dropping the invalid index {qualified}"))?;
    }
    Ok(())
}
