//! `dataforge verify`: proof that an anonymized copy holds no personal data of its
//! source and still looks like it.
//!
//! One streaming read of the source collects keyed hashes of every anonymized value and
//! a deterministic sample per table; one read of the output scans every cell for those
//! hashes, runs the detectors over kept columns, samples, and collects the key hashes
//! that unique keys and foreign keys are checked with; then the two samples are
//! compared column by column. When the scan found something to settle (a Bloom hit to
//! confirm, or a value equal to one of its own column's source values, which is a leak
//! if it is the same row's and chance if it is another's), the source is read once
//! more for just that. Each read runs on every core. Memory holds hashes and samples,
//! never a table; key hashes past a bound go to temporary files.

pub mod keys;
pub mod leak;
mod objects;
mod own_row;
mod reference;
pub mod report;
mod scan;
mod schema;
pub mod settings;
pub mod stats;
mod valid_input;

use std::collections::{BTreeMap, BinaryHeap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use foldhash::{HashMap, HashSet};
use xxhash_rust::xxh3::{xxh3_128_with_seed, xxh3_64_with_seed};

use crate::anonymize::config::{Action, Config};
use crate::anonymize::key::Key;
use crate::anonymize::transformers::keeps;
use crate::pg::copy;
use crate::pii::detect;
use crate::source::catalog::{ForeignKey, UniqueKey};
use crate::source::Source;
use crate::source::SourceTable;
use keys::SortedKeys;
use report::{Chart, LeakHit, LeakSummary, TableSample};
pub use report::{Check, Report, Status};
use scan::{par_read, Step};
use settings::Settings;
use stats::Profile;

/// Output columns whose values are drawn from a generator's lists: a source value
/// found there is the generator's coincidence (a fake "Mary" for a real one), not a
/// survivor, so they are not searched ([`own_row::LIST_DRAWN`] are held to their own row
/// instead); nor are columns a config fills with chosen or constant values.
fn generated(transformer: &str) -> bool {
    own_row::LIST_DRAWN.contains(&transformer)
        || matches!(transformer, "choice" | "constant" | "null")
}

/// Fewer sampled values than this on either side, and a column's distribution is not
/// compared (its NULL rate still is).
const MIN_COMPARE: usize = 50;

/// Hits kept as examples per column.
const EXAMPLES: usize = 20;

/// Hits kept to be settled by the second read of the source; past it, a hit counts as
/// a leak unsettled.
const HIT_RECORDS: usize = 1_000_000;

/// Parents (in keyed-hash order, so a uniform sample) whose children are counted for
/// the fan-out comparison.
const FANOUT_SAMPLE: usize = 200_000;

/// SRC and DST do not have the same tables and columns.
#[derive(Debug, thiserror::Error)]
#[error("{src} and {dst} differ in schema, so they cannot be compared; nothing was checked:\n  {}", .differences.join("\n  "))]
pub struct SchemaMismatch {
    pub src: String,
    pub dst: String,
    pub differences: Vec<String>,
}

fn source_name(s: &Source) -> String {
    match s {
        Source::Dump(d, _) => d.name.clone(),
        Source::Live(l) => l.name(),
    }
}

/// Where `names` are among `columns`; `None` if one is missing.
fn positions(columns: &[String], names: &[String]) -> Option<Vec<usize>> {
    names
        .iter()
        .map(|c| columns.iter().position(|x| x == c))
        .collect()
}

/// How the workers sample a table: the rows whose keyed hash of the row key is among
/// the `sample_rows` smallest (a deterministic sample of bounded size). `cut` is the
/// largest hash still in the sample once it is full, so workers send only rows below.
struct Sampler {
    key: Vec<usize>,
    seed: u64,
    cut: AtomicU64,
}

impl Sampler {
    fn new(key: Vec<usize>, seed: u64) -> Sampler {
        Sampler {
            key,
            seed,
            cut: AtomicU64::new(u64::MAX),
        }
    }
}

/// A batch's counts and its rows that may join the sample.
#[derive(Default)]
struct Counts {
    rows: u64,
    nulls: Vec<u64>,
    sample: Vec<(u64, Vec<u8>)>,
}

impl Counts {
    fn row(&mut self, s: &Sampler, line: &[u8], fields: &[&[u8]]) {
        self.rows += 1;
        if self.nulls.len() < fields.len() {
            self.nulls.resize(fields.len(), 0);
        }
        for (n, f) in self.nulls.iter_mut().zip(fields) {
            if *f == b"\\N" {
                *n += 1;
            }
        }
        let h = if s.key.is_empty() {
            xxh3_64_with_seed(line, s.seed)
        } else {
            s.key.iter().fold(s.seed, |h, &i| {
                xxh3_64_with_seed(fields.get(i).copied().unwrap_or_default(), h)
            })
        };
        if h < s.cut.load(Ordering::Relaxed) {
            self.sample.push((h, line.to_vec()));
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
    /// The sampled rows, with the hash of their row key: the same row on both sides when
    /// the key is kept, so a row's output can be held against its own source.
    lines: Vec<(u64, Vec<u8>)>,
}

/// A table as the merge accumulates it.
struct Acc {
    name: String,
    columns: Vec<String>,
    rows: u64,
    nulls: Vec<u64>,
    heap: BinaryHeap<(u64, Vec<u8>)>,
    k: usize,
}

impl Acc {
    fn new(name: &str, columns: &[String], k: usize) -> Acc {
        Acc {
            name: name.to_string(),
            columns: columns.to_vec(),
            rows: 0,
            nulls: vec![0; columns.len()],
            heap: BinaryHeap::new(),
            k,
        }
    }

    fn add(&mut self, c: Counts, sampler: &Sampler) {
        self.rows += c.rows;
        for (a, b) in self.nulls.iter_mut().zip(&c.nulls) {
            *a += b;
        }
        for row in c.sample {
            if self.heap.len() < self.k {
                self.heap.push(row);
            } else if self.heap.peek().is_some_and(|top| row < *top) {
                self.heap.pop();
                self.heap.push(row);
            }
        }
        if self.heap.len() >= self.k {
            if let Some((top, _)) = self.heap.peek() {
                sampler.cut.store(*top, Ordering::Relaxed);
            }
        }
    }

    fn finish(self, categorical_max: usize) -> (String, TableSummary) {
        let lines: Vec<(u64, Vec<u8>)> = self.heap.into_vec();
        let profiles = (0..self.columns.len())
            .map(|i| {
                let values: Vec<Option<String>> = lines
                    .iter()
                    .map(|(_, l)| {
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
                lines,
            },
        )
    }
}

/// The columns of `table` that identify a row, alike on both sides: its primary key
/// (pg_dump names it `…_pkey`), else its first unique key; with no key known (a
/// data-only dump) its first column when it is named as an id (`id`, `address_id`) and
/// the config keeps it, so a row still meets itself across the two sides (a key two rows
/// share pairs nothing); else none.
fn row_key(keys: &[UniqueKey], config: &Config, table: &str, columns: &[String]) -> Vec<String> {
    let mine: Vec<&UniqueKey> = keys.iter().filter(|k| k.table == table).collect();
    let best = mine
        .iter()
        .find(|k| k.name.ends_with("_pkey"))
        .or_else(|| mine.first());
    if let Some(k) = best {
        return k.columns.clone();
    }
    let Some(first) = columns.first() else {
        return Vec::new();
    };
    let kept = config
        .tables
        .get(table)
        .and_then(|t| t.columns.get(first))
        .is_some_and(|c| c.transformer == "keep");
    if kept && (first == "id" || first.ends_with("_id")) {
        vec![first.clone()]
    } else {
        Vec::new()
    }
}

/// The keyed hash of a tuple of fields as COPY writes them; `None` if one is NULL.
fn tuple_hash(fields: &[&[u8]], idx: &[usize], seed: u64, buf: &mut Vec<u8>) -> Option<u128> {
    buf.clear();
    for &i in idx {
        let f = fields.get(i)?;
        if *f == b"\\N" {
            return None;
        }
        buf.extend_from_slice(f);
        buf.push(0x1f);
    }
    Some(xxh3_128_with_seed(buf, seed))
}

/// Which row this is, the same in source and output when the row key is kept: the
/// keyed hash of its key, or of its position when it has none.
fn row_hash(fields: &[&[u8]], key: &[usize], ordinal: u64, seed: u64, buf: &mut Vec<u8>) -> u128 {
    if !key.is_empty() {
        if let Some(h) = tuple_hash(fields, key, seed, buf) {
            return h;
        }
    }
    xxh3_128_with_seed(&ordinal.to_le_bytes(), seed ^ 0x5eed)
}

/// A field's value: the raw bytes themselves when its line holds no backslash (`plain`:
/// no escape and no NULL), else decoded; `None` for NULL.
fn field(raw: &[u8], plain: bool) -> Option<std::borrow::Cow<'_, [u8]>> {
    if plain {
        Some(std::borrow::Cow::Borrowed(raw))
    } else {
        copy::decode_field_cow(raw)
    }
}

/// The rows of a batch, split into fields in one pass over its bytes: tabs, line ends
/// and backslashes are found together, so a row's fields and whether it holds any
/// escape (or NULL) come at once. Each row ends in `\n`; a raw CR in COPY text is only
/// ever part of a CRLF, since COPY writes a CR in a value as `\r`.
struct Rows<'a> {
    batch: &'a [u8],
    marks: memchr::Memchr3<'a>,
    start: usize,
    /// The whole batch is valid UTF-8, so each field is (they are cut at ASCII bytes).
    utf8: bool,
}

impl<'a> Rows<'a> {
    fn new(batch: &'a [u8]) -> Rows<'a> {
        Rows {
            batch,
            marks: memchr::memchr3_iter(b'\t', b'\n', b'\\', batch),
            start: 0,
            utf8: std::str::from_utf8(batch).is_ok(),
        }
    }

    /// The next row's fields (still escaped) into `fields`: its line, and whether it
    /// is plain (no backslash).
    fn next_row(&mut self, fields: &mut Vec<&'a [u8]>) -> Option<(&'a [u8], bool)> {
        let b = self.batch;
        fields.clear();
        let mut from = self.start;
        let mut plain = true;
        for at in self.marks.by_ref() {
            match b[at] {
                b'\t' => {
                    fields.push(&b[from..at]);
                    from = at + 1;
                }
                b'\\' => plain = false,
                _ => {
                    let line_start = self.start;
                    self.start = at + 1;
                    // a dump saved with CRLF line ends
                    let end = if at > from && b[at - 1] == b'\r' {
                        at - 1
                    } else {
                        at
                    };
                    if end == line_start {
                        // an empty line
                        fields.clear();
                        from = self.start;
                        plain = true;
                        continue;
                    }
                    fields.push(&b[from..end]);
                    return Some((&b[line_start..end], plain));
                }
            }
        }
        None
    }

    /// A field's value as text: as it lies when the batch is valid UTF-8 and the value
    /// needed no decoding.
    fn text<'v>(&self, v: &'v std::borrow::Cow<'v, [u8]>) -> std::borrow::Cow<'v, str> {
        // bytea (`\x` and hex, as COPY writes it) is read as the text it holds, where it
        // holds text: an e-mail in a kept vCard is an e-mail (issue 14)
        if let Some(text) = v.strip_prefix(b"\\x").and_then(detect::bytea_text) {
            return std::borrow::Cow::Owned(text);
        }
        match v {
            std::borrow::Cow::Borrowed(raw) if self.holds_whole_chars(raw) => {
                // SAFETY: `raw` lies inside the batch, which is valid UTF-8, and starts and
                // ends on character boundaries (holds_whole_chars checked both), so it is
                // valid UTF-8 itself
                std::borrow::Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(raw) })
            }
            _ => String::from_utf8_lossy(v),
        }
    }

    /// Whether `raw` is a piece of this batch, the batch is valid UTF-8, and the piece
    /// starts and ends on character boundaries: then it is valid UTF-8 without a scan.
    /// Anything else (a slice from another batch, or cut inside a character) is decoded
    /// with a check instead.
    fn holds_whole_chars(&self, raw: &[u8]) -> bool {
        let Some(start) = (raw.as_ptr() as usize).checked_sub(self.batch.as_ptr() as usize) else {
            return false;
        };
        let end = start + raw.len();
        // a byte that does not continue a character starts one (as str::is_char_boundary)
        let boundary = |i: usize| i == self.batch.len() || (self.batch[i] as i8) >= -0x40;
        self.utf8 && end <= self.batch.len() && boundary(start) && boundary(end)
    }
}

/// `s` case-folded, into `buf` when it has anything to fold.
fn lower<'a>(s: &'a str, buf: &'a mut String) -> &'a str {
    // every byte looked at (no early exit), which the compiler turns into wide compares
    let foldable = s.bytes().fold(false, |any, b| {
        any | (b.wrapping_sub(b'A') < 26) | (b >= 0x80)
    });
    if foldable {
        buf.clear();
        if s.is_ascii() {
            buf.push_str(s);
            buf.make_ascii_lowercase();
        } else {
            buf.push_str(&s.to_lowercase());
        }
        buf
    } else {
        s
    }
}

/// The anonymized source columns searched for: (column index, norm, id into the names).
type Searched = Vec<(usize, leak::Norm, u32)>;

/// Per table, its searched columns; and the `table.column` name of each id.
fn searched(config: &Config, src: &[SourceTable]) -> (HashMap<String, Searched>, Vec<String>) {
    let mut out: HashMap<String, Searched> = HashMap::default();
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
                .and_then(|cc| leak::norm_for(&cc.transformer, &cc.options))
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

/// Scratch space a worker reuses from row to row.
#[derive(Default)]
struct Scratch {
    folded: String,
    form: String,
    key: Vec<u8>,
}

/// Calls `f(hash, column id, form)` for every form of the searched columns of a row.
#[allow(clippy::too_many_arguments)]
fn row_forms(
    rows: &Rows,
    plain: bool,
    fields: &[&[u8]],
    searched: &Searched,
    min_length: usize,
    seed: u64,
    s: &mut Scratch,
    f: &mut dyn FnMut(u128, u32, &str),
) {
    for (i, norm, id) in searched {
        let (i, id) = (*i, *id);
        if let Some(raw) = fields.get(i) {
            cell_forms(
                rows,
                raw,
                plain,
                norm,
                min_length,
                seed,
                s,
                &mut |h, form| f(h, id, form),
            );
        }
    }
}

/// Calls `f(hash, form)` for every form of one source cell (still escaped); returns
/// how many there were.
#[allow(clippy::too_many_arguments)]
fn cell_forms(
    rows: &Rows,
    raw: &[u8],
    plain: bool,
    norm: &leak::Norm,
    min_length: usize,
    seed: u64,
    s: &mut Scratch,
    f: &mut dyn FnMut(u128, &str),
) -> u32 {
    let Some(v) = field(raw, plain) else {
        return 0;
    };
    let v = rows.text(&v);
    let mut n = 0;
    if let leak::Norm::Json(paths) = norm {
        // the leaves the column's paths rewrite, found before folding (keys keep case)
        if let Ok(doc) = serde_json::from_str::<serde_json::Value>(&v) {
            paths.leaves(&doc, &mut |leaf| {
                let folded = leaf.to_lowercase();
                leak::source_forms(
                    &folded,
                    &leak::Norm::Text,
                    min_length,
                    &mut s.form,
                    &mut |form| {
                        n += 1;
                        f(leak::form_hash(seed, form), form)
                    },
                );
            });
        }
        return n;
    }
    let v = lower(&v, &mut s.folded);
    leak::source_forms(v, norm, min_length, &mut s.form, &mut |form| {
        n += 1;
        f(leak::form_hash(seed, form), form)
    });
    n
}

/// A table of the source as the workers see it.
struct SrcTable {
    name: String,
    columns: Vec<String>,
    sampler: Sampler,
    searched: Searched,
    /// (foreign key, its columns here) for the foreign keys this table is the child of.
    fks: Vec<(usize, Vec<usize>)>,
}

#[derive(Default)]
struct SrcBatch {
    counts: Counts,
    /// A form is a UUID or a timestamp.
    structured: bool,
    forms: Vec<(u128, u32)>,
    /// Forms of values already in `forms`, counted but not hashed again, and forms
    /// the worker put in the filter itself.
    repeated: u64,
    direct: u64,
    fks: Vec<Vec<u128>>,
}

/// Everything the source read keeps.
struct SourceRead {
    tables: BTreeMap<String, TableSummary>,
    /// Child key hashes per foreign key, for the fan-out.
    children: Vec<SortedKeys>,
}

/// Reads the source: its forms into `set`, samples and foreign-key children.
#[allow(clippy::too_many_arguments)]
fn read_source(
    src: &Source,
    config: &Config,
    settings: &Settings,
    searched: &HashMap<String, Searched>,
    fks: &[ForeignKey],
    seed: u64,
    jobs: usize,
    set: &mut leak::LeakSet,
) -> anyhow::Result<SourceRead> {
    let keys = src.unique_keys().to_vec();
    let mut out = SourceRead {
        tables: BTreeMap::new(),
        children: fks.iter().map(|_| SortedKeys::new(keys::RUN)).collect(),
    };
    let wanted = |t: &str| {
        config
            .tables
            .get(t)
            .is_some_and(|c| c.action != Action::Skip)
    };
    let table = |name: &str, columns: &[String]| SrcTable {
        name: name.to_string(),
        columns: columns.to_vec(),
        sampler: Sampler::new(
            positions(columns, &row_key(&keys, config, name, columns)).unwrap_or_default(),
            seed,
        ),
        searched: searched.get(name).cloned().unwrap_or_default(),
        fks: fks
            .iter()
            .enumerate()
            .filter(|(_, f)| f.table == name)
            .filter_map(|(n, f)| Some((n, positions(columns, &f.columns)?)))
            .collect(),
    };
    let filter = set.shared_filter();
    let work = |t: &SrcTable, batch: &[u8], _first: u64| {
        let mut b = SrcBatch {
            fks: vec![Vec::new(); t.fks.len()],
            ..Default::default()
        };
        let mut s = Scratch::default();
        let mut fields: Vec<&[u8]> = Vec::new();
        // a value met again in its column adds nothing to the set but its count
        let mut memo = Memo::new(t.columns.len());
        let mut rows = Rows::new(batch);
        while let Some((line, plain)) = rows.next_row(&mut fields) {
            for (i, norm, id) in &t.searched {
                let (i, id) = (*i, *id);
                let Some(&raw) = fields.get(i) else {
                    continue;
                };
                if let Some(n) = memo.known(i, raw) {
                    b.repeated += u64::from(n);
                    continue;
                }
                let n = cell_forms(
                    &rows,
                    raw,
                    plain,
                    norm,
                    settings.min_length,
                    seed,
                    &mut s,
                    &mut |h, form| {
                        b.structured |= detect::structured(form);
                        b.forms.push((h, id));
                    },
                );
                memo.learn(i, raw, n);
            }
            for (k, (_, idx)) in t.fks.iter().enumerate() {
                if let Some(h) = tuple_hash(&fields, idx, seed, &mut s.key) {
                    b.fks[k].push(h);
                }
            }
            b.counts.row(&t.sampler, line, &fields);
        }
        // once the set is a filter, every worker adds to it, not the merge alone
        if let Some(bloom) = filter.get() {
            bloom.insert_all(b.forms.iter().map(|f| f.0));
            b.direct = b.forms.len() as u64;
            b.forms.clear();
        }
        b
    };
    let mut acc: Option<(std::sync::Arc<SrcTable>, Acc)> = None;
    par_read(src, &wanted, &|_| None, jobs, &table, &work, &mut |step| {
        match step {
            Step::Table(t) => {
                let a = Acc::new(&t.name, &t.columns, settings.sample_rows);
                acc = Some((t, a));
            }
            Step::Rows(b) => {
                let (t, a) = acc.as_mut().expect("rows come in a table");
                set.insert_many(&b.forms);
                set.inserted += b.repeated + b.direct;
                set.structured |= b.structured;
                for ((n, _), keys) in t.fks.iter().zip(&b.fks) {
                    out.children[*n].extend(keys)?;
                }
                a.add(b.counts, &t.sampler);
            }
            Step::End => {
                let (t, a) = acc.take().expect("an end ends a table");
                for (n, _) in &t.fks {
                    out.children[*n].settle()?;
                }
                let (name, summary) = a.finish(settings.categorical_max);
                out.tables.insert(name, summary);
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// Findings of one detector in one column.
#[derive(Default)]
struct Finding {
    count: u64,
    samples: Vec<String>,
}

/// How the output read treats a column.
struct ColPlan {
    /// Searched for source values.
    scan: bool,
    /// Run the detectors over (a kept column).
    detect: bool,
    /// Detectors whose findings are accepted here.
    allowed: Vec<String>,
    /// The column's type, when its values are checked as valid input for it (anonymized
    /// columns of a file output: a loaded copy was checked by its server).
    valid: Option<crate::anonymize::types::ColumnType>,
}

/// A table of the output as the workers see it.
struct OutTable {
    name: String,
    columns: Vec<String>,
    sampler: Sampler,
    plan: Vec<ColPlan>,
    key: Vec<usize>,
    /// (`table.constraint`, its columns here) per unique key.
    uniq: Vec<(String, Vec<usize>)>,
    /// (foreign key, its columns here) where this table is the child, and the parent.
    child: Vec<(usize, Vec<usize>)>,
    parent: Vec<(usize, Vec<usize>)>,
}

/// A source value found in an output cell, settled once the scan is done.
struct Hit {
    column: usize,
    found: leak::Found,
    hash: u128,
    row: u128,
    label: String,
    masked: String,
}

#[derive(Default)]
struct OutBatch {
    counts: Counts,
    cells: u64,
    hits: Vec<Hit>,
    findings: Vec<(usize, &'static str, String)>,
    /// Values invalid for their column's type: (column, example).
    invalid: Vec<(usize, String)>,
    uniq: Vec<Vec<u128>>,
    child: Vec<Vec<u128>>,
    parent: Vec<Vec<u128>>,
}

/// Everything the output read keeps.
#[derive(Default)]
struct OutputRead {
    tables: BTreeMap<String, TableSummary>,
    /// The row key's columns per table: what a row is known by on both sides.
    row_keys: BTreeMap<String, Vec<String>>,
    /// (table, column, hit), in reading order.
    hits: Vec<(String, String, Hit)>,
    /// Hits past [`HIT_RECORDS`], per column.
    unsettled: BTreeMap<(String, String), u64>,
    findings: BTreeMap<(String, String, &'static str), Finding>,
    /// Values invalid for their column's type, per column.
    invalid: BTreeMap<(String, String), Finding>,
    /// Rows repeating an earlier row's key, per unique key.
    duplicates: BTreeMap<String, u64>,
    children: Vec<SortedKeys>,
    parents: Vec<SortedKeys>,
    cells: u64,
}

/// The candidate of `folded` whose hash is `h` (found again to be shown masked).
fn candidate_text(folded: &str, min_length: usize, seed: u64, h: u128) -> String {
    let mut out = String::new();
    leak::candidates(folded, min_length, &mut |c, _| {
        if out.is_empty() && leak::form_hash(seed, c) == h {
            out = c.to_string();
        }
    });
    out
}

/// The hashes of one cell's candidates met so far: a short list, a set past it.
#[derive(Default)]
struct Seen {
    few: Vec<u128>,
    many: HashSet<u128>,
}

impl Seen {
    fn clear(&mut self) {
        self.few.clear();
        if !self.many.is_empty() {
            self.many.clear();
        }
    }

    /// Whether `h` is new.
    fn insert(&mut self, h: u128) -> bool {
        if self.many.is_empty() {
            if self.few.contains(&h) {
                return false;
            }
            if self.few.len() < 16 {
                self.few.push(h);
                return true;
            }
            self.many.extend(self.few.iter().copied());
        }
        self.many.insert(h)
    }
}

/// Values of a batch already dealt with, per column, and what they gave (a count):
/// a column's value met again is skipped. A column whose values seldom repeat stops
/// being remembered, so a key or an address costs no more than it did.
struct Memo<'a> {
    seen: HashMap<(usize, &'a [u8]), u32>,
    /// (looked up, found) per column.
    tries: Vec<(u32, u32)>,
}

impl<'a> Memo<'a> {
    /// Tries before a column's repeat rate is judged, and the least rate worth keeping.
    const TRIAL: u32 = 128;
    const RATE: u32 = 8;

    fn new(columns: usize) -> Memo<'a> {
        Memo {
            seen: HashMap::default(),
            tries: vec![(0, 0); columns],
        }
    }

    fn worth(&self, column: usize) -> bool {
        let (tried, found) = self.tries[column];
        tried < Self::TRIAL || found * Self::RATE >= tried
    }

    /// What `raw` gave when last met in `column`, if remembered.
    fn known(&mut self, column: usize, raw: &'a [u8]) -> Option<u32> {
        if !self.worth(column) {
            return None;
        }
        let got = self.seen.get(&(column, raw)).copied();
        let t = &mut self.tries[column];
        t.0 += 1;
        t.1 += u32::from(got.is_some());
        got
    }

    fn learn(&mut self, column: usize, raw: &'a [u8], gave: u32) {
        if self.worth(column) {
            self.seen.insert((column, raw), gave);
        }
    }
}

/// Rows of a batch whose candidates are all hashed (and their filter blocks
/// prefetched) before any is looked up, so many lookups wait on memory at once.
const GROUP: usize = 64;

/// A candidate of an output cell, waiting to be looked up.
struct Pending {
    hash: u128,
    kind: leak::Cand,
    row: usize,
    column: usize,
}

/// Hashes the candidates of one output cell (case-folded), once each, into `pending`.
#[allow(clippy::too_many_arguments)]
fn cell_candidates(
    folded: &str,
    set: &leak::LeakSet,
    min_length: usize,
    seed: u64,
    seen: &mut Seen,
    row: usize,
    column: usize,
    pending: &mut Vec<Pending>,
) {
    seen.clear();
    leak::candidates(folded, min_length, &mut |c, kind| {
        // a word with a digit or an `@` in it is nobody's common word
        let kind = match kind {
            leak::Cand::Word(_) if c.contains(|c: char| c.is_ascii_digit() || c == '@') => {
                leak::Cand::Exact
            }
            k => k,
        };
        let hash = leak::form_hash(seed, c);
        if seen.insert(hash) {
            set.prefetch(hash);
            pending.push(Pending {
                hash,
                kind,
                row,
                column,
            });
        }
    });
}

/// Looks the pending candidates up, a cell at a time: the hits as (row, column, hash,
/// what was found).
fn look_up(
    pending: &[Pending],
    set: &leak::LeakSet,
    hits: &mut Vec<(usize, usize, u128, leak::Found)>,
) {
    let mut words: Vec<(usize, u128, leak::Found)> = Vec::new();
    for cell in pending.chunk_by(|a, b| (a.row, a.column) == (b.row, b.column)) {
        words.clear();
        for p in cell {
            let found = set.find(p.hash);
            if found == leak::Found::No {
                continue;
            }
            match p.kind {
                leak::Cand::Word(n) => words.push((n, p.hash, found)),
                leak::Cand::Exact => hits.push((p.row, p.column, p.hash, found)),
            }
        }
        // a word alone is a hit only beside another hit word
        for &(n, h, found) in &words {
            if words.iter().any(|(m, ..)| m + 1 == n || *m == n + 1) {
                hits.push((cell[0].row, cell[0].column, h, found));
            }
        }
    }
}

/// Reads the output: scans it for `set`'s values, runs the detectors, samples, and
/// collects unique-key and foreign-key hashes.
#[allow(clippy::too_many_arguments)]
fn read_output(
    dst: &Source,
    config: &Config,
    settings: &Settings,
    set: &leak::LeakSet,
    fks: &[ForeignKey],
    typed: &valid_input::Typed,
    seed: u64,
    jobs: usize,
) -> anyhow::Result<OutputRead> {
    let keys = dst.unique_keys().to_vec();
    let mut out = OutputRead {
        children: fks.iter().map(|_| SortedKeys::new(keys::RUN)).collect(),
        parents: fks.iter().map(|_| SortedKeys::new(keys::RUN)).collect(),
        ..Default::default()
    };
    let table = |name: &str, columns: &[String]| {
        let tc = config.tables.get(name);
        let plan = columns
            .iter()
            .map(|c| {
                let t = tc
                    .and_then(|t| t.columns.get(c))
                    .map_or("keep", |c| c.transformer.as_str());
                let valid = typed.types.get(&(name.to_string(), c.clone())).cloned();
                let allowed = settings
                    .columns
                    .get(&format!("{name}.{c}"))
                    .map(|s| s.allow.clone())
                    .unwrap_or_default();
                ColPlan {
                    scan: !generated(t) && !allowed.iter().any(|a| a == "leak"),
                    detect: t == "keep",
                    allowed,
                    valid,
                }
            })
            .collect();
        let key = positions(columns, &row_key(&keys, config, name, columns)).unwrap_or_default();
        OutTable {
            name: name.to_string(),
            columns: columns.to_vec(),
            sampler: Sampler::new(key.clone(), seed),
            plan,
            key,
            uniq: keys
                .iter()
                .filter(|k| k.table == name)
                .filter_map(|k| {
                    Some((
                        format!("{}.{}", k.table, k.name),
                        positions(columns, &k.columns)?,
                    ))
                })
                .collect(),
            child: fks
                .iter()
                .enumerate()
                .filter(|(_, f)| f.table == name)
                .filter_map(|(n, f)| Some((n, positions(columns, &f.columns)?)))
                .collect(),
            parent: fks
                .iter()
                .enumerate()
                .filter(|(_, f)| f.parent == name)
                .filter_map(|(n, f)| Some((n, positions(columns, &f.parent_columns)?)))
                .collect(),
        }
    };
    let min_length = settings.min_length;
    let work = |t: &OutTable, batch: &[u8], first: u64| {
        let mut b = OutBatch {
            uniq: vec![Vec::new(); t.uniq.len()],
            child: vec![Vec::new(); t.child.len()],
            parent: vec![Vec::new(); t.parent.len()],
            ..Default::default()
        };
        let mut s = Scratch::default();
        let mut fields: Vec<&[u8]> = Vec::new();
        let mut seen = Seen::default();
        let mut pending = Vec::new();
        let mut hits = Vec::new();
        let label = |fields: &[&[u8]], ordinal: u64| {
            if t.key.is_empty() {
                return format!("#{}", ordinal + 1);
            }
            t.key
                .iter()
                .map(|&i| {
                    let v = fields.get(i).and_then(|f| copy::decode_field(f));
                    let v = v.map_or("NULL".into(), |v| String::from_utf8_lossy(&v).into_owned());
                    format!("{}={v}", t.columns[i])
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut memo = Memo::new(t.plan.len());
        let mut cells: Vec<(usize, usize, &[u8], bool)> = Vec::new();
        let mut rows = Rows::new(batch);
        let mut lines: Vec<&[u8]> = Vec::new();
        let mut more = true;
        while more {
            pending.clear();
            cells.clear();
            for _ in 0..GROUP {
                let Some((line, plain)) = rows.next_row(&mut fields) else {
                    more = false;
                    break;
                };
                let n = lines.len();
                lines.push(line);
                let ordinal = first + n as u64;
                for (i, p) in t.plan.iter().enumerate() {
                    if !p.scan && !p.detect && p.valid.is_none() {
                        continue;
                    }
                    let Some(&raw) = fields.get(i) else {
                        continue;
                    };
                    let Some(v) = field(raw, plain) else {
                        continue;
                    };
                    b.cells += u64::from(p.scan || p.detect);
                    if memo.known(i, raw).is_some() {
                        continue;
                    }
                    let found = b.findings.len() + b.invalid.len();
                    let v = rows.text(&v);
                    if let Some(ty) = &p.valid {
                        if let Err(why) = crate::anonymize::valid::check(ty, &v) {
                            let sample = format!("row {}: {why}", label(&fields, ordinal));
                            b.invalid.push((i, sample));
                        }
                    }
                    // a UUID or timestamp holds nothing but itself, and is only ever a
                    // source value if the source had such values
                    let shaped = detect::structured(v.trim());
                    if p.scan && (!shaped || set.structured) {
                        let folded = lower(&v, &mut s.folded);
                        cell_candidates(
                            folded,
                            set,
                            min_length,
                            seed,
                            &mut seen,
                            n,
                            i,
                            &mut pending,
                        );
                    }
                    if p.detect && !shaped {
                        detect::detect(&v, &mut |d, m| {
                            if !p.allowed.iter().any(|x| x == d) {
                                let sample = format!(
                                    "{} (row {})",
                                    detect::mask(m),
                                    label(&fields, ordinal)
                                );
                                b.findings.push((i, d, sample));
                            }
                        });
                    }
                    cells.push((n, i, raw, b.findings.len() + b.invalid.len() > found));
                }
                for (k, (_, idx)) in t.uniq.iter().enumerate() {
                    if let Some(h) = tuple_hash(&fields, idx, seed, &mut s.key) {
                        b.uniq[k].push(h);
                    }
                }
                for (k, (_, idx)) in t.child.iter().enumerate() {
                    if let Some(h) = tuple_hash(&fields, idx, seed, &mut s.key) {
                        b.child[k].push(h);
                    }
                }
                for (k, (_, idx)) in t.parent.iter().enumerate() {
                    if let Some(h) = tuple_hash(&fields, idx, seed, &mut s.key) {
                        b.parent[k].push(h);
                    }
                }
                b.counts.row(&t.sampler, line, &fields);
            }
            hits.clear();
            look_up(&pending, set, &mut hits);
            // a value met again in its column needs no second look
            for &(n, i, raw, flagged) in &cells {
                if !flagged && !hits.iter().any(|h| (h.0, h.1) == (n, i)) {
                    memo.learn(i, raw, 0);
                }
            }
            for &(n, column, hash, found) in &hits {
                let ordinal = first + n as u64;
                fields.clear();
                fields.extend(copy::split_fields(lines[n]));
                let v = copy::decode_field(fields[column]).unwrap_or_default();
                let v = String::from_utf8_lossy(&v);
                let folded = lower(&v, &mut s.folded).to_string();
                b.hits.push(Hit {
                    column,
                    found,
                    hash,
                    row: row_hash(&fields, &t.key, ordinal, seed, &mut s.key),
                    label: label(&fields, ordinal),
                    masked: detect::mask(&candidate_text(&folded, min_length, seed, hash)),
                });
            }
        }
        b
    };
    type Open = (std::sync::Arc<OutTable>, Acc, Vec<SortedKeys>);
    let mut acc: Option<Open> = None;
    par_read(
        dst,
        &|_| true,
        &|_| None,
        jobs,
        &table,
        &work,
        &mut |step| {
            match step {
                Step::Table(t) => {
                    let a = Acc::new(&t.name, &t.columns, settings.sample_rows);
                    let u = t.uniq.iter().map(|_| SortedKeys::new(keys::RUN)).collect();
                    out.row_keys.insert(
                        t.name.clone(),
                        t.key.iter().map(|&i| t.columns[i].clone()).collect(),
                    );
                    acc = Some((t, a, u));
                }
                Step::Rows(b) => {
                    let (t, a, u) = acc.as_mut().expect("rows come in a table");
                    out.cells += b.cells;
                    for hit in b.hits {
                        let column = t.columns[hit.column].clone();
                        if out.hits.len() < HIT_RECORDS {
                            out.hits.push((t.name.clone(), column, hit));
                        } else {
                            *out.unsettled.entry((t.name.clone(), column)).or_default() += 1;
                        }
                    }
                    for (i, sample) in b.invalid {
                        let f = out
                            .invalid
                            .entry((t.name.clone(), t.columns[i].clone()))
                            .or_default();
                        f.count += 1;
                        if f.samples.len() < 3 {
                            f.samples.push(sample);
                        }
                    }
                    for (i, d, sample) in b.findings {
                        let f = out
                            .findings
                            .entry((t.name.clone(), t.columns[i].clone(), d))
                            .or_default();
                        f.count += 1;
                        if f.samples.len() < 3 {
                            f.samples.push(sample);
                        }
                    }
                    for (keys, h) in u.iter_mut().zip(&b.uniq) {
                        keys.extend(h)?;
                    }
                    for ((n, _), h) in t.child.iter().zip(&b.child) {
                        out.children[*n].extend(h)?;
                    }
                    for ((n, _), h) in t.parent.iter().zip(&b.parent) {
                        out.parents[*n].extend(h)?;
                    }
                    a.add(b.counts, &t.sampler);
                }
                Step::End => {
                    let (t, a, u) = acc.take().expect("an end ends a table");
                    for ((id, _), keys) in t.uniq.iter().zip(u) {
                        let mut walk = keys.counted()?;
                        let mut dups = 0;
                        while let Some((_, n)) = walk.next_run()? {
                            dups += n - 1;
                        }
                        out.duplicates.insert(id.clone(), dups);
                    }
                    for (n, _) in t.child.iter().chain(&t.parent) {
                        out.children[*n].settle()?;
                        out.parents[*n].settle()?;
                    }
                    let (name, summary) = a.finish(settings.categorical_max);
                    out.tables.insert(name, summary);
                }
            }
            Ok(())
        },
    )?;
    Ok(out)
}

/// The scan's hits, settled: leaks, coincidences and Bloom hits the source did not
/// confirm.
#[derive(Default)]
struct Settled {
    leaks: BTreeMap<(String, String), (u64, Vec<LeakHit>)>,
    coincidences: BTreeMap<(String, String), (u64, Vec<LeakHit>)>,
    unconfirmed: u64,
}

/// Counts `n` more hits and keeps the first [`EXAMPLES`] of them.
fn tally(e: &mut (u64, Vec<LeakHit>), n: u64, hits: impl IntoIterator<Item = LeakHit>) {
    e.0 += n;
    let room = EXAMPLES.saturating_sub(e.1.len());
    e.1.extend(hits.into_iter().take(room));
}

/// A table of the source as a settling read sees it.
struct ReTable<'a> {
    searched: Searched,
    key: Vec<usize>,
    rows: Option<&'a HashSet<u128>>,
}

/// What a settling read looks for: the Bloom hits to confirm, the hashes of hits whose
/// row matters, and per table the rows they are in and the columns to read.
struct Wanted<'a> {
    maybe: &'a HashSet<u128>,
    hashes: &'a HashSet<u128>,
    rows: &'a HashMap<String, HashSet<u128>>,
    columns: &'a HashMap<String, Searched>,
}

/// What a settling read found: the column of each confirmed Bloom hit, and which
/// hit rows held which hashes in which column.
#[derive(Default)]
struct Found {
    confirmed: HashMap<u128, u32>,
    survivors: HashSet<(u128, u32, u128)>,
}

/// Reads the wanted columns of the source again for what `want` looks for.
#[allow(clippy::too_many_arguments)]
fn settle_read(
    src: &Source,
    want: &Wanted,
    names: &[String],
    row_keys: &BTreeMap<String, Vec<String>>,
    settings: &Settings,
    seed: u64,
    jobs: usize,
    found: &mut Found,
) -> anyhow::Result<()> {
    let wanted = |t: &str| want.columns.contains_key(t);
    let column = |table: &str, id: u32| names[id as usize][table.len() + 1..].to_string();
    // a database is asked for the row key and the wanted columns alone
    let narrow = |t: &str| {
        let mut cols = row_keys.get(t).cloned().unwrap_or_default();
        // a table known by position is read whole, in the order it was first read
        if cols.is_empty() {
            return None;
        }
        for &(_, _, id) in want.columns.get(t)? {
            let c = column(t, id);
            if !cols.contains(&c) {
                cols.push(c);
            }
        }
        Some(cols)
    };
    let table = |name: &str, columns: &[String]| ReTable {
        searched: want
            .columns
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|(_, norm, id)| {
                let at = columns.iter().position(|c| *c == column(name, *id))?;
                Some((at, norm.clone(), *id))
            })
            .collect(),
        key: row_keys
            .get(name)
            .and_then(|k| positions(columns, k))
            .unwrap_or_default(),
        rows: want.rows.get(name),
    };
    let work = |t: &ReTable, batch: &[u8], first: u64| {
        let mut s = Scratch::default();
        let mut key = Vec::new();
        let mut fields: Vec<&[u8]> = Vec::new();
        let (mut conf, mut surv) = (Vec::new(), Vec::new());
        let mut reader = Rows::new(batch);
        let mut ordinal = first;
        while let Some((_, plain)) = reader.next_row(&mut fields) {
            ordinal += 1;
            // the row's hash, worked out only for a row holding a wanted value
            let mut row: Option<Option<u128>> = None;
            row_forms(
                &reader,
                plain,
                &fields,
                &t.searched,
                settings.min_length,
                seed,
                &mut s,
                &mut |h, id, _| {
                    if want.maybe.contains(&h) {
                        conf.push((h, id));
                    }
                    if !want.hashes.contains(&h) {
                        return;
                    }
                    let r = *row.get_or_insert_with(|| {
                        let h = row_hash(&fields, &t.key, ordinal - 1, seed, &mut key);
                        t.rows.is_some_and(|rows| rows.contains(&h)).then_some(h)
                    });
                    if let Some(r) = r {
                        surv.push((r, id, h));
                    }
                },
            );
        }
        (conf, surv)
    };
    par_read(src, &wanted, &narrow, jobs, &table, &work, &mut |step| {
        if let Step::Rows((conf, surv)) = step {
            for (h, id) in conf {
                found.confirmed.entry(h).or_insert(id);
            }
            found.survivors.extend(surv);
        }
        Ok(())
    })
}

/// Settles the output's hits. A Bloom hit is confirmed (and given its source column)
/// by reading the source again; a value equal to one of its own column's source values
/// is a leak if that source row held it (the same row key, or the same position when
/// the table has none) and a coincidence if another did.
///
/// The read is of the hit columns' own source columns first: a generated value that
/// happens to be another row's is settled there, and the whole source is read again
/// only for Bloom hits still unconfirmed (a false positive, or a value from elsewhere).
#[allow(clippy::too_many_arguments)]
fn settle(
    src: &Source,
    hits: Vec<(String, String, Hit)>,
    unsettled: BTreeMap<(String, String), u64>,
    row_keys: &BTreeMap<String, Vec<String>>,
    searched: &HashMap<String, Searched>,
    names: &[String],
    settings: &Settings,
    seed: u64,
    jobs: usize,
) -> anyhow::Result<Settled> {
    let own = |table: &str, column: &str, c: u32| {
        let n = &names[c as usize];
        n.len() == table.len() + 1 + column.len()
            && n.starts_with(table)
            && n.ends_with(column)
            && n.as_bytes()[table.len()] == b'.'
    };
    let mut maybe: HashSet<u128> = HashSet::default();
    let mut hashes: HashSet<u128> = HashSet::default();
    let mut rows: HashMap<String, HashSet<u128>> = HashMap::default();
    // the hit columns' own source columns, per table
    let mut own_columns: HashMap<String, Searched> = HashMap::default();
    for (table, column, hit) in &hits {
        let check_row = match hit.found {
            leak::Found::Maybe => {
                maybe.insert(hit.hash);
                true
            }
            leak::Found::Column(c) => own(table, column, c),
            leak::Found::No => false,
        };
        if !check_row {
            continue;
        }
        hashes.insert(hit.hash);
        rows.entry(table.clone()).or_default().insert(hit.row);
        let cols = own_columns.entry(table.clone()).or_default();
        for (i, norm, id) in searched.get(table).into_iter().flatten() {
            if own(table, column, *id) && !cols.iter().any(|c| c.2 == *id) {
                cols.push((*i, norm.clone(), *id));
            }
        }
    }
    own_columns.retain(|_, cols| !cols.is_empty());
    let mut found = Found::default();
    if !own_columns.is_empty() {
        let want = Wanted {
            maybe: &maybe,
            hashes: &hashes,
            rows: &rows,
            columns: &own_columns,
        };
        settle_read(
            src, &want, names, row_keys, settings, seed, jobs, &mut found,
        )?;
    }
    maybe.retain(|h| !found.confirmed.contains_key(h));
    if !maybe.is_empty() {
        // what is left is in no hit column's own column: only its confirmation matters
        let none = HashSet::default();
        let want = Wanted {
            maybe: &maybe,
            hashes: &none,
            rows: &rows,
            columns: searched,
        };
        settle_read(
            src, &want, names, row_keys, settings, seed, jobs, &mut found,
        )?;
    }
    let Found {
        confirmed,
        survivors,
    } = found;
    // one verdict a cell (an address and its local part are one finding): a leak if
    // any of its hits is one, else chance if any is
    let mut out = Settled::default();
    let mut cells = hits.into_iter().peekable();
    while let Some((table, column, first)) = cells.next() {
        let mut cell = vec![first];
        while let Some((_, _, next)) =
            cells.next_if(|(t, c, h)| *t == table && *c == column && h.row == cell[0].row)
        {
            cell.push(next);
        }
        let mut verdict: Option<(bool, LeakHit)> = None;
        for hit in cell {
            let c = match hit.found {
                leak::Found::Column(c) => Some(c),
                _ => confirmed.get(&hit.hash).copied(),
            };
            let Some(c) = c else {
                out.unconfirmed += 1;
                continue;
            };
            let chance = own(&table, &column, c) && !survivors.contains(&(hit.row, c, hit.hash));
            if verdict
                .as_ref()
                .is_none_or(|(was_chance, _)| *was_chance && !chance)
            {
                let example = LeakHit {
                    table: table.clone(),
                    column: column.clone(),
                    row: hit.label,
                    source_column: names[c as usize].clone(),
                    masked: hit.masked,
                };
                verdict = Some((chance, example));
            }
        }
        if let Some((chance, example)) = verdict {
            let into = if chance {
                &mut out.coincidences
            } else {
                &mut out.leaks
            };
            tally(into.entry((table, column)).or_default(), 1, [example]);
        }
    }
    for (at, n) in unsettled {
        tally(out.leaks.entry(at).or_default(), n, []);
    }
    Ok(out)
}

/// Tables and columns of SRC that the output should have (all but skipped ones) against
/// what DST has.
fn schema_differences(config: &Config, src: &[SourceTable], dst: &[SourceTable]) -> Vec<String> {
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
///
/// `jobs` threads scan at once (at least one). Reading a live database needs the
/// multi-threaded tokio runtime.
pub async fn verify(
    config: &Config,
    key: &Key,
    settings: &Settings,
    src: &Source,
    dst: &Source,
    jobs: usize,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let (src_name, dst_name) = (source_name(src), source_name(dst));
    let src_tables = src.tables();
    crate::anonymize::guard::check_coverage(config, &src_tables)?;
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
    let fks = dst.foreign_keys().to_vec();
    let (searched, names) = searched(config, &src_tables);
    let mut set = leak::LeakSet::new(seed, settings.leak_exact_max, settings.bloom_mb);
    let source = read_source(src, config, settings, &searched, &fks, seed, jobs, &mut set)?;
    let typed = valid_input::plan(config, dst);
    let mut output = read_output(dst, config, settings, &set, &fks, &typed, seed, jobs)?;
    let reference_checks =
        reference::settle(src, settings, seed, &mut output.hits, |h| h.hash).await?;
    let settled = settle(
        src,
        std::mem::take(&mut output.hits),
        std::mem::take(&mut output.unsettled),
        &output.row_keys,
        &searched,
        &names,
        settings,
        seed,
        jobs,
    )?;

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
    let hit_total: u64 = settled.leaks.values().map(|(n, _)| n).sum();
    let sources = |ex: &[LeakHit]| {
        ex.iter()
            .map(|h| h.source_column.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join(", ")
    };
    for ((table, column), (n, ex)) in &settled.leaks {
        checks.push(row(
            Status::Fail,
            "leak",
            table,
            Some(column),
            Some(*n as f64),
            Some(0.0),
            match ex.first() {
                Some(first) => format!(
                    "{n} value(s) of the source found here (from {}), e.g. row {}",
                    sources(ex),
                    first.row
                ),
                None => format!(
                    "{n} value(s) of the source found here, past the {HIT_RECORDS} hits a run settles"
                ),
            },
        ));
    }
    checks.extend(reference_checks);
    checks.extend(schema::parity(config, src, dst).await?);
    if let Some(c) = objects::check(dst).await? {
        checks.push(c);
    }
    checks.extend(objects::comments(dst));
    if settled.leaks.is_empty() {
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
    // new values that equal other rows' source values
    for ((table, column), (n, ex)) in &settled.coincidences {
        let rows = output.tables.get(table).map_or(0, |t| t.rows).max(1);
        let th = settings.for_column(&format!("{table}.{column}"));
        let rate = *n as f64 / rows as f64;
        checks.push(row(
            Status::of(rate, th.coincidence_rate),
            "coincidence",
            table,
            Some(column),
            Some(rate),
            Some(th.coincidence_rate),
            format!(
                "{n} of {rows} row(s) got a new value that is another row's source value (of {}), e.g. row {}: chance, for a generator with few values to draw from; none is the value its own row had",
                sources(ex),
                ex.first().map_or("", |h| h.row.as_str())
            ),
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

    checks.extend(valid_input::checks(&typed, &output.invalid));

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
        checks.extend(own_row::checks(&s.name, tc, src_t, out_t));
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
                            "{} / {} / {}",
                            stats::show(stats::quantile(v, 0.05), a.unit),
                            stats::show(stats::quantile(v, 0.5), a.unit),
                            stats::show(stats::quantile(v, 0.95), a.unit)
                        )
                    };
                    let (labels, hx, hy) = stats::histograms(x, y, 20, a.unit);
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
                // the chart ends at the longest value of either side
                let used = (0..stats::LENGTH_BUCKETS)
                    .rev()
                    .find(|&i| a.lengths[i] > 0.0 || b.lengths[i] > 0.0)
                    .map_or(1, |i| i + 1);
                put(
                    "length_tvd",
                    stats::tvd(&a.lengths, &b.lengths),
                    th.length_tvd,
                    "string lengths".into(),
                    Some(Chart {
                        labels: (0..used).map(stats::length_label).collect(),
                        source: a.lengths[..used].to_vec(),
                        output: b.lengths[..used].to_vec(),
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

    // integrity: orphans and fan-out from the ordered walk of each foreign key's hashes
    let fanout = |keys: SortedKeys| -> anyhow::Result<Vec<f64>> {
        let mut walk = keys.counted()?;
        let mut v = Vec::new();
        while let Some((_, n)) = walk.next_run()? {
            if v.len() == FANOUT_SAMPLE {
                break;
            }
            v.push(n as f64);
        }
        v.sort_by(f64::total_cmp);
        Ok(v)
    };
    let mut source_children = source.children.into_iter();
    let walks = output.children.into_iter().zip(output.parents);
    for (fk, (children, parents)) in fks.iter().zip(walks) {
        let mut kids = children.counted()?;
        let mut parents = parents.counted()?;
        let mut parent = parents.next_run()?;
        let (mut orphans, mut y) = (0u64, Vec::new());
        while let Some((k, n)) = kids.next_run()? {
            while parent.is_some_and(|(p, _)| p < k) {
                parent = parents.next_run()?;
            }
            if parent.is_none_or(|(p, _)| p != k) {
                orphans += n;
            }
            if y.len() < FANOUT_SAMPLE {
                y.push(n as f64);
            }
        }
        y.sort_by(f64::total_cmp);
        let parent_cols = fk.parent_columns.join(", ");
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
            if orphans == 0 {
                format!("{}: every row refers to a {} row", fk.name, fk.parent)
            } else {
                {
                    // names quoted, so the SQL runs for `"Billing Dept"."Invoice Lines"` too
                    let q = |cs: &[String], prefix: &str| {
                        cs.iter()
                            .map(|c| format!("{prefix}{}", crate::pg::quote_ident(c)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    format!(
                        "{}: {orphans} row(s) refer to no {}({parent_cols}); list them with SELECT {} FROM {} c WHERE ({}) IS NOT NULL AND NOT EXISTS (SELECT FROM {} p WHERE ({}) = ({}))",
                        fk.name,
                        fk.parent,
                        q(&fk.columns, ""),
                        crate::pg::quote_qualified(&fk.table),
                        q(&fk.columns, "c."),
                        crate::pg::quote_qualified(&fk.parent),
                        q(&fk.parent_columns, "p."),
                        q(&fk.columns, "c."),
                    )
                }
            },
        ));
        let x = match source_children.next() {
            Some(keys) => fanout(keys)?,
            None => Vec::new(),
        };
        if !x.is_empty() && !y.is_empty() {
            let (labels, hx, hy) = stats::histograms(&x, &y, 20, None);
            let ks = stats::ks(&x, &y);
            let mut r = row(
                Status::of(ks, settings.thresholds.fanout_ks),
                "fanout_ks",
                &fk.table,
                Some(&fk.columns.join(",")),
                Some(ks),
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
    for k in dst.unique_keys() {
        let id = format!("{}.{}", k.table, k.name);
        let n = output.duplicates.get(&id).copied().unwrap_or_default();
        let cols = k.columns.join(", ");
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
                format!(
                    "{}: {n} row(s) repeat another's key; list them with SELECT {cols}, count(*) FROM {} GROUP BY {cols} HAVING count(*) > 1",
                    k.name, k.table
                )
            },
        ));
    }

    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    let examples = settled
        .leaks
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
            unconfirmed: settled.unconfirmed,
            coincidences: settled.coincidences.values().map(|(n, _)| n).sum(),
            cells_scanned: output.cells,
            hits: hit_total,
            examples,
        },
        samples,
        checks,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_split_with_their_escapes_noticed_crlf_and_empty_lines_dropped() {
        let batch = "1\tana\tx\n\n2\t\\N\tb\\tc\r\n3\t\t\r\n\r\n4\tMaría\n".as_bytes();
        let mut rows = Rows::new(batch);
        assert!(rows.utf8);
        let mut fields = Vec::new();
        let mut got = Vec::new();
        while let Some((line, plain)) = rows.next_row(&mut fields) {
            let f: Vec<String> = fields
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            got.push((String::from_utf8_lossy(line).into_owned(), plain, f));
        }
        let row = |line: &str, plain: bool, f: &[&str]| {
            (
                line.to_string(),
                plain,
                f.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            got,
            [
                row("1\tana\tx", true, &["1", "ana", "x"]),
                row("2\t\\N\tb\\tc", false, &["2", "\\N", "b\\tc"]),
                row("3\t\t", true, &["3", "", ""]),
                row("4\tMaría", true, &["4", "María"]),
            ]
        );
        // a field of a valid batch is its own text; a batch that is not is read lossily
        let v = std::borrow::Cow::Borrowed("María".as_bytes());
        assert_eq!(rows.text(&v), "María");
        let bad = Rows::new(b"1\t\xff\n");
        assert!(!bad.utf8);
        let v = std::borrow::Cow::Borrowed(&b"\xff"[..]);
        assert_eq!(bad.text(&v), "\u{fffd}");
    }

    #[test]
    fn text_decodes_with_a_check_what_is_not_a_whole_piece_of_a_utf8_batch() {
        let batch = "María\tx\n".as_bytes();
        let rows = Rows::new(batch);
        // a piece of the batch cut inside the "í": not taken as text unchecked
        let cut = std::borrow::Cow::Borrowed(&batch[0..4]);
        assert_eq!(rows.text(&cut), "Mar\u{fffd}");
        // a slice from elsewhere, not valid UTF-8
        let elsewhere = [0xffu8, b'a'];
        let other = std::borrow::Cow::Borrowed(&elsewhere[..]);
        assert_eq!(rows.text(&other), "\u{fffd}a");
        let whole = std::borrow::Cow::Borrowed(&batch[0..6]);
        assert_eq!(rows.text(&whole), "María");
    }
}
