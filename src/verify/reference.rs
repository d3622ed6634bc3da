//! Public reference data: a kept column declared `reference = "why"` (film titles, place
//! names, a country list) is published text, and a word of it that equals a person's
//! value elsewhere ("Grace", "Chad") is chance. A leak hit there is dropped when the
//! source's own text of that column holds the same form — the catalogue as published —
//! and stays a leak when it does not, so a personal value planted into a reference column
//! is still found (issue 14: `allow = ["leak"]` switched the whole scan off instead).

use foldhash::{HashMap, HashSet};

use super::leak;
use super::report::{Check, Status};
use super::settings::Settings;
use crate::pg::copy;
use crate::pg::PgContext as _;
use crate::source::dump::{walk, Line};
use crate::source::Source;

/// Forms read at most per column (the rest of a huge column is not a catalogue).
const MAX_FORMS: usize = 2_000_000;

/// The declared reference columns of `src` as `(table, column)`, with their reasons.
pub fn columns(src: &Source, settings: &Settings) -> HashMap<(String, String), String> {
    let mut out = HashMap::default();
    for t in src.tables() {
        for c in &t.columns {
            if let Some(why) = settings
                .columns
                .get(&format!("{}.{c}", t.name))
                .and_then(|s| s.reference.clone())
            {
                out.insert((t.name.clone(), c.clone()), why);
            }
        }
    }
    out
}

/// The hashes of every candidate form of the source's own text in the reference columns,
/// made as the output's cells make theirs.
pub async fn forms(
    src: &Source,
    refs: &HashMap<(String, String), String>,
    min_length: usize,
    seed: u64,
) -> anyhow::Result<HashSet<u128>> {
    let mut set = HashSet::default();
    if refs.is_empty() {
        return Ok(set);
    }
    let add = |raw: &[u8], set: &mut HashSet<u128>| {
        if set.len() >= MAX_FORMS {
            return;
        }
        if let Some(v) = copy::decode_field(raw) {
            let folded = String::from_utf8_lossy(&v).to_lowercase();
            leak::candidates(&folded, min_length, &mut |form, _| {
                set.insert(leak::form_hash(seed, form));
            });
        }
    };
    match src {
        Source::Live(live) => {
            let reader = live.reader().await?;
            for (i, t) in live.tables.iter().enumerate() {
                for c in &t.table.columns {
                    if !refs.contains_key(&(t.table.name.clone(), c.clone())) {
                        continue;
                    }
                    // the column as COPY text, as the output's cells are read
                    let copy_sql = live.copy_columns(i, std::slice::from_ref(c));
                    let stream = reader
                        .copy_out(&copy_sql)
                        .await
                        .pg(|| format!("reading the reference column {}.{c}", t.table.name))?;
                    futures_util::pin_mut!(stream);
                    let mut partial = Vec::new();
                    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
                        partial
                            .extend_from_slice(&chunk.pg(|| "reading a reference column".into())?);
                        let mut start = 0;
                        while let Some(n) = memchr::memchr(b'\n', &partial[start..]) {
                            add(&partial[start..start + n], &mut set);
                            start += n + 1;
                        }
                        partial.drain(..start);
                    }
                }
            }
        }
        Source::Dump(d, _) => {
            let reader = d.reader()?;
            let name = d.name.clone();
            // the reference columns of the block being read
            let mut at: Vec<usize> = Vec::new();
            tokio::task::block_in_place(|| {
                walk(reader, &name, |_, _, line| {
                    match line {
                        Line::Header { table, columns } => {
                            at = (0..columns.len())
                                .filter(|&i| {
                                    refs.contains_key(&(table.clone(), columns[i].clone()))
                                })
                                .collect();
                        }
                        Line::Row(row) if !at.is_empty() => {
                            for (i, f) in copy::split_fields(row).enumerate() {
                                if at.contains(&i) {
                                    add(f, &mut set);
                                }
                            }
                        }
                        _ => {}
                    }
                    Ok(())
                })
            })?;
        }
    }
    Ok(set)
}

/// Drops from `hits` (`(table, column, hit)`, `hash` reading a hit's form hash) those in
/// declared reference columns whose form the column's own source text holds, and returns
/// a `reference` check row per column saying how many were chance.
pub async fn settle<H>(
    src: &Source,
    settings: &Settings,
    seed: u64,
    hits: &mut Vec<(String, String, H)>,
    hash: impl Fn(&H) -> u128,
) -> anyhow::Result<Vec<Check>> {
    let refs = columns(src, settings);
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let published = forms(src, &refs, settings.min_length, seed).await?;
    let mut matches: std::collections::BTreeMap<(String, String), u64> = Default::default();
    hits.retain(|(t, c, h)| {
        let chance = refs.contains_key(&(t.clone(), c.clone())) && published.contains(&hash(h));
        if chance {
            *matches.entry((t.clone(), c.clone())).or_default() += 1;
        }
        !chance
    });
    Ok(matches
        .into_iter()
        .map(|((table, column), n)| {
            let why = refs[&(table.clone(), column.clone())].clone();
            Check {
                status: Status::Pass,
                check: "reference".into(),
                table,
                column: Some(column),
                measured: Some(n as f64),
                threshold: None,
                detail: format!(
                    "{n} word(s) of this published text equal people's values elsewhere, and \
                     the source's own text here holds them: chance ({why})"
                ),
                chart: None,
            }
        })
        .collect())
}
