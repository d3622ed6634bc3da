//! `dataforge verify`: proof that an anonymized copy holds no personal data of its
//! source and still looks like it.
//!
//! One streaming read of the source collects keyed hashes of every anonymized value and
//! a deterministic sample per table; one read of the output scans every cell for those
//! hashes, runs the detectors over kept columns, samples, and checks unique keys and
//! foreign keys; then the two samples are compared column by column. Memory holds
//! hashes and samples, never a table.

pub mod detect;
pub mod leak;
pub mod report;
pub mod settings;
pub mod stats;

use std::collections::{BTreeMap, BinaryHeap};
use std::time::Instant;

use foldhash::{HashMap, HashSet};
use futures_util::StreamExt as _;
use xxhash_rust::xxh3::{xxh3_128_with_seed, xxh3_64_with_seed};

use crate::anonymize::config::{Action, Config};
use crate::anonymize::ddl::{ForeignKey, UniqueKey};
use crate::anonymize::dump::{self, Line};
use crate::anonymize::key::Key;
use crate::anonymize::live::Piece;
use crate::anonymize::pipeline::Source;
use crate::anonymize::plan;
use crate::anonymize::transformers::keeps;
use crate::pg::{copy, PgContext as _};
use report::{Chart, LeakHit, LeakSummary, TableSample};
pub use report::{Check, Report, Status};
use settings::Settings;
use stats::Profile;

/// Output columns whose values are drawn from a generator's lists: a source value
/// found there is the generator's coincidence (a fake "Mary" for a real one), not a
/// survivor, so they are not searched.
const GENERATED: &[&str] = &[
    "first-name",
    "last-name",
    "full-name",
    "city",
    "street",
    "company",
    "postal-code",
    "choice",
    "constant",
    "null",
];

/// Fewer sampled values than this on either side, and a column's distribution is not
/// compared (its NULL rate still is).
const MIN_COMPARE: usize = 50;

/// Hits kept as examples per column.
const EXAMPLES: usize = 20;

/// SRC and DST do not have the same tables and columns.
#[derive(Debug, thiserror::Error)]
#[error("{src} and {dst} differ in schema, so they cannot be compared; nothing was checked:\n  {}", .differences.join("\n  "))]
pub struct SchemaMismatch {
    pub src: String,
    pub dst: String,
    pub differences: Vec<String>,
}

/// Where a row stream is.
enum Ev<'a> {
    Table(&'a str, &'a [String]),
    Row(&'a [u8]),
    End,
}

fn source_name(s: &Source) -> String {
    match s {
        Source::Dump(d, _) => d.name.clone(),
        Source::Live(l) => l.name(),
    }
}

fn unique_keys(s: &Source) -> &[UniqueKey] {
    match s {
        Source::Dump(_, scan) => &scan.ddl.unique,
        Source::Live(l) => &l.unique,
    }
}

fn foreign_keys(s: &Source) -> &[ForeignKey] {
    match s {
        Source::Dump(_, scan) => &scan.ddl.foreign,
        Source::Live(l) => &l.foreign,
    }
}

/// Streams the rows of every table `wanted` keeps to `visit`.
async fn read(
    source: &Source,
    wanted: &(dyn Fn(&str) -> bool + Sync),
    visit: &mut (dyn FnMut(Ev<'_>) -> anyhow::Result<()> + Send),
) -> anyhow::Result<()> {
    match source {
        Source::Dump(d, _) => tokio::task::block_in_place(|| {
            let mut failed = None;
            let mut active = false;
            let walked = dump::walk(d.reader()?, &d.name, |_, _, line| {
                let r = match line {
                    Line::Header { table, columns } => {
                        active = wanted(&table);
                        if active {
                            visit(Ev::Table(&table, &columns))
                        } else {
                            Ok(())
                        }
                    }
                    Line::Row(l) if active => visit(Ev::Row(l)),
                    Line::End if active => visit(Ev::End),
                    _ => Ok(()),
                };
                r.map_err(|e| {
                    failed = Some(e);
                    dump::DumpError::Write(std::io::Error::other("stopped"))
                })
            });
            match failed {
                Some(e) => Err(e),
                None => walked.map_err(anyhow::Error::from),
            }
        }),
        Source::Live(live) => {
            let reader = live.reader().await?;
            for (i, t) in live.tables.iter().enumerate() {
                if !wanted(&t.table.name) {
                    continue;
                }
                visit(Ev::Table(&t.table.name, &t.table.columns))?;
                let sql = live.copy_out(
                    &Piece {
                        table: i,
                        pages: None,
                    },
                    None,
                    None,
                );
                let stream = reader
                    .copy_out(&sql)
                    .await
                    .pg(|| format!("reading {}", t.table.name))?;
                futures_util::pin_mut!(stream);
                let mut carry: Vec<u8> = Vec::new();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.pg(|| format!("reading {}", t.table.name))?;
                    carry.extend_from_slice(&chunk);
                    let mut start = 0;
                    for nl in memchr::memchr_iter(b'\n', &carry) {
                        visit(Ev::Row(&carry[start..nl]))?;
                        start = nl + 1;
                    }
                    carry.drain(..start);
                }
                visit(Ev::End)?;
            }
            Ok(())
        }
    }
}

/// What one side's read found of one table.
#[derive(Default)]
struct TableSummary {
    columns: Vec<String>,
    rows: u64,
    nulls: Vec<u64>,
    sampled: usize,
    profiles: Vec<Profile>,
}

/// A table being read: counts, and the rows whose keyed key hash is among the
/// `sample_rows` smallest (a deterministic sample of bounded size).
struct Acc {
    name: String,
    columns: Vec<String>,
    rows: u64,
    nulls: Vec<u64>,
    key: Vec<usize>,
    heap: BinaryHeap<(u64, Vec<u8>)>,
    k: usize,
    seed: u64,
}

impl Acc {
    fn new(name: &str, columns: &[String], key: Vec<usize>, k: usize, seed: u64) -> Acc {
        Acc {
            name: name.to_string(),
            columns: columns.to_vec(),
            rows: 0,
            nulls: vec![0; columns.len()],
            key,
            heap: BinaryHeap::new(),
            k,
            seed,
        }
    }

    fn row(&mut self, line: &[u8], fields: &[&[u8]]) {
        self.rows += 1;
        for (n, f) in self.nulls.iter_mut().zip(fields) {
            if *f == b"\\N" {
                *n += 1;
            }
        }
        let h = if self.key.is_empty() {
            xxh3_64_with_seed(line, self.seed)
        } else {
            let mut h = self.seed;
            for &i in &self.key {
                h = xxh3_64_with_seed(fields[i], h);
            }
            h
        };
        if self.heap.len() < self.k {
            self.heap.push((h, line.to_vec()));
        } else if self.heap.peek().is_some_and(|(top, _)| h < *top) {
            self.heap.pop();
            self.heap.push((h, line.to_vec()));
        }
    }

    fn finish(self, categorical_max: usize) -> (String, TableSummary) {
        let lines: Vec<Vec<u8>> = self.heap.into_iter().map(|(_, l)| l).collect();
        let profiles = (0..self.columns.len())
            .map(|i| {
                let values: Vec<Option<String>> = lines
                    .iter()
                    .map(|l| {
                        copy::split_fields(l)
                            .nth(i)
                            .and_then(copy::decode_field)
                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                    })
                    .collect();
                stats::profile(&self.columns[i], &values, categorical_max)
            })
            .collect();
        (
            self.name,
            TableSummary {
                columns: self.columns,
                rows: self.rows,
                nulls: self.nulls,
                sampled: lines.len(),
                profiles,
            },
        )
    }
}

/// The columns of `table` that identify a row: its primary key (pg_dump names it
/// `…_pkey`), else its first unique key; empty when it has none.
fn row_key(keys: &[UniqueKey], table: &str, columns: &[String]) -> Vec<usize> {
    let mine: Vec<&UniqueKey> = keys.iter().filter(|k| k.table == table).collect();
    let best = mine
        .iter()
        .find(|k| k.name.ends_with("_pkey"))
        .or_else(|| mine.first());
    best.map(|k| {
        k.columns
            .iter()
            .filter_map(|c| columns.iter().position(|x| x == c))
            .collect()
    })
    .unwrap_or_default()
}

fn tuple_hash(fields: &[&[u8]], idx: &[usize], seed: u64) -> Option<u128> {
    let mut buf = Vec::with_capacity(64);
    for &i in idx {
        let f = fields.get(i)?;
        if *f == b"\\N" {
            return None;
        }
        buf.extend_from_slice(f);
        buf.push(0x1f);
    }
    Some(xxh3_128_with_seed(&buf, seed))
}

/// Children per parent key of each foreign key, as one side's read counted them.
type FanOut = BTreeMap<String, HashMap<u128, u32>>;

fn fk_id(fk: &ForeignKey) -> String {
    format!("{}.{}", fk.table, fk.name)
}

/// Everything the source read keeps.
struct SourceRead {
    tables: BTreeMap<String, TableSummary>,
    fanout: FanOut,
}

fn lower(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase() || b >= 0x80) {
        std::borrow::Cow::Owned(s.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// The anonymized source columns searched for: (table, column index, norm, name).
type Searched = HashMap<String, Vec<(usize, leak::Norm, u32)>>;

fn searched(config: &Config, src: &[plan::SourceTable]) -> (Searched, Vec<String>) {
    let mut out: Searched = HashMap::default();
    let mut names = Vec::new();
    for t in src {
        let Some(tc) = config
            .tables
            .get(&t.name)
            .filter(|t| t.action == Action::Anonymize)
        else {
            continue;
        };
        for (i, c) in t.columns.iter().enumerate() {
            let Some(norm) = tc
                .columns
                .get(c)
                .and_then(|cc| leak::norm_for(&cc.transformer))
            else {
                continue;
            };
            names.push(format!("{}.{c}", t.name));
            out.entry(t.name.clone())
                .or_default()
                .push((i, norm, names.len() as u32 - 1));
        }
    }
    (out, names)
}

/// Reads the source: its forms into `set` (through `put`), samples and fan-outs.
async fn read_source(
    src: &Source,
    config: &Config,
    settings: &Settings,
    searched: &Searched,
    fks: &[ForeignKey],
    seed: u64,
    put: &mut (dyn FnMut(&str, u32) + Send),
) -> anyhow::Result<SourceRead> {
    let keys = unique_keys(src).to_vec();
    let mut out = SourceRead {
        tables: BTreeMap::new(),
        fanout: BTreeMap::new(),
    };
    let mut acc: Option<Acc> = None;
    let mut cols: Vec<(usize, leak::Norm, u32)> = Vec::new();
    let mut my_fks: Vec<(String, Vec<usize>)> = Vec::new();
    let mut buf = String::new();
    let wanted = |t: &str| {
        config
            .tables
            .get(t)
            .is_some_and(|c| c.action != Action::Skip)
    };
    read(src, &wanted, &mut |ev| {
        match ev {
            Ev::Table(name, columns) => {
                acc = Some(Acc::new(
                    name,
                    columns,
                    row_key(&keys, name, columns),
                    settings.sample_rows,
                    seed,
                ));
                cols = searched.get(name).cloned().unwrap_or_default();
                my_fks = fks
                    .iter()
                    .filter(|f| f.table == name)
                    .filter_map(|f| {
                        let idx: Option<Vec<usize>> = f
                            .columns
                            .iter()
                            .map(|c| columns.iter().position(|x| x == c))
                            .collect();
                        Some((fk_id(f), idx?))
                    })
                    .collect();
            }
            Ev::Row(line) => {
                let a = acc.as_mut().expect("rows come in a table");
                let f: Vec<&[u8]> = copy::split_fields(line).collect();
                for &(i, norm, id) in &cols {
                    let Some(raw) = f.get(i) else { continue };
                    let Some(v) = copy::decode_field_cow(raw) else {
                        continue;
                    };
                    let v = String::from_utf8_lossy(&v);
                    let v = lower(&v);
                    leak::source_forms(&v, norm, settings.min_length, &mut buf, &mut |form| {
                        put(form, id)
                    });
                }
                for (id, idx) in &my_fks {
                    if let Some(h) = tuple_hash(&f, idx, seed) {
                        *out.fanout
                            .entry(id.clone())
                            .or_default()
                            .entry(h)
                            .or_default() += 1;
                    }
                }
                a.row(line, &f);
            }
            Ev::End => {
                let (name, summary) = acc
                    .take()
                    .expect("an end ends a table")
                    .finish(settings.categorical_max);
                out.tables.insert(name, summary);
            }
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Counts `n` more hits and keeps the first [`EXAMPLES`] of them.
fn tally(e: &mut (u64, Vec<LeakHit>), n: u64, hits: impl IntoIterator<Item = LeakHit>) {
    e.0 += n;
    let room = EXAMPLES.saturating_sub(e.1.len());
    e.1.extend(hits.into_iter().take(room));
}

/// Findings of one detector in one column.
#[derive(Default)]
struct Finding {
    count: u64,
    samples: Vec<String>,
}

/// Everything the output read keeps.
#[derive(Default)]
struct OutputRead {
    tables: BTreeMap<String, TableSummary>,
    fanout: FanOut,
    /// Parent keys per foreign key.
    parents: BTreeMap<String, HashSet<u128>>,
    /// Per unique key: rows repeating an earlier row's key, and a few of those keys.
    duplicates: BTreeMap<String, (u64, Vec<String>)>,
    hits: BTreeMap<(String, String), (u64, Vec<LeakHit>)>,
    /// Bloom hits to confirm, per hash and output column: how many, and a few of them.
    maybe: HashMap<(u128, String, String), (u64, Vec<LeakHit>)>,
    findings: BTreeMap<(String, String, &'static str), Finding>,
    cells: u64,
}

#[allow(clippy::too_many_arguments)]
async fn read_output(
    dst: &Source,
    config: &Config,
    settings: &Settings,
    set: &leak::LeakSet,
    names: &[String],
    fks: &[ForeignKey],
    seed: u64,
) -> anyhow::Result<OutputRead> {
    let keys = unique_keys(dst).to_vec();
    let mut out = OutputRead::default();
    let mut acc: Option<Acc> = None;
    // per column: (name, scanned for leaks, run detectors, allowed detectors)
    let mut plan: Vec<(String, bool, bool, Vec<String>)> = Vec::new();
    let mut uniq: Vec<(String, Vec<usize>)> = Vec::new();
    let mut child: Vec<(String, Vec<usize>)> = Vec::new();
    let mut parent: Vec<(String, Vec<usize>)> = Vec::new();
    let mut key_cols: Vec<usize> = Vec::new();
    let mut seen: Vec<u128> = Vec::new();
    let mut words: Vec<(usize, String, leak::Found, u128)> = Vec::new();
    let mut uniq_sets: BTreeMap<String, HashSet<u128>> = BTreeMap::new();
    let wanted = |_: &str| true;
    read(dst, &wanted, &mut |ev| {
        match ev {
            Ev::Table(name, columns) => {
                key_cols = row_key(&keys, name, columns);
                acc = Some(Acc::new(
                    name,
                    columns,
                    key_cols.clone(),
                    settings.sample_rows,
                    seed,
                ));
                let tc = config.tables.get(name);
                plan = columns
                    .iter()
                    .map(|c| {
                        let t = tc
                            .and_then(|t| t.columns.get(c))
                            .map_or("keep", |c| c.transformer.as_str());
                        let allowed = settings
                            .columns
                            .get(&format!("{name}.{c}"))
                            .map(|s| s.allow.clone())
                            .unwrap_or_default();
                        let scan = !GENERATED.contains(&t) && !allowed.iter().any(|a| a == "leak");
                        (c.clone(), scan, t == "keep", allowed)
                    })
                    .collect();
                let idx = |cs: &[String]| -> Option<Vec<usize>> {
                    cs.iter()
                        .map(|c| columns.iter().position(|x| x == c))
                        .collect()
                };
                uniq = keys
                    .iter()
                    .filter(|k| k.table == name)
                    .filter_map(|k| Some((format!("{}.{}", k.table, k.name), idx(&k.columns)?)))
                    .collect();
                child = fks
                    .iter()
                    .filter(|f| f.table == name)
                    .filter_map(|f| Some((fk_id(f), idx(&f.columns)?)))
                    .collect();
                parent = fks
                    .iter()
                    .filter(|f| f.parent == name)
                    .filter_map(|f| Some((fk_id(f), idx(&f.parent_columns)?)))
                    .collect();
            }
            Ev::Row(line) => {
                let a = acc.as_mut().expect("rows come in a table");
                let fields: Vec<&[u8]> = copy::split_fields(line).collect();
                let row_key = || {
                    if key_cols.is_empty() {
                        return format!("#{}", a.rows + 1);
                    }
                    key_cols
                        .iter()
                        .map(|&i| {
                            let v = fields.get(i).and_then(|f| copy::decode_field(f));
                            format!(
                                "{}={}",
                                a.columns[i],
                                v.map_or("NULL".into(), |v| String::from_utf8_lossy(&v)
                                    .into_owned())
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                };
                for (i, (col, scan, det, allowed)) in plan.iter().enumerate() {
                    if !scan && !det {
                        continue;
                    }
                    let Some(raw) = fields.get(i) else { continue };
                    let Some(v) = copy::decode_field_cow(raw) else {
                        continue;
                    };
                    out.cells += 1;
                    let v = String::from_utf8_lossy(&v);
                    if *scan {
                        seen.clear();
                        words.clear();
                        let folded = lower(&v);
                        let mut record = |cand: &str, found: leak::Found, h: u128| {
                            let hit = |source_column: String| LeakHit {
                                table: a.name.clone(),
                                column: col.clone(),
                                row: row_key(),
                                source_column,
                                masked: detect::mask(cand),
                            };
                            match found {
                                leak::Found::No => {}
                                leak::Found::Column(c) => tally(
                                    out.hits.entry((a.name.clone(), col.clone())).or_default(),
                                    1,
                                    [hit(names[c as usize].clone())],
                                ),
                                leak::Found::Maybe => tally(
                                    out.maybe
                                        .entry((h, a.name.clone(), col.clone()))
                                        .or_default(),
                                    1,
                                    [hit(String::new())],
                                ),
                            }
                        };
                        leak::candidates(&folded, settings.min_length, &mut |cand, kind| {
                            let h = set.hash(cand);
                            if seen.contains(&h) {
                                return;
                            }
                            seen.push(h);
                            let found = set.find(h);
                            if found == leak::Found::No {
                                return;
                            }
                            match kind {
                                leak::Cand::Word(n)
                                    if !cand.contains(|c: char| c.is_ascii_digit() || c == '@') =>
                                {
                                    words.push((n, cand.to_string(), found, h));
                                }
                                _ => record(cand, found, h),
                            }
                        });
                        // a word alone is a hit only beside another hit word
                        for (n, cand, found, h) in &words {
                            if words.iter().any(|(m, ..)| m + 1 == *n || *m == n + 1) {
                                record(cand, *found, *h);
                            }
                        }
                    }
                    if *det {
                        detect::detect(&v, &mut |d, m| {
                            if allowed.iter().any(|x| x == d) {
                                return;
                            }
                            let f = out
                                .findings
                                .entry((a.name.clone(), col.clone(), d))
                                .or_default();
                            f.count += 1;
                            if f.samples.len() < 3 {
                                f.samples
                                    .push(format!("{} (row {})", detect::mask(m), row_key()));
                            }
                        });
                    }
                }
                for (id, idx) in &uniq {
                    if let Some(h) = tuple_hash(&fields, idx, seed) {
                        if !uniq_sets.entry(id.clone()).or_default().insert(h) {
                            let d = out.duplicates.entry(id.clone()).or_default();
                            d.0 += 1;
                            if d.1.len() < 3 {
                                d.1.push(row_key());
                            }
                        }
                    }
                }
                for (id, idx) in &child {
                    if let Some(h) = tuple_hash(&fields, idx, seed) {
                        *out.fanout
                            .entry(id.clone())
                            .or_default()
                            .entry(h)
                            .or_default() += 1;
                    }
                }
                for (id, idx) in &parent {
                    if let Some(h) = tuple_hash(&fields, idx, seed) {
                        out.parents.entry(id.clone()).or_default().insert(h);
                    }
                }
                a.row(line, &fields);
            }
            Ev::End => {
                let (name, summary) = acc
                    .take()
                    .expect("an end ends a table")
                    .finish(settings.categorical_max);
                out.tables.insert(name, summary);
            }
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Tables and columns of SRC that the output should have (all but skipped ones) against
/// what DST has.
fn schema_differences(
    config: &Config,
    src: &[plan::SourceTable],
    dst: &[plan::SourceTable],
) -> Vec<String> {
    let mut out = Vec::new();
    for s in src {
        let action = config.tables.get(&s.name).map(|t| t.action);
        if action == Some(Action::Skip) {
            continue;
        }
        match dst.iter().find(|d| d.name == s.name) {
            None if action == Some(Action::Truncate) => {}
            None => out.push(format!(
                "table {} is in the source but not in the output",
                s.name
            )),
            Some(d) => {
                for c in &s.columns {
                    if !d.columns.contains(c) {
                        out.push(format!(
                            "column {}.{c} is in the source but not in the output",
                            s.name
                        ));
                    }
                }
                for c in &d.columns {
                    if !s.columns.contains(c) {
                        out.push(format!(
                            "column {}.{c} is in the output but not in the source",
                            s.name
                        ));
                    }
                }
            }
        }
    }
    for d in dst {
        if !src.iter().any(|s| s.name == d.name) {
            out.push(format!(
                "table {} is in the output but not in the source",
                d.name
            ));
        }
    }
    out
}

/// Verifies `dst` against `src` under `config`.
pub async fn verify(
    config: &Config,
    key: &Key,
    settings: &Settings,
    src: &Source,
    dst: &Source,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let (src_name, dst_name) = (source_name(src), source_name(dst));
    let src_tables = src.tables();
    plan::check_coverage(config, &src_tables)?;
    let differences = schema_differences(config, &src_tables, &dst.tables());
    if !differences.is_empty() {
        return Err(SchemaMismatch {
            src: src_name,
            dst: dst_name,
            differences,
        }
        .into());
    }
    let seed = key.domain("dataforge verify").hash_u64(b"seed");
    let fks = foreign_keys(dst).to_vec();
    let (searched, names) = searched(config, &src_tables);
    let mut set = leak::LeakSet::new(seed, settings.leak_exact_max, settings.bloom_mb);
    let source = read_source(
        src,
        config,
        settings,
        &searched,
        &fks,
        seed,
        &mut |form, id| set.insert(form, id),
    )
    .await?;
    let mut output = read_output(dst, config, settings, &set, &names, &fks, seed).await?;

    // Bloom hits: read the source once more, for the forms that were hit only
    let mut unconfirmed = 0;
    if !output.maybe.is_empty() {
        let wanted: HashSet<u128> = output.maybe.keys().map(|(h, ..)| *h).collect();
        let mut confirmed: HashMap<u128, u32> = HashMap::default();
        let probe = leak::LeakSet::new(seed, 0, 1);
        read_source(
            src,
            config,
            settings,
            &searched,
            &[],
            seed,
            &mut |form, id| {
                let h = probe.hash(form);
                if wanted.contains(&h) {
                    confirmed.entry(h).or_insert(id);
                }
            },
        )
        .await?;
        // in a fixed order, so the examples kept are the same on every run
        let mut maybe: Vec<_> = std::mem::take(&mut output.maybe).into_iter().collect();
        maybe.sort_by(|a, b| a.0.cmp(&b.0));
        for ((h, table, column), (n, hits)) in maybe {
            match confirmed.get(&h) {
                Some(&c) => {
                    let named = hits.into_iter().map(|mut hit| {
                        hit.source_column = names[c as usize].clone();
                        hit
                    });
                    tally(output.hits.entry((table, column)).or_default(), n, named);
                }
                None => unconfirmed += n,
            }
        }
    }

    let mut checks = Vec::new();
    let mut samples = Vec::new();
    let row = |status,
               check: &str,
               table: &str,
               column: Option<&str>,
               measured,
               threshold,
               detail: String| Check {
        status,
        check: check.to_string(),
        table: table.to_string(),
        column: column.map(str::to_string),
        measured,
        threshold,
        detail,
        chart: None,
    };

    // leaks, per column of the output
    let hit_total: u64 = output.hits.values().map(|(n, _)| n).sum();
    for ((table, column), (n, ex)) in &output.hits {
        let from: Vec<&str> = ex
            .iter()
            .map(|h| h.source_column.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        checks.push(row(
            Status::Fail,
            "leak",
            table,
            Some(column),
            Some(*n as f64),
            Some(0.0),
            format!(
                "{n} value(s) of the source found here (from {}), e.g. row {}",
                from.join(", "),
                ex[0].row
            ),
        ));
    }
    if output.hits.is_empty() {
        checks.push(row(
            Status::Pass,
            "leak",
            "(all tables)",
            None,
            Some(0.0),
            Some(0.0),
            format!("no source value in {} output cells", output.cells),
        ));
    }
    // detector findings in kept columns
    for ((table, column, d), f) in &output.findings {
        checks.push(row(
            Status::Fail,
            "detector",
            table,
            Some(column),
            Some(f.count as f64),
            Some(0.0),
            format!(
                "{} {d} value(s) in a kept column, e.g. {}; anonymize the column, or allow it under [verify.columns.\"{table}.{column}\"] with a reason",
                f.count,
                f.samples.join(", ")
            ),
        ));
    }
    for (col, s) in &settings.columns {
        if !s.allow.is_empty() {
            let (t, c) = col.rsplit_once('.').unwrap_or((col, ""));
            checks.push(row(
                Status::Pass,
                "detector",
                t,
                Some(c),
                None,
                None,
                format!(
                    "allowed: {} ({})",
                    s.allow.join(", "),
                    s.reason.as_deref().unwrap_or("")
                ),
            ));
        }
    }
    if output.findings.is_empty() {
        checks.push(row(
            Status::Pass,
            "detector",
            "(kept columns)",
            None,
            Some(0.0),
            Some(0.0),
            "no e-mail, phone, IBAN, card number or CNP in kept columns".into(),
        ));
    }

    // rows, distributions
    for s in &src_tables {
        let Some(tc) = config.tables.get(&s.name) else {
            continue;
        };
        let out_t = output.tables.get(&s.name);
        let out_rows = out_t.map_or(0, |t| t.rows);
        match tc.action {
            Action::Skip => continue,
            Action::Truncate => {
                checks.push(row(
                    if out_rows == 0 {
                        Status::Pass
                    } else {
                        Status::Fail
                    },
                    "rows",
                    &s.name,
                    None,
                    Some(out_rows as f64),
                    Some(0.0),
                    "truncated: schema only".into(),
                ));
                continue;
            }
            Action::Anonymize => {}
        }
        let Some(src_t) = source.tables.get(&s.name) else {
            continue;
        };
        let filtered = tc.filter.is_some();
        let ok = if filtered {
            out_rows <= src_t.rows
        } else {
            out_rows == src_t.rows
        };
        checks.push(row(
            if ok { Status::Pass } else { Status::Fail },
            "rows",
            &s.name,
            None,
            Some(out_rows as f64),
            Some(src_t.rows as f64),
            if filtered {
                format!("{out_rows} of {} source rows (row filter)", src_t.rows)
            } else {
                format!("{out_rows} rows, source {}", src_t.rows)
            },
        ));
        let Some(out_t) = out_t else { continue };
        samples.push(TableSample {
            table: s.name.clone(),
            source_rows: src_t.rows,
            output_rows: out_t.rows,
            sampled_source: src_t.sampled,
            sampled_output: out_t.sampled,
        });
        if src_t.rows == 0 || out_t.rows == 0 {
            continue;
        }
        for (i, c) in src_t.columns.iter().enumerate() {
            let Some(j) = out_t.columns.iter().position(|x| x == c) else {
                continue;
            };
            let transformer = tc.columns.get(c).map_or("keep", |c| c.transformer.as_str());
            let th = settings.for_column(&format!("{}.{c}", s.name));
            let k = keeps(transformer);
            let (a, b) = (&src_t.profiles[i], &out_t.profiles[j]);
            let mut put = |check: &str,
                           measured: f64,
                           threshold: f64,
                           detail: String,
                           chart: Option<Chart>| {
                let mut r = row(
                    Status::of(measured, threshold),
                    check,
                    &s.name,
                    Some(c),
                    Some(measured),
                    Some(threshold),
                    format!("{transformer}: {detail}"),
                );
                r.chart = chart;
                checks.push(r);
            };
            if k.null_rate {
                let (x, y) = (
                    src_t.nulls[i] as f64 / src_t.rows as f64,
                    out_t.nulls[j] as f64 / out_t.rows as f64,
                );
                put(
                    "null_rate",
                    (x - y).abs(),
                    th.null_rate,
                    format!("NULL {:.1}% → {:.1}%", x * 100.0, y * 100.0),
                    None,
                );
            }
            // a distribution of a handful of values says nothing
            if a.sampled < MIN_COMPARE || b.sampled < MIN_COMPARE {
                continue;
            }
            let ratio = |p: &Profile| p.distinct as f64 / p.sampled as f64;
            if k.distinct {
                put(
                    "distinct_ratio",
                    (ratio(a) - ratio(b)).abs(),
                    th.distinct_ratio,
                    format!("distinct {:.3} → {:.3}", ratio(a), ratio(b)),
                    None,
                );
            }
            if k.values {
                if let (Some(x), Some(y)) = (&a.numbers, &b.numbers) {
                    let q = |v: &[f64]| {
                        format!(
                            "{}/{}/{}",
                            stats::quantile(v, 0.05),
                            stats::quantile(v, 0.5),
                            stats::quantile(v, 0.95)
                        )
                    };
                    let (labels, hx, hy) = stats::histograms(x, y, 20);
                    put(
                        "ks",
                        stats::ks(x, y),
                        th.ks,
                        format!("p5/p50/p95 {} → {}", q(x), q(y)),
                        Some(Chart {
                            labels,
                            source: hx,
                            output: hy,
                        }),
                    );
                } else if let (Some(x), Some(y)) = (&a.categories, &b.categories) {
                    let (labels, px, py) = stats::aligned(x, y);
                    // a label a detector recognises is shown masked, as findings are
                    let labels = labels
                        .into_iter()
                        .map(|l| {
                            let mut personal = false;
                            detect::detect(&l, &mut |_, _| personal = true);
                            if personal {
                                detect::mask(&l)
                            } else {
                                l
                            }
                        })
                        .collect();
                    let chart = Chart {
                        labels,
                        source: px.clone(),
                        output: py.clone(),
                    };
                    put(
                        "tvd",
                        stats::tvd(&px, &py),
                        th.tvd,
                        format!("{} → {} categories", x.len(), y.len()),
                        Some(chart.clone()),
                    );
                    put(
                        "psi",
                        stats::psi(&px, &py),
                        th.psi,
                        format!("{} → {} categories", x.len(), y.len()),
                        Some(chart),
                    );
                }
            }
            if k.lengths {
                let labels = (0..stats::LENGTH_BUCKETS).map(|n| n.to_string()).collect();
                put(
                    "length_tvd",
                    stats::tvd(&a.lengths, &b.lengths),
                    th.length_tvd,
                    "string lengths".into(),
                    Some(Chart {
                        labels,
                        source: a.lengths.clone(),
                        output: b.lengths.clone(),
                    }),
                );
            }
            // a categorical column must keep its categories' shape, whatever their labels
            if transformer != "keep" && transformer != "null" {
                if let Some(x) = a.categories.as_ref().filter(|x| x.len() >= 2) {
                    let shares =
                        |d: &[(String, f64)]| d.iter().map(|(_, s)| *s).collect::<Vec<f64>>();
                    let ys = b.categories.as_ref().map(|y| shares(y)).unwrap_or_default();
                    let (xs, n_out) = (
                        shares(x),
                        b.categories.as_ref().map_or(b.distinct, Vec::len),
                    );
                    let labels = (1..=xs.len().max(ys.len()))
                        .map(|n| format!("#{n}"))
                        .collect();
                    put(
                        "shape_tvd",
                        stats::tvd(&xs, &ys),
                        th.shape_tvd,
                        format!("a categorical column: {} categories → {n_out}", x.len()),
                        Some(Chart {
                            labels,
                            source: xs,
                            output: ys,
                        }),
                    );
                }
            }
        }
    }

    // integrity
    for fk in &fks {
        let id = fk_id(fk);
        let children = output.fanout.get(&id);
        let empty = HashSet::default();
        let parents = output.parents.get(&id).unwrap_or(&empty);
        let orphans: u64 = children.map_or(0, |c| {
            c.iter()
                .filter(|(h, _)| !parents.contains(*h))
                .map(|(_, n)| *n as u64)
                .sum()
        });
        checks.push(row(
            if orphans == 0 {
                Status::Pass
            } else {
                Status::Fail
            },
            "foreign_key",
            &fk.table,
            Some(&fk.columns.join(",")),
            Some(orphans as f64),
            Some(0.0),
            format!(
                "{}: {orphans} row(s) refer to no {}({})",
                fk.name,
                fk.parent,
                fk.parent_columns.join(",")
            ),
        ));
        let counts = |m: Option<&HashMap<u128, u32>>| {
            let mut v: Vec<f64> = m
                .map(|m| m.values().map(|&n| n as f64).collect())
                .unwrap_or_default();
            v.sort_by(f64::total_cmp);
            v
        };
        let (x, y) = (counts(source.fanout.get(&id)), counts(children));
        if !x.is_empty() && !y.is_empty() {
            let (labels, hx, hy) = stats::histograms(&x, &y, 20);
            let mut r = row(
                Status::of(stats::ks(&x, &y), settings.thresholds.fanout_ks),
                "fanout_ks",
                &fk.table,
                Some(&fk.columns.join(",")),
                Some(stats::ks(&x, &y)),
                Some(settings.thresholds.fanout_ks),
                format!(
                    "{}: children per parent, median {} → {}",
                    fk.name,
                    stats::quantile(&x, 0.5),
                    stats::quantile(&y, 0.5)
                ),
            );
            r.chart = Some(Chart {
                labels,
                source: hx,
                output: hy,
            });
            checks.push(r);
        }
    }
    for k in unique_keys(dst) {
        let id = format!("{}.{}", k.table, k.name);
        let (n, ex) = output.duplicates.get(&id).cloned().unwrap_or_default();
        checks.push(row(
            if n == 0 { Status::Pass } else { Status::Fail },
            "unique",
            &k.table,
            Some(&k.columns.join(",")),
            Some(n as f64),
            Some(0.0),
            if n == 0 {
                format!("{}: no duplicates", k.name)
            } else {
                format!("{}: {n} duplicate(s), e.g. {}", k.name, ex.join("; "))
            },
        ));
    }

    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    let examples = output
        .hits
        .values()
        .flat_map(|(_, e)| e.iter().cloned())
        .collect();
    Ok(Report {
        source: src_name,
        output: dst_name,
        passed: failed == 0,
        failed,
        warned,
        leak: LeakSummary {
            source_forms: set.inserted,
            mode: if set.bloom().is_some() {
                "bloom"
            } else {
                "exact"
            },
            bloom_false_positive_rate: set.bloom().map(|b| b.false_positive_rate()),
            bloom_bytes: set.bloom().map(|b| b.bytes()),
            unconfirmed,
            cells_scanned: output.cells,
            hits: hit_total,
            examples,
        },
        samples,
        checks,
        seconds: started.elapsed().as_secs_f64(),
    })
}
