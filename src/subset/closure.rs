//! The closure, round by round on the keeper: down from the targets through the rows
//! that refer to kept rows (per `children`), then up through every row a kept row
//! refers to, each round joining only what the one before added.

use tokio_postgres::Client;

use super::config::Children;
use super::resolve::Resolved;
use super::{cols, temp, Kept};
use crate::pg::PgContext as _;
use crate::source::live::Live;

/// Follows the references from what the targets kept (`fresh`, per table) until a
/// round adds nothing. Returns the first round of the climb and the last round.
pub(super) async fn close(
    live: &Live,
    keeper: &Client,
    kept: &[Kept],
    resolved: &Resolved<'_>,
    children: Children,
    mut fresh: Vec<u64>,
) -> anyhow::Result<(usize, usize)> {
    let n = live.tables.len();
    let (edges, pks) = (&resolved.edges, &resolved.pks);
    let temp = |i: usize| temp(kept, i);
    let mut total = fresh.clone();
    // down: the rows that refer to kept rows, from the targets on
    let mut gen = 0;
    if children != Children::None {
        loop {
            gen += 1;
            let mut gained = vec![0u64; n];
            for (via, e) in edges.iter().enumerate() {
                let (Some(child), Some(parent)) = (temp(e.child), temp(e.parent)) else {
                    continue;
                };
                if fresh[e.parent] == 0 {
                    continue;
                }
                let (c, p) = (&live.tables[e.child], &live.tables[e.parent]);
                let matching = format!(
                        "{}({}) IN (SELECT {} FROM {} p WHERE p.ctid = ANY(ARRAY(SELECT id FROM {parent} WHERE gen = {})))",
                        e.filter.as_ref().map(|f| format!("({f}) AND ")).unwrap_or_default(),
                        cols("c.", &e.columns),
                        cols("p.", &e.parent_columns),
                        p.only(),
                        gen - 1
                    );
                // rows the list does not hold yet (each query names a row once, so
                // into a list still empty, all are new: no probe per row)
                let new_only = |alias: &str| {
                    if total[e.child] + gained[e.child] == 0 {
                        String::new()
                    } else {
                        format!(" AND NOT EXISTS (SELECT FROM {child} k WHERE k.id = {alias}.ctid)")
                    }
                };
                // (the climb back up this reference is skipped for these rows only
                // when it leads to one row, the one kept)
                let via = if e.unique { via as i64 } else { -1 };
                let sql = match children {
                        // the first N by primary key (by position only without one), so
                        // the same rows on every run, whatever VACUUM moved
                        Children::Max(max) => format!(
                            "INSERT INTO {child} (id, gen, via) SELECT x.ctid, {gen}, {via} FROM (SELECT c.ctid, row_number() OVER (PARTITION BY {} ORDER BY {}) AS n FROM {} c WHERE {matching}) x WHERE x.n <= {max}{} ORDER BY x.ctid",
                            cols("c.", &e.columns),
                            pks.get(&c.table.name)
                                .map_or("c.ctid".to_string(), |pk| cols("c.", pk)),
                            c.only(),
                            new_only("x")
                        ),
                        _ => format!(
                            "INSERT INTO {child} (id, gen, via) SELECT c.ctid, {gen}, {via} FROM {} c WHERE {matching}{} ORDER BY c.ctid",
                            c.only(),
                            new_only("c")
                        ),
                    };
                gained[e.child] += keeper
                    .execute(&sql, &[])
                    .await
                    .pg(|| format!("subset: following {} down", e.name))?;
            }
            for (t, g) in total.iter_mut().zip(&gained) {
                *t += g;
            }
            fresh = gained;
            if fresh.iter().all(|&g| g == 0) {
                break;
            }
        }
    }
    // up: every row a kept row refers to; the first round from all kept rows (and
    // the passthrough tables' rows), then from what the round before added
    let first = gen + 1;
    loop {
        gen += 1;
        let mut gained = vec![0u64; n];
        for (via, e) in edges.iter().enumerate() {
            let Some(parent) = temp(e.parent) else {
                continue;
            };
            let (c, p) = (&live.tables[e.child], &live.tables[e.parent]);
            let new = if gen == first {
                total[e.child]
            } else {
                fresh[e.child]
            };
            let rows = match temp(e.child) {
                Some(_) if new == 0 => continue,
                // a row kept as a child through this very reference refers to a
                // kept row through it: only the others need following
                Some(child) if gen == first => {
                    format!("c.ctid = ANY(ARRAY(SELECT id FROM {child} WHERE via <> {via}))")
                }
                Some(child) => {
                    format!(
                        "c.ctid = ANY(ARRAY(SELECT id FROM {child} WHERE gen = {}))",
                        gen - 1
                    )
                }
                None if gen == first => "true".into(),
                None => continue,
            };
            let sql = format!(
                    "INSERT INTO {parent} (id, gen) SELECT p.ctid, {gen} FROM {} p WHERE ({}) IN (SELECT {} FROM {} c WHERE {}{rows}){} ORDER BY p.ctid",
                    p.only(),
                    cols("p.", &e.parent_columns),
                    cols("c.", &e.columns),
                    c.only(),
                    e.filter.as_ref().map(|f| format!("({f}) AND ")).unwrap_or_default(),
                    if total[e.parent] + gained[e.parent] == 0 {
                        String::new()
                    } else {
                        format!(" AND NOT EXISTS (SELECT FROM {parent} k WHERE k.id = p.ctid)")
                    }
                );
            gained[e.parent] += keeper
                .execute(&sql, &[])
                .await
                .pg(|| format!("subset: following {} up", e.name))?;
        }
        for (t, g) in total.iter_mut().zip(&gained) {
            *t += g;
        }
        fresh = gained;
        if fresh.iter().all(|&g| g == 0) {
            break;
        }
    }
    Ok((first, gen))
}
