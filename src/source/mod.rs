//! Where rows come from: a plain pg_dump file, a custom-format archive (through
//! pg_restore), stdin (spooled), or a live database read inside one exported snapshot.
//! Opening a source reads what every command needs before a row moves: its tables with
//! their columns and types, its unique and foreign keys ([`catalog`]), its large objects
//! and comments, and the identifying values a run must never write back. `anonymize`,
//! `verify` and `init` all read through here; none of them reads a source another way.

pub mod catalog;
pub mod dump;
pub mod live;
pub mod schema_objects;
pub mod types;
pub mod valid;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use futures_util::StreamExt as _;

use crate::anonymize::config::Config;
use crate::anonymize::key::Key;
use crate::anonymize::real::{RealSets, Wanted};
use crate::pg::{self, PgContext as _};
use live::{Live, Piece};
use types::ColumnType;

/// Whether a table is one a run anonymizes (its plan says so).
pub type Anonymized<'a> = dyn Fn(&str) -> bool + Sync + 'a;

/// A table of the source: its qualified name and its columns, in COPY order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTable {
    pub name: String,
    pub columns: Vec<String>,
    /// Column types, where the source tells them (a live database's catalog, a dump's
    /// `CREATE TABLE`).
    pub types: Vec<Option<ColumnType>>,
}

/// Whether `s` names a database rather than a file: a `postgres://` URL, or a libpq
/// `key=value` connection string (`host=db dbname=app …`), as psql takes both.
pub fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://") || pg::is_conninfo(s)
}

/// What kind of dump a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpFormat {
    /// Plain SQL (`pg_dump`, `pg_dump -Fp`): read as it is, or mapped in place.
    Plain,
    /// A custom-format archive (`pg_dump -Fc`): read as the plain SQL `pg_restore -f -`
    /// writes from it.
    Archive,
}

/// A dump on disk: a plain SQL file or an archive ([`DumpFormat`]); both are walked as
/// plain SQL, so every reader treats them alike. stdin is spooled to a temporary file
/// first, so the config is checked against every table before any row is read.
pub struct DumpSource {
    path: PathBuf,
    pub name: String,
    pub format: DumpFormat,
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
                    "{from} is not a file; give a pg_dump file (plain or -Fc), - for \
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
            format: if n == 5 && &magic == b"PGDMP" {
                DumpFormat::Archive
            } else {
                DumpFormat::Plain
            },
            path,
            name,
            _spool: spool,
        })
    }

    /// The file itself, when the dump is plain SQL (not an archive pg_restore reads).
    pub fn plain_file(&self) -> Option<&std::path::Path> {
        (self.format == DumpFormat::Plain).then_some(self.path.as_path())
    }

    /// The dump's SQL from the start (a plain file as it is; an archive as pg_restore
    /// writes it).
    pub fn reader(&self) -> anyhow::Result<Box<dyn BufRead + Send>> {
        if self.format == DumpFormat::Plain {
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
        (self.format == DumpFormat::Plain)
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

/// The source, opened and checked against the config: every table and column covered,
/// no unique key under a transformer that merges values.
#[allow(clippy::large_enum_variant)] // one per run
pub enum Source {
    Dump(DumpSource, dump::Scan),
    Live(Arc<Live>),
}

impl Source {
    /// The source's name for messages: the file as given, or the database's URL masked.
    pub fn name(&self) -> String {
        match self {
            Source::Dump(d, _) => d.name.clone(),
            Source::Live(l) => l.name(),
        }
    }

    pub async fn open(from: &str) -> anyhow::Result<Source> {
        Source::open_for(from, &Default::default()).await
    }

    /// Opens `from` for an anonymization run: besides the catalog, the values of the
    /// columns under identifying transformers (`wanted`) go into their domains' sets, so
    /// the plan's transformers never write one of the source's real values.
    pub async fn open_for(from: &str, wanted: &Wanted) -> anyhow::Result<Source> {
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

    /// Opens `from` for a run of `config`: [`open_for`](Self::open_for) the config's
    /// identifying columns, then, with `[subset]`, the slice computed in the snapshot.
    pub async fn open_run(from: &str, config: &Config, key: &Key) -> anyhow::Result<Source> {
        Source::open_sliced(from, config, key, &crate::anonymize::real::wanted(config)).await
    }

    /// Opens `from` as [`open_for`](Self::open_for) does, with the slice the config's
    /// `[subset]` keeps (verify reads the source this way: the kept rows are the ones a
    /// copy is compared with).
    pub async fn open_sliced(
        from: &str,
        config: &Config,
        key: &Key,
        wanted: &Wanted,
    ) -> anyhow::Result<Source> {
        let Some(s) = &config.subset else {
            return Source::open_for(from, wanted).await;
        };
        if !is_url(from) {
            return Err(config
                .err(
                    s.span.clone(),
                    format!(
                        "[subset] needs a live source (--from postgres://…), and {from} is a \
                         dump: the slice is computed by the server, across tables, inside one \
                         snapshot. Restore the dump into a database and subset from there, or \
                         remove [subset] to copy it whole"
                    ),
                )
                .into());
        }
        let mut live = Live::open(from).await?;
        // the real values and the slice read the snapshot on connections of their own
        let (real, slice) = tokio::join!(
            live.read_real(wanted),
            crate::subset::Slice::compute(&live, config, s, key)
        );
        live.slice = Some(slice?);
        live.real = real?;
        Ok(Source::Live(Arc::new(live)))
    }

    /// The source's identifying values, by domain, as [`open_for`](Self::open_for) read them.
    pub fn real(&self) -> &RealSets {
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
    pub fn unique_keys(&self) -> &[catalog::UniqueKey] {
        match self {
            Source::Dump(_, scan) => &scan.ddl.unique,
            Source::Live(live) => &live.unique,
        }
    }

    pub fn foreign_keys(&self) -> &[catalog::ForeignKey] {
        match self {
            Source::Dump(_, scan) => &scan.ddl.foreign,
            Source::Live(live) => &live.foreign,
        }
    }

    /// Which table each partition belongs to.
    pub fn partitions(&self) -> catalog::Partitions {
        match self {
            Source::Dump(_, scan) => catalog::Partitions::new(&scan.ddl.partitions),
            Source::Live(live) => catalog::Partitions::new(&live.partitions),
        }
    }

    pub fn tables(&self) -> Vec<SourceTable> {
        match self {
            Source::Dump(_, scan) => scan.tables.clone(),
            Source::Live(live) => live.source_tables(),
        }
    }

    /// The first `rows` COPY lines of each table (with a config, of each table `anonymized`
    /// says, read under the config's `where` filter).
    pub async fn sample_lines(
        &self,
        rows: usize,
        config: Option<(&Config, &Anonymized<'_>)>,
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
                    if let Some((_, anonymized)) = config {
                        if !anonymized(name) {
                            continue;
                        }
                    }
                    // with a subset, from the rows it keeps (none: no sample)
                    let piece = Piece {
                        table: i,
                        pages: None,
                    };
                    let Some(sql) = live
                        .piece_reads(&piece, config.and_then(|(c, _)| filter(c, name)).as_deref())
                        .limit(rows)
                        .next()
                        .await?
                    else {
                        out.insert(name.clone(), Vec::new());
                        continue;
                    };
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
}

/// The `where` filter the config gives `table` (live sources only).
pub fn filter(config: &Config, table: &str) -> Option<String> {
    config
        .tables
        .get(table)
        .and_then(|t| t.filter.as_ref())
        .map(|f| f.get_ref().clone())
}
