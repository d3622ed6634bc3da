//! `dataforge local`: the PostgreSQL cluster dataforge runs itself under ./.dataforge/pg,
//! made with the installed server binaries, listening on 127.0.0.1 and a socket in that
//! folder, trusting local connections. For development data only.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{emit, say, EXIT_FOUND};
use crate::pg::local::{self, Cluster, Status};

const AFTER_HELP: &str = "\
Examples:
  dataforge local start      create (first time) and start the cluster
  psql \"$(dataforge local url)\"
  dataforge local destroy    stop it and delete ./.dataforge/pg with all its data

The server binaries are found through $DATAFORGE_PG_BIN, PATH, or /usr/lib/postgresql/*/bin.
When run as root, the server runs as the `postgres` OS account.";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct LocalArgs {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Create the cluster if needed and start it; prints its URL
    #[command(
        after_help = "Examples:\n  dataforge local start\n  psql \"$(dataforge local start)\""
    )]
    Start,
    /// Stop the cluster (its data stays)
    #[command(
        after_help = "Examples:\n  dataforge local stop\n  dataforge local stop && dataforge local start   a restart"
    )]
    Stop,
    /// Say whether it runs, where and on which port (exit 1 when it is not running)
    #[command(
        after_help = "Examples:\n  dataforge local status\n  dataforge local status || dataforge local start"
    )]
    Status,
    /// Print the connection URL of the `dataforge` database (psql accepts it); exit 1 when
    /// the cluster is not running (the URL is still printed)
    #[command(
        after_help = "Examples:\n  psql \"$(dataforge local url)\"\n  DATABASE_URL=$(dataforge local url) npx prisma migrate deploy"
    )]
    Url,
    /// Stop the cluster and delete it with all its data (a database in it marked
    /// production needs --yes --confirm-database NAME)
    #[command(
        after_help = "Examples:\n  dataforge local destroy\n  dataforge local destroy --yes --confirm-database dataforge   when it is marked production"
    )]
    Destroy {
        #[command(flatten)]
        confirm: super::Confirm,
    },
}

pub async fn run(args: LocalArgs) -> anyhow::Result<ExitCode> {
    let cluster = Cluster::for_project(&std::env::current_dir()?);
    let blocking = |f: fn(&Cluster) -> anyhow::Result<ExitCode>| {
        let c = cluster.clone();
        tokio::task::spawn_blocking(move || f(&c))
    };
    match args.action {
        Action::Start => {
            let c = cluster.clone();
            let (port, already) = tokio::task::spawn_blocking(move || c.start()).await??;
            local::ensure_database(&cluster, local::DEFAULT_DATABASE).await?;
            say(&if already {
                format!("the local cluster is already running on port {port}")
            } else {
                format!(
                    "started the local cluster in {} on port {port}",
                    cluster.root().display()
                )
            });
            emit(&format!("{}\n", cluster.url(local::DEFAULT_DATABASE)?))?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Stop => {
            blocking(|c| {
                if c.stop()? {
                    say("stopped the local cluster");
                } else {
                    say("the local cluster was not running");
                }
                Ok(ExitCode::SUCCESS)
            })
            .await?
        }
        Action::Status => {
            blocking(|c| {
                Ok(match c.status()? {
                    Status::NotCreated => {
                        emit(&format!(
                            "not created ({}); `dataforge local start` makes it\n",
                            c.root().display()
                        ))?;
                        ExitCode::from(EXIT_FOUND)
                    }
                    Status::Stopped { port } => {
                        emit(&format!(
                            "stopped (port {port}, data in {})\n",
                            c.data_dir().display()
                        ))?;
                        ExitCode::from(EXIT_FOUND)
                    }
                    Status::Running { port, pid } => {
                        emit(&format!(
                            "running (pid {pid}, port {port}, data in {})\n{}\n",
                            c.data_dir().display(),
                            c.url(local::DEFAULT_DATABASE)?
                        ))?;
                        ExitCode::SUCCESS
                    }
                })
            })
            .await?
        }
        Action::Url => {
            let c = cluster.clone();
            let status = tokio::task::spawn_blocking(move || c.status()).await??;
            emit(&format!("{}\n", cluster.url(local::DEFAULT_DATABASE)?))?;
            if matches!(status, Status::Running { .. }) {
                Ok(ExitCode::SUCCESS)
            } else {
                say("the local cluster is not running; `dataforge local start` starts it");
                Ok(ExitCode::from(EXIT_FOUND))
            }
        }
        Action::Destroy { confirm } => {
            let c = cluster.clone();
            if tokio::task::spawn_blocking(move || c.status()).await?? != Status::NotCreated {
                // the whole cluster goes: each database marked production must be confirmed
                // (a stopped cluster is started to read the marks; destroy stops it)
                let c = cluster.clone();
                let (_, was_running) = tokio::task::spawn_blocking(move || c.start()).await??;
                let admin = cluster.url("postgres")?;
                let client = crate::pg::connect(&admin).await?;
                let marked: Vec<String> = client
                    .query(
                        "SELECT DISTINCT d.datname::text FROM pg_db_role_setting s
                         JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) c
                         WHERE s.setrole = 0 AND c = 'dataforge.environment=production'
                         ORDER BY 1",
                        &[],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                for name in marked {
                    let url = crate::pg::with_database(&admin, &name);
                    let db = crate::pg::connect(&url).await?;
                    if let Err(e) = confirm
                        .check(
                            &db,
                            &url,
                            "destroy the local cluster and with it the database",
                        )
                        .await
                    {
                        // refused: a cluster that was stopped is stopped again
                        if !was_running {
                            let c = cluster.clone();
                            let _ = tokio::task::spawn_blocking(move || c.stop()).await;
                        }
                        return Err(e);
                    }
                }
            }
            blocking(|c| {
                if c.destroy()? {
                    say(&format!(
                        "destroyed the local cluster in {}",
                        c.root().display()
                    ));
                } else {
                    say("there was no local cluster to destroy");
                }
                Ok(ExitCode::SUCCESS)
            })
            .await?
        }
    }
}
