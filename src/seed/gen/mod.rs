//! Row generation: a pure function of (profile, seed, scale, anchor).
//!
//! Each entity has a ChaCha8 key derived with blake3 from (seed, profile, entity). Row
//! `i`'s values draw first from their column's slot in the row's shared 64-word block,
//! then from the column's own stream at word `i × 2^20`: no value depends on another
//! entity's draws, another row's, or another column's, so adding an entity leaves every
//! other row as it was, and adding a column leaves the others' values alone. Ids are
//! UUIDv5 of (profile, entity, natural key). Mixes are exact: every cycle of
//! `sum(weights)` rows holds each value exactly `weight` times, in an order shuffled per
//! cycle. Children pick parents in a window around their share of the parent rows, so a
//! different `--scale` re-deals them.
//!
//! Rows stream to a sink ([`stream`]); only entities that others refer to are kept, packed
//! in one buffer each.

use rand::{Rng as _, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use super::dates::*;
pub use super::dates::{format_date, format_timestamp, parse_time};
use super::locale;
use super::lorem::*;
use super::profile::{
    Bound, BoundBase, Column, Entity, Gen, Modifier, Part, Profile, Template, TimeKind, Var,
};

/// Namespace of every UUIDv5 dataforge derives for seeded rows.
pub const ID_NAMESPACE: Uuid = Uuid::from_bytes([
    0x6d, 0x1c, 0x2a, 0x5e, 0x3b, 0x1f, 0x4e, 0x8a, 0x9c, 0x41, 0x0f, 0x7d, 0x25, 0x66, 0xd3, 0x10,
]);

/// Half the width of the window of parents a child row picks from (see `Gen::Ref`).
const REF_WINDOW: usize = 16;

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
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("the row generator stopped because the loader stopped reading")]
    Stopped,
    #[error("the row generator panicked: {0}")]
    Panicked(String),
    #[error("{entity}.{column}: no {parent} row matches {filter} to refer to")]
    NoParent {
        entity: String,
        column: String,
        parent: String,
        filter: String,
    },
}

/// One step of a generation stream.
#[derive(Debug)]
pub enum Event<'a> {
    /// A table starts: its name, columns (the id first) and how many rows follow.
    Begin {
        table: &'a str,
        columns: &'a [String],
        /// Per column: its values never hold a delimiter, quote, backslash, tab or line
        /// break and are never empty, so encoders may copy them as they are.
        plain: &'a [bool],
        rows: u64,
    },
    /// One row: text as COPY takes it, `None` for NULL.
    Row(&'a [Option<String>]),
    /// The table is complete.
    End,
}

/// Generates every table of `profile` in order, handing each row to `sink` as it is
/// made. Only the rows of entities that later entities refer to are kept in memory, so a
/// large seed streams to files or COPY without holding its leaf tables.
pub fn stream<E: From<GenError>>(
    profile: &Profile,
    opts: &SeedOptions,
    mut sink: impl FnMut(Event<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let master = blake3::derive_key(
        "dataforge seed v1 row streams",
        format!("{}\0{}", profile.name, opts.seed).as_bytes(),
    );
    let read = values_read_by_children(profile);
    let mut tables: Vec<Retained> = Vec::with_capacity(profile.entities.len());
    for (e, entity) in profile.entities.iter().enumerate() {
        let table = generate_entity(profile, entity, opts, &master, &tables, &read[e], &mut sink)?;
        tables.push(table);
    }
    Ok(())
}

/// Generates every table of `profile` into memory (tests and small seeds; large ones
/// go through [`stream`]).
pub fn generate(profile: &Profile, opts: &SeedOptions) -> Result<Dataset, GenError> {
    let mut tables: Vec<Table> = Vec::new();
    stream(profile, opts, |ev| {
        match ev {
            Event::Begin {
                table,
                columns,
                rows,
                ..
            } => tables.push(Table {
                entity: String::new(),
                name: table.to_string(),
                columns: columns.to_vec(),
                rows: Vec::with_capacity(rows as usize),
            }),
            Event::Row(r) => tables.last_mut().expect("begun").rows.push(r.to_vec()),
            Event::End => {}
        }
        Ok::<(), GenError>(())
    })?;
    for (t, e) in tables.iter_mut().zip(&profile.entities) {
        t.entity = e.name.clone();
    }
    Ok(Dataset { tables })
}

mod entity;
mod retained;

pub use entity::uuid_v5;
use entity::*;
use retained::*;

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
        fn civil_dates_agree_with_the_time_crate(days in -700_000i64..2_900_000i64) {
            let d = time::Date::from_julian_day(UNIX_EPOCH_JULIAN + days as i32).unwrap();
            prop_assert_eq!(civil_from_days(days), (i64::from(d.year()), d.month() as u32, u32::from(d.day())));
        }

        #[test]
        fn timestamps_round_trip(secs in -2_000_000_000i64..4_000_000_000i64) {
            prop_assert_eq!(parse_time(&format_timestamp(secs)), Some(secs));
        }
    }

    #[test]
    fn parents_keep_just_what_children_read() {
        let p = crate::seed::profile::resolve("demo-firm").unwrap();
        let read = values_read_by_children(&p);
        let kept = |entity: &str| -> Vec<String> {
            let e = p.entities.iter().position(|x| x.name == entity).unwrap();
            let mut names = vec![p.entities[e].id_column.clone()];
            names.extend(p.entities[e].columns.iter().map(|c| c.name.clone()));
            names
                .into_iter()
                .zip(&read[e])
                .filter(|(_, &r)| r)
                .map(|(n, _)| n)
                .collect()
        };
        assert_eq!(kept("firms"), ["id"]);
        assert_eq!(kept("users"), ["id", "role"]);
        assert_eq!(kept("clients"), ["id", "name"]);
        assert_eq!(
            kept("cases"),
            ["id", "opened_at", "closed_at", "case_number"]
        );
        assert!(kept("tasks").is_empty());
        assert!(kept("documents").is_empty());
    }

    #[test]
    fn uuid_v5_matches_the_uuid_crate() {
        for name in ["demo-firm/firms/RO12345678", "", "ș/ț/#42"] {
            let (a, b) = name.as_bytes().split_at(name.len() / 2);
            assert_eq!(
                uuid_v5(&[a, b]),
                Uuid::new_v5(&ID_NAMESPACE, name.as_bytes())
            );
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
