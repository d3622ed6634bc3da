//! Row generation: a pure function of (profile, seed, scale, anchor).
//!
//! Every value of row `i` of entity `e`, column `c` comes from a ChaCha8 stream keyed by
//! blake3(seed, profile, e, i) on a stream chosen by `c`, so a value never depends on
//! another entity, another row or another column's draws: adding an entity, a column or a
//! row leaves every other value as it was. Ids are UUIDv5 of (profile, entity, natural
//! key). Mixes are exact: every cycle of `sum(weights)` rows holds each value exactly
//! `weight` times, in an order shuffled per cycle.

use std::fmt::Write as _;

use fake::faker::lorem::en::Word;
use fake::Fake;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use super::locale;
use super::profile::{
    Bound, BoundBase, Column, Entity, Gen, LoremUnit, Modifier, Part, Profile, Template, TimeKind,
    Var,
};

/// Namespace of every UUIDv5 dataforge derives for seeded rows.
pub const ID_NAMESPACE: Uuid = Uuid::from_bytes([
    0x6d, 0x1c, 0x2a, 0x5e, 0x3b, 0x1f, 0x4e, 0x8a, 0x9c, 0x41, 0x0f, 0x7d, 0x25, 0x66, 0xd3, 0x10,
]);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedOptions {
    pub seed: u64,
    pub scale: u32,
    /// Days since 1970-01-01.
    pub anchor: i64,
}

/// One generated table: `columns[0]` is the id column; values are text as COPY takes
/// them, `None` for NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub entity: String,
    pub name: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// Every table of a profile, in the profile's (foreign-key) order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub tables: Vec<Table>,
}

impl Dataset {
    pub fn row_count(&self) -> usize {
        self.tables.iter().map(|t| t.rows.len()).sum()
    }

    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("{entity}.{column}: no {parent} row matches {filter} to refer to")]
    NoParent {
        entity: String,
        column: String,
        parent: String,
        filter: String,
    },
}

/// Generates every table of `profile`.
pub fn generate(profile: &Profile, opts: &SeedOptions) -> Result<Dataset, GenError> {
    let master = blake3::derive_key(
        "dataforge seed v1 row streams",
        format!("{}\0{}", profile.name, opts.seed).as_bytes(),
    );
    let mut tables: Vec<Table> = Vec::with_capacity(profile.entities.len());
    for entity in &profile.entities {
        let table = generate_entity(profile, entity, opts, &master, &tables)?;
        tables.push(table);
    }
    Ok(Dataset { tables })
}

struct EntityRun<'a> {
    profile: &'a Profile,
    entity: &'a Entity,
    key: [u8; 32],
    parents: &'a [Table],
    /// Per column: eligible parent rows for a ref column.
    eligible: Vec<Vec<usize>>,
    /// Per column: the cached shuffled cycle for mixes and NULL shares.
    cycles: Vec<Option<(u64, Vec<u32>)>>,
    null_cycles: Vec<Option<(u64, Vec<u32>)>>,
    column_streams: Vec<u64>,
    anchor_secs: i64,
}

fn generate_entity(
    profile: &Profile,
    entity: &Entity,
    opts: &SeedOptions,
    master: &[u8; 32],
    parents: &[Table],
) -> Result<Table, GenError> {
    let key = *blake3::keyed_hash(master, entity.name.as_bytes()).as_bytes();
    let mut eligible = Vec::with_capacity(entity.columns.len());
    for c in &entity.columns {
        eligible.push(match &c.gen {
            Gen::Ref {
                entity: pe,
                filter,
                childless,
            } => {
                let parent = &parents[*pe];
                let mut rows: Vec<usize> = match filter {
                    Some((pc, values)) => (0..parent.rows.len())
                        .filter(|&r| {
                            parent.rows[r][pc + 1]
                                .as_deref()
                                .map(|v| values.iter().any(|w| w == v))
                                .unwrap_or(false)
                        })
                        .collect(),
                    None => (0..parent.rows.len()).collect(),
                };
                let keep = rows.len().saturating_sub(*childless as usize);
                rows.truncate(keep);
                if rows.is_empty() {
                    return Err(GenError::NoParent {
                        entity: entity.name.clone(),
                        column: c.name.clone(),
                        parent: parent.entity.clone(),
                        filter: match filter {
                            Some((pc, v)) => format!(
                                "{} in [{}]",
                                profile.entities[*pe].columns[*pc].name,
                                v.join(", ")
                            ),
                            None => "anything".into(),
                        },
                    });
                }
                rows
            }
            _ => Vec::new(),
        });
    }
    let column_streams = entity
        .columns
        .iter()
        .map(|c| {
            let h = blake3::hash(c.name.as_bytes());
            u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
        })
        .collect();
    let mut run = EntityRun {
        profile,
        entity,
        key,
        parents,
        eligible,
        cycles: vec![None; entity.columns.len()],
        null_cycles: vec![None; entity.columns.len()],
        column_streams,
        anchor_secs: opts.anchor * 86_400,
    };
    let count = entity.count_at(opts.scale) as usize;
    let mut rows = Vec::with_capacity(count);
    let mut scratch = RowScratch {
        parent_rows: vec![None; entity.columns.len()],
    };
    for i in 0..count {
        rows.push(run.row(i, &mut scratch));
    }
    let mut columns = Vec::with_capacity(entity.columns.len() + 1);
    columns.push(entity.id_column.clone());
    columns.extend(entity.columns.iter().map(|c| c.name.clone()));
    Ok(Table {
        entity: entity.name.clone(),
        name: entity.table.clone(),
        columns,
        rows,
    })
}

struct RowScratch {
    /// For each ref column of the current row: the parent row chosen.
    parent_rows: Vec<Option<usize>>,
}

impl EntityRun<'_> {
    fn row(&mut self, i: usize, scratch: &mut RowScratch) -> Vec<Option<String>> {
        let row_seed = *blake3::keyed_hash(&self.key, &(i as u64).to_le_bytes()).as_bytes();
        let n_cols = self.entity.columns.len();
        // values[0] is the id, filled once the key is known
        let mut values: Vec<Option<String>> = Vec::with_capacity(n_cols + 1);
        values.push(None);
        scratch.parent_rows.iter_mut().for_each(|p| *p = None);
        let entity = self.entity;
        for (ci, column) in entity.columns.iter().enumerate() {
            if entity.key.is_some_and(|k| k + 1 == ci) || (entity.key.is_none() && ci == 0) {
                values[0] = Some(self.id(i, &values));
            }
            let mut rng = ChaCha8Rng::from_seed(row_seed);
            rng.set_stream(self.column_streams[ci]);
            let column = entity
                .overrides
                .get(i)
                .and_then(|o| o.get(&ci))
                .unwrap_or(column);
            let v = self.value(i, ci, column, &values, scratch, &mut rng);
            values.push(v);
        }
        if values[0].is_none() {
            values[0] = Some(self.id(i, &values));
        }
        values
    }

    fn id(&self, i: usize, values: &[Option<String>]) -> String {
        let natural = match self.entity.key {
            Some(k) => values
                .get(k + 1)
                .cloned()
                .flatten()
                .unwrap_or_else(|| format!("#{}", i + 1)),
            None => format!("#{}", i + 1),
        };
        let name = format!("{}/{}/{}", self.profile.name, self.entity.name, natural);
        Uuid::new_v5(&ID_NAMESPACE, name.as_bytes()).to_string()
    }

    fn value(
        &mut self,
        i: usize,
        ci: usize,
        column: &Column,
        values: &[Option<String>],
        scratch: &mut RowScratch,
        rng: &mut ChaCha8Rng,
    ) -> Option<String> {
        if let Some((wc, allowed)) = &column.when {
            let v = values[wc + 1].as_deref()?;
            if !allowed.iter().any(|a| a == v) {
                return None;
            }
        }
        if let Some((num, den)) = column.nulls {
            if num > 0 {
                let slot = self.cycle_slot(ci, true, den, i);
                if slot < num {
                    return None;
                }
            }
        }
        let mut out = match &column.gen {
            Gen::Null => return None,
            Gen::Const(s) => s.clone(),
            Gen::Template(t) => {
                let mut s = String::new();
                self.render(t, i, values, scratch, rng, &mut s);
                s
            }
            Gen::OneOf(ts) => {
                let t = &ts[rng.random_range(0..ts.len())];
                let mut s = String::new();
                self.render(t, i, values, scratch, rng, &mut s);
                s
            }
            Gen::Mix(items) => {
                let total: u32 = items.iter().map(|(_, w)| w).sum();
                let mut slot = self.cycle_slot(ci, false, total, i);
                let mut chosen = &items[0].0;
                for (v, w) in items {
                    if slot < *w {
                        chosen = v;
                        break;
                    }
                    slot -= w;
                }
                chosen.clone()
            }
            Gen::Ref { entity: pe, .. } => {
                let eligible = &self.eligible[ci];
                let pick = eligible[rng.random_range(0..eligible.len())];
                scratch.parent_rows[ci] = Some(pick);
                return self.parents[*pe].rows[pick][0].clone();
            }
            Gen::Time { from, to, kind } => {
                let lo = self.bound(from, values, scratch)?;
                let hi = self.bound(to, values, scratch)?.max(lo);
                match kind {
                    TimeKind::Date => {
                        let (dlo, dhi) = (lo.div_euclid(86_400), hi.div_euclid(86_400));
                        format_date(rng.random_range(dlo..=dhi))
                    }
                    TimeKind::Timestamp => format_timestamp(rng.random_range(lo..=hi)),
                }
            }
            Gen::Lorem { unit, range } => lorem(*unit, range.clone(), rng),
            Gen::Integer { range } => rng.random_range(range.clone()).to_string(),
        };
        if let Some(len) = column.length {
            fit_length(&mut out, len, rng);
        }
        if let Some(max) = column.max_length {
            if let Some((cut, _)) = out.char_indices().nth(max) {
                out.truncate(cut);
            }
        }
        Some(out)
    }

    /// The position of row `i` within its shuffled cycle of `len` slots.
    fn cycle_slot(&mut self, ci: usize, nulls: bool, len: u32, i: usize) -> u32 {
        let cycle = (i / len as usize) as u64;
        let cache = if nulls {
            &mut self.null_cycles[ci]
        } else {
            &mut self.cycles[ci]
        };
        if cache.as_ref().map(|(c, _)| *c) != Some(cycle) {
            let mut h = blake3::Hasher::new_keyed(&self.key);
            h.update(if nulls { b"nulls" } else { b"mix\0\0" });
            h.update(&(ci as u64).to_le_bytes());
            h.update(&cycle.to_le_bytes());
            let mut rng = ChaCha8Rng::from_seed(*h.finalize().as_bytes());
            let mut perm: Vec<u32> = (0..len).collect();
            for k in (1..perm.len()).rev() {
                let j = rng.random_range(0..=k);
                perm.swap(k, j);
            }
            *cache = Some((cycle, perm));
        }
        let (_, perm) = cache.as_ref().expect("filled above");
        perm[i % len as usize]
    }

    fn bound(&self, b: &Bound, values: &[Option<String>], scratch: &RowScratch) -> Option<i64> {
        for (base, offset) in &b.alternatives {
            let at = match base {
                BoundBase::Anchor => Some(self.anchor_secs),
                BoundBase::Column(c) => values[c + 1].as_deref().and_then(parse_time),
                BoundBase::Parent { via, column } => self
                    .parent_value(*via, *column, scratch)
                    .and_then(parse_time),
            };
            if let Some(t) = at {
                return Some(t + offset);
            }
        }
        None
    }

    fn parent_value(&self, via: usize, column: usize, scratch: &RowScratch) -> Option<&str> {
        let Gen::Ref { entity: pe, .. } = &self.entity.columns[via].gen else {
            return None;
        };
        let row = scratch.parent_rows[via]?;
        self.parents[*pe].rows[row][column + 1].as_deref()
    }

    fn render(
        &self,
        t: &Template,
        i: usize,
        values: &[Option<String>],
        scratch: &RowScratch,
        rng: &mut ChaCha8Rng,
        out: &mut String,
    ) {
        for part in &t.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var(var, mods) => {
                    let mut v = String::new();
                    match var {
                        Var::RowNumber { width } => {
                            let _ = write!(v, "{:0width$}", i + 1, width = *width);
                        }
                        Var::Id => v.push_str(values[0].as_deref().unwrap_or_default()),
                        Var::Column(c) => v.push_str(values[c + 1].as_deref().unwrap_or_default()),
                        Var::Parent { via, column } => v.push_str(
                            self.parent_value(*via, *column, scratch)
                                .unwrap_or_default(),
                        ),
                        Var::List(name) => {
                            if let Some(list) =
                                self.profile.lists.get(name).filter(|l| !l.is_empty())
                            {
                                v.push_str(&list[rng.random_range(0..list.len())]);
                            }
                        }
                        Var::Fake(kind) => {
                            locale::fake_into(&mut v, *kind, self.profile.locale, rng)
                        }
                        Var::Digits(n) => {
                            for _ in 0..*n {
                                v.push(char::from(b'0' + rng.random_range(0..10u8)));
                            }
                        }
                    }
                    if mods.is_empty() {
                        out.push_str(&v);
                        continue;
                    }
                    for m in mods {
                        v = match m {
                            Modifier::Lower => v.to_lowercase(),
                            Modifier::Upper => v.to_uppercase(),
                            Modifier::Slug => {
                                let mut s = String::new();
                                locale::slug_into(&mut s, &v, '-');
                                s
                            }
                            Modifier::Dotted => {
                                let mut s = String::new();
                                locale::slug_into(&mut s, &v, '.');
                                s
                            }
                            Modifier::Year => v.chars().take(4).collect(),
                        };
                    }
                    out.push_str(&v);
                }
            }
        }
    }
}

fn word(rng: &mut ChaCha8Rng) -> &'static str {
    Word().fake_with_rng(rng)
}

fn sentence(rng: &mut ChaCha8Rng, out: &mut String) {
    let n = rng.random_range(4..10);
    for k in 0..n {
        let w = word(rng);
        if k == 0 {
            let mut cs = w.chars();
            if let Some(first) = cs.next() {
                out.extend(first.to_uppercase());
                out.push_str(cs.as_str());
            }
        } else {
            out.push(' ');
            out.push_str(w);
        }
    }
    out.push('.');
}

fn lorem(unit: LoremUnit, range: std::ops::Range<usize>, rng: &mut ChaCha8Rng) -> String {
    let n = rng.random_range(range);
    let mut out = String::new();
    match unit {
        LoremUnit::Words => {
            for k in 0..n {
                if k > 0 {
                    out.push(' ');
                }
                out.push_str(word(rng));
            }
        }
        LoremUnit::Sentences => {
            for k in 0..n {
                if k > 0 {
                    out.push(' ');
                }
                sentence(rng, &mut out);
            }
        }
        LoremUnit::Paragraphs => {
            for k in 0..n {
                if k > 0 {
                    out.push_str("\n\n");
                }
                let sentences = rng.random_range(3..6);
                for s in 0..sentences {
                    if s > 0 {
                        out.push(' ');
                    }
                    sentence(rng, &mut out);
                }
            }
        }
    }
    out
}

/// Pads `s` with words, or cuts it, to exactly `len` characters (never ending in a space).
fn fit_length(s: &mut String, len: usize, rng: &mut ChaCha8Rng) {
    while s.chars().count() < len {
        s.push(' ');
        s.push_str(word(rng));
    }
    if let Some((cut, _)) = s.char_indices().nth(len) {
        s.truncate(cut);
    }
    if s.ends_with(' ') {
        s.pop();
        s.push('.');
    }
}

const UNIX_EPOCH_JULIAN: i32 = 2_440_588;

/// Days since 1970-01-01 as `YYYY-MM-DD`.
pub fn format_date(days: i64) -> String {
    let d = time::Date::from_julian_day(UNIX_EPOCH_JULIAN + days as i32).unwrap_or(time::Date::MIN);
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS+00` (UTC, as COPY reads timestamptz).
pub fn format_timestamp(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}:{:02}+00",
        format_date(days),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Reads back a date or timestamp this module wrote, as seconds since the epoch.
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let date = time::Date::from_calendar_date(
        num(0..4)? as i32,
        time::Month::try_from(num(5..7)? as u8).ok()?,
        num(8..10)? as u8,
    )
    .ok()?;
    let days = i64::from(date.to_julian_day() - UNIX_EPOCH_JULIAN);
    let mut secs = days * 86_400;
    if b.len() >= 19 && (b[10] == b' ' || b[10] == b'T') {
        secs += num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?;
    }
    Some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dates_format_and_parse() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_timestamp(86_400 + 3661), "1970-01-02 01:01:01+00");
        assert_eq!(parse_time("1970-01-02 01:01:01+00"), Some(86_400 + 3661));
        assert_eq!(parse_time("2024-02-29"), Some(19_782 * 86_400));
        assert_eq!(parse_time("garbage"), None);
    }

    proptest! {
        #[test]
        fn timestamps_round_trip(secs in -2_000_000_000i64..4_000_000_000i64) {
            prop_assert_eq!(parse_time(&format_timestamp(secs)), Some(secs));
        }
    }

    #[test]
    fn fit_length_counts_characters_not_bytes() {
        let mut rng = ChaCha8Rng::from_seed([7; 32]);
        let mut s = "Contestație la executare".to_string();
        fit_length(&mut s, 200, &mut rng);
        assert_eq!(s.chars().count(), 200);
        assert!(!s.ends_with(' '));
        let mut long = "ăăăăă".to_string();
        fit_length(&mut long, 3, &mut rng);
        assert_eq!(long, "ăăă");
    }
}
