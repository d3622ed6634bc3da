//! Per-table accumulation during a read: the deterministic sample (rows whose keyed
//! hash of the row key is among the smallest), NULL and row counts, and the keyed hashes
//! of row keys and key tuples that the sample and the integrity checks use.

use super::*;

/// How the workers sample a table: the rows whose keyed hash of the row key is among
/// the `sample_rows` smallest (a deterministic sample of bounded size). `cut` is the
/// largest hash still in the sample once it is full, so workers send only rows below.
pub(super) struct Sampler {
    pub(super) key: Vec<usize>,
    pub(super) seed: u64,
    pub(super) cut: AtomicU64,
}

impl Sampler {
    pub(super) fn new(key: Vec<usize>, seed: u64) -> Sampler {
        Sampler {
            key,
            seed,
            cut: AtomicU64::new(u64::MAX),
        }
    }
}

/// A batch's counts and its rows that may join the sample.
#[derive(Default)]
pub(super) struct Counts {
    pub(super) rows: u64,
    pub(super) nulls: Vec<u64>,
    pub(super) sample: Vec<(u64, Vec<u8>)>,
}

impl Counts {
    pub(super) fn row(&mut self, s: &Sampler, line: &[u8], fields: &[&[u8]]) {
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
pub(super) struct TableSummary {
    pub(super) columns: Vec<String>,
    pub(super) rows: u64,
    pub(super) nulls: Vec<u64>,
    pub(super) sampled: usize,
    pub(super) profiles: Vec<Profile>,
    /// The sampled rows, with the hash of their row key: the same row on both sides when
    /// the key is kept, so a row's output can be held against its own source.
    pub(super) lines: Vec<(u64, Vec<u8>)>,
}

/// A table as the merge accumulates it.
pub(super) struct Acc {
    pub(super) name: String,
    pub(super) columns: Vec<String>,
    pub(super) rows: u64,
    pub(super) nulls: Vec<u64>,
    pub(super) heap: BinaryHeap<(u64, Vec<u8>)>,
    pub(super) k: usize,
}

impl Acc {
    pub(super) fn new(name: &str, columns: &[String], k: usize) -> Acc {
        Acc {
            name: name.to_string(),
            columns: columns.to_vec(),
            rows: 0,
            nulls: vec![0; columns.len()],
            heap: BinaryHeap::new(),
            k,
        }
    }

    pub(super) fn add(&mut self, c: Counts, sampler: &Sampler) {
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

    pub(super) fn finish(self, categorical_max: usize) -> (String, TableSummary) {
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
pub(super) fn row_key(
    keys: &[UniqueKey],
    config: &Config,
    table: &str,
    columns: &[String],
) -> Vec<String> {
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
pub(super) fn tuple_hash(
    fields: &[&[u8]],
    idx: &[usize],
    seed: u64,
    buf: &mut Vec<u8>,
) -> Option<u128> {
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
pub(super) fn row_hash(
    fields: &[&[u8]],
    key: &[usize],
    ordinal: u64,
    seed: u64,
    buf: &mut Vec<u8>,
) -> u128 {
    if !key.is_empty() {
        if let Some(h) = tuple_hash(fields, key, seed, buf) {
            return h;
        }
    }
    xxh3_128_with_seed(&ordinal.to_le_bytes(), seed ^ 0x5eed)
}
