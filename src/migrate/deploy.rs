//! The deploy runbook as one call: verify (history and folder agree, every pending
//! migration may run) → back up (verified) → up → verify again → the health checks; with
//! `restore_on_failure`, a migration that failed outside a transaction brings the
//! pre-deploy backup back, and a health check that fails after `up` rolls the deploy back
//! (by the migrations' `down.sql` when each has one, else by the backup) and runs the
//! checks again. Every step reports through `on` as it starts, finishes or fails, is
//! written to the audit log, and a run ends with [`DeployEvent::Done`] naming the state it
//! left and what to do next; the CLI renders them as text or JSON lines and hands them to
//! the alert receivers. Nothing here prints.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;
use crate::pg;

/// How a deploy goes. The key lookup and the target's URL are asked for inside the
/// first step (lazily), so what the run says comes in the same order whatever fails.
pub struct DeployOptions<'a> {
    /// The migrations folder.
    pub dir: PathBuf,
    /// Deploy up to and including this migration.
    pub to: Option<String>,
    /// Restore the backup when a migration that runs outside a transaction fails midway.
    pub restore_on_failure: bool,
    /// Where the pre-deploy backup and the audit log go.
    pub backup_dir: PathBuf,
    /// Who the backup is encrypted to, and the identity that opens it for a restore.
    pub keys: Box<dyn FnOnce() -> anyhow::Result<crate::backup::Keys> + Send + 'a>,
    /// The target's URL (resolving it may start the local cluster).
    pub url:
        std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<String>> + Send + 'a>>,
    /// The run's own options (lock waits, `--allow-destructive`, its event sink); the
    /// monitor's URL and the backup are filled in here.
    pub run: RunOptions,
    /// The checks after `up`, and what a failing one does.
    pub health: HealthOptions,
}

/// The health gate after `up`.
#[derive(Debug, Clone)]
pub struct HealthOptions {
    /// Each must pass within `timeout`, tried every `every`.
    pub checks: Vec<health::Check>,
    pub timeout: Duration,
    pub every: Duration,
    /// Roll back when a check fails (off: only report).
    pub rollback: bool,
}

/// What a deploy reports as it goes. `n` is the step's number (of four; a restore, when
/// it happens, takes the number after the failed `up`).
#[derive(Debug, Clone)]
pub enum DeployEvent {
    StepStarted {
        step: &'static str,
        n: usize,
    },
    StepFinished {
        step: &'static str,
        n: usize,
        ms: u64,
        detail: serde_json::Value,
        text: String,
    },
    StepFailed {
        step: &'static str,
        n: usize,
        error: String,
        /// What the step found, when it has more to say than the error (the health
        /// checks' outcomes); `null` otherwise.
        detail: serde_json::Value,
    },
    /// One health check attempt ended.
    HealthAttempt(health::Attempt),
    /// This deploy's migrations were undone: `how` is `down` (their `down.sql`, newest
    /// first) or `restore` (the pre-deploy backup).
    RolledBack {
        how: &'static str,
        migrations: Vec<String>,
    },
    /// `up` is about to run on the session with this backend pid (for a live view from a
    /// second connection).
    Running {
        pid: i32,
    },
    /// `up` has stopped, applied or failed.
    Stopped,
    /// The end: the state the database is in, and what to do next ("" when nothing);
    /// `ok` when no step failed.
    Done {
        state: String,
        next: String,
        ok: bool,
    },
}

/// How a deploy that ran to its end came out.
#[derive(Debug, PartialEq, Eq)]
pub enum DeployOutcome {
    /// These were applied (none when nothing was pending).
    Deployed(Vec<String>),
    /// The pre-deploy check found failed, modified or missing migrations: nothing ran.
    HistoryDisagrees,
    /// The history and the folder disagree after the deploy.
    DisagreesAfter,
}

struct Steps<'a> {
    n: usize,
    on: &'a mut (dyn FnMut(DeployEvent) + Send),
    /// Where each step's end is appended (`audit.log`).
    audit: PathBuf,
    /// Where a failure to write the audit log is said.
    warn: fn(&str),
    any_failed: bool,
    /// The step started and not yet ended, and whether the run's end was said: an error
    /// that comes back without either is said by [`deploy`], so every run ends in a
    /// `step_failed` and a `done` whatever went wrong.
    open: Option<&'static str>,
    ended: bool,
}

impl Steps<'_> {
    fn started(&mut self, step: &'static str) -> Instant {
        self.n += 1;
        self.open = Some(step);
        (self.on)(DeployEvent::StepStarted { step, n: self.n });
        Instant::now()
    }

    fn audit(&self, event: serde_json::Value) {
        if let Err(e) = crate::backup::audit(&self.audit, event) {
            (self.warn)(&format!(
                "warning: the deploy's audit line was not written: {e}"
            ));
        }
    }

    fn finished(
        &mut self,
        step: &'static str,
        t: Instant,
        detail: serde_json::Value,
        text: String,
    ) {
        self.open = None;
        self.audit(
            serde_json::json!({"event": "deploy step finished", "step": step, "detail": &detail}),
        );
        (self.on)(DeployEvent::StepFinished {
            step,
            n: self.n,
            ms: t.elapsed().as_millis() as u64,
            detail,
            text,
        });
    }

    fn failed(&mut self, step: &'static str, error: String) {
        self.failed_with(step, error, serde_json::Value::Null);
    }

    fn failed_with(&mut self, step: &'static str, error: String, detail: serde_json::Value) {
        self.any_failed = true;
        self.open = None;
        self.audit(serde_json::json!({"event": "deploy step failed", "step": step, "error": &error, "detail": &detail}));
        (self.on)(DeployEvent::StepFailed {
            step,
            n: self.n,
            error,
            detail,
        });
    }

    fn done(&mut self, state: &str, next: &str) {
        self.ended = true;
        self.audit(serde_json::json!({"event": "deploy done", "state": state, "next": next, "ok": !self.any_failed}));
        (self.on)(DeployEvent::Done {
            state: state.to_string(),
            next: next.to_string(),
            ok: !self.any_failed,
        });
    }
}

/// Runs the runbook. Returns how it came out; an error when a step failed, after the
/// events that say what state it left.
pub async fn deploy(
    opts: DeployOptions<'_>,
    on: &mut (dyn FnMut(DeployEvent) + Send),
) -> anyhow::Result<DeployOutcome> {
    let mut steps = Steps {
        n: 0,
        on,
        audit: opts.backup_dir.clone(),
        warn: opts.run.notify,
        any_failed: false,
        open: None,
        ended: false,
    };
    let result = run_steps(opts, &mut steps).await;
    if let Err(e) = &result {
        if let Some(step) = steps.open {
            steps.failed(step, crate::describe(e));
        }
        if !steps.ended {
            // before the backup nothing has changed; after it, the error says where it
            // stopped, and the history says what is applied
            if steps.n <= 2 {
                steps.done("nothing changed", "fix the error above and deploy again");
            } else {
                steps.done(
                    "stopped by the error above",
                    "see what is applied: dataforge migrate status",
                );
            }
        }
    }
    result
}

async fn run_steps(
    opts: DeployOptions<'_>,
    steps: &mut Steps<'_>,
) -> anyhow::Result<DeployOutcome> {
    // 1. verify: history and files agree, and every pending migration may run.
    let t = steps.started("verify");
    let migrations = load_dir(&opts.dir)?;
    if let Some(name) = opts.to.as_deref() {
        find(&migrations, name)?;
    }
    // production backups are encrypted when dataforge.toml names recipients; restoring
    // one needs its identity, so that is checked before anything runs
    let keys = (opts.keys)()?;
    if opts.restore_on_failure && !keys.recipients.is_empty() && keys.identity.is_none() {
        anyhow::bail!(
            "--restore-on-failure with encrypted backups ([backup] recipients in \
             dataforge.toml) needs the identity that opens them: --identity FILE or \
             DATAFORGE_BACKUP_IDENTITY; nothing was done"
        );
    }
    let url = opts.url.await?;
    let mut client = pg::connect(&url).await?;
    let entries = status(&client, &migrations).await?;
    let problems = verify_problems(&entries);
    if !problems.is_empty() {
        let list: Vec<String> = problems
            .iter()
            .map(|e| {
                format!(
                    "{} ({})",
                    e.name,
                    serde_json::to_value(&e.state).unwrap_or_default()["state"]
                        .as_str()
                        .unwrap_or("?")
                )
            })
            .collect();
        steps.failed(
            "verify",
            format!("history and folder disagree: {}", list.join(", ")),
        );
        steps.done(
            "nothing changed",
            "run `dataforge migrate status` and settle these first (resolve, or restore the files)",
        );
        return Ok(DeployOutcome::HistoryDisagrees);
    }
    let pending: Vec<&Migration> = entries
        .iter()
        .filter(|e| e.state == State::Pending)
        .filter(|e| opts.to.as_deref().is_none_or(|t| e.name.as_str() <= t))
        .filter_map(|e| migrations.iter().find(|m| m.name == e.name))
        .collect();
    if let Err(e) = check_rewrites(&migrations, &entries, &pending) {
        steps.failed("verify", e.to_string());
        steps.done(
            "nothing changed",
            "settle the rewrite and its original first",
        );
        return Err(e.into());
    }
    let linted = pending
        .iter()
        .map(|m| m.lint())
        .collect::<Result<Vec<_>, _>>()?;
    let checked: Vec<_> = pending.iter().copied().zip(&linted).collect();
    if let Err(e) = approval::gate(&checked, &opts.run.allow_destructive) {
        steps.failed("verify", e.to_string());
        steps.done("nothing changed", "see the findings above");
        return Err(e.into());
    }
    let restore_needed = !opts.health.checks.is_empty()
        && opts.health.rollback
        && pending.iter().any(|m| m.down.is_none());
    if restore_needed && !keys.recipients.is_empty() && keys.identity.is_none() {
        let without: Vec<&str> = pending
            .iter()
            .filter(|m| m.down.is_none())
            .map(|m| m.name.as_str())
            .collect();
        let e = anyhow::anyhow!(
            "a failed health check rolls this deploy back by restoring the pre-deploy backup \
             ({} has no down.sql), and the backup is encrypted ([backup] recipients in \
             dataforge.toml): give the identity that opens it (--identity FILE or \
             DATAFORGE_BACKUP_IDENTITY), write the down.sql, or pass --no-rollback; nothing \
             was done",
            without.join(", ")
        );
        steps.failed("verify", e.to_string());
        steps.done("nothing changed", "see the error above");
        return Err(e);
    }
    steps.finished(
        "verify",
        t,
        serde_json::json!({"pending": pending.iter().map(|m| &m.name).collect::<Vec<_>>()}),
        format!("{} migration(s) pending, checksums match", pending.len()),
    );
    if pending.is_empty() {
        if opts.health.checks.is_empty() {
            steps.done("up to date: nothing to deploy", "");
            return Ok(DeployOutcome::Deployed(Vec::new()));
        }
        // nothing to apply, but the services are checked all the same: a deploy
        // interrupted during its checks left them unchecked, and this run says so
        return check_only(&opts.health, steps, &client, &migrations).await;
    }

    // 2. backup, verified before anything changes.
    let t = steps.started("backup");
    if !opts.health.checks.is_empty() {
        // with health checks the lock is held from here to the end of the checks and of
        // any rollback: no other run applies or undoes a migration in between, so the
        // backup is the database as this deploy found it and a rollback undoes exactly
        // this deploy's (up and down take the lock again on this session, which nests)
        lock::lock(&client, &opts.run).await?;
    }
    let backup = match crate::backup::backup(&url, &opts.backup_dir, &keys.recipients).await {
        Ok(b) => b,
        Err(e) => {
            steps.failed("backup", e.to_string());
            steps.done(
                "nothing changed",
                "fix the backup (disk space, pg_dump version) and deploy again",
            );
            return Err(e.into());
        }
    };
    steps.finished(
        "backup",
        t,
        serde_json::json!({"file": backup.path, "blake3": backup.manifest.blake3}),
        format!("{} (verified)", backup.path.display()),
    );

    // 3. up, watched.
    let t = steps.started("up");
    let mut run = opts.run.clone();
    run.monitor_url = Some(url.clone());
    run.backup = Some(backup.path.display().to_string());
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    (steps.on)(DeployEvent::Running { pid });
    let result = interruptible(
        &url,
        client.cancel_token(),
        up(&mut client, &migrations, opts.to.as_deref(), &run),
    )
    .await;
    (steps.on)(DeployEvent::Stopped);
    let applied = match result {
        Ok(a) => a,
        Err(e) => {
            let outside = matches!(
                e.downcast_ref::<MigrateError>().map(MigrateError::root),
                Some(MigrateError::FailedOutside { .. } | MigrateError::FailedOwnTransactions(_))
            );
            // The full message says what stayed applied and how to go on by hand: not
            // true once the backup is restored, which is said next.
            let headline = e
                .downcast_ref::<MigrateError>()
                .and_then(MigrateError::headline)
                .filter(|_| outside && opts.restore_on_failure);
            match &headline {
                Some(h) => steps.failed("up", format!("{h}; restoring the pre-deploy backup")),
                None => steps.failed("up", crate::describe(&e)),
            }
            if outside && opts.restore_on_failure {
                let t = steps.started("restore");
                match crate::backup::restore(
                    &backup.path,
                    &url,
                    &opts.backup_dir,
                    &keys,
                    run.notify,
                )
                .await
                {
                    Ok(r) => {
                        steps.finished(
                            "restore",
                            t,
                            serde_json::json!({"from": r.from}),
                            "restored the pre-deploy backup".into(),
                        );
                        steps.done(
                            "restored to the pre-deploy backup: the database is as before the deploy",
                            "fix the migration and deploy again",
                        );
                        // The error's own words say what stayed applied: no longer true,
                        // and the summary above said what is. Exit 2 without them.
                        if let Some(h) = headline {
                            return Err(anyhow::anyhow!(
                                "{h}; the pre-deploy backup was restored, so the database is as before the deploy"
                            ));
                        }
                    }
                    Err(re) => {
                        steps.failed("restore", re.to_string());
                        steps.done(
                            "PARTIALLY MIGRATED and the restore failed",
                            &format!(
                                "restore by hand: dataforge restore {}",
                                backup.path.display()
                            ),
                        );
                    }
                }
            } else if outside {
                steps.done(
                    "partially migrated: the failed migration ran outside a transaction and kept the statements before the failing one",
                    &format!(
                        "fix it, make it safe to re-run, `dataforge migrate resolve --rolled-back NAME` and deploy again; or restore the backup: dataforge restore {}",
                        backup.path.display()
                    ),
                );
            } else {
                steps.done(
                    "the failing migration rolled back; the ones before it in this deploy stay applied",
                    &format!(
                        "fix it, `dataforge migrate resolve --rolled-back NAME`, deploy again (backup: {})",
                        backup.path.display()
                    ),
                );
            }
            return Err(e);
        }
    };
    steps.finished(
        "up",
        t,
        serde_json::json!({"applied": applied}),
        format!("{} applied", applied.len()),
    );

    // 4. verify again.
    let t = steps.started("verify after");
    let entries = status(&client, &migrations).await?;
    let problems = verify_problems(&entries);
    if !problems.is_empty() {
        steps.failed(
            "verify after",
            "history and folder disagree after the deploy".into(),
        );
        steps.done(
            "history and folder disagree after the deploy",
            "see which migrations: dataforge migrate status",
        );
        return Ok(DeployOutcome::DisagreesAfter);
    }
    steps.finished(
        "verify after",
        t,
        serde_json::json!({}),
        "history matches the folder".into(),
    );
    if opts.health.checks.is_empty() {
        steps.done(&format!("deployed {} migration(s)", applied.len()), "");
        return Ok(DeployOutcome::Deployed(applied));
    }
    if applied.is_empty() {
        // another run applied them while this one waited for the lock
        return check_only(&opts.health, steps, &client, &migrations).await;
    }
    let deployed = Deployed {
        migrations: &migrations,
        applied,
        backup: backup.path,
        url,
    };
    after_up(
        &opts.health,
        &opts.backup_dir,
        steps,
        client,
        &keys,
        &run,
        deployed,
    )
    .await
}

/// What `up` left, for the health checks and a rollback.
struct Deployed<'a> {
    migrations: &'a [Migration],
    applied: Vec<String>,
    backup: PathBuf,
    url: String,
}

/// The health checks (step 5); when one fails, the rollback (6) and the checks again
/// (7). The migration lock is held throughout (taken before the backup).
async fn after_up(
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
async fn check_only(
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

/// Runs `work` (an `up`, `down` or `resolve` on the connection whose cancel token is
/// `cancel`) until it ends or the process is interrupted (Ctrl-C, SIGTERM): then the
/// running statement is cancelled, which rolls it back and releases the lock.
pub async fn interruptible<T>(
    url: &str,
    cancel: tokio_postgres::CancelToken,
    work: impl std::future::Future<Output = Result<T, MigrateError>>,
) -> anyhow::Result<T> {
    let _own = crate::cleanup::own_signals();
    tokio::select! {
        r = work => Ok(r?),
        _ = crate::cleanup::interrupted() => {
            pg::cancel(url, &cancel).await;
            Err(crate::cleanup::Interrupted::new(
                "interrupted: the running migration was cancelled and rolled back, and the \
                 migration lock released (a migration that runs outside a transaction keeps \
                 the statements it finished: see `dataforge migrate status`)",
            )
            .into())
        }
    }
}
