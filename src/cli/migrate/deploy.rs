//! `dataforge migrate deploy`: verify → backup (verified) → up → verify → health checks
//! (with a rollback when one fails), each step reported; on a terminal a live view of the
//! running statement, with `--json` one event per line, and the events POSTed to the
//! `--notify` receivers.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;

use super::{DirArg, RunArgs};
use crate::cli::{emit, say, Target, EXIT_FOUND};
use crate::migrate::alert::{DeployAlerts, Hook};
use crate::migrate::deploy::{DeployEvent, DeployOptions, DeployOutcome, HealthOptions};
use crate::migrate::health::Check;
use crate::migrate::{self, RunEvent};
use crate::pg;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dataforge migrate deploy                              verify, back up, apply, verify
  dataforge migrate deploy --json | tee deploy.log      one JSON event per line, for alerting
  dataforge migrate deploy --restore-on-failure         restore the backup if a migration that runs
                                                        outside a transaction fails midway
  dataforge migrate deploy \\
      --notify https://hooks.slack.com/services/T0/B0/XXXX \\
      --notify https://ops.example.com/deploy-events \\
      --health-check https://api.example.com/health \\
      --health-check \"psql $DATABASE_URL -c 'select 1'\"
                                  the whole runbook: chat messages and JSON events, then each
                                  check must pass within 2m, else the deploy is rolled back

Alerts (--notify URL, repeatable, or [deploy] notify = [\"URL\", …] in dataforge.toml): every
event as JSON (deploy_started, step_*, migration_finished, rolled_back, done) POSTed to URL;
Slack's hooks.slack.com and Teams' *.webhook.office.com, or any URL given as slack:URL or
teams:URL, get a short message instead: what, where, who, how long, what next (json:URL
forces JSON). Each receiver has a sender of its own, tried 3 times per event: the steps never
wait for it and it never fails the deploy. At the end the deploy waits at most 10 s for what
is queued, and the summary names every receiver that missed an event, with why. A URL is
shown as its scheme, host and port only.

Health checks (--health-check URL|COMMAND, repeatable, or [deploy] health_check = […]): after
up, a URL must answer a GET with 2xx, a command (run by sh -c; at the timeout its whole
process group is stopped) must exit 0, within --health-timeout, tried every
--health-interval, each answer shown as it comes. The migration lock is held from the
backup to the end of the checks and any rollback. When one fails, the deploy is rolled back: each
migration's down.sql (newest first) when every one this deploy applied has one, else the
pre-deploy backup is restored (writes made since the backup are then only in the
pre-restore backup, which the summary names). The checks then run again and both results
are reported; exit 2. --no-rollback only reports. With nothing pending, the checks still
run (a deploy interrupted during its checks left them unchecked) and a failure exits 2.

Exit codes: 0 deployed (or nothing pending), health checks passed; 1 the pre-deploy check
found failed, modified or missing migrations; 2 a step or a health check failed (the output
says the state it left and what to do); 130/143 interrupted by Ctrl-C/SIGTERM (the output
says the same). With --json, a last `notify` event says how each --notify receiver fared.")]
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
    /// POST the deploy's events to URL (repeatable): JSON, or a short message for a
    /// Slack/Teams webhook (by its host, or slack:URL / teams:URL)
    #[arg(long, value_name = "URL")]
    pub notify: Vec<String>,
    /// After up, URL must answer 2xx or COMMAND exit 0, else the deploy is rolled back
    /// (repeatable)
    #[arg(long, value_name = "URL|COMMAND")]
    pub health_check: Vec<String>,
    /// How long each health check has to pass, e.g. 30s, 2m
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = migrate::parse_duration)]
    pub health_timeout: Duration,
    /// How often a failing health check is tried again
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = migrate::parse_duration)]
    pub health_interval: Duration,
    /// When a health check fails, only report: do not roll back
    #[arg(long)]
    pub no_rollback: bool,
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
fn run_events(json: bool, current: Current, alerts: Option<Arc<DeployAlerts>>) -> migrate::OnEvent {
    migrate::OnEvent::new(move |e| {
        if let RunEvent::MigrationStarted { name, .. } = e {
            *current.lock().unwrap_or_else(|p| p.into_inner()) = name.clone();
        }
        if let (Some(a), RunEvent::MigrationFinished { name, ms }) = (&alerts, e) {
            a.migration_finished(name, *ms);
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
    /// Steps in this deploy: 4, 5 with health checks, 7 once a rollback starts.
    total: usize,
    alerts: Option<Arc<DeployAlerts>>,
}

/// The event as `--json` prints it and the alert receivers get it; `None` for the live
/// view's own signals.
fn event_json(e: &DeployEvent) -> Option<serde_json::Value> {
    Some(match e {
        DeployEvent::StepStarted { step, .. } => {
            serde_json::json!({"event": "step_started", "step": step})
        }
        DeployEvent::StepFinished {
            step, ms, detail, ..
        } => {
            serde_json::json!({"event": "step_finished", "step": step, "ms": ms, "detail": detail})
        }
        DeployEvent::StepFailed {
            step,
            error,
            detail,
            ..
        } => {
            let mut v = serde_json::json!({"event": "step_failed", "step": step, "error": error});
            if !detail.is_null() {
                v["detail"] = detail.clone();
            }
            v
        }
        DeployEvent::HealthAttempt(a) => {
            let mut v = serde_json::to_value(a).unwrap_or_default();
            v["event"] = "health_attempt".into();
            v
        }
        DeployEvent::RolledBack { how, migrations } => {
            serde_json::json!({"event": "rolled_back", "how": how, "migrations": migrations})
        }
        DeployEvent::Done { state, next, ok } => {
            serde_json::json!({"event": "done", "state": state, "next": next, "ok": ok})
        }
        DeployEvent::Running { .. } | DeployEvent::Stopped => return None,
    })
}

impl Render {
    fn event(&mut self, e: DeployEvent) {
        let json = self.json;
        let as_json = event_json(&e);
        if let (Some(alerts), Some(v)) = (&self.alerts, &as_json) {
            alerts.deploy(&e, v.clone());
        }
        if json {
            if let Some(v) = as_json {
                json_line(v);
            }
        }
        match e {
            DeployEvent::StepStarted {
                step: "rollback", ..
            } => self.total = 7,
            // nothing was pending: verify, then the checks
            DeployEvent::StepStarted {
                step: "health",
                n: 2,
            } => self.total = 2,
            _ => {}
        }
        let total = self.total;
        match e {
            DeployEvent::StepStarted { step, n } => {
                if !json {
                    say(&format!("[{n}/{total}] {step}"));
                }
            }
            DeployEvent::StepFinished {
                step,
                n,
                ms,
                detail,
                text,
            } => {
                let _ = detail;
                if !json {
                    say(&format!("[{n}/{total}] {step}: {text} ({ms} ms)"));
                }
            }
            DeployEvent::StepFailed { step, n, error, .. } => {
                if !json {
                    say(&format!("[{n}/{total}] {step} FAILED: {error}"));
                }
            }
            DeployEvent::HealthAttempt(a) => {
                if !json {
                    say(&format!(
                        "  {}: {}{} (attempt {}, {:.1} s)",
                        a.check,
                        if a.passed { "ok, " } else { "" },
                        a.result,
                        a.attempt,
                        a.ms as f64 / 1000.0
                    ));
                }
            }
            DeployEvent::RolledBack { .. } => {}
            DeployEvent::Running { pid } => {
                let url = self.url.lock().map(|u| u.clone()).unwrap_or_default();
                self.watching = watch(url, pid, json, self.current.clone());
            }
            DeployEvent::Stopped => {
                if let Some(stop) = self.watching.take() {
                    let _ = stop.send(());
                }
            }
            DeployEvent::Done { state, next, .. } => {
                if !json {
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

/// `[deploy]` in dataforge.toml: receivers and checks every deploy from this folder has.
#[derive(Debug, Default, serde::Deserialize)]
struct Config {
    #[serde(default)]
    deploy: DeployConfig,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployConfig {
    #[serde(default)]
    notify: Vec<String>,
    #[serde(default)]
    health_check: Vec<String>,
}

/// The receivers and checks: dataforge.toml's, then the command line's. A bad one stops
/// the deploy before anything runs.
fn hooks_and_checks(args: &DeployArgs) -> anyhow::Result<(Vec<Hook>, Vec<Check>)> {
    // a toml error may quote the value, and a webhook's URL is its secret
    let (config, path) =
        crate::backup::production::read_config::<Config>(&std::env::current_dir()?)
            .map_err(|e| {
                anyhow::anyhow!(crate::migrate::health::mask_command(
                    &crate::migrate::alert::mask_urls(&e.to_string())
                ))
            })?
            .map(|(c, p)| (c, Some(p)))
            .unwrap_or_default();
    if args.health_interval < Duration::from_millis(100) {
        anyhow::bail!(
            "--health-interval under 100ms would flood the service: give 100ms or more (the \
             default is 3s); nothing was done"
        );
    }
    if args.health_timeout < Duration::from_secs(1) {
        anyhow::bail!(
            "--health-timeout under 1s leaves a check no time to answer: give 1s or more (the \
             default is 2m); nothing was done"
        );
    }
    let mut hooks = Vec::new();
    let mut checks = Vec::new();
    let at = |i: usize, key: &str| match &path {
        Some(p) => format!("{}: [deploy] {key} entry {}", p.display(), i + 1),
        None => String::new(),
    };
    for (i, spec) in config.deploy.notify.iter().enumerate() {
        hooks.push(Hook::parse(spec).map_err(|e| anyhow::anyhow!("{}: {e}", at(i, "notify")))?);
    }
    for spec in &args.notify {
        hooks.push(
            Hook::parse(spec).map_err(|e| anyhow::anyhow!("--notify: {e}; nothing was done"))?,
        );
    }
    // one receiver named twice (in the file and on the command line) gets each event once
    let mut seen = std::collections::HashSet::new();
    hooks.retain(|h| seen.insert(h.key()));
    // receivers that show alike are told apart by their place in the list
    let alike: Vec<bool> = hooks
        .iter()
        .map(|h| hooks.iter().filter(|o| o.shown == h.shown).count() > 1)
        .collect();
    for (i, (h, alike)) in hooks.iter_mut().zip(alike).enumerate() {
        if alike {
            h.shown = format!("{} (receiver {})", h.shown, i + 1);
        }
    }
    for (i, spec) in config.deploy.health_check.iter().enumerate() {
        checks.push(
            Check::parse(spec).map_err(|e| anyhow::anyhow!("{}: {e}", at(i, "health_check")))?,
        );
    }
    for spec in &args.health_check {
        checks.push(
            Check::parse(spec)
                .map_err(|e| anyhow::anyhow!("--health-check: {e}; nothing was done"))?,
        );
    }
    if args.no_rollback && checks.is_empty() {
        anyhow::bail!(
            "--no-rollback applies to a failed health check, and there is none: add \
             --health-check URL|COMMAND, or leave --no-rollback out; nothing was done"
        );
    }
    Ok((hooks, checks))
}

/// The summary's last lines: how each alert receiver fared (also in the audit log).
async fn report_deliveries(
    alerts: Option<Arc<DeployAlerts>>,
    json: bool,
    audit_dir: &std::path::Path,
) {
    let Some(alerts) = alerts else {
        return;
    };
    // on a thread of its own: the wait must not hold up the runtime, which still has
    // the deploy's connection to close (and its migration lock with it)
    let deliveries = tokio::task::spawn_blocking(move || alerts.finish())
        .await
        .unwrap_or_default();
    let _ = crate::backup::audit(
        audit_dir,
        serde_json::json!({"event": "deploy alerts", "receivers": &deliveries}),
    );
    if json {
        json_line(serde_json::json!({"event": "notify", "receivers": deliveries}));
        return;
    }
    for d in &deliveries {
        if d.failed.is_empty() {
            say(&format!(
                "notify: {} ({}): {} message(s) delivered",
                d.receiver, d.kind, d.delivered
            ));
        } else {
            // why, once per reason, with the events it cost
            let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
            for m in &d.failed {
                match reasons.iter_mut().find(|(e, _)| *e == m.error) {
                    Some((_, events)) => events.push(&m.event),
                    None => reasons.push((&m.error, vec![&m.event])),
                }
            }
            let reasons: Vec<String> = reasons
                .iter()
                .map(|(e, events)| format!("{e} ({})", events.join(", ")))
                .collect();
            say(&format!(
                "notify: {} ({}): NOT DELIVERED: {} of {} message(s) missed: {}; the deploy went on without it",
                d.receiver,
                d.kind,
                d.failed.len(),
                d.failed.len() + d.delivered,
                reasons.join("; ")
            ));
        }
    }
}

pub async fn run(args: DeployArgs) -> anyhow::Result<ExitCode> {
    let (hooks, checks) = hooks_and_checks(&args)?;
    let alerts = (!hooks.is_empty()).then(|| Arc::new(DeployAlerts::new(hooks)));
    let current = Current::default();
    let url = Arc::new(Mutex::new(String::new()));
    let mut run = args.run.options("");
    run.monitor_url = None;
    run.allow_destructive = args.allow_destructive.clone();
    run.on_event = run_events(args.json, current.clone(), alerts.clone());
    let target = args.target;
    let seen = url.clone();
    let started = alerts.clone();
    let audit_dir = args.backup_dir.clone();
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
            if let Some(a) = &started {
                a.started(&resolved);
            }
            Ok(resolved)
        }),
        run,
        health: HealthOptions {
            checks,
            timeout: args.health_timeout,
            every: args.health_interval,
            rollback: !args.no_rollback,
        },
    };
    let mut render = Render {
        json: args.json,
        url,
        current,
        watching: None,
        total: if opts.health.checks.is_empty() { 4 } else { 5 },
        alerts: alerts.clone(),
    };
    let outcome = migrate::deploy::deploy(opts, &mut |e| render.event(e)).await;
    drop(render);
    report_deliveries(alerts, args.json, &audit_dir).await;
    match outcome? {
        DeployOutcome::Deployed(_) => Ok(ExitCode::SUCCESS),
        DeployOutcome::HistoryDisagrees | DeployOutcome::DisagreesAfter => {
            Ok(ExitCode::from(EXIT_FOUND))
        }
    }
}
