//! The slice `[subset]` asks for, computed inside the source's snapshot.
//!
//! A session of its own (the *keeper*) joins the run's exported snapshot and keeps, per
//! table, the `ctid`s of the rows the slice holds in a temporary table. The closure is
//! set-based SQL on the server, round by round (each round joins only the rows the
//! previous one added, so a cycle ends when a round adds nothing). The readers stay
//! read-only: each reads a range of a table's pages and asks the keeper which rows of
//! that range are kept, then `COPY`s exactly those by TID. So dataforge holds no key set
//! (memory stays bounded whatever the size), the slice is as consistent as the snapshot,
//! and readers still run in parallel.
//!
//! Why temporary tables on the source rather than key sets streamed to dataforge: the
//! closure's joins then run where the rows are, with the server's hash joins and
//! indexes, and nothing grows with the database on this side. The cost: the keeper's
//! transaction starts read-write to create its temporary tables (then turns read-only:
//! rows into temporary tables are all it writes), so a hot standby, which can hold no
//! temporary table, cannot be the source of a subset; the error says so.
//!
//! `percent` is decided here, by the keyed PRF of each row's primary key (its COPY
//! text, in the session settings every connection pins): the same key and config keep
//! the same rows on every run and machine; another key, another sample.

mod closure;
pub mod config;
mod keeper;
mod place;
mod resolve;
mod targets;

use std::collections::HashMap;

use tokio_postgres::Client;

use crate::anonymize::config::Config;
use crate::anonymize::key::Key;
use crate::pg::{quote_ident, quote_literal, PgContext as _};
use crate::source::live::Live;
use config::Subset;

/// What the slice holds of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// Copied whole (`passthrough`).
    All,
    /// These rows, listed in the keeper's temporary table.
    Listed { temp: String, rows: i64 },
    /// None: no target, passthrough table or reference reaches it.
    Empty,
}

/// Why a table is in the slice, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Why {
    Target,
    Passthrough,
    /// Its rows refer to kept rows (`children`, down from the targets).
    Referring,
    /// Kept rows refer to its rows.
    Referenced,
    /// Neither reached nor passed through: schema only.
    Empty,
}

/// One table of the slice, as `--dry-run` and the report show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableSlice {
    pub table: String,
    pub why: Why,
    pub rows: i64,
    /// The planner's estimate of the table's rows.
    pub rows_estimate: i64,
    /// The kept rows' share of the table's size on disk, estimated.
    pub bytes_estimate: i64,
}

/// The slice of a live source.
pub struct Slice {
    keeper: Client,
    /// By the index of the table in [`Live::tables`].
    pub kept: Vec<Kept>,
    pub tables: Vec<TableSlice>,
    /// Rounds the closure took (the longest chain of references it followed, plus one).
    pub rounds: usize,
    /// Each table's pages as its size says (the statistics' count may be stale, and a
    /// read of a kept table's page range must not hold more TIDs than it can).
    pub pages: Vec<i64>,
}

/// Rows per read of a kept table: the TIDs of one read are sent in its statement.
pub const ROWS_PER_READ: i64 = 50_000;

/// `a, b` of `columns`, each quoted and prefixed (`c.`).
fn cols(prefix: &str, columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| format!("{prefix}{}", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The list of table `i` (its temporary table), if it has one.
fn temp(kept: &[Kept], i: usize) -> Option<String> {
    match &kept[i] {
        Kept::Listed { temp, .. } => Some(temp.clone()),
        Kept::All | Kept::Empty => None,
    }
}

impl Slice {
    /// Computes the slice `subset` asks for inside `live`'s snapshot. Names the config
    /// does not match in the schema are errors at their place in the file.
    pub async fn compute(
        live: &Live,
        config: &Config,
        subset: &Subset,
        key: &Key,
    ) -> anyhow::Result<Slice> {
        for (name, t) in &config.tables {
            if let Some(f) = &t.filter {
                return Err(config
                    .err(
                        f.span(),
                        format!(
                            "{name}: a table's `where` and [subset] both choose rows, and a row \
                             a kept row refers to could be filtered out; move the condition \
                             into a subset target: {{ table = \"{name}\", where = {:?} }}",
                            f.get_ref()
                        ),
                    )
                    .into());
            }
        }
        let keeper = keeper::open(live).await?;
        let resolved = resolve::resolve(live, config, subset, &keeper).await?;
        let mut kept = keeper::lists(live, &keeper, &resolved).await?;
        let fresh = targets::keep(live, config, key, &keeper, &kept, &resolved).await?;
        let (first, gen) =
            closure::close(live, &keeper, &kept, &resolved, subset.children, fresh).await?;
        let n = live.tables.len();
        let targets = &resolved.targets;
        // what each table holds, and its size
        let sizes: HashMap<String, i64> = keeper
            .query(
                "SELECT n.nspname || '.' || c.relname, pg_relation_size(c.oid)
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'",
                &[],
            )
            .await
            .pg(|| "reading the source's table sizes".into())?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let is_target: Vec<bool> = (0..n)
            .map(|i| targets.iter().any(|(t, _)| *t == i))
            .collect();
        let mut tables = Vec::new();
        for (i, k) in kept.iter_mut().enumerate() {
            let t = &live.tables[i];
            let size = sizes.get(&t.table.name).copied().unwrap_or(0);
            let (why, rows) = match k {
                Kept::All => {
                    // counted: the planner's estimate may be stale or, unanalyzed, 0
                    let rows: i64 = keeper
                        .query_one(&format!("SELECT count(*) FROM {}", t.only()), &[])
                        .await
                        .pg(|| format!("counting the rows of {}", t.table.name))?
                        .get(0);
                    (Why::Passthrough, rows)
                }
                Kept::Empty => (Why::Empty, 0),
                Kept::Listed { temp, rows } => {
                    let row = keeper
                        .query_one(
                            &format!(
                                "SELECT count(*), count(*) FILTER (WHERE gen BETWEEN 1 AND {}) FROM {temp}",
                                first - 1
                            ),
                            &[],
                        )
                        .await
                        .pg(|| format!("counting the kept rows of {}", t.table.name))?;
                    *rows = row.get(0);
                    let referring: i64 = row.get(1);
                    let why = if is_target[i] {
                        Why::Target
                    } else if referring > 0 {
                        Why::Referring
                    } else if *rows > 0 {
                        Why::Referenced
                    } else {
                        Why::Empty
                    };
                    (why, *rows)
                }
            };
            let bytes = if t.rows_estimate > 0 {
                (size as f64 * (rows as f64 / t.rows_estimate as f64).min(1.0)) as i64
            } else if why == Why::Passthrough {
                size
            } else {
                0
            };
            tables.push(TableSlice {
                table: t.table.name.clone(),
                why,
                rows,
                rows_estimate: t.rows_estimate,
                bytes_estimate: bytes,
            });
        }
        let pages = live
            .tables
            .iter()
            .map(|t| {
                sizes
                    .get(&t.table.name)
                    .map_or(t.pages, |b| (b + 8191) / 8192)
            })
            .collect();
        Ok(Slice {
            keeper,
            kept,
            tables,
            rounds: gen,
            pages,
        })
    }

    /// The next [`ROWS_PER_READ`] kept rows of `table` whose TIDs fall in the page
    /// range `pages`, past the TID `after`: an array literal (`'{"(0,1)",…}'::tid[]`)
    /// and the last TID, or `None` when there are no more. However the kept
    /// rows cluster, a read holds at most that many.
    pub async fn tids(
        &self,
        table: usize,
        pages: Option<(Option<i64>, Option<i64>)>,
        after: Option<&str>,
    ) -> anyhow::Result<Option<(String, String)>> {
        let Kept::Listed { temp, .. } = &self.kept[table] else {
            return Ok(None);
        };
        let mut conds = vec!["true".to_string()];
        if let Some(a) = after {
            conds.push(format!("id > {}::tid", quote_literal(a)));
        }
        if let Some((from, to)) = pages {
            if let Some(f) = from {
                conds.push(format!("id >= '({f},0)'::tid"));
            }
            if let Some(t) = to {
                conds.push(format!("id < '({t},0)'::tid"));
            }
        }
        let row = self
            .keeper
            .query_one(
                &format!(
                    "SELECT coalesce(cardinality(a), 0)::int8, a::text, a[cardinality(a)]::text
                     FROM (SELECT array_agg(id ORDER BY id) a
                           FROM (SELECT id FROM {temp} WHERE {} ORDER BY id LIMIT {ROWS_PER_READ}) s) l",
                    conds.join(" AND ")
                ),
                &[],
            )
            .await
            .pg(|| "listing the kept rows to read".into())?;
        let n: i64 = row.get(0);
        Ok((n > 0).then(|| {
            (
                format!("{}::tid[]", quote_literal(row.get::<_, &str>(1))),
                row.get(2),
            )
        }))
    }

    /// How many pieces to read table `i` in: about [`ROWS_PER_READ`] kept rows each.
    pub fn reads(&self, i: usize) -> Option<i64> {
        match &self.kept[i] {
            Kept::All => None,
            Kept::Empty => Some(0),
            Kept::Listed { rows, .. } => Some((rows + ROWS_PER_READ - 1) / ROWS_PER_READ),
        }
    }
}
