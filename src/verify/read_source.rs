//! The first read, of the source: every form of every anonymized value hashed into the
//! leak set, the sample and profiles per table, and the foreign-key hashes whose
//! fan-out the output is compared with.

use super::*;

/// The anonymized source columns searched for: (column index, norm, id into the names).
pub(super) type Searched = Vec<(usize, leak::Norm, u32)>;

/// Per table, its searched columns; and the `table.column` name of each id.
pub(super) fn searched(
    config: &Config,
    src: &[SourceTable],
) -> (HashMap<String, Searched>, Vec<String>) {
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
pub(super) struct Scratch {
    pub(super) folded: String,
    pub(super) form: String,
    pub(super) key: Vec<u8>,
}

/// Calls `f(hash, column id, form)` for every form of the searched columns of a row.
#[allow(clippy::too_many_arguments)]
pub(super) fn row_forms(
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
pub(super) fn cell_forms(
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
pub(super) struct SrcTable {
    pub(super) name: String,
    pub(super) columns: Vec<String>,
    pub(super) sampler: Sampler,
    pub(super) searched: Searched,
    /// (foreign key, its columns here) for the foreign keys this table is the child of.
    pub(super) fks: Vec<(usize, Vec<usize>)>,
}

#[derive(Default)]
pub(super) struct SrcBatch {
    pub(super) counts: Counts,
    /// A form is a UUID or a timestamp.
    pub(super) structured: bool,
    pub(super) forms: Vec<(u128, u32)>,
    /// Forms of values already in `forms`, counted but not hashed again, and forms
    /// the worker put in the filter itself.
    pub(super) repeated: u64,
    pub(super) direct: u64,
    pub(super) fks: Vec<Vec<u128>>,
}

/// Everything the source read keeps.
pub(super) struct SourceRead {
    pub(super) tables: BTreeMap<String, TableSummary>,
    /// Child key hashes per foreign key, for the fan-out.
    pub(super) children: Vec<SortedKeys>,
}

/// Reads the source: its forms into `set`, samples and foreign-key children.
pub(super) fn read_source(
    src: &Source,
    run: &Run,
    set: &mut leak::LeakSet,
) -> anyhow::Result<SourceRead> {
    let Run {
        config,
        settings,
        searched,
        fks,
        partitions,
        seed,
        jobs,
        ..
    } = *run;
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
            .filter(|(_, f)| partitions.within(name, &f.table))
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
