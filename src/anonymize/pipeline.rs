//! One run: a source (a live database, a plain dump, a custom-format archive, stdin)
//! checked against the config before any row moves, then streamed through the plan into
//! a sink (a file, stdout, or a database loaded beside the target and swapped in).

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::config::{Action, Config};
use super::dump::{self, DumpStats, Event};
use super::key::Key;
use super::live::{Live, Piece};
use super::load::{self, Rejected, Target};
use super::plan::{self, Plan, SourceTable};
use crate::pg::{self, quote_ident, PgContext as _};

/// Whether `s` names a database rather than a file: a `postgres://` URL, or a libpq
/// `key=value` connection string (`host=db dbname=app …`), as psql takes both.
pub fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://") || pg::is_conninfo(s)
}

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
    /// Verify the output against the source (`dataforge verify`) with this key and these
    /// settings: into a database before the swap (a failure keeps the target as it
    /// was), into a file once it is written.
    pub verify: Option<(Key, crate::verify::settings::Settings)>,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub stats: DumpStats,
    /// Source statements the target server refused (the run went on without them).
    pub rejected: Vec<Rejected>,
    /// The checks run on the loaded copy before the swap: what, and whether it held.
    pub checks: Vec<Check>,
    /// The verification of the output, when it ran.
    pub verify: Option<crate::verify::Report>,
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
    /// The output was made but verify found something in it (exit 1); the report, for
    /// `--json`.
    #[error("{0}")]
    VerifyFailed(String, Box<crate::verify::Report>),
}

pub use super::load::Check;

/// A dump on disk: a plain SQL file, or a custom-format archive read through
/// `pg_restore -f -`. stdin is spooled to a temporary file first, so the config is
/// checked against every table before any row is read.
pub struct DumpSource {
    path: PathBuf,
    pub name: String,
    custom: bool,
    /// stdin's copy: a file with no name (unlinked from the start, so no exit path, not
    /// even kill -9, leaves the source's plaintext in a temp folder), reached through
    /// `/proc/PID/fd/N` by this process and its pg_restore child.
    _spool: Option<std::fs::File>,
}

impl DumpSource {
    pub fn open(from: &str) -> anyhow::Result<DumpSource> {
        let (path, name, spool) = if from == "-" {
            use std::os::fd::AsRawFd as _;
            let mut tmp = tempfile::tempfile().context("creating a spool file for stdin")?;
            std::io::copy(&mut std::io::stdin().lock(), &mut tmp).context("reading stdin")?;
            let path = PathBuf::from(format!(
                "/proc/{}/fd/{}",
                std::process::id(),
                tmp.as_raw_fd()
            ));
            (path, "<stdin>".to_string(), Some(tmp))
        } else {
            let p = PathBuf::from(from);
            if !p.is_file() {
                anyhow::bail!(
                    "the source {from} is not a file; give a pg_dump file (plain or -Fc), - for \
                     stdin, or a postgres:// URL"
                );
            }
            (p, from.to_string(), None)
        };
        let mut magic = [0u8; 5];
        let n = std::fs::File::open(&path)
            .and_then(|mut f| f.read(&mut magic))
            .with_context(|| format!("reading {name}"))?;
        if n == 5 && &magic == b"PGDMP" {
            crate::backup::find_tool("pg_restore")?;
        } else {
            let mut f = std::fs::File::open(&path).with_context(|| format!("reading {name}"))?;
            dump::check_complete(&mut f, &name)
                .with_context(|| format!("reading {name}"))?
                .map_err(anyhow::Error::msg)?;
        }
        Ok(DumpSource {
            custom: n == 5 && &magic == b"PGDMP",
            path,
            name,
            _spool: spool,
        })
    }

    /// The file itself, when the dump is plain SQL (not an archive pg_restore reads).
    pub fn plain_file(&self) -> Option<&std::path::Path> {
        (!self.custom).then_some(self.path.as_path())
    }

    /// The dump's SQL from the start (a plain file as it is; an archive as pg_restore
    /// writes it).
    pub fn reader(&self) -> anyhow::Result<Box<dyn BufRead + Send>> {
        if !self.custom {
            let f = std::fs::File::open(&self.path)
                .with_context(|| format!("opening {}", self.name))?;
            return Ok(Box::new(BufReader::with_capacity(1 << 20, f)));
        }
        let mut cmd = std::process::Command::new(crate::backup::find_tool("pg_restore")?);
        cmd.arg("--file=-")
            .arg(&self.path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = crate::child::spawn(cmd).context("starting pg_restore")?;
        let stdout = child.stdout.take().expect("stdout is piped");
        Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            Restore {
                child,
                stdout,
                done: false,
            },
        )))
    }

    /// Bytes to read, for progress (unknown for an archive).
    pub fn size(&self) -> Option<u64> {
        (!self.custom)
            .then(|| std::fs::metadata(&self.path).ok().map(|m| m.len()))
            .flatten()
    }
}

/// pg_restore's output; its exit status is checked at the end, so a damaged or too new
/// archive is an error rather than a short read.
struct Restore {
    child: std::process::Child,
    stdout: std::process::ChildStdout,
    done: bool,
}

impl Read for Restore {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.stdout.read(buf)?;
        if n == 0 && !buf.is_empty() && !self.done {
            self.done = true;
            let mut err = String::new();
            if let Some(mut e) = self.child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            let status = self.child.wait()?;
            if !status.success() {
                return Err(std::io::Error::other(format!(
                    "pg_restore failed ({status}): {}",
                    err.trim()
                )));
            }
        }
        Ok(n)
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

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

/// The source, opened and checked against the config: every table and column covered,
/// no unique key under a transformer that merges values.
#[allow(clippy::large_enum_variant)] // one per run
pub enum Source {
    Dump(DumpSource, dump::Scan),
    Live(Arc<Live>),
}

impl Source {
    pub async fn open(from: &str) -> anyhow::Result<Source> {
        Source::open_for(from, &Default::default()).await
    }

    /// Opens `from` for an anonymization run: besides the catalog, the values of the
    /// columns under identifying transformers (`wanted`) go into their domains' sets, so
    /// the plan's transformers never write one of the source's real values.
    pub async fn open_for(from: &str, wanted: &super::real::Wanted) -> anyhow::Result<Source> {
        if is_url(from) {
            let mut live = Live::open(from).await?;
            live.collect_real(wanted).await?;
            return Ok(Source::Live(Arc::new(live)));
        }
        let d = DumpSource::open(from)?;
        let scan = tokio::task::block_in_place(|| {
            dump::scan(d.reader()?, &d.name, wanted).map_err(anyhow::Error::from)
        })?;
        Ok(Source::Dump(d, scan))
    }

    /// The source's identifying values, by domain, as [`open_for`](Self::open_for) read them.
    pub fn real(&self) -> &super::real::RealSets {
        match self {
            Source::Dump(_, scan) => &scan.real,
            Source::Live(live) => &live.real,
        }
    }

    /// How many large objects the source holds, and which is the first (for messages).
    pub fn large_objects(&self) -> (u64, String) {
        match self {
            Source::Dump(d, scan) => (
                scan.ddl.large_objects,
                scan.ddl
                    .first_large_object
                    .as_ref()
                    .map(|(oid, line)| format!("OID {oid}, {}:{line}", d.name))
                    .unwrap_or_default(),
            ),
            Source::Live(live) => (
                live.large_objects.len() as u64,
                live.large_objects
                    .first()
                    .map(|oid| format!("OID {oid}"))
                    .unwrap_or_default(),
            ),
        }
    }

    /// The text of the source's `COMMENT ON` statements.
    pub fn comments(&self) -> &[String] {
        match self {
            Source::Dump(_, scan) => &scan.ddl.comments,
            Source::Live(live) => &live.comments,
        }
    }

    /// The source's foreign keys (from the catalog, or the dump's DDL).
    pub fn unique_keys(&self) -> &[super::ddl::UniqueKey] {
        match self {
            Source::Dump(_, scan) => &scan.ddl.unique,
            Source::Live(live) => &live.unique,
        }
    }

    pub fn foreign_keys(&self) -> &[super::ddl::ForeignKey] {
        match self {
            Source::Dump(_, scan) => &scan.ddl.foreign,
            Source::Live(live) => &live.foreign,
        }
    }

    pub fn tables(&self) -> Vec<SourceTable> {
        match self {
            Source::Dump(_, scan) => scan.tables.clone(),
            Source::Live(live) => live.source_tables(),
        }
    }

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

    /// The first `rows` COPY lines of each table (of each anonymized one, with a plan).
    pub async fn sample_lines(
        &self,
        rows: usize,
        config: Option<(&Config, &Plan)>,
    ) -> anyhow::Result<BTreeMap<String, Vec<Vec<u8>>>> {
        Ok(match self {
            Source::Dump(d, _) => tokio::task::block_in_place(|| {
                dump::sample_lines(d.reader()?, &d.name, rows).map_err(anyhow::Error::from)
            })?,
            Source::Live(live) => {
                let reader = live.reader().await?;
                let mut out = BTreeMap::new();
                for (i, t) in live.tables.iter().enumerate() {
                    let name = &t.table.name;
                    if let Some((_, plan)) = config {
                        if plan.table(name).map(|p| p.action) != Some(Action::Anonymize) {
                            continue;
                        }
                    }
                    let sql = live.copy_out(
                        &Piece {
                            table: i,
                            pages: None,
                        },
                        config.and_then(|(c, _)| filter(c, name)).as_deref(),
                        Some(rows),
                    );
                    let stream = reader
                        .copy_out(&sql)
                        .await
                        .pg(|| format!("sampling {name}"))?;
                    futures_util::pin_mut!(stream);
                    let mut data = Vec::new();
                    while let Some(chunk) = stream.next().await {
                        data.extend_from_slice(&chunk.pg(|| format!("sampling {name}"))?);
                    }
                    let lines = data
                        .split(|&b| b == b'\n')
                        .filter(|l| !l.is_empty())
                        .map(<[u8]>::to_vec)
                        .collect();
                    out.insert(name.clone(), lines);
                }
                out
            }
        })
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

fn filter(config: &Config, table: &str) -> Option<String> {
    config
        .tables
        .get(table)
        .and_then(|t| t.filter.as_ref())
        .map(|f| f.get_ref().clone())
}

/// Runs the whole pipeline from `source` into `to` (a file, `-`, or a URL).
pub async fn run(
    config: &Config,
    source: Source,
    plan: Plan,
    to: &str,
    opts: &RunOptions,
) -> anyhow::Result<Outcome> {
    let progress = Progress::new(opts.progress);
    let plan = Arc::new(plan);
    if is_url(to) {
        if let Source::Live(live) = &source {
            if live.is_source(to).await? {
                anyhow::bail!(
                    "the source and the target are the same database; nothing was done. Give \
                     the target another database name"
                );
            }
        }
        if let Source::Dump(d, scan) = &source {
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
        let loaded = match &source {
            Source::Dump(d, _) => dump_to_db(d, &plan, &target, &progress).await,
            Source::Live(live) => {
                live_to_db(live.clone(), plan.clone(), config, &target, opts, &progress).await
            }
        };
        let loaded = match loaded {
            Ok(mut outcome) => match check(&source, &plan, &target, &mut outcome).await {
                Ok(()) => Ok(outcome),
                Err(e) => Err(e),
            },
            other => other,
        };
        let loaded = match (loaded, &opts.verify) {
            (Ok(mut outcome), Some((key, settings))) => {
                let dst = Source::open(&target.staging_url).await;
                match dst {
                    Ok(dst) => {
                        match crate::verify::verify(config, key, settings, &source, &dst, opts.jobs)
                            .await
                        {
                            Ok(report) if report.passed => {
                                outcome.verify = Some(report);
                                Ok(outcome)
                            }
                            Ok(report) => Err(RunError::VerifyFailed(
                                format!(
                                    "the loaded copy failed verify:\n{}",
                                    report.text_flagged()
                                ),
                                Box::new(report),
                            )
                            .into()),
                            Err(e) => Err(e.context("verifying the loaded copy")),
                        }
                    }
                    Err(e) => Err(e),
                }
            }
            (other, _) => other,
        };
        match loaded {
            Ok(outcome) => {
                target.swap().await?;
                Ok(outcome)
            }
            Err(e) => {
                target.abandon().await;
                Err(e.context(format!("nothing was loaded: {} is as it was", target.name)))
            }
        }
    } else {
        let write = |out: &mut dyn Write| -> anyhow::Result<Outcome> {
            let stats = match &source {
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
            write(&mut out)
        } else {
            // written beside the target and renamed at the end: a failure leaves no half file
            // (`.NAME.PID.partial`, 0600, locked while written: a later run removes one a
            // killed run left; removed on every other exit path)
            let target = PathBuf::from(to);
            let (mut file, partial, _guard) =
                crate::cleanup::partial_file(&target, &mut |m| crate::cli::say(m))
                    .with_context(|| format!("creating a file beside {to}"))?;
            // (the writers buffer in 1 MiB writes themselves)
            let mut outcome = write(&mut file)?;
            file.sync_all().with_context(|| format!("writing {to}"))?;
            // verified where it was written (0600, beside the target): only a copy that
            // passes takes the target's name; one that fails is kept as NAME.rejected
            if let Some((key, settings)) = &opts.verify {
                let written = partial.to_string_lossy().into_owned();
                let mut dst = Source::open(&written).await?;
                if let Source::Dump(d, _) = &mut dst {
                    // the report and its messages name the file the user asked for
                    d.name = to.to_string();
                }
                let report =
                    crate::verify::verify(config, key, settings, &source, &dst, opts.jobs).await?;
                drop(dst);
                if !report.passed {
                    let rejected = format!("{to}.rejected");
                    std::fs::rename(&partial, &rejected)
                        .with_context(|| format!("writing {rejected}"))?;
                    return Err(RunError::VerifyFailed(
                        format!(
                            "the copy failed verify, so {to} was left as it was; it is kept as \
                             {rejected} (readable by you only) to look into, not to share:\n{}",
                            report.text_flagged()
                        ),
                        Box::new(report),
                    )
                    .into());
                }
                outcome.verify = Some(report);
            }
            std::fs::rename(&partial, &target).with_context(|| format!("writing {to}"))?;
            Ok(outcome)
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
        verify: None,
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
        verify: None,
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
