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
use super::key::Key;
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
/// [`abandon`](Written::abandon)s it. Dropped, it is abandoned: a database's staging copy
/// is left for the next run to clear, a file's partial is removed.
pub enum Written {
    /// Loaded into a database beside the target and checked; not yet swapped in.
    Database { outcome: Outcome, target: Target },
    /// Written and synced beside the file asked for (`partial`); not yet renamed.
    File {
        outcome: Outcome,
        partial: PathBuf,
        to: String,
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

/// Progress bars on stderr, one per table being read; nothing when disabled.
struct Progress {
    multi: Option<MultiProgress>,
}

impl Progress {
    fn new(enabled: bool) -> Progress {
        Progress {
            multi: enabled.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    fn rows(&self, table: &str, estimate: u64) -> ProgressBar {
        let Some(m) = &self.multi else {
            return ProgressBar::hidden();
        };
        let bar = m.add(ProgressBar::new(estimate.max(1)));
        bar.set_style(crate::progress::style(
            "{prefix:>28} [{bar:24}] {human_pos}/~{human_len} rows {msg} ({rate}, {eta})",
        ));
        bar.set_prefix(table.to_string());
        bar
    }

    fn bytes(&self, name: &str, total: Option<u64>) -> ProgressBar {
        let Some(m) = &self.multi else {
            return ProgressBar::hidden();
        };
        let bar = m.add(ProgressBar::new(total.unwrap_or(0)));
        let template = if total.is_some() {
            "{prefix:>20} [{bar:24}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta}) {msg}"
        } else {
            "{prefix:>20} {spinner} {bytes} ({bytes_per_sec}) {msg}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(name.to_string());
        bar
    }
}

/// What anonymize asks of a source: its plan, and a preview of it.
impl Source {
    /// The plan, or why the config does not fit this source.
    pub fn plan(&self, config: &Config, key: &Key) -> anyhow::Result<Plan> {
        if let Source::Dump(d, scan) = self {
            // rows outside COPY blocks would never meet a transformer: fail closed
            if !scan.ddl.inserts.is_empty() {
                let places: Vec<String> = scan
                    .ddl
                    .inserts
                    .iter()
                    .map(|(t, line)| format!("{t} (from {}:{line})", d.name))
                    .collect();
                anyhow::bail!(
                    "{} holds rows as INSERT statements (pg_dump --inserts or --column-inserts), \
                     which would pass through untouched; nothing was written. Tables: {}. Dump \
                     with COPY, pg_dump's default, so every row goes through the transformers",
                    d.name,
                    places.join(", ")
                );
            }
            if let Some((name, t)) = config.tables.iter().find(|(_, t)| t.filter.is_some()) {
                let f = t.filter.as_ref().expect("found by its filter");
                return Err(config
                    .err(
                        f.span(),
                        format!(
                            "table {name}: `where` filters the rows of a live database; the \
                             rows of a dump ({}) cannot be filtered. Remove it, or read from \
                             the database (--from postgres://…)",
                            d.name
                        ),
                    )
                    .into());
            }
        }
        let p = plan::plan(config, key, &self.tables(), self.real())?;
        plan::check_unique(config, &p, self.unique_keys())?;
        let (count, first) = self.large_objects();
        super::guard::check_large_objects(config, count, &first)?;
        super::guard::check_foreign(config, self.foreign_keys())?;
        Ok(p)
    }

    /// A few rows of each anonymized table, before → after (`--dry-run`).
    pub async fn preview(
        &self,
        plan: &Plan,
        config: &Config,
        rows: usize,
    ) -> anyhow::Result<String> {
        let samples = self.sample_lines(rows, Some((config, plan))).await?;
        let mut text = String::new();
        for (name, t) in &plan.tables {
            if t.action != Action::Anonymize {
                text.push_str(&format!(
                    "{name}: {}\n",
                    match t.action {
                        Action::Truncate => "truncate (schema only, no rows)",
                        _ => "skip (left out)",
                    }
                ));
                continue;
            }
            let lines = samples.get(name).map(Vec::as_slice).unwrap_or_default();
            if t.is_passthrough() {
                text.push_str(&format!("{name}: every column kept\n"));
                continue;
            }
            text.push_str(&format!("{name} ({} rows sampled)\n", lines.len()));
            for (n, l) in lines.iter().enumerate() {
                let changes = t
                    .preview(l)
                    .map_err(|e| anyhow::anyhow!("{name}, sampled row {}: {e}", n + 1))?;
                let width = changes.iter().map(|(c, _, _)| c.len()).max().unwrap_or(0);
                // NULL and empty values stay as they are: not worth a line
                let changes: Vec<_> = changes
                    .into_iter()
                    .filter(|(_, b, a)| !(b == a && b.as_deref().unwrap_or("").is_empty()))
                    .collect();
                for (k, (col, before, after)) in changes.iter().enumerate() {
                    let show = |v: &Option<String>| {
                        v.as_deref()
                            .map_or("NULL".to_string(), |s| format!("{s:?}"))
                    };
                    text.push_str(&format!(
                        "  {} {col:width$}  {} → {}\n",
                        if k == 0 {
                            format!("row {}:", n + 1)
                        } else {
                            " ".repeat(format!("row {}:", n + 1).len())
                        },
                        show(before),
                        show(after)
                    ));
                }
            }
        }
        Ok(text)
    }
}

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
                            handle.block_on(live_dump(live, &plan, config, tx, &progress))
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

/// A dump into the new database: its SQL statement by statement (refusals recorded),
/// its COPY blocks through the plan, then sequences raised above loaded keys. The dump
/// is read and transformed on a thread of its own while this task loads.
async fn dump_to_db(
    d: &DumpSource,
    plan: &Arc<Plan>,
    target: &Target,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let client = target.connect().await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(16);
    let reader = d.reader()?;
    let (plan2, name) = (plan.clone(), d.name.clone());
    let bar = progress.bytes(&d.name, d.size());
    let bar2 = bar.clone();
    let producer = tokio::task::spawn_blocking(move || {
        dump::events(
            reader,
            &plan2,
            &name,
            |e| tx.blocking_send(e).is_ok(),
            |pos, _| bar2.set_position(pos),
        )
    });
    let mut rejected = Vec::new();
    let mut sink = None;
    let mut open: Option<(String, u64)> = None;
    let loaded: anyhow::Result<()> = async {
        while let Some(event) = rx.recv().await {
            match event {
                Event::Sql { text, line } => {
                    load::run_sql(&client, &text, &d.name, line, &mut rejected).await?;
                }
                Event::Begin {
                    table,
                    header,
                    line,
                } => {
                    bar.set_message(table.clone());
                    let s = client
                        .copy_in::<_, Bytes>(header.as_str())
                        .await
                        .pg(|| format!("starting to load {table} ({}:{line})", d.name))?;
                    sink = Some(Box::pin(s));
                    open = Some((table, line));
                }
                Event::Rows(data, _) => {
                    let (table, line) = open.as_ref().expect("rows come inside a block");
                    sink.as_mut()
                        .expect("rows come inside a block")
                        .send(Bytes::from(data))
                        .await
                        .pg(|| format!("loading {table} (the COPY block at {}:{line})", d.name))?;
                }
                Event::End => {
                    let (table, line) = open.take().expect("an end closes a block");
                    sink.take()
                        .expect("an end closes a block")
                        .as_mut()
                        .finish()
                        .await
                        .pg(|| format!("loading {table} (the COPY block at {}:{line})", d.name))?;
                }
            }
        }
        Ok(())
    }
    .await;
    drop(rx);
    let produced = producer.await.context("the dump reader stopped")?;
    // a row the plan cannot transform explains a stopped load better than the load does
    let stats = match (produced, loaded) {
        (Err(e @ dump::DumpError::Row { .. }), _)
        | (Err(e @ dump::DumpError::Unterminated { .. }), _) => return Err(e.into()),
        (_, Err(e)) => return Err(e),
        (Err(e), Ok(())) => return Err(e.into()),
        (Ok(stats), Ok(())) => stats,
    };
    client
        .batch_execute(load::SEQUENCE_FIXUP)
        .await
        .pg(|| "raising sequences above the loaded keys".into())?;
    bar.finish_and_clear();
    Ok(Outcome {
        stats,
        rejected,
        checks: Vec::new(),
    })
}

/// A live database into the new database: pg_dump's pre-data schema, the rows of every
/// table through the plan over `jobs` connections (each reading inside the snapshot and
/// loading by COPY), the sequences as the snapshot saw them, then indexes and
/// constraints.
async fn live_to_db(
    live: Arc<Live>,
    plan: Arc<Plan>,
    config: &Config,
    target: &Target,
    opts: &RunOptions,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let client = target.connect().await?;
    let mut rejected = Vec::new();
    let pre = live.schema("pre-data", config).await?;
    load::run_sql(
        &client,
        &pre,
        "schema (pg_dump --section=pre-data)",
        1,
        &mut rejected,
    )
    .await?;
    let action = |name: &str| plan.table(name).map(|p| p.action);
    let pieces: VecDeque<Piece> = live
        .pieces(
            |t| action(&t.table.name) == Some(Action::Anonymize),
            opts.jobs,
            opts.split_pages,
        )
        .into();
    let counts: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let bars: Arc<BTreeMap<String, ProgressBar>> = Arc::new(
        live.tables
            .iter()
            .filter(|t| action(&t.table.name) == Some(Action::Anonymize))
            .map(|t| {
                (
                    t.table.name.clone(),
                    progress.rows(&t.table.name, t.rows_estimate as u64),
                )
            })
            .collect(),
    );
    let filters: Arc<BTreeMap<String, String>> = Arc::new(
        config
            .tables
            .keys()
            .filter_map(|k| filter(config, k).map(|f| (k.clone(), f)))
            .collect(),
    );
    let queue = Arc::new(Mutex::new(pieces));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..opts.jobs.max(1) {
        let (live, plan, queue, counts, bars, filters) = (
            live.clone(),
            plan.clone(),
            queue.clone(),
            counts.clone(),
            bars.clone(),
            filters.clone(),
        );
        let url = target.staging_url.clone();
        workers.spawn(async move {
            let reader = live.reader().await?;
            let writer = pg::connect(&url).await?;
            loop {
                let Some(piece) = queue.lock().expect("not poisoned").pop_front() else {
                    return Ok::<_, anyhow::Error>(());
                };
                // a test build's way to show what a panicking worker leaves (nothing)
                #[cfg(debug_assertions)]
                if std::env::var_os("DATAFORGE_TEST_PANIC").is_some_and(|v| v == "copy-worker") {
                    panic!("injected for a test: a copy worker panics");
                }
                let t = &live.tables[piece.table];
                let tp = plan
                    .table(&t.table.name)
                    .expect("pieces are of planned tables");
                let bar = &bars[&t.table.name];
                let sql =
                    live.copy_out(&piece, filters.get(&t.table.name).map(String::as_str), None);
                let cols: Vec<String> = t.table.columns.iter().map(|c| quote_ident(c)).collect();
                let into = format!("COPY {} ({}) FROM STDIN", t.quoted, cols.join(", "));
                let n = copy_piece(&reader, &writer, &sql, &into, tp, bar)
                    .await
                    .with_context(|| match filters.get(&t.table.name) {
                        Some(f) => format!("copying {} (where = {f:?})", t.table.name),
                        None => format!("copying {}", t.table.name),
                    })?;
                *counts
                    .lock()
                    .expect("not poisoned")
                    .entry(t.table.name.clone())
                    .or_default() += n;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        if let Err(e) = done.context("a copy worker stopped").and_then(|r| r) {
            workers.abort_all();
            return Err(e);
        }
    }
    for bar in bars.values() {
        bar.finish_and_clear();
    }
    load::run_sql(
        &client,
        &live.setvals(config).join("\n"),
        "sequences",
        1,
        &mut rejected,
    )
    .await?;
    super::large_objects::copy(
        &live.reader().await?,
        &client,
        &live.large_objects,
        plan.large_objects,
    )
    .await?;
    let post = live.schema("post-data", config).await?;
    load::run_sql(
        &client,
        &post,
        "schema (pg_dump --section=post-data)",
        1,
        &mut rejected,
    )
    .await?;
    if config.refresh_matviews {
        load::refresh_materialized_views(&live, &client).await?;
    }
    client
        .batch_execute(load::SEQUENCE_FIXUP)
        .await
        .pg(|| "raising sequences above the loaded keys".into())?;
    let counts = counts.lock().expect("not poisoned");
    let mut stats = DumpStats::default();
    for t in &live.tables {
        if let Some(p) = plan
            .table(&t.table.name)
            .filter(|p| p.action != Action::Skip)
        {
            stats
                .tables
                .push((p.name.clone(), counts.get(&p.name).copied().unwrap_or(0)));
        }
    }
    Ok(Outcome {
        stats,
        rejected,
        checks: Vec::new(),
    })
}

/// Streams one piece: COPY out of the source, each row through the plan, COPY into the
/// target. Returns the rows copied.
async fn copy_piece(
    reader: &tokio_postgres::Client,
    writer: &tokio_postgres::Client,
    out_sql: &str,
    in_sql: &str,
    t: &plan::TablePlan,
    bar: &ProgressBar,
) -> anyhow::Result<u64> {
    let stream = reader
        .copy_out(out_sql)
        .await
        .pg(|| "starting to read".into())?;
    let sink = writer
        .copy_in::<_, Bytes>(in_sql)
        .await
        .pg(|| "starting to load".into())?;
    futures_util::pin_mut!(stream);
    futures_util::pin_mut!(sink);
    let (mut feed, mut shown, mut bytes) = (RowFeed::default(), 0u64, 0u64);
    let mut buf = Vec::with_capacity(300 << 10);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.pg(|| "reading".into())?;
        bytes += chunk.len() as u64;
        feed.feed(&chunk, t, &mut buf)?;
        if buf.len() >= 256 << 10 {
            sink.send(Bytes::from(std::mem::replace(
                &mut buf,
                Vec::with_capacity(300 << 10),
            )))
            .await
            .pg(|| "loading".into())?;
            bar.inc(feed.rows - std::mem::replace(&mut shown, feed.rows));
            bar.set_message(format!("{:.1} MB", bytes as f64 / 1e6));
        }
    }
    if !buf.is_empty() {
        sink.send(Bytes::from(buf)).await.pg(|| "loading".into())?;
    }
    bar.inc(feed.rows - shown);
    sink.as_mut()
        .finish()
        .await
        .pg(|| "finishing the load".into())?;
    Ok(feed.rows)
}

/// COPY TO STDOUT data as it arrives (a row per message, as the server sends it; a
/// partial line waits for its end), each complete row through the plan.
#[derive(Default)]
struct RowFeed {
    partial: Vec<u8>,
    rows: u64,
}

impl RowFeed {
    fn feed(&mut self, chunk: &[u8], t: &plan::TablePlan, out: &mut Vec<u8>) -> anyhow::Result<()> {
        let data: &[u8] = if self.partial.is_empty() {
            chunk
        } else {
            self.partial.extend_from_slice(chunk);
            &self.partial
        };
        let mut rest = data;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            self.rows += 1;
            t.transform_line(&rest[..nl], out)
                .map_err(|e| anyhow::anyhow!("row {}: {e}", self.rows))?;
            rest = &rest[nl + 1..];
        }
        self.partial = rest.to_vec();
        Ok(())
    }
}

/// A live database as the plain dump pg_dump would write of it: the pre-data schema, a
/// COPY block per table (rows as the server sends them; none for `truncate`, no block
/// for `skip`), the sequences as the snapshot saw them, then the post-data schema. Sent
/// in chunks to `tx`; [`dump::anonymize_parallel`] reads it like any dump, so a live
/// source gets the same transform workers as a file.
async fn live_dump(
    live: &Live,
    plan: &Plan,
    config: &Config,
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    progress: &Progress,
) -> anyhow::Result<()> {
    let stopped = || anyhow::anyhow!("the writer stopped");
    tx.send(live.schema("pre-data", config).await?.into_bytes())
        .map_err(|_| stopped())?;
    let reader = live.reader().await?;
    for (i, t) in live.tables.iter().enumerate() {
        let Some(tp) = plan
            .table(&t.table.name)
            .filter(|p| p.action != Action::Skip)
        else {
            continue;
        };
        let cols: Vec<String> = t.table.columns.iter().map(|c| quote_ident(c)).collect();
        let mut buf =
            format!("\nCOPY {} ({}) FROM stdin;\n", t.quoted, cols.join(", ")).into_bytes();
        if tp.action == Action::Anonymize {
            let bar = progress.rows(&t.table.name, t.rows_estimate as u64);
            let sql = live.copy_out(
                &Piece {
                    table: i,
                    pages: None,
                },
                filter(config, &t.table.name).as_deref(),
                None,
            );
            let stream = reader
                .copy_out(&sql)
                .await
                .pg(|| format!("reading {}", t.table.name))?;
            futures_util::pin_mut!(stream);
            let mut rows = 0;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.pg(|| format!("reading {}", t.table.name))?;
                rows += memchr::memchr_iter(b'\n', &chunk).count() as u64;
                buf.extend_from_slice(&chunk);
                if buf.len() >= 256 << 10 {
                    tx.send(std::mem::take(&mut buf)).map_err(|_| stopped())?;
                    bar.set_position(rows);
                }
            }
            bar.finish_and_clear();
        }
        buf.extend_from_slice(b"\\.\n");
        tx.send(buf).map_err(|_| stopped())?;
    }
    let mut tail = Vec::new();
    let setvals = live.setvals(config);
    if !setvals.is_empty() {
        tail.extend_from_slice(b"\n-- sequences, as the source's snapshot saw them\n");
        for s in setvals {
            tail.extend_from_slice(s.as_bytes());
            tail.push(b'\n');
        }
    }
    tail.extend_from_slice(
        super::large_objects::sql(&reader, &live.large_objects, plan.large_objects)
            .await?
            .as_bytes(),
    );
    // pg_dump's closing line goes last, after the refreshes: a reader of this file (our
    // own included) takes a file without it for a cut one
    const TRAILER: &str = "--\n-- PostgreSQL database dump complete\n--\n";
    let post = live.schema("post-data", config).await?;
    let post = match post.rfind(TRAILER) {
        Some(at) => format!("{}{}", &post[..at], &post[at + TRAILER.len()..]),
        None => post,
    };
    tail.extend_from_slice(post.trim_end().as_bytes());
    tail.extend_from_slice(b"\n\n");
    if !live.matviews.is_empty() && config.refresh_matviews {
        tail.extend_from_slice(b"-- materialized views the source has populated\n");
        for v in &live.matviews {
            tail.extend_from_slice(format!("REFRESH MATERIALIZED VIEW {v};\n").as_bytes());
        }
        tail.extend_from_slice(b"\n");
    }
    tail.extend_from_slice(TRAILER.as_bytes());
    tail.push(b'\n');
    tx.send(tail).map_err(|_| stopped())?;
    Ok(())
}

/// The receiving end of [`live_dump`] as a reader; the end of the stream when the
/// sender is done (or gone: its own result says which).
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(c) => (self.chunk, self.at) = (c, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
