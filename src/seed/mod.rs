//! Seeding: profiles ([`profile`]) describe the data, [`gen`] makes it as a pure function
//! of (profile, seed, scale, anchor), and it leaves either as files ([`out`]) or as a
//! plan applied to a database in one transaction ([`load`]).

mod dates;
pub mod gen;
pub mod load;
pub mod locale;
mod lorem;
pub mod out;
pub mod profile;

use serde_json::json;

pub use gen::{generate, Dataset, SeedOptions, Table};
pub use load::{apply, ApplyOptions, LoadError, Outcome, TableCounts};
pub use profile::{resolve, Profile, ProfileError};

/// The per-table counts as `--json` prints them:
/// `{"tables": {"<table>": {"inserted": n, "updated": n, "unchanged": n, "deleted": n}, …}}`
/// plus what was seeded and whether it was a dry run.
pub fn outcome_json(
    profile: &Profile,
    opts: &SeedOptions,
    outcome: &Outcome,
    dry_run: bool,
) -> serde_json::Value {
    let mut tables = serde_json::Map::new();
    for (name, c) in &outcome.tables {
        tables.insert(name.clone(), serde_json::to_value(c).unwrap_or_default());
    }
    json!({
        "profile": profile.name,
        "seed": opts.seed,
        "scale": opts.scale,
        "anchor": gen::format_date(opts.anchor),
        "dry_run": dry_run,
        "migrations_applied": outcome.migrations_applied,
        "tables": tables,
    })
}

/// The plan as a table for people.
pub fn outcome_table(outcome: &Outcome) -> String {
    let width = outcome
        .tables
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut s = format!(
        "{:<width$}  {:>9}  {:>9}  {:>9}  {:>9}\n",
        "table", "inserted", "updated", "unchanged", "deleted"
    );
    for (name, c) in &outcome.tables {
        s.push_str(&format!(
            "{:<width$}  {:>9}  {:>9}  {:>9}  {:>9}\n",
            name, c.inserted, c.updated, c.unchanged, c.deleted
        ));
    }
    s
}
