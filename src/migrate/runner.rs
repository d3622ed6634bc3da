//! Running migrations: `up`'s loop inside the lock (retries on a lock timeout, the
//! blocker monitor, the history rows), one migration in its transaction, and where a
//! failure lies in a file. What runs outside a transaction is in `outside.rs`.

use super::*;

pub(super) async fn up_locked(
    client: &mut Client,
    migrations: &[Migration],
    to: Option<&str>,
    opts: &RunOptions,
) -> Result<Vec<String>, MigrateError> {
    history::ensure_table(&*client).await?;
    history::ensure_log_table(&*client).await?;
    let entries = status(&*client, migrations).await?;
    let todo = pending(migrations, &entries)?;
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .pg(|| "asking for this session's pid".into())?
        .get(0);
    let todo: Vec<&Migration> = todo
        .into_iter()
        .take_while(|m| to.is_none_or(|t| m.name.as_str() <= t))
        .collect();
    let linted = todo
        .iter()
        .map(|m| m.lint())
        .collect::<Result<Vec<_>, _>>()?;
    let checked: Vec<(&Migration, &Linted)> = todo.iter().copied().zip(&linted).collect();
    approval::gate(&checked, &opts.allow_destructive)?;
    let server_version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .pg(|| "asking for the server version".into())?
        .get(0);
    let mut applied = Vec::new();
    let monitor_conn = MonitorConn::new(opts.monitor_url.as_deref());
    for (m, l) in checked {
        let facts = facts_for(m, &l.findings, opts);
        let started = Instant::now();
        let outside = outside_transaction(&l.statements, server_version);
        let shape = txcontrol::shape(&l.statements);
        opts.on_event.emit(&RunEvent::MigrationStarted {
            name: m.name.clone(),
            outside_transaction: outside.is_some() || shape == txcontrol::Shape::Own,
        });
        let result = match (outside, shape) {
            (Some(why), _) => {
                (opts.notify)(&format!(
                    "{}: runs statement by statement outside a transaction ({why})",
                    m.name
                ));
                run_outside_transaction(client, m, &l.statements, opts, &monitor_conn, pid, &facts)
                    .await
            }
            (None, txcontrol::Shape::Own) => {
                (opts.notify)(&format!(
                    "{}: runs as psql would, in the transactions it opens and commits itself",
                    m.name
                ));
                run_outside_transaction(client, m, &l.statements, opts, &monitor_conn, pid, &facts)
                    .await
            }
            (None, shape) => {
                let sql = Transactional::of(m, &l.statements, &shape);
                run_in_transaction(client, m, &sql, opts, &monitor_conn, pid, &facts).await
            }
        };
        match result {
            Ok(()) => opts.on_event.emit(&RunEvent::MigrationFinished {
                name: m.name.clone(),
                ms: started.elapsed().as_millis() as u64,
            }),
            Err(e) => {
                opts.on_event.emit(&RunEvent::MigrationFailed {
                    name: m.name.clone(),
                    error: e.to_string(),
                });
                let not_run: Vec<String> = todo
                    .iter()
                    .skip_while(|t| t.name != m.name)
                    .skip(1)
                    .map(|t| t.name.clone())
                    .collect();
                if applied.is_empty() && not_run.is_empty() {
                    return Err(e);
                }
                return Err(MigrateError::Stopped(Box::new(Stopped {
                    cause: e,
                    applied,
                    not_run,
                })));
            }
        }
        applied.push(m.name.clone());
    }
    Ok(applied)
}

/// Runs one migration and its history row in one transaction, retrying lock timeouts.
pub(super) async fn run_in_transaction(
    client: &mut Client,
    m: &Migration,
    sql: &Transactional,
    opts: &RunOptions,
    monitor_conn: &MonitorConn,
    pid: i32,
    facts: &history::Facts,
) -> Result<(), MigrateError> {
    let mut attempt = 0;
    let started = Instant::now();
    loop {
        let monitor = Monitor::start(monitor_conn, pid).await;
        let result = apply_one(&*client, m, sql, facts, Some(opts)).await;
        if result.is_err() {
            // Ends the transaction whichever statement failed (a warning, not an error,
            // when the failure was at COMMIT and the server has already ended it).
            let _ = client.batch_execute("ROLLBACK").await;
        }
        let blockers = monitor.map(Monitor::stop).unwrap_or_default();
        match result {
            Ok(()) => return Ok(()),
            Err(source) => {
                let lock_timeout = source.sqlstate() == Some("55P03");
                let blocked_by = if blockers.is_empty() {
                    String::new()
                } else {
                    format!("; blocked by {}", blockers.join(", "))
                };
                if lock_timeout && attempt < opts.retries {
                    attempt += 1;
                    opts.on_event.emit(&RunEvent::Retry {
                        name: m.name.clone(),
                        attempt,
                        blocked_by: blocked_by.clone(),
                    });
                    let wait = Duration::from_secs(1 << (attempt - 1).min(5));
                    (opts.notify)(&format!(
                        "{}: lock timeout after {:?}{blocked_by}; retry {attempt} of {} in {wait:?}",
                        m.name, opts.lock_timeout, opts.retries
                    ));
                    tokio::time::sleep(wait).await;
                    continue;
                }
                let logs = format!("{source}{blocked_by}");
                // every attempt is in the log; a lock timeout changed nothing, so the
                // migration stays pending instead of blocking the next run as failed
                let _ = history::log_failed(&*client, &m.name, &m.checksum, started, facts, &logs)
                    .await;
                if lock_timeout {
                    return Err(MigrateError::LockTimeoutPending {
                        name: m.name.clone(),
                        tries: format!("{} attempt(s) of {:?}", attempt + 1, opts.lock_timeout),
                        blocked_by,
                        source: Box::new(source),
                    });
                }
                history::insert_failed(&*client, &m.name, &m.checksum, &logs).await?;
                return Err(MigrateError::Failed {
                    name: m.name.clone(),
                    at: error_place(m, sql, &source),
                    source: Box::new(source),
                    blocked_by,
                });
            }
        }
    }
}

/// ` at FILE:LINE:COL` for a server error in a migration sent as written: the server's
/// position counts characters from the start of the batch, which starts with the file.
pub(super) fn error_place(m: &Migration, sql: &Transactional, e: &PgError) -> String {
    let PgError::Query { source, .. } = e else {
        return String::new();
    };
    let Some(tokio_postgres::error::ErrorPosition::Original(pos)) =
        source.as_db_error().and_then(|d| d.position())
    else {
        return String::new();
    };
    let pos = *pos as usize;
    if sql.opening.is_some() {
        // the body was rebuilt from the file's statements, each as written: the position
        // falls in one of them, the same number of characters into it as in the file
        let Some(&(start, offset)) = sql.places.iter().rev().find(|(start, _)| *start < pos) else {
            return String::new();
        };
        let into = pos - 1 - start;
        let Some((byte, _)) = m.sql[offset..].char_indices().nth(into) else {
            return String::new();
        };
        let (line, col) = lint::line_col(&m.sql, offset + byte);
        return format!(" at {}:{line}:{col}", m.file().display());
    }
    if pos == 0 || pos > m.sql.chars().count() {
        return String::new();
    }
    let before: String = m.sql.chars().take(pos - 1).collect();
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!(" at {}:{line}:{col}", m.file().display())
}

pub(super) async fn apply_one(
    client: &impl GenericClient,
    m: &Migration,
    sql: &Transactional,
    facts: &history::Facts,
    own: Option<&RunOptions>,
) -> Result<(), PgError> {
    let id = uuid::Uuid::new_v4().to_string();
    let (begin, commit) = match own {
        Some(opts) => (
            format!(
                "{}; SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}; ",
                sql.opening.as_deref().unwrap_or("BEGIN"),
                opts.lock_timeout.as_millis(),
                opts.statement_timeout.map(|d| d.as_millis()).unwrap_or(0),
            ),
            ";\nCOMMIT",
        ),
        // inside the caller's transaction: the file's SET TRANSACTION would come too late
        None => (String::new(), ""),
    };
    let first = format!("{begin}{}", history::started_sql(&id, &m.name, &m.checksum));
    let second = format!(
        "{}\n;\n{}{commit}",
        sql.body,
        history::finished_sql(&id, &m.name, &m.checksum, facts),
    );
    // Polled together, the two are pipelined: sent back to back, one wait. The server
    // runs them in order, so a failure in the first leaves the second to fail in the
    // aborted transaction.
    let (started, ran) = tokio::join!(client.batch_execute(&first), client.batch_execute(&second));
    started.pg(|| format!("starting migration {}", m.name))?;
    ran.pg(|| format!("running {}", m.file().display()))
}

/// What the log records about an `up` of `m`: its findings, approval and backup.
pub(super) fn facts_for(
    m: &Migration,
    findings: &[lint::Finding],
    opts: &RunOptions,
) -> history::Facts {
    let approval = if let Some(a) = m.approval.as_ref().filter(|_| m.approval_valid()) {
        Some(format!(
            "approved by {} at {}: {}",
            a.approved_by, a.approved_at, a.reason
        ))
    } else if opts.allow_destructive.contains(&m.name) {
        Some(format!(
            "allowed for one run with --allow-destructive by {}",
            history::os_user()
        ))
    } else {
        None
    };
    history::Facts {
        findings: (!findings.is_empty())
            .then(|| serde_json::to_string(findings).unwrap_or_default()),
        approval,
        backup: opts.backup.clone(),
    }
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
    history::ensure_log_table(tx).await?;
    let entries = status(tx, migrations).await?;
    let mut applied = Vec::new();
    for m in pending(migrations, &entries)? {
        let statements = m.lint()?.statements;
        let shape = txcontrol::shape(&statements);
        if shape == txcontrol::Shape::Own {
            return Err(MigrateError::Resolve {
                name: m.name.clone(),
                why: "it opens and commits transactions of its own, which cannot run inside \
                      the seed's one transaction; apply the migrations with `dataforge migrate \
                      up` first, then seed"
                    .into(),
            });
        }
        let sql = Transactional::of(m, &statements, &shape);
        apply_one(tx, m, &sql, &history::Facts::default(), None)
            .await
            .map_err(|source| MigrateError::failed(&m.name, source))?;
        applied.push(m.name.clone());
    }
    Ok(applied)
}
