//! `dataforge migrate deploy`: verify → backup (verified) → up → verify, each step
//! reported; on a terminal a live view of the running statement, with `--json` one event
//! per line for alerting.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;

use super::{DirArg, RunArgs};
use crate::cli::{emit, say, Target, EXIT_FOUND};
use crate::migrate::deploy::{DeployEvent, DeployOptions, DeployOutcome};
use crate::migrate::{self, RunEvent};
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
    #[arg(long, value_name = "DIR", default_value = crate::cli::backup::DEFAULT_DIR)]
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

/// The migration running now, for the live view: set from the run's events.
type Current = Arc<Mutex<String>>;

fn json_line(v: serde_json::Value) {
    let _ = emit(&format!("{v}\n"));
}

/// Where `up`'s own events go: the current migration noted, then a JSON line or a text
/// line.
fn run_events(json: bool, current: Current) -> migrate::OnEvent {
    migrate::OnEvent::new(move |e| {
        if let RunEvent::MigrationStarted { name, .. } = e {
            *current.lock().unwrap_or_else(|p| p.into_inner()) = name.clone();
        }
        if json {
            json_line(serde_json::to_value(e).unwrap_or_default());
        } else {
            match e {
                RunEvent::MigrationStarted { name, .. } => say(&format!("  applying {name}")),
                RunEvent::MigrationFinished { name, ms } => {
                    say(&format!("  applied {name} ({ms} ms)"))
                }
                _ => {}
            }
        }
    })
}

/// Renders the runbook's events: `[n/4] step …` lines, or one JSON event per line; a
/// live view of the running statement while `up` runs.
struct Render {
    json: bool,
    url: Arc<Mutex<String>>,
    current: Current,
    watching: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Render {
    fn event(&mut self, e: DeployEvent) {
        let json = self.json;
        match e {
            DeployEvent::StepStarted { step, n } => {
                if json {
                    json_line(serde_json::json!({"event": "step_started", "step": step}));
                } else {
                    say(&format!("[{n}/4] {step}"));
                }
            }
            DeployEvent::StepFinished {
                step,
                n,
                ms,
                detail,
                text,
            } => {
                if json {
                    json_line(
                        serde_json::json!({"event": "step_finished", "step": step, "ms": ms, "detail": detail}),
                    );
                } else {
                    say(&format!("[{n}/4] {step}: {text} ({ms} ms)"));
                }
            }
            DeployEvent::StepFailed { step, n, error } => {
                if json {
                    json_line(
                        serde_json::json!({"event": "step_failed", "step": step, "error": error}),
                    );
                } else {
                    say(&format!("[{n}/4] {step} FAILED: {error}"));
                }
            }
            DeployEvent::Running { pid } => {
                let url = self.url.lock().map(|u| u.clone()).unwrap_or_default();
                self.watching = watch(url, pid, json, self.current.clone());
            }
            DeployEvent::Stopped => {
                if let Some(stop) = self.watching.take() {
                    let _ = stop.send(());
                }
            }
            DeployEvent::Done { state, next } => {
                if json {
                    json_line(serde_json::json!({"event": "done", "state": state, "next": next}));
                } else {
                    say(&format!("final state: {state}"));
                    if !next.is_empty() {
                        say(&format!("next: {next}"));
                    }
                }
            }
        }
    }
}

/// Watches the runner's session from a second connection until told to stop: a live
/// line on a terminal, a `progress` event every 2 s with --json.
fn watch(
    url: String,
    pid: i32,
    json: bool,
    current: Current,
) -> Option<tokio::sync::oneshot::Sender<()>> {
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
            let current = current.lock().map(|c| c.clone()).unwrap_or_default();
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
    let current = Current::default();
    let url = Arc::new(Mutex::new(String::new()));
    let mut run = args.run.options("");
    run.monitor_url = None;
    run.allow_destructive = args.allow_destructive.clone();
    run.on_event = run_events(args.json, current.clone());
    let target = args.target;
    let seen = url.clone();
    let opts = DeployOptions {
        dir: args.dir.path(),
        to: args.to,
        restore_on_failure: args.restore_on_failure,
        backup_dir: args.backup_dir,
        keys: Box::new(move || {
            Ok(crate::backup::Keys {
                recipients: crate::cli::backup::recipients(&[], false)?,
                identity: args.identity,
            })
        }),
        url: Box::pin(async move {
            let resolved = target.resolve().await?;
            *seen.lock().unwrap_or_else(|p| p.into_inner()) = resolved.clone();
            Ok(resolved)
        }),
        run,
    };
    let mut render = Render {
        json: args.json,
        url,
        current,
        watching: None,
    };
    match migrate::deploy::deploy(opts, &mut |e| render.event(e)).await? {
        DeployOutcome::Deployed(_) => Ok(ExitCode::SUCCESS),
        DeployOutcome::HistoryDisagrees | DeployOutcome::DisagreesAfter => {
            Ok(ExitCode::from(EXIT_FOUND))
        }
    }
}
