//! The second read, of the output: every cell searched for the source's values, the
//! detectors run over kept columns, values checked against their column's type, the
//! sample taken, and the key hashes collected for the unique and foreign-key checks.

use super::*;

/// Findings of one detector in one column.
#[derive(Default)]
pub(super) struct Finding {
    pub(super) count: u64,
    pub(super) samples: Vec<String>,
}

/// How the output read treats a column.
pub(super) struct ColPlan {
    /// Searched for source values.
    pub(super) scan: bool,
    /// Run the detectors over (a kept column).
    pub(super) detect: bool,
    /// Detectors whose findings are accepted here.
    pub(super) allowed: Vec<String>,
    /// The column's type, when its values are checked as valid input for it (anonymized
    /// columns of a file output: a loaded copy was checked by its server).
    pub(super) valid: Option<crate::source::types::ColumnType>,
}

/// A table of the output as the workers see it.
pub(super) struct OutTable {
    pub(super) name: String,
    pub(super) columns: Vec<String>,
    pub(super) sampler: Sampler,
    pub(super) plan: Vec<ColPlan>,
    pub(super) key: Vec<usize>,
    /// (`table.constraint`, its columns here) per unique key.
    pub(super) uniq: Vec<(String, Vec<usize>)>,
    /// (foreign key, its columns here) where this table is the child, and the parent.
    pub(super) child: Vec<(usize, Vec<usize>)>,
    pub(super) parent: Vec<(usize, Vec<usize>)>,
}

/// A source value found in an output cell, settled once the scan is done.
pub(super) struct Hit {
    pub(super) column: usize,
    pub(super) found: leak::Found,
    pub(super) hash: u128,
    pub(super) row: u128,
    pub(super) label: String,
    pub(super) masked: String,
}

#[derive(Default)]
pub(super) struct OutBatch {
    pub(super) counts: Counts,
    pub(super) cells: u64,
    pub(super) hits: Vec<Hit>,
    pub(super) findings: Vec<(usize, &'static str, String)>,
    /// Values invalid for their column's type: (column, example).
    pub(super) invalid: Vec<(usize, String)>,
    pub(super) uniq: Vec<Vec<u128>>,
    pub(super) child: Vec<Vec<u128>>,
    pub(super) parent: Vec<Vec<u128>>,
}

/// Everything the output read keeps.
#[derive(Default)]
pub(super) struct OutputRead {
    pub(super) tables: BTreeMap<String, TableSummary>,
    /// The row key's columns per table: what a row is known by on both sides.
    pub(super) row_keys: BTreeMap<String, Vec<String>>,
    /// (table, column, hit), in reading order.
    pub(super) hits: Vec<(String, String, Hit)>,
    /// Hits past [`HIT_RECORDS`], per column.
    pub(super) unsettled: BTreeMap<(String, String), u64>,
    pub(super) findings: BTreeMap<(String, String, &'static str), Finding>,
    /// Values invalid for their column's type, per column.
    pub(super) invalid: BTreeMap<(String, String), Finding>,
    /// Rows repeating an earlier row's key, per unique key.
    pub(super) duplicates: BTreeMap<String, u64>,
    pub(super) children: Vec<SortedKeys>,
    pub(super) parents: Vec<SortedKeys>,
    pub(super) cells: u64,
}

/// The candidate of `folded` whose hash is `h` (found again to be shown masked).
pub(super) fn candidate_text(folded: &str, min_length: usize, seed: u64, h: u128) -> String {
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
pub(super) struct Seen {
    pub(super) few: Vec<u128>,
    pub(super) many: HashSet<u128>,
}

impl Seen {
    pub(super) fn clear(&mut self) {
        self.few.clear();
        if !self.many.is_empty() {
            self.many.clear();
        }
    }

    /// Whether `h` is new.
    pub(super) fn insert(&mut self, h: u128) -> bool {
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
pub(super) struct Memo<'a> {
    pub(super) seen: HashMap<(usize, &'a [u8]), u32>,
    /// (looked up, found) per column.
    pub(super) tries: Vec<(u32, u32)>,
}

impl<'a> Memo<'a> {
    /// Tries before a column's repeat rate is judged, and the least rate worth keeping.
    const TRIAL: u32 = 128;
    const RATE: u32 = 8;

    pub(super) fn new(columns: usize) -> Memo<'a> {
        Memo {
            seen: HashMap::default(),
            tries: vec![(0, 0); columns],
        }
    }

    pub(super) fn worth(&self, column: usize) -> bool {
        let (tried, found) = self.tries[column];
        tried < Self::TRIAL || found * Self::RATE >= tried
    }

    /// What `raw` gave when last met in `column`, if remembered.
    pub(super) fn known(&mut self, column: usize, raw: &'a [u8]) -> Option<u32> {
        if !self.worth(column) {
            return None;
        }
        let got = self.seen.get(&(column, raw)).copied();
        let t = &mut self.tries[column];
        t.0 += 1;
        t.1 += u32::from(got.is_some());
        got
    }

    pub(super) fn learn(&mut self, column: usize, raw: &'a [u8], gave: u32) {
        if self.worth(column) {
            self.seen.insert((column, raw), gave);
        }
    }
}

/// Rows of a batch whose candidates are all hashed (and their filter blocks
/// prefetched) before any is looked up, so many lookups wait on memory at once.
pub(super) const GROUP: usize = 64;

/// A candidate of an output cell, waiting to be looked up.
pub(super) struct Pending {
    pub(super) hash: u128,
    pub(super) kind: leak::Cand,
    pub(super) row: usize,
    pub(super) column: usize,
}

/// Hashes the candidates of one output cell (case-folded), once each, into `pending`.
#[allow(clippy::too_many_arguments)]
pub(super) fn cell_candidates(
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
pub(super) fn look_up(
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
pub(super) fn read_output(
    dst: &Source,
    run: &Run,
    set: &leak::LeakSet,
    typed: &valid_input::Typed,
) -> anyhow::Result<OutputRead> {
    let Run {
        config,
        settings,
        fks,
        partitions,
        seed,
        jobs,
        ..
    } = *run;
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
                .filter(|(_, f)| partitions.within(name, &f.table))
                .filter_map(|(n, f)| Some((n, positions(columns, &f.columns)?)))
                .collect(),
            parent: fks
                .iter()
                .enumerate()
                .filter(|(_, f)| partitions.within(name, &f.parent))
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
                        if let Err(why) = crate::source::valid::check(ty, &v) {
                            let sample = format!("row {}: {why}", label(&fields, ordinal));
                            b.invalid.push((i, sample));
                        }
                    }
                    // a UUID or timestamp holds nothing but itself, and is only ever a
                    // source value if the source had such values
                    let shaped = detect::structured(crate::pii::trim(&v));
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
