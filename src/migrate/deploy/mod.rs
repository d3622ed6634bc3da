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

mod gate;
use crate::pg;
use gate::{after_up, check_only, Deployed};

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

/// What a deploy reports as it goes. `n` is the step's number: four, five with health
/// checks, seven when a failed check is rolled back and checked again; a restore after a
/// failed `up` takes the number after it.
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
