//! `dataforge migrate`: Prisma-layout migrations (`DIR/<timestamp>_<name>/migration.sql`,
//! optional `down.sql`) recorded in `_prisma_migrations` exactly as Prisma records them,
//! with dataforge's own log of each run in `_dataforge_migration_log`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use tokio_postgres::Client;

use super::{emit, say, Target, EXIT_FOUND};
use crate::migrate::{self, source, DownTo, Entry, Migration, Resolution, RunOptions, State};
use crate::pg::{self, Masked};

pub mod deploy;
pub mod lint;
mod up_json;

use up_json::{up_failure_json, Events};

const AFTER_HELP: &str = "\
Examples:
  dataforge migrate new add_case_priority          a timestamped folder with migration.sql and down.sql
  dataforge migrate status                         the default folder: prisma/migrations, else migrations
  dataforge migrate up --dir profiles/demo-firm/migrations
  dataforge migrate up --to 20250101000000_init    stop after that migration
  dataforge migrate down --steps 1                 undo the newest applied migration with its down.sql
  dataforge migrate verify                         the pre-deploy gate: exit 1 on failed, modified or missing
  dataforge migrate history --json                 what the database records, for machines
  dataforge migrate resolve --rolled-back NAME     after cleaning up a failed migration by hand
  dataforge migrate baseline --to NAME             an existing database that already has the schema
  dataforge migrate lint                           destructive and locking changes, with safer ways
  dataforge migrate deploy --json                  verify, backup, up, verify; one JSON event per line
  dataforge migrate plan --format markdown         the reviewer's impact report: locks, table sizes, risk
  dataforge migrate approve NAME --reason \"…\"     let `up` run NAME's destructive change (approval.toml)
  dataforge migrate up --allow-destructive NAME    …or allow it for this one run

Lint rules, their risks and fixes: docs/lint-rules.md. `up` refuses a migration with
high-risk findings (data loss, broken running code) unless it is approved.

Exit codes: 0 ok; 1 something needs attention (pending, failed, modified or missing
migrations for `status`; failed, modified or missing for `verify`; unapproved high-risk
findings for `lint` and `plan`); 2 an error.";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Args)]
pub struct DirArg {
    /// The migrations folder (Prisma layout). Default: prisma/migrations if it exists, else migrations
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

impl DirArg {
    pub fn path(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(source::default_dir)
    }
}

/// How a run treats locks.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// How long to wait for another migration run (dataforge or Prisma) to finish, e.g. 30s, 5m
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = migrate::parse_duration)]
    pub lock_wait: Duration,
    /// lock_timeout for each migration: give up a statement that waits this long for a table lock
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = migrate::parse_duration)]
    pub lock_timeout: Duration,
    /// statement_timeout for each migration (default: none)
    #[arg(long, value_name = "DURATION", value_parser = migrate::parse_duration)]
    pub statement_timeout: Option<Duration>,
    /// How often to retry a migration that hit its lock_timeout (waits 1s, 2s, 4s, … between)
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,
}

/// For commands that run no migration SQL (resolve, baseline): only the wait for the lock.
#[derive(Debug, Args)]
pub struct LockWaitArg {
    /// How long to wait for another migration run (dataforge or Prisma) to finish, e.g. 30s, 5m
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = migrate::parse_duration)]
    pub lock_wait: Duration,
}

impl LockWaitArg {
    pub fn options(&self, url: &str) -> RunOptions {
        RunArgs {
            lock_wait: self.lock_wait,
            lock_timeout: Duration::from_secs(5),
            statement_timeout: None,
            retries: 0,
        }
        .options(url)
    }
}

impl RunArgs {
    pub fn options(&self, url: &str) -> RunOptions {
        RunOptions {
            lock_wait: self.lock_wait,
            lock_timeout: self.lock_timeout,
            statement_timeout: self.statement_timeout,
            retries: self.retries,
            monitor_url: Some(url.to_string()),
            notify: say,
            allow_destructive: Vec::new(),
            backup: None,
            on_event: migrate::OnEvent::none(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Apply pending migrations, each in its own transaction, under Prisma's advisory lock
    #[command(after_help = "Examples:
  dataforge migrate up
  dataforge migrate up --dir prisma/migrations --to 20240301120000_add_index
  dataforge migrate up --lock-timeout 2s --retries 5 --json
  DATABASE_URL=postgres://app@db/prod dataforge migrate up")]
    Up {
        #[command(flatten)]
        dir: DirArg,
        /// Stop after this migration (its folder name)
        #[arg(long, value_name = "NAME")]
        to: Option<String>,
        /// Print what was applied as JSON
        #[arg(long)]
        json: bool,
        /// Run this migration despite high-risk lint findings, this once (repeatable);
        /// `migrate approve` records a lasting approval instead
        #[arg(long, value_name = "NAME")]
        allow_destructive: Vec<String>,
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Check migrations for destructive and locking changes, with what to do instead
    #[command(after_help = "Examples:
  dataforge migrate lint                                  every migration in the folder
  dataforge migrate lint prisma/migrations/20240301_x     one migration
  dataforge migrate lint --for prisma --json              for files prisma migrate deploy applies
  dataforge migrate lint --fix --dry-run                  the safe rewrite of the newest migration, as a diff
  dataforge migrate lint --fix prisma/migrations/20240301_x   write it beside the original

--fix writes the safe version of a migration as new folders beside it, named after it so
they sort right after it: CREATE INDEX built CONCURRENTLY in a migration of its own;
foreign keys and CHECKs added NOT VALID and validated later; SET NOT NULL proved by a
validated CHECK; a volatile default split into add, default, backfill; DROP COLUMN moved
to a last, expand-contract migration. What cannot be split without changing what the
migration does is left as written, and said so. A rewrite is for migrations no database
has applied. The original is left untouched: review the new folders, then delete it (`up`
refuses to run a rewrite while its original is there).

Exit codes: 0 nothing that needs attention; 1 unapproved high-risk findings; 2 a file
that cannot be read or parsed (the others are still linted).")]
    Lint {
        /// Files or migration folders to check (default: every migration in --dir)
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        dir: DirArg,
        /// Print the findings as JSON
        #[arg(long)]
        json: bool,
        /// The runner that will apply the files: dataforge sets lock_timeout itself, so
        /// missing-lock-timeout is reported only for psql or prisma
        #[arg(
            long = "for",
            value_enum,
            default_value = "dataforge",
            value_name = "RUNNER"
        )]
        runner: lint::Runner,
        /// Write the safe rewrite of each migration given (default: the newest) as new
        /// folders beside it
        #[arg(long, conflicts_with_all = ["json", "runner"])]
        fix: bool,
        /// With --fix: print the new files as a diff and write nothing
        #[arg(long, requires = "fix")]
        dry_run: bool,
    },
    /// The impact report for pending migrations: statements, locks, table sizes, findings, risk
    #[command(after_help = "Examples:
  dataforge migrate plan
  dataforge migrate plan --format markdown > plan.md      for the change's review page
  dataforge migrate plan --to 20240301120000_x --json")]
    Plan {
        #[command(flatten)]
        dir: DirArg,
        /// Plan up to and including this migration
        #[arg(long, value_name = "NAME")]
        to: Option<String>,
        /// text for a terminal, markdown for the change's runbook page, json for machines
        #[arg(long, value_enum, default_value = "text")]
        format: PlanFormat,
        /// Same as --format json
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Verify, back up (verified), apply, verify, health checks: the whole deploy runbook, each step reported
    Deploy(deploy::DeployArgs),
    /// Approve a migration's high-risk findings, bound to its checksum (writes approval.toml beside it)
    #[command(after_help = "Examples:
  dataforge migrate approve 20240301120000_drop_legacy --reason \"column unused since v2\"
  dataforge migrate approve --through 20240301120000_last --reason \"adopting the existing history\"

One migration: approval.toml beside its migration.sql. --through: every migration up to
NAME with unapproved high-risk findings, in one approvals.toml in the migrations folder
(names, checksums, rules). Either way an approval is bound to the file's checksum:
editing a migration voids its approval alone. Commit the file with the migrations.")]
    Approve {
        #[command(flatten)]
        dir: DirArg,
        /// The migration (its folder name)
        #[arg(required_unless_present = "through", conflicts_with = "through")]
        name: Option<String>,
        /// Approve every migration up to and including this one (adopting a history)
        #[arg(long, value_name = "NAME")]
        through: Option<String>,
        /// Why the change is acceptable; recorded in approval.toml and the migration log
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Roll back applied migrations with their down.sql, newest first (default: one)
    #[command(after_help = "Examples:
  dataforge migrate down                                  the newest applied migration
  dataforge migrate down --steps 3
  dataforge migrate down --to 20240101000000_init         everything applied after it")]
    Down {
        #[command(flatten)]
        dir: DirArg,
        /// How many of the newest applied migrations to roll back
        #[arg(long, value_name = "N", conflicts_with = "to")]
        steps: Option<usize>,
        /// Roll back every migration applied after this one, which stays applied
        #[arg(long, value_name = "NAME")]
        to: Option<String>,
        /// Print what was rolled back as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        confirm: super::Confirm,
    },
    /// List migrations: applied, pending, failed, modified after apply, missing on disk
    #[command(after_help = "Examples:
  dataforge migrate status
  dataforge migrate status --json | jq '.migrations[] | select(.state != \"applied\")'

Exit codes: 0 up to date; 1 pending, failed, modified or missing migrations; 2 an error.")]
    Status {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        target: Target,
        /// Print the list as JSON
        #[arg(long)]
        json: bool,
    },
    /// The pre-deploy gate: checksums match, nothing failed, nothing missing (exit 1 if not)
    #[command(after_help = "Examples:
  dataforge migrate verify                                in CI before a deploy
  dataforge migrate verify --json")]
    Verify {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        target: Target,
        /// Print the findings as JSON
        #[arg(long)]
        json: bool,
    },
    /// What the database records: name, applied at, duration, checksum ok, rolled back
    #[command(after_help = "Examples:
  dataforge migrate history
  dataforge migrate history --json")]
    History {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        target: Target,
        /// Print the history as JSON
        #[arg(long)]
        json: bool,
    },
    /// Settle a migration by hand without running it, as `prisma migrate resolve` does
    #[command(after_help = "Examples:
  dataforge migrate resolve --rolled-back 20240301120000_x    after undoing a failed attempt by hand
  dataforge migrate resolve --applied 20240301120000_x        its change is already in the database")]
    Resolve {
        #[command(flatten)]
        dir: DirArg,
        /// Record NAME as applied (its change is already in the database)
        #[arg(
            long,
            value_name = "NAME",
            required_unless_present = "rolled_back",
            conflicts_with = "rolled_back"
        )]
        applied: Option<String>,
        /// Stop counting NAME's failed attempt, after cleaning it up by hand, so `up` retries it
        #[arg(long, value_name = "NAME")]
        rolled_back: Option<String>,
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        run: LockWaitArg,
        #[command(flatten)]
        confirm: super::Confirm,
    },
    /// Record the pending migrations (up to --to) as applied, for a database that already has the schema
    #[command(after_help = "Examples:
  dataforge migrate baseline --to 20240301120000_last     the database has everything up to it
  dataforge migrate baseline --yes                        every pending migration (listed first)

Without --to, baseline lists the pending migrations it would record as applied, and asks
on a terminal; elsewhere it needs --yes.")]
    Baseline {
        #[command(flatten)]
        dir: DirArg,
        /// The last migration the database already has
        #[arg(long, value_name = "NAME")]
        to: Option<String>,
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        run: LockWaitArg,
        #[command(flatten)]
        confirm: super::Confirm,
    },
    /// Create DIR/<timestamp>_<NAME>/ with migration.sql and a down.sql template
    #[command(after_help = "Examples:
  dataforge migrate new add_case_priority
  dataforge migrate new --dir prisma/migrations add_case_priority")]
    New {
        #[command(flatten)]
        dir: DirArg,
        /// What the migration does, e.g. add_case_priority
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// for a terminal
    Text,
    /// for the change's review or runbook page
    Markdown,
    /// for machines
    Json,
}

fn state_text(state: &State) -> String {
    match state {
        State::Applied { finished_at } => format!("applied {finished_at}"),
        State::Pending => "pending".into(),
        State::Failed { started_at, .. } => format!("FAILED (started {started_at})"),
        State::Modified { .. } => "MODIFIED after it was applied (checksum differs)".into(),
        State::MissingOnDisk { .. } => "applied, but MISSING from the folder".into(),
    }
}

fn entries_text(entries: &[&Entry]) -> String {
    let mut s = String::new();
    for e in entries {
        s.push_str(&format!("{:<50} {}\n", e.name, state_text(&e.state)));
    }
    s
}

/// `applied NAME` on stdout as each migration finishes.
fn print_applied(e: &migrate::RunEvent) {
    if let migrate::RunEvent::MigrationFinished { name, .. } = e {
        let _ = emit(&format!("applied {name}\n"));
    }
}

fn names_out(names: &[String], verb: &str, json: bool) -> anyhow::Result<()> {
    if json {
        emit(&format!("{}\n", serde_json::json!({ verb: names })))
    } else {
        let verb = verb.replace('_', " ");
        emit(
            &names
                .iter()
                .map(|n| format!("{verb} {n}\n"))
                .collect::<String>(),
        )
    }
}

/// Reads and checks the folder and the migration `to` names (before connecting), then
/// connects.
async fn open(
    dir: &DirArg,
    to: Option<&str>,
    target: &Target,
) -> anyhow::Result<(Vec<Migration>, String, Client)> {
    let migrations = migrate::load_dir(&dir.path())?;
    if let Some(name) = to {
        migrate::find(&migrations, name)?;
    }
    let url = target.resolve().await?;
    let client = pg::connect(&url).await?;
    Ok((migrations, url, client))
}

/// `migrate lint`: every migration in the folder, or the given files and folders.
pub(super) fn emit_json(value: serde_json::Value) -> anyhow::Result<()> {
    emit(&format!("{}\n", serde_json::to_string_pretty(&value)?))
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::New { dir, name } => {
            let folder = migrate::new_migration(&dir.path(), &name)?;
            emit(&format!("{}\n", folder.display()))?;
            say("write the change in migration.sql and its undo in down.sql");
            Ok(ExitCode::SUCCESS)
        }
        Action::Lint {
            paths,
            dir,
            json,
            runner,
            fix,
            dry_run,
        } => {
            if fix {
                lint::fix(paths, &dir, dry_run)
            } else {
                lint::lint(paths, &dir, json, runner)
            }
        }
        Action::Deploy(a) => deploy::run(a).await,
        Action::Plan {
            dir,
            to,
            format,
            json,
            target,
        } => {
            let (migrations, url, client) = open(&dir, to.as_deref(), &target).await?;
            let plans = migrate::plan::plan(&client, &migrations, to.as_deref()).await?;
            let format = if json { PlanFormat::Json } else { format };
            match format {
                PlanFormat::Json => emit_json(serde_json::json!({
                    "risk": plans.iter().filter_map(|p| p.risk).max(),
                    "blocked": plans.iter().filter(|p| p.blocked()).map(|p| &p.name).collect::<Vec<_>>(),
                    "migrations": plans,
                }))?,
                PlanFormat::Markdown => emit(&migrate::plan::render_markdown(
                    &plans,
                    &Masked(&url).to_string(),
                ))?,
                PlanFormat::Text if plans.is_empty() => emit("nothing pending\n")?,
                PlanFormat::Text => emit(&migrate::plan::render_text(&plans))?,
            }
            Ok(if plans.iter().any(|p| p.blocked()) {
                ExitCode::from(EXIT_FOUND)
            } else {
                ExitCode::SUCCESS
            })
        }
        Action::Approve {
            dir,
            name: None,
            through: Some(through),
            reason,
        } => {
            let migrations = migrate::load_dir(&dir.path())?;
            migrate::find(&migrations, &through)?;
            let (path, approved) =
                migrate::approval::approve_through(&dir.path(), &migrations, &through, &reason)?;
            emit(&format!("{}\n", path.display()))?;
            say(&format!(
                "approved {} migration(s) through {through}, each for its current checksum: \
                 commit {} with the migrations; editing one voids its approval alone",
                approved.len(),
                migrate::approval::SHARED_FILE
            ));
            Ok(ExitCode::SUCCESS)
        }
        Action::Approve {
            dir, name, reason, ..
        } => {
            let name = name.unwrap_or_default();
            let migrations = migrate::load_dir(&dir.path())?;
            let m = migrate::find(&migrations, &name)?;
            let (path, approval) = migrate::approval::approve(m, &reason)?;
            emit(&format!("{}\n", path.display()))?;
            say(&format!(
                "approved {} ({}) for checksum {}: commit {} with the migration; editing \
                 migration.sql voids it",
                name,
                approval.rules.join(", "),
                &approval.checksum[..12],
                migrate::approval::FILE
            ));
            Ok(ExitCode::SUCCESS)
        }
        Action::Up {
            dir,
            to,
            json,
            allow_destructive,
            target,
            run,
        } => {
            for name in &allow_destructive {
                migrate::find(&migrate::load_dir(&dir.path())?, name)?;
            }
            let (migrations, url, mut client) = open(&dir, to.as_deref(), &target).await?;
            let mut opts = run.options(&url);
            opts.allow_destructive = allow_destructive;
            let events = Events::default();
            opts.on_event = if json {
                events.sink()
            } else {
                // each as it is applied: a failure later leaves the earlier lines standing
                migrate::OnEvent::new(print_applied)
            };
            let result = migrate::interruptible(
                &url,
                client.cancel_token(),
                migrate::up(&mut client, &migrations, to.as_deref(), &opts),
            )
            .await;
            let applied = match result {
                Ok(applied) => applied,
                Err(e) if json => {
                    // refused before anything ran (a gate, a rewrite beside its original):
                    // everything pending was not run
                    let pending: Vec<String> = migrate::status(&client, &migrations)
                        .await
                        .map(|entries| {
                            entries
                                .into_iter()
                                .filter(|e| e.state == migrate::State::Pending)
                                .filter(|e| to.as_deref().is_none_or(|t| e.name.as_str() <= t))
                                .map(|e| e.name)
                                .collect()
                        })
                        .unwrap_or_default();
                    emit_json(up_failure_json(&e, pending, events.take()))?;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            if applied.is_empty() && !json {
                say(&format!(
                    "{} is up to date ({} migrations)",
                    Masked(&url),
                    migrations.len()
                ));
            }
            if json {
                emit_json(serde_json::json!({ "applied": applied, "events": events.take() }))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Down {
            dir,
            steps,
            to,
            json,
            target,
            run,
            confirm,
        } => {
            let (migrations, url, mut client) = open(&dir, to.as_deref(), &target).await?;
            confirm
                .check(&client, &url, "roll back migrations of")
                .await?;
            let how = match to {
                Some(name) => DownTo::After(name),
                None => DownTo::Steps(steps.unwrap_or(1)),
            };
            let opts = run.options(&url);
            let done = migrate::interruptible(
                &url,
                client.cancel_token(),
                migrate::down(&mut client, &migrations, how, &opts),
            )
            .await?;
            if done.is_empty() && !json {
                say("nothing to roll back");
            }
            names_out(&done, "rolled_back", json)?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Resolve {
            dir,
            applied,
            rolled_back,
            target,
            run,
            confirm,
        } => {
            let (name, how) = match (applied, rolled_back) {
                (Some(n), _) => (n, Resolution::Applied),
                (None, Some(n)) => (n, Resolution::RolledBack),
                (None, None) => unreachable!("clap requires one"),
            };
            let (migrations, url, mut client) = open(&dir, Some(&name), &target).await?;
            confirm
                .check(&client, &url, "rewrite the migration history of")
                .await?;
            let opts = run.options(&url);
            migrate::resolve(
                &mut client,
                &migrations,
                std::slice::from_ref(&name),
                how,
                &opts,
            )
            .await?;
            emit(&format!(
                "{name} {}\n",
                match how {
                    Resolution::Applied => "recorded as applied",
                    Resolution::RolledBack => "recorded as rolled back",
                }
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Baseline {
            dir,
            to,
            target,
            run,
            confirm,
        } => {
            let (migrations, url, mut client) = open(&dir, to.as_deref(), &target).await?;
            confirm
                .check(&client, &url, "rewrite the migration history of")
                .await?;
            let entries = migrate::status(&client, &migrations).await?;
            let names = migrate::baseline_targets(&migrations, &entries, to.as_deref());
            if to.is_none() && !names.is_empty() && !confirm.yes {
                let what = format!(
                    "baseline without --to records every pending migration as applied without \
                     running it: {}",
                    names.join(", ")
                );
                use std::io::IsTerminal as _;
                if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
                    eprint!("dataforge: {what}.\ndataforge: type yes to go ahead: ");
                    let mut answer = String::new();
                    std::io::stdin().read_line(&mut answer)?;
                    if answer.trim() != "yes" {
                        anyhow::bail!("not confirmed; nothing was recorded");
                    }
                } else {
                    anyhow::bail!(
                        "{what}; nothing was recorded. Give --to NAME (the last migration the \
                         database already has), or --yes to record them all"
                    );
                }
            }
            migrate::resolve(
                &mut client,
                &migrations,
                &names,
                Resolution::Applied,
                &run.options(&url),
            )
            .await?;
            if names.is_empty() {
                say("nothing to baseline: no pending migrations");
            }
            names_out(&names, "recorded as applied", false)?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Status { dir, target, json } => {
            let (migrations, _url, client) = open(&dir, None, &target).await?;
            let entries = migrate::status(&client, &migrations).await?;
            if json {
                emit_json(serde_json::json!({ "migrations": entries }))?;
            } else if entries.is_empty() {
                emit("no migrations\n")?;
            } else {
                emit(&entries_text(&entries.iter().collect::<Vec<_>>()))?;
            }
            Ok(if entries.iter().any(|e| e.needs_attention()) {
                ExitCode::from(EXIT_FOUND)
            } else {
                ExitCode::SUCCESS
            })
        }
        Action::Verify { dir, target, json } => {
            let (migrations, _url, client) = open(&dir, None, &target).await?;
            let entries = migrate::status(&client, &migrations).await?;
            let problems = migrate::verify_problems(&entries);
            let pending = entries.iter().filter(|e| e.state == State::Pending).count();
            if json {
                emit_json(serde_json::json!({
                    "ok": problems.is_empty(),
                    "problems": problems,
                    "pending": pending,
                }))?;
            } else if problems.is_empty() {
                emit(&format!(
                    "ok: {} migrations, checksums match, {pending} pending\n",
                    entries.len()
                ))?;
            } else {
                emit(&entries_text(&problems))?;
            }
            Ok(if problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FOUND)
            })
        }
        Action::History { dir, target, json } => {
            let (migrations, _url, client) = open(&dir, None, &target).await?;
            let items = migrate::history_report(&client, &migrations).await?;
            if json {
                emit_json(serde_json::json!({ "history": items }))?;
            } else if items.is_empty() {
                emit("no history: nothing was ever applied here\n")?;
            } else {
                let mut s = format!(
                    "{:<45} {:<25} {:>9}  {:<9} {}\n",
                    "migration", "applied at", "ms", "checksum", "rolled back"
                );
                for i in &items {
                    s.push_str(&format!(
                        "{:<45} {:<25} {:>9}  {:<9} {}\n",
                        i.name,
                        i.finished_at
                            .as_deref()
                            .unwrap_or(if i.failed { "FAILED" } else { "-" }),
                        i.duration_ms
                            .map(|d| d.to_string())
                            .unwrap_or_else(|| "-".into()),
                        match i.checksum_ok {
                            Some(true) => "ok",
                            Some(false) => "MODIFIED",
                            None => "MISSING",
                        },
                        i.rolled_back_at.as_deref().unwrap_or("-")
                    ));
                }
                emit(&s)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
