//! The command line: clap definitions and one module per subcommand, each with its own
//! `run(args) -> Result<ExitCode>`. Results go to stdout, messages to stderr.
//!
//! Exit codes: 0 ok, 1 a check found something (pending or failed migrations, a stopped
//! cluster for `local status`), 2 an error.

pub mod anonymize;
pub mod backfill;
pub mod backup;
pub mod local;
pub mod migrate;
pub mod seed;
pub mod verify;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::pg::{self, local::Cluster};

/// Exit code when a check found something that needs attention.
pub const EXIT_FOUND: u8 = 1;
/// Exit code for an error.
pub const EXIT_ERROR: u8 = 2;

const ABOUT: &str = "Safe, realistic PostgreSQL data: reproducible seeds, anonymized copies of \
     production with proof, verified backups and a Prisma-compatible migration runner";

const LONG_ABOUT: &str = "\
dataforge gives PostgreSQL teams safe, realistic data.

Without --database-url or DATABASE_URL, commands use a local PostgreSQL cluster that
dataforge runs itself under ./.dataforge/pg (see `dataforge local --help`).";

const AFTER_HELP: &str = "\
Examples:
  dataforge seed demo-firm                      seed the demo law firm into the local cluster
  dataforge seed demo-firm --scale 100 --json   a hundred times bigger, counts as JSON
  dataforge seed demo-firm --out seeds/demo-firm   CSV files + load.sql instead of a database
  dataforge migrate status --dir prisma/migrations
  dataforge backup                              a verified backup into .dataforge/backups
  dataforge local url                           print the local cluster's connection URL
  dataforge snapshot import --from postgres://prod/app --to postgres://localhost/dev
                                                production into dev, anonymized and checked

Exit codes: 0 ok, 1 a check found something, 2 an error.";

#[derive(Debug, Parser)]
#[command(name = "dataforge", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Seed a database (or files) from a profile, idempotently
    Seed(seed::SeedArgs),
    /// Apply and inspect Prisma-layout migrations
    Migrate(migrate::MigrateArgs),
    /// Take a verified backup: pg_dump custom format, blake3 checksum, manifest
    Backup(backup::BackupArgs),
    /// Restore a backup over a database, safely (checks, pre-restore backup, swap at the end)
    Restore(backup::RestoreArgs),
    /// Batched, throttled, resumable UPDATE of a big table by primary-key ranges
    Backfill(backfill::BackfillArgs),
    /// Mark a database as production (or not): destructive commands then need confirmation
    Mark(backup::MarkArgs),
    /// Stream a database or a pg_dump through deterministic anonymizers (anonymize.toml)
    Anonymize(anonymize::AnonymizeArgs),
    /// Import production into dev: anonymize, load beside the target, check, swap in
    Snapshot(anonymize::SnapshotArgs),
    /// Prove an anonymized copy clean: leak scan, detectors, distributions, integrity
    Verify(verify::VerifyArgs),
    /// Manage the local PostgreSQL cluster dataforge runs under ./.dataforge/pg
    Local(local::LocalArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    #[command(after_help = COMPLETIONS_HELP)]
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), made from the same definitions as --help
    #[command(
        after_help = "Examples:\n  dataforge man | man -l -\n  dataforge man --dir /usr/local/share/man/man1   \
         dataforge.1 and a page per subcommand (dataforge-seed.1, dataforge-migrate-up.1, …)"
    )]
    Man {
        /// Write dataforge.1 and one page per subcommand into DIR instead
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
}

const COMPLETIONS_HELP: &str = "\
Examples:
  dataforge completions bash > /etc/bash_completion.d/dataforge
  dataforge completions bash > ~/.local/share/bash-completion/completions/dataforge
  dataforge completions zsh > \"${fpath[1]}/_dataforge\"
  dataforge completions fish > ~/.config/fish/completions/dataforge.fish
  dataforge completions powershell >> $PROFILE";

/// Where data goes: `--database-url`, else `DATABASE_URL`, else the local cluster.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// PostgreSQL connection URL, e.g. postgresql://user:pass@host:5432/db.
    /// Default: $DATABASE_URL, else the local cluster (started when needed)
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl Target {
    /// The URL to connect to, starting the local cluster when no URL was given.
    pub async fn resolve(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        let cwd = std::env::current_dir()?;
        let cluster = Cluster::for_project(&cwd);
        let (_, already) = tokio::task::spawn_blocking({
            let c = cluster.clone();
            move || c.start()
        })
        .await??;
        let url = cluster.url(pg::local::DEFAULT_DATABASE)?;
        pg::local::ensure_database(&cluster, pg::local::DEFAULT_DATABASE).await?;
        if !already {
            say(&format!(
                "started the local PostgreSQL cluster in {}",
                cluster.root().display()
            ));
        }
        say(&format!("using the local cluster: psql {url}"));
        Ok(url)
    }
}

/// One message line on stderr, prefixed like every other.
pub use crate::describe;

/// How a destructive command is let through on a production database (one marked with
/// `dataforge mark production`, or matching a production URL pattern): on a terminal by
/// typing the database's name, elsewhere by both of these.
#[derive(Debug, Clone, clap::Args)]
pub struct Confirm {
    /// Go ahead on a production database (with --confirm-database)
    #[arg(long)]
    pub yes: bool,
    /// The target database's name, to confirm a destructive command on production
    /// (repeatable where a command touches several: `local destroy`)
    #[arg(long, value_name = "NAME")]
    pub confirm_database: Vec<String>,
}

impl Confirm {
    /// Refuses `action` on a production database unless confirmed.
    pub async fn check(
        &self,
        client: &tokio_postgres::Client,
        url: &str,
        action: &str,
    ) -> anyhow::Result<()> {
        crate::backup::production::confirm(client, url, action, self.yes, &self.confirm_database)
            .await?;
        Ok(())
    }
}

pub fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "dataforge: {msg}");
}

static EMITTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether anything was written to stdout: with `--json` and an error, the binary prints
/// `{"error": …}` itself only when the command printed no report.
pub fn emitted() -> bool {
    EMITTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Stdout carries data (a dump to `-`): nothing else may be written to it.
pub fn mark_emitted() {
    EMITTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// `{"error": "…"}`: what `--json` prints on stdout when a command fails before its report.
pub fn json_error(message: &str) -> String {
    format!("{}\n", serde_json::json!({ "error": message }))
}

/// Writes results to stdout; a closed pipe (`dataforge … | head`) ends quietly.
pub fn emit(text: &str) -> anyhow::Result<()> {
    EMITTED.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Seed(a) => seed::run(a).await,
        Command::Migrate(a) => migrate::run(a).await,
        Command::Local(a) => local::run(a).await,
        Command::Backup(a) => backup::run_backup(a).await,
        Command::Restore(a) => backup::run_restore(a).await,
        Command::Mark(a) => backup::run_mark(a).await,
        Command::Backfill(a) => backfill::run(a).await,
        Command::Anonymize(a) => anonymize::run(a).await,
        Command::Snapshot(a) => anonymize::run_snapshot(a).await,
        Command::Verify(a) => verify::run(a).await,
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "dataforge",
                &mut out,
            );
            emit(&String::from_utf8_lossy(&out))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir: None } => {
            let mut out = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut out)?;
            emit(&String::from_utf8_lossy(&out))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir: Some(dir) } => {
            std::fs::create_dir_all(&dir)?;
            let mut written = Vec::new();
            write_man_pages(
                &dir,
                <Cli as clap::CommandFactory>::command(),
                "dataforge",
                &mut written,
            )?;
            emit(&format!("{}\n", written.join("\n")))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `NAME.1` for `cmd`, then one page per subcommand (`NAME-SUB.1`), recursively.
fn write_man_pages(
    dir: &std::path::Path,
    cmd: clap::Command,
    name: &str,
    written: &mut Vec<String>,
) -> anyhow::Result<()> {
    // the page's NAME line and title: `dataforge-migrate-up`, as man(1) looks pages up
    let cmd = cmd.name(name.to_string()).bin_name(name.replace('-', " "));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .title(name.to_string())
        .render(&mut page)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    written.push(path.display().to_string());
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_man_pages(
            dir,
            sub.clone(),
            &format!("{name}-{}", sub.get_name()),
            written,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod describe_tests {
    /// Each cause once, on one line (issue 15, §5).
    #[test]
    fn causes_are_said_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("no such backup: {source}")]
        struct Outer {
            #[source]
            source: std::io::Error,
        }
        let io = std::io::Error::other("no such backup");
        let e = anyhow::Error::from(Outer { source: io });
        assert_eq!(super::describe(&e), "no such backup: no such backup");
        let e = anyhow::Error::from(std::io::Error::other("disk full")).context("writing out.sql");
        assert_eq!(super::describe(&e), "writing out.sql: disk full");
        let inner = anyhow::anyhow!("role \"x\" does not exist").context("connecting");
        let e = inner.context("connecting");
        assert_eq!(super::describe(&e), "connecting: role \"x\" does not exist");
    }
}
