//! The health gate after `up`: the checks (step 5), and when one fails the rollback (6),
//! by the `down.sql` of exactly this deploy's migrations or by the pre-deploy backup, and
//! the checks again (7). Every outcome is a row of `_dataforge_migration_log`, every step
//! a line of the audit log, and an interrupt says what is true when it lands.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;

/// What `up` left, for the health checks and a rollback.
pub(super) struct Deployed<'a> {
    pub(super) migrations: &'a [Migration],
    pub(super) applied: Vec<String>,
    pub(super) backup: PathBuf,
    pub(super) url: String,
}

/// The health checks (step 5); when one fails, the rollback (6) and the checks again
/// (7). The migration lock is held throughout (taken before the backup).
pub(super) async fn after_up(
    opts: &HealthOptions,
    backup_dir: &std::path::Path,
    steps: &mut Steps<'_>,
    mut client: tokio_postgres::Client,
    keys: &crate::backup::Keys,
    run: &RunOptions,
    d: Deployed<'_>,
) -> anyhow::Result<DeployOutcome> {
    let n = d.applied.len();
    let newest = d
        .migrations
        .iter()
        .find(|m| d.applied.last() == Some(&m.name))
        .expect("an applied migration is in the folder");
    let all_down = d.applied.iter().all(|a| {
        d.migrations
            .iter()
            .any(|m| &m.name == a && m.down.is_some())
    });
    // by hand, `down --to` the migration applied before this deploy undoes this deploy's
    // and nothing older, however many of them a rollback already undid
    let before = status(&client, d.migrations)
        .await?
        .into_iter()
        .filter(|e| matches!(e.state, State::Applied { .. }) && !d.applied.contains(&e.name))
        .map(|e| e.name)
        .next_back();
    let down_by_hand = match &before {
        Some(b) => format!("dataforge migrate down --to {b}"),
        // every applied migration is this deploy's
        None => format!("dataforge migrate down --steps {n}"),
    };
    let undo_by_hand = if all_down {
        format!(
            "{down_by_hand} (each has a down.sql), or dataforge restore {}",
            d.backup.display()
        )
    } else {
        format!("dataforge restore {}", d.backup.display())
    };
    // Ctrl-C and SIGTERM are this command's own until it ends: what they interrupt
    // decides what is true afterwards
    let _own = crate::cleanup::own_signals();
    let t = steps.started("health");
    let started = Instant::now();
    let Some(checks) = checked(opts, steps).await else {
        record(
            steps.warn,
            &client,
            newest,
            history::Action::HealthFailed,
            started,
            None,
            "interrupted: the checks did not finish, and nothing was rolled back",
        )
        .await;
        steps.failed("health", "interrupted".into());
        steps.done(
            &format!(
                "deployed {n} migration(s); the health checks were interrupted, so nothing was rolled back"
            ),
            &format!("check the services; to undo the deploy: {undo_by_hand}"),
        );
        return Err(crate::cleanup::Interrupted::new(format!("interrupted during the health checks: the deploy's {n} migration(s) stay applied, unchecked")).into());
    };
    let detail = serde_json::json!({ "checks": &checks });
    let failing = failing_of(&checks);
    if failing.is_empty() {
        record(
            steps.warn,
            &client,
            newest,
            history::Action::HealthPassed,
            started,
            None,
            "",
        )
        .await;
        steps.finished(
            "health",
            t,
            detail,
            format!("{} check(s) passed", checks.len()),
        );
        steps.done(
            &format!("deployed {n} migration(s); the health checks pass"),
            "",
        );
        return Ok(DeployOutcome::Deployed(d.applied));
    }
    // in the history before anything else, so a run killed from here on leaves it said
    let after_up = format!("after up: {failing}");
    record(
        steps.warn,
        &client,
        newest,
        history::Action::HealthFailed,
        started,
        None,
        &after_up,
    )
    .await;
    steps.failed_with("health", format!("failing after up: {failing}"), detail);
    if !opts.rollback {
        steps.done(
            &format!(
                "deployed {n} migration(s), but the health checks fail; not rolled back (--no-rollback)"
            ),
            &format!("look at {}; to undo the deploy: {undo_by_hand}", names(&checks)),
        );
        anyhow::bail!(
            "the health checks failed after up: {failing}; nothing was rolled back (--no-rollback)"
        );
    }

    // 6. roll back: every migration's down.sql when each has one, else the backup
    let t = steps.started("rollback");
    let mut note = String::new();
    let mut how = None;
    if all_down {
        let cancel = client.cancel_token();
        let only = DownTo::Only(d.applied.iter().rev().cloned().collect());
        tokio::select! {
            r = down(&mut client, d.migrations, only, run) => match r {
                Ok(names) => how = Some(("down", names)),
                Err(e) => {
                    // the error's own words say what stays applied, which the restore
                    // then changes: it is shown as it was, and the state says the rest
                    (run.notify)(&format!(
                        "a down.sql failed, so the pre-deploy backup is restored instead: {}",
                        crate::describe(&e.into())
                    ));
                    note = "a down.sql failed, so the backup was restored instead; ".into();
                }
            },
            _ = crate::cleanup::interrupted() => {
                pg::cancel(&d.url, &cancel).await;
                steps.failed(
                    "rollback",
                    "interrupted: the running down.sql was cancelled and rolled back".into(),
                );
                steps.done(
                    "PARTLY ROLLED BACK: some of this deploy's migrations may still be applied",
                    &format!(
                        "see which: dataforge migrate status; then finish by hand: {down_by_hand}{}",
                        if before.is_none() { " (fewer steps for those already rolled back)" } else { "" }
                    ),
                );
                return Err(crate::cleanup::Interrupted::new("interrupted during the rollback: `dataforge migrate status` shows which of this deploy's migrations are still applied").into());
            }
        }
    }
    let mut interrupted_in_restore = false;
    let client = match how {
        Some(_) => client,
        None => {
            // this session keeps the lock until the restore's swap ends it; then a new
            // one takes it again for the second run of the checks
            (run.notify)(
                "restoring the pre-deploy backup: this runs to its end (Ctrl-C waits for it)",
            );
            // a signal during the restore is kept, and honoured once it has ended
            let signalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let listener = tokio::spawn({
                let signalled = signalled.clone();
                async move {
                    crate::cleanup::interrupted().await;
                    signalled.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            });
            let restored =
                crate::backup::restore(&d.backup, &d.url, backup_dir, keys, run.notify).await;
            listener.abort();
            drop(client);
            interrupted_in_restore =
                restored.is_ok() && signalled.load(std::sync::atomic::Ordering::SeqCst);
            match restored {
                Ok(r) => {
                    note.push_str(&format!(
                        "anything written to the database since the backup is not in it; the \
                         database as it was before the restore is in {}",
                        r.pre_restore_backup.display()
                    ));
                    how = Some(("restore", d.applied.clone()))
                }
                Err(e) => {
                    steps.failed("rollback", format!("{note}the restore failed: {e}"));
                    steps.done(
                        if note.is_empty() {
                            "DEPLOYED BUT UNHEALTHY, and the rollback failed"
                        } else {
                            "PARTLY ROLLED BACK (a down.sql failed), and the restore failed"
                        },
                        &format!("restore by hand: dataforge restore {}", d.backup.display()),
                    );
                    anyhow::bail!(
                        "the health checks failed after up ({}) and the rollback failed: \
                         restore by hand: dataforge restore {}",
                        names(&checks),
                        d.backup.display()
                    );
                }
            }
            let client = pg::connect(&d.url).await?;
            lock::lock(&client, run).await?;
            client
        }
    };
    let (how, undone) = how.expect("set above");
    let said = match how {
        "down" => format!("ran down.sql of {}", undone.join(", ")),
        _ => format!(
            "restored the pre-deploy backup {} ({note})",
            d.backup.display()
        ),
    };
    // after a restore the log is the backup's: the failed checks are written again, and
    // the rollback, so they are there either way
    let logged = history::ensure_log_table(&client).await;
    log_warning(steps.warn, logged);
    if how == "restore" {
        record(
            steps.warn,
            &client,
            newest,
            history::Action::HealthFailed,
            started,
            None,
            &after_up,
        )
        .await;
    }
    record(
        steps.warn,
        &client,
        newest,
        history::Action::DeployRolledBack,
        started,
        Some(&d.backup),
        &format!("health checks failed after up ({failing}): {said}"),
    )
    .await;
    steps.finished(
        "rollback",
        t,
        serde_json::json!({"how": how, "migrations": &undone}),
        said.clone(),
    );
    (steps.on)(DeployEvent::RolledBack {
        how,
        migrations: undone,
    });
    if interrupted_in_restore {
        steps.done(
            &format!(
                "rolled back ({said}): the schema and history are as before the deploy; interrupted before the checks ran again"
            ),
            "check the services",
        );
        return Err(crate::cleanup::Interrupted::new("interrupted during the restore: the pre-deploy backup was restored, and the checks did not run again").into());
    }

    // 7. the checks again, against the database as it was
    let t = steps.started("health again");
    let started = Instant::now();
    let Some(again) = checked(opts, steps).await else {
        record(
            steps.warn,
            &client,
            newest,
            history::Action::HealthFailed,
            started,
            None,
            "interrupted: the checks after the rollback did not finish",
        )
        .await;
        steps.failed("health again", "interrupted".into());
        steps.done(
            &format!("rolled back ({said}); the checks after the rollback were interrupted"),
            "check the services",
        );
        return Err(crate::cleanup::Interrupted::new(
            "interrupted during the health checks after the rollback",
        )
        .into());
    };
    let detail = serde_json::json!({ "checks": &again });
    let still = failing_of(&again);
    let (action, error) = if still.is_empty() {
        (history::Action::HealthPassed, None)
    } else {
        (
            history::Action::HealthFailed,
            Some(format!("after the rollback: {still}")),
        )
    };
    record(
        steps.warn,
        &client,
        newest,
        action,
        started,
        None,
        error.as_deref().unwrap_or(""),
    )
    .await;
    let after = if still.is_empty() {
        steps.finished(
            "health again",
            t,
            detail,
            format!("{} check(s) pass after the rollback", again.len()),
        );
        "they pass after the rollback"
    } else {
        steps.failed_with("health again", format!("still failing: {still}"), detail);
        "they still fail after it"
    };
    steps.done(
        &format!(
            "rolled back ({said}): the schema and history are as before the deploy; the health checks failed after up, and {after}"
        ),
        &if still.is_empty() {
            format!(
                "find why {} failed with the new schema, fix it, and deploy again",
                names(&checks)
            )
        } else {
            "the checks fail without this deploy too: look at the services before deploying again"
                .to_string()
        },
    );
    anyhow::bail!(
        "the health checks failed after up ({}); the deploy was rolled back ({}), and {after}",
        names(&checks),
        if how == "down" {
            "down.sql"
        } else {
            "backup restored"
        }
    )
}

/// A write to `_dataforge_migration_log` that failed is said, and the run goes on.
fn log_warning(warn: fn(&str), r: Result<(), PgError>) {
    if let Err(e) = r {
        warn(&format!(
            "warning: the deploy's step was not written to _dataforge_migration_log: {e}"
        ));
    }
}

/// One row of this deploy's checks or rollback in `_dataforge_migration_log`, under its
/// newest migration; a failed write is a warning (the history is a record, and keeping
/// it must not change what is done).
async fn record(
    warn: fn(&str),
    client: &tokio_postgres::Client,
    newest: &Migration,
    action: history::Action,
    started: Instant,
    backup: Option<&std::path::Path>,
    error: &str,
) {
    let facts = history::Facts {
        backup: backup.map(|b| b.display().to_string()),
        ..Default::default()
    };
    let r = history::log_error(
        client,
        &newest.name,
        action,
        &newest.checksum,
        started,
        &facts,
        error,
    )
    .await;
    log_warning(warn, r);
}

/// Nothing was pending: the checks run all the same, and a failing one is reported
/// (there is nothing of this run's to roll back).
pub(super) async fn check_only(
    opts: &HealthOptions,
    steps: &mut Steps<'_>,
    client: &tokio_postgres::Client,
    migrations: &[Migration],
) -> anyhow::Result<DeployOutcome> {
    // the rows go under the newest applied migration (none applied: no row)
    let newest = status(client, migrations)
        .await?
        .into_iter()
        .filter(|e| matches!(e.state, State::Applied { .. }))
        .filter_map(|e| migrations.iter().find(|m| m.name == e.name))
        .next_back();
    let _own = crate::cleanup::own_signals();
    let t = steps.started("health");
    let started = Instant::now();
    let warn = steps.warn;
    let record_checks = async |action, error: &str| {
        if let Some(newest) = newest {
            record(warn, client, newest, action, started, None, error).await;
        }
    };
    let Some(checks) = checked(opts, steps).await else {
        steps.failed("health", "interrupted".into());
        steps.done(
            "up to date: nothing to deploy; the checks were interrupted",
            "",
        );
        return Err(
            crate::cleanup::Interrupted::new("interrupted during the health checks").into(),
        );
    };
    let failing = failing_of(&checks);
    let detail = serde_json::json!({ "checks": &checks });
    if failing.is_empty() {
        record_checks(history::Action::HealthPassed, "").await;
        steps.finished(
            "health",
            t,
            detail,
            format!("{} check(s) passed", checks.len()),
        );
        steps.done("up to date: nothing to deploy; the health checks pass", "");
        return Ok(DeployOutcome::Deployed(Vec::new()));
    }
    record_checks(
        history::Action::HealthFailed,
        &format!("with nothing to deploy: {failing}"),
    )
    .await;
    steps.failed_with("health", format!("failing: {failing}"), detail);
    steps.done(
        "up to date: nothing to deploy, but the health checks fail; nothing of this run's to roll back",
        "look at the services (the last deploy's checks are rows of _dataforge_migration_log)",
    );
    anyhow::bail!(
        "nothing to deploy, and the health checks fail: {}",
        names(&checks)
    )
}

/// Runs the health checks on threads of their own, each attempt reported as it ends:
/// their outcomes, or `None` when Ctrl-C or SIGTERM came first. The checks are then
/// stopped, and a running command's process group is gone before this returns.
async fn checked(opts: &HealthOptions, steps: &mut Steps<'_>) -> Option<Vec<health::Outcome>> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let checks = opts.checks.clone();
    let (timeout, every) = (opts.timeout, opts.every);
    let halt = stop.clone();
    let mut task = tokio::task::spawn_blocking(move || {
        health::run_all(&checks, timeout, every, &halt, &|a| {
            let _ = tx.send(a.clone());
        })
    });
    let interrupted = crate::cleanup::interrupted();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            a = rx.recv() => match a {
                Some(a) => (steps.on)(DeployEvent::HealthAttempt(a)),
                None => break,
            },
            _ = &mut interrupted => {
                stop.store(true, Ordering::SeqCst);
                // commands see the stop within 50 ms and kill their groups; an HTTP
                // attempt cannot be cut short, and is not waited for
                let _ = tokio::time::timeout(Duration::from_secs(1), &mut task).await;
                return None;
            }
        }
    }
    // a check that could not run is a check that did not pass
    Some(task.await.unwrap_or_else(|_| {
        opts.checks
            .iter()
            .map(|c| health::Outcome {
                check: c.shown(),
                passed: false,
                attempts: 0,
                result: "the checks' thread failed".into(),
                ms: 0,
            })
            .collect()
    }))
}

/// The failing checks' names.
fn names(checks: &[health::Outcome]) -> String {
    checks
        .iter()
        .filter(|o| !o.passed)
        .map(|o| o.check.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn failing_of(checks: &[health::Outcome]) -> String {
    checks
        .iter()
        .filter(|o| !o.passed)
        .map(|o| format!("{} ({} after {} attempt(s))", o.check, o.result, o.attempts))
        .collect::<Vec<_>>()
        .join(", ")
}
