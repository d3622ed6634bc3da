//! The last read, of the source again and only when the output read found something to
//! settle: whether each hit is a leak (the value its own row had), a coincidence
//! (another row's value, held to `coincidence_rate`) or a Bloom false positive.

use super::*;

/// The scan's hits, settled: leaks, coincidences and Bloom hits the source did not
/// confirm.
#[derive(Default)]
pub(super) struct Settled {
    pub(super) leaks: BTreeMap<(String, String), (u64, Vec<LeakHit>)>,
    pub(super) coincidences: BTreeMap<(String, String), (u64, Vec<LeakHit>)>,
    pub(super) unconfirmed: u64,
}

/// Counts `n` more hits and keeps the first [`EXAMPLES`] of them.
pub(super) fn tally(e: &mut (u64, Vec<LeakHit>), n: u64, hits: impl IntoIterator<Item = LeakHit>) {
    e.0 += n;
    let room = EXAMPLES.saturating_sub(e.1.len());
    e.1.extend(hits.into_iter().take(room));
}

/// A table of the source as a settling read sees it.
pub(super) struct ReTable<'a> {
    pub(super) searched: Searched,
    pub(super) key: Vec<usize>,
    pub(super) rows: Option<&'a HashSet<u128>>,
}

/// What a settling read looks for: the Bloom hits to confirm, the hashes of hits whose
/// row matters, and per table the rows they are in and the columns to read.
pub(super) struct Wanted<'a> {
    pub(super) maybe: &'a HashSet<u128>,
    pub(super) hashes: &'a HashSet<u128>,
    pub(super) rows: &'a HashMap<String, HashSet<u128>>,
    pub(super) columns: &'a HashMap<String, Searched>,
}

/// What a settling read found: the column of each confirmed Bloom hit, and which
/// hit rows held which hashes in which column.
#[derive(Default)]
pub(super) struct Found {
    pub(super) confirmed: HashMap<u128, u32>,
    pub(super) survivors: HashSet<(u128, u32, u128)>,
}

/// Reads the wanted columns of the source again for what `want` looks for.
#[allow(clippy::too_many_arguments)]
pub(super) fn settle_read(
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
pub(super) fn settle(
    src: &Source,
    run: &Run,
    hits: Vec<(String, String, Hit)>,
    unsettled: BTreeMap<(String, String), u64>,
    row_keys: &BTreeMap<String, Vec<String>>,
) -> anyhow::Result<Settled> {
    let Run {
        settings,
        searched,
        names,
        seed,
        jobs,
        ..
    } = *run;
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

impl Settled {
    /// The leak scan's summary for the report: what the source's set held, what the
    /// output's cells gave, and how the hits settled.
    pub(super) fn summary(&self, set: &leak::LeakSet, cells_scanned: u64) -> LeakSummary {
        LeakSummary {
            source_forms: set.inserted,
            mode: if set.bloom().is_some() {
                "bloom"
            } else {
                "exact"
            },
            bloom_false_positive_rate: set.bloom().map(|b| b.false_positive_rate()),
            bloom_bytes: set.bloom().map(|b| b.bytes()),
            unconfirmed: self.unconfirmed,
            coincidences: self.coincidences.values().map(|(n, _)| n).sum(),
            cells_scanned,
            hits: self.leaks.values().map(|(n, _)| n).sum(),
            examples: self
                .leaks
                .values()
                .flat_map(|(_, e)| e.iter().cloned())
                .collect(),
        }
    }
}
