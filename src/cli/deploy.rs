//! `dataforge migrate deploy`: verify → backup (verified) → up → verify, each step
//! reported; on a terminal a live view of the running statement, with `--json` one event
//! per line for alerting.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Args;

use super::migrate::{DirArg, RunArgs};
use super::{emit, say, Target, EXIT_FOUND};
use crate::migrate::{self, MigrateError, RunEvent, State};
use crate::pg;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dataforge migrate deploy                              verify, back up, apply, verify
  dataforge migrate deploy --json | tee deploy.log      one JSON event per line, for alerting
  dataforge migrate deploy --restore-on-failure         restore the backup if a migration that runs
                                                        outside a transaction fails midway

Exit codes: 0 deployed (or nothing pending); 1 the pre-deploy check found failed, modified
or missing migrations; 2 a step failed (the output says the state it left and what to do).")]
pub struct DeployArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Deploy up to and including this migration
    #[arg(long, value_name = "NAME")]
    pub to: Option<String>,
    /// Folder for the pre-deploy backup and the audit log
    #[arg(long, value_name = "DIR", default_value = super::backup::DEFAULT_DIR)]
    pub backup_dir: PathBuf,
    /// If a migration that runs outside a transaction fails midway, restore the backup
    #[arg(long)]
    pub restore_on_failure: bool,
    /// The age identity that opens the pre-deploy backup, when dataforge.toml's [backup]
    /// recipients encrypt it (needed by --restore-on-failure then)
    #[arg(long, value_name = "FILE", env = "DATAFORGE_BACKUP_IDENTITY")]
    pub identity: Option<PathBuf>,
    /// Run this migration despite high-risk lint findings, this once (repeatable)
    #[arg(long, value_name = "NAME")]
    pub allow_destructive: Vec<String>,
    /// One JSON event per line on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub run: RunArgs,
}

/// The migration running now, for the live view.
static CURRENT: Mutex<String> = Mutex::new(String::new());

fn json_line(v: serde_json::Value) {
    let _ = emit(&format!("{v}\n"));
}

fn event_json(e: &RunEvent) {
    if let RunEvent::MigrationStarted { name, .. } = e {
        *CURRENT.lock().unwrap_or_else(|p| p.into_inner()) = name.clone();
    }
    json_line(serde_json::to_value(e).unwrap_or_default());
}

fn event_text(e: &RunEvent) {
    match e {
        RunEvent::MigrationStarted { name, .. } => {
            *CURRENT.lock().unwrap_or_else(|p| p.into_inner()) = name.clone();
            say(&format!("  applying {name}"));
        }
        RunEvent::MigrationFinished { name, ms } => say(&format!("  applied {name} ({ms} ms)")),
        _ => {}
    }
}

struct Steps {
    json: bool,
    n: usize,
}

impl Steps {
    fn started(&mut self, step: &str) -> Instant {
        self.n += 1;
        if self.json {
            json_line(serde_json::json!({"event": "step_started", "step": step}));
        } else {
            say(&format!("[{}/4] {step}", self.n));
        }
        Instant::now()
    }

    fn finished(&self, step: &str, t: Instant, detail: serde_json::Value, text: &str) {
        let ms = t.elapsed().as_millis() as u64;
        if self.json {
            json_line(
                serde_json::json!({"event": "step_finished", "step": step, "ms": ms, "detail": detail}),
            );
        } else {
            say(&format!("[{}/4] {step}: {text} ({ms} ms)", self.n));
        }
    }

    fn failed(&self, step: &str, error: &str) {
        if self.json {
            json_line(serde_json::json!({"event": "step_failed", "step": step, "error": error}));
        } else {
            say(&format!("[{}/4] {step} FAILED: {error}", self.n));
        }
    }

    fn done(&self, state: &str, next: &str) {
        if self.json {
            json_line(serde_json::json!({"event": "done", "state": state, "next": next}));
        } else {
            say(&format!("final state: {state}"));
            if !next.is_empty() {
                say(&format!("next: {next}"));
            }
        }
    }
}

/// Watches the runner's session from a second connection until told to stop: a live
/// line on a terminal, a `progress` event every 2 s with --json.
fn watch(url: String, pid: i32, json: bool) -> Option<tokio::sync::oneshot::Sender<()>> {
    let live = !json && std::io::stderr().is_terminal();
    if !live && !json {
        return None;
    }
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let Ok(client) = pg::connect(&url).await else {
            return;
        };
        let bar = live.then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        let mut last_json = Instant::now();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            let Some(snap) = migrate::watch::observe(&client, pid).await else {
                continue;
            };
            let current = CURRENT.lock().map(|c| c.clone()).unwrap_or_default();
            if let Some(b) = &bar {
                b.set_message(format!("{current}  {}", snap.line()));
            }
            if json && last_json.elapsed() >= Duration::from_secs(2) {
                last_json = Instant::now();
                let mut v = serde_json::to_value(&snap).unwrap_or_default();
                v["event"] = "progress".into();
                v["migration"] = current.into();
                json_line(v);
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
    });
    Some(stop)
}

pub async fn run(args: DeployArgs) -> anyhow::Result<ExitCode> {
    let mut steps = Steps {
        json: args.json,
        n: 0,
    };
    // 1. verify: history and files agree, and every pending migration may run.
    let t = steps.started("verify");
    let migrations = migrate::load_dir(&args.dir.path())?;
    if let Some(name) = args.to.as_deref() {
        migrate::find(&migrations, name)?;
    }
    // production backups are encrypted when dataforge.toml names recipients; restoring
    // one needs its identity, so that is checked before anything runs
    let keys = crate::backup::Keys {
        recipients: super::backup::recipients(&[], false)?,
        identity: args.identity.clone(),
    };
    if args.restore_on_failure && !keys.recipients.is_empty() && keys.identity.is_none() {
        anyhow::bail!(
            "--restore-on-failure with encrypted backups ([backup] recipients in \
             dataforge.toml) needs the identity that opens them: --identity FILE or \
             DATAFORGE_BACKUP_IDENTITY; nothing was done"
        );
    }
    let url = args.target.resolve().await?;
    let mut client = pg::connect(&url).await?;
    let entries = migrate::status(&client, &migrations).await?;
    let problems = migrate::verify_problems(&entries);
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
            &format!("history and folder disagree: {}", list.join(", ")),
        );
        steps.done(
            "nothing changed",
            "run `dataforge migrate status` and settle these first (resolve, or restore the files)",
        );
        return Ok(ExitCode::from(EXIT_FOUND));
    }
    let pending: Vec<&migrate::Migration> = entries
        .iter()
        .filter(|e| e.state == State::Pending)
        .filter(|e| args.to.as_deref().is_none_or(|t| e.name.as_str() <= t))
        .filter_map(|e| migrations.iter().find(|m| m.name == e.name))
        .collect();
    if let Err(e) = migrate::check_rewrites(&migrations, &entries, &pending) {
        steps.failed("verify", &e.to_string());
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
    if let Err(e) = migrate::approval::gate(&checked, &args.allow_destructive) {
        steps.failed("verify", &e.to_string());
        steps.done("nothing changed", "see the findings above");
        return Err(e.into());
    }
    steps.finished(
        "verify",
        t,
        serde_json::json!({"pending": pending.iter().map(|m| &m.name).collect::<Vec<_>>()}),
        &format!("{} migration(s) pending, checksums match", pending.len()),
    );
    if pending.is_empty() {
        steps.done("up to date: nothing to deploy", "");
        return Ok(ExitCode::SUCCESS);
    }

    // 2. backup, verified before anything changes.
    let t = steps.started("backup");
    let backup = match crate::backup::backup(&url, &args.backup_dir, &keys.recipients).await {
        Ok(b) => b,
        Err(e) => {
            steps.failed("backup", &e.to_string());
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
        &format!("{} (verified)", backup.path.display()),
    );

    // 3. up, watched.
    let t = steps.started("up");
    let mut opts = args.run.options(&url);
    opts.allow_destructive = args.allow_destructive.clone();
    opts.backup = Some(backup.path.display().to_string());
    opts.on_event = if args.json { event_json } else { event_text };
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    let stop = watch(url.clone(), pid, args.json);
    let result = super::migrate::interruptible(
        &url,
        client.cancel_token(),
        migrate::up(&mut client, &migrations, args.to.as_deref(), &opts),
    )
    .await;
    if let Some(stop) = stop {
        let _ = stop.send(());
    }
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
                .filter(|_| outside && args.restore_on_failure);
            match &headline {
                Some(h) => steps.failed("up", &format!("{h}; restoring the pre-deploy backup")),
                None => steps.failed("up", &super::describe(&e)),
            }
            if outside && args.restore_on_failure {
                let t = steps.started("restore");
                match crate::backup::restore(&backup.path, &url, &args.backup_dir, &keys, say).await
                {
                    Ok(r) => {
                        steps.finished(
                            "restore",
                            t,
                            serde_json::json!({"from": r.from}),
                            "restored the pre-deploy backup",
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
                        steps.failed("restore", &re.to_string());
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
        &format!("{} applied", applied.len()),
    );

    // 4. verify again.
    let t = steps.started("verify after");
    let entries = migrate::status(&client, &migrations).await?;
    let problems = migrate::verify_problems(&entries);
    if !problems.is_empty() {
        steps.failed(
            "verify after",
            "history and folder disagree after the deploy",
        );
        return Ok(ExitCode::from(EXIT_FOUND));
    }
    steps.finished(
        "verify after",
        t,
        serde_json::json!({}),
        "history matches the folder",
    );
    steps.done(&format!("deployed {} migration(s)", applied.len()), "");
    Ok(ExitCode::SUCCESS)
}
