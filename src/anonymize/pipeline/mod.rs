//! One run: a source (a live database, a plain dump, a custom-format archive, stdin)
//! checked against the config before any row moves, then streamed through the plan into
//! a sink (a file, stdout, or a database loaded beside the target and swapped in).

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::config::{Action, Config};
use super::dump::{self, DumpStats, Event};
use super::load::{self, Rejected, Target};
use super::plan::{self, Plan};
use crate::pg::{self, quote_ident, PgContext as _};
use crate::source::live::{Live, Piece};
pub use crate::source::{filter, is_url, DumpSource, Source};

/// How a run goes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Threads transforming a dump; connections reading and loading a live database.
    pub jobs: usize,
    /// Progress bars on stderr.
    pub progress: bool,
    /// Replace a target database that holds tables (swapped in at the end).
    pub replace: bool,
    /// Live tables of at least this many pages are read in page ranges.
    pub split_pages: i64,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub stats: DumpStats,
    /// Source statements the target server refused (the run went on without them).
    pub rejected: Vec<Rejected>,
    /// The checks run on the loaded copy before the swap: what, and whether it held.
    pub checks: Vec<Check>,
}

/// Why a run stopped with its output unused, as the CLI tells them apart (exit codes).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The copy could not be made whole: a row, a statement of the schema or a schema
    /// object of the source is missing from it. Nothing was swapped in (exit 2: the copy
    /// cannot be used).
    #[error(
        "the loaded copy is not a complete copy of the source, so it was not swapped in:\n{0}"
    )]
    Incomplete(String),
}

/// The output of [`write`], whole but not yet where it was asked to go: the caller
/// looks at it (verify) and then [`commit`](Written::commit)s or
/// [`abandon`](Written::abandon)s it. Dropped uncommitted, the target is as it was too: a
/// database's staging copy is left for the next run on that target to drop, a file's
/// partial is removed (where `abandon` keeps it as `TO.rejected`).
#[allow(clippy::large_enum_variant)] // one per run
pub enum Written {
    /// Loaded into a database beside the target and checked; not yet swapped in.
    Database { outcome: Outcome, target: Target },
    /// Written and synced beside the file asked for (`partial`); not yet renamed.
    File {
        outcome: Outcome,
        partial: PathBuf,
        to: String,
        /// The partial, open and locked: a later run does not take it for one a killed
        /// run left while it is verified (closed, the lock goes with it).
        _file: std::fs::File,
        _guard: crate::cleanup::Registered,
    },
    /// Written to stdout: already where it was asked to go.
    Stdout(Outcome),
}

impl Written {
    pub fn outcome(&self) -> &Outcome {
        match self {
            Written::Database { outcome, .. }
            | Written::File { outcome, .. }
            | Written::Stdout(outcome) => outcome,
        }
    }

    /// Where a reader finds the output before it is committed: the staging database's
    /// URL or the partial file's path (none for stdout).
    pub fn location(&self) -> Option<String> {
        match self {
            Written::Database { target, .. } => Some(target.staging_url.clone()),
            Written::File { partial, .. } => Some(partial.to_string_lossy().into_owned()),
            Written::Stdout(_) => None,
        }
    }

    /// Puts the output where it was asked to go: the database swapped in, the file renamed.
    pub async fn commit(self) -> anyhow::Result<Outcome> {
        match self {
            Written::Database { outcome, target } => {
                target.swap().await?;
                Ok(outcome)
            }
            Written::File {
                outcome,
                partial,
                to,
                _file,
                _guard,
            } => {
                std::fs::rename(&partial, &to).with_context(|| format!("writing {to}"))?;
                Ok(outcome)
            }
            Written::Stdout(outcome) => Ok(outcome),
        }
    }

    /// Leaves the target as it was: a database's staging copy is dropped (and `e` says
    /// the target is as it was); a file's partial is kept as `TO.rejected` (readable by its
    /// owner only) to look into, which `e` should say. Returns the error to report.
    pub async fn abandon(self, e: anyhow::Error) -> anyhow::Error {
        match self {
            Written::Database { target, .. } => {
                target.abandon().await;
                e.context(format!("nothing was loaded: {} is as it was", target.name))
            }
            Written::File { partial, to, .. } => {
                let rejected = format!("{to}.rejected");
                match std::fs::rename(&partial, &rejected) {
                    Ok(()) => e,
                    Err(io) => anyhow::Error::new(io).context(format!("writing {rejected}")),
                }
            }
            Written::Stdout(_) => e,
        }
    }
}

pub use super::load::Check;

mod live_file;
mod progress;
mod to_db;

use live_file::*;
use progress::*;
use to_db::*;

/// Runs the whole pipeline from `source` towards `to` (a file, `-`, or a URL): the output
/// is made whole beside `to` and handed back [`Written`], for the caller to look at and
/// commit. A failure on the way leaves `to` as it was.
pub async fn write(
    config: &Config,
    source: &Source,
    plan: Plan,
    to: &str,
    opts: &RunOptions,
) -> anyhow::Result<Written> {
    let progress = Progress::new(opts.progress);
    let plan = Arc::new(plan);
    if is_url(to) {
        if let Source::Live(live) = source {
            if live.is_source(to).await? {
                anyhow::bail!(
                    "the source and the target are the same database; nothing was done. Give \
                     the target another database name"
                );
            }
        }
        if let Source::Dump(d, scan) = source {
            let missing: Vec<&str> = scan
                .tables
                .iter()
                .filter(|t| plan.table(&t.name).map(|p| p.action) == Some(Action::Anonymize))
                .filter(|t| !scan.ddl.created.contains(&t.name))
                .map(|t| t.name.as_str())
                .collect();
            if !missing.is_empty() {
                anyhow::bail!(
                    "{} holds rows for {} but no CREATE TABLE for {} (was it made with \
                     --data-only?); nothing was done. Loading into a database needs the schema: \
                     dump with it, or write a file (--to dev.sql) and load that into a database \
                     that has the schema",
                    d.name,
                    if missing.len() == 1 {
                        "a table"
                    } else {
                        "tables"
                    },
                    missing.join(", ")
                );
            }
        }
        let target = Target::prepare(to, opts.replace).await?;
        let loaded = match source {
            Source::Dump(d, _) => dump_to_db(d, &plan, &target, &progress).await,
            Source::Live(live) => {
                live_to_db(live.clone(), plan.clone(), config, &target, opts, &progress).await
            }
        };
        let loaded = match loaded {
            Ok(mut outcome) => match check(source, &plan, &target, &mut outcome).await {
                Ok(()) => Ok(outcome),
                Err(e) => Err(e),
            },
            other => other,
        };
        match loaded {
            Ok(outcome) => Ok(Written::Database { outcome, target }),
            Err(e) => {
                target.abandon().await;
                Err(e.context(format!("nothing was loaded: {} is as it was", target.name)))
            }
        }
    } else {
        let write = |out: &mut dyn Write| -> anyhow::Result<Outcome> {
            let stats = match source {
                Source::Dump(d, _) => {
                    let bar = progress.bytes(&d.name, d.size());
                    let stats = tokio::task::block_in_place(|| {
                        dump::anonymize_parallel(
                            d.reader()?,
                            &mut *out,
                            &plan,
                            &d.name,
                            opts.jobs,
                            &|pos, table| {
                                bar.set_position(pos);
                                bar.set_message(table.to_string());
                            },
                        )
                        .map_err(anyhow::Error::from)
                    })?;
                    bar.finish_and_clear();
                    stats
                }
                Source::Live(live) => tokio::task::block_in_place(|| {
                    let (tx, rx) = std::sync::mpsc::sync_channel(8);
                    let handle = tokio::runtime::Handle::current();
                    let name = live.name();
                    std::thread::scope(|scope| {
                        let producer = scope.spawn(|| {
                            handle.block_on(live_dump(
                                live,
                                &plan,
                                config,
                                tx,
                                &progress,
                                opts.split_pages,
                            ))
                        });
                        let reader = BufReader::with_capacity(
                            1 << 20,
                            ChannelReader {
                                rx,
                                chunk: Vec::new(),
                                at: 0,
                            },
                        );
                        let written = dump::anonymize_parallel(
                            reader,
                            &mut *out,
                            &plan,
                            &name,
                            opts.jobs,
                            &|_, _| {},
                        );
                        let produced = producer.join().expect("the reader does not panic");
                        // a row the plan refused stops the reader; otherwise a reading
                        // error explains a short stream
                        match (written, produced) {
                            (Err(e @ dump::DumpError::Row { .. }), _) => Err(e.into()),
                            (_, Err(e)) => Err(e),
                            (written, Ok(())) => written.map_err(anyhow::Error::from),
                        }
                    })
                })?,
            };
            Ok(Outcome {
                stats,
                ..Outcome::default()
            })
        };
        if to == "-" {
            let mut out = std::io::stdout().lock();
            write(&mut out).map(Written::Stdout)
        } else {
            // written beside the target and renamed at the end: a failure leaves no half file
            // (`.NAME.PID.partial`, 0600, locked while written: a later run removes one a
            // killed run left; removed on every other exit path)
            let target = PathBuf::from(to);
            let (mut file, partial, guard) =
                crate::cleanup::partial_file(&target, &mut |m| crate::cli::say(m))
                    .with_context(|| format!("creating a file beside {to}"))?;
            // (the writers buffer in 1 MiB writes themselves)
            let outcome = write(&mut file)?;
            file.sync_all().with_context(|| format!("writing {to}"))?;
            Ok(Written::File {
                outcome,
                partial,
                to: to.to_string(),
                _file: file,
                _guard: guard,
            })
        }
    }
}

/// The checks on the loaded copy, before it is swapped in ([`load::check_copy`]); a
/// failed one is a [`RunError::Incomplete`].
async fn check(
    source: &Source,
    plan: &Plan,
    target: &Target,
    outcome: &mut Outcome,
) -> anyhow::Result<()> {
    let live = match source {
        Source::Live(live) => Some(live.as_ref()),
        Source::Dump(..) => None,
    };
    let (objects, _) = source.large_objects();
    outcome.checks = load::check_copy(
        live,
        target,
        &outcome.stats.tables,
        &outcome.rejected,
        (objects, plan.large_objects),
        plan.refresh_matviews,
    )
    .await?;
    let failed: Vec<String> = outcome
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.check, c.detail))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(RunError::Incomplete(failed.join("\n")).into())
    }
}
