//! `dataforge migrate`: Prisma-layout migrations (`DIR/<timestamp>_<name>/migration.sql`)
//! recorded in `_prisma_migrations` exactly as Prisma records them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{emit, say, Target, EXIT_FOUND};
use crate::migrate::{self, source, State};
use crate::pg::{self, Masked};

const AFTER_HELP: &str = "\
Examples:
  dataforge migrate status                         the default folder: prisma/migrations, else migrations
  dataforge migrate up --dir profiles/demo-firm/migrations
  DATABASE_URL=postgresql://app@db/app dataforge migrate status --json

Exit codes: 0 ok; 1 something needs attention (pending, failed, modified or missing
migrations for `status`); 2 an error (a failed migration for `up`).";

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
    fn path(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(source::default_dir)
    }
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Apply every pending migration, each in its own transaction, under Prisma's advisory lock
    Up {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        target: Target,
    },
    /// List migrations: applied, pending, failed, modified after apply, missing on disk
    Status {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        target: Target,
        /// Print the list as JSON
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Up { dir, target } => {
            // read and check the folder before connecting
            let migrations = migrate::load_dir(&dir.path())?;
            let url = target.resolve().await?;
            let mut client = pg::connect(&url).await?;
            let applied = migrate::up(&mut client, &migrations).await?;
            if applied.is_empty() {
                say(&format!(
                    "{} is up to date ({} migrations)",
                    Masked(&url),
                    migrations.len()
                ));
            }
            for name in &applied {
                emit(&format!("applied {name}\n"))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Status { dir, target, json } => {
            let migrations = migrate::load_dir(&dir.path())?;
            let url = target.resolve().await?;
            let client = pg::connect(&url).await?;
            let entries = migrate::status(&client, &migrations).await?;
            if json {
                emit(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&serde_json::json!({ "migrations": entries }))?
                ))?;
            } else {
                let mut s = String::new();
                for e in &entries {
                    let state = match &e.state {
                        State::Applied { finished_at } => format!("applied {finished_at}"),
                        State::Pending => "pending".into(),
                        State::Failed { started_at, .. } => {
                            format!("FAILED (started {started_at})")
                        }
                        State::Modified { .. } => {
                            "MODIFIED after it was applied (checksum differs)".into()
                        }
                        State::MissingOnDisk { .. } => {
                            "applied, but MISSING from the folder".into()
                        }
                    };
                    s.push_str(&format!("{:<50} {state}\n", e.name));
                }
                if entries.is_empty() {
                    s.push_str("no migrations\n");
                }
                emit(&s)?;
            }
            Ok(if entries.iter().any(|e| e.needs_attention()) {
                ExitCode::from(EXIT_FOUND)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
