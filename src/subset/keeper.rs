//! The keeper: a session in the run's snapshot holding the lists of kept rows, one
//! temporary table per table a target or a reference can reach.

use tokio_postgres::Client;

use super::resolve::Resolved;
use super::Kept;
use crate::pg::{self, quote_ident, quote_literal, PgContext as _};
use crate::source::live::Live;

/// Opens the keeper: a session in the run's snapshot that may hold temporary tables.
pub(super) async fn open(live: &Live) -> anyhow::Result<Client> {
    let c = pg::connect(&live.url).await?;
    let row = c
        .query_one(
            "SELECT pg_is_in_recovery(), current_user::text, current_database()::text",
            &[],
        )
        .await
        .pg(|| "asking whether the source is a standby".into())?;
    let standby: bool = row.get(0);
    let (role, db): (String, String) = (row.get(1), row.get(2));
    if standby {
        anyhow::bail!(
            "{} is a standby (in recovery): a subset is computed in temporary tables on the \
             source, which a standby cannot hold. Point --from at the primary (the slice \
             reads inside one snapshot and creates nothing but its session's temporary \
             tables), or copy without [subset]",
            live.name()
        );
    }
    c.batch_execute(&format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ WRITE; SET TRANSACTION SNAPSHOT {}",
        quote_literal(&live.snapshot)
    ))
    .await
    .pg(|| "joining the source snapshot to compute the subset".into())?;
    // the one thing the keeper needs beyond reading: temporary tables (held in the
    // session's own buffers, set before the first is made, and joined in memory where
    // they fit)
    c.batch_execute(
        "SET temp_buffers = '256MB'; SET work_mem = '64MB'; CREATE TEMP TABLE dataforge_sample (id tid)",
    )
        .await
        .map_err(|e| {
            let hint = if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
            {
                format!(
                    "; a subset keeps its lists of rows in temporary tables of its session \
                     (nothing else is written): GRANT TEMPORARY ON DATABASE {} TO {}",
                    quote_ident(&db),
                    quote_ident(&role)
                )
            } else {
                String::new()
            };
            anyhow::anyhow!("computing the subset: {}{hint}", pg::describe(&e))
        })?;
    Ok(c)
}

/// A list for each table a target or a reference can reach, those tables locked, and
/// the keeper's transaction turned read-only.
pub(super) async fn lists(
    live: &Live,
    keeper: &Client,
    resolved: &Resolved<'_>,
) -> anyhow::Result<Vec<Kept>> {
    let n = live.tables.len();
    let (targets, edges, passthrough) = (&resolved.targets, &resolved.edges, &resolved.passthrough);
    // a list (a temporary table and its index) only for the tables a target or a
    // reference can reach; each of those is locked against a rewrite (VACUUM FULL,
    // CLUSTER) that would move the rows its list names before they are read
    let mut reachable = vec![false; n];
    for (i, _) in targets {
        reachable[*i] = true;
    }
    for e in edges {
        reachable[e.child] = true;
        reachable[e.parent] = true;
    }
    let mut kept = Vec::with_capacity(n);
    let mut lock = Vec::new();
    for (i, t) in live.tables.iter().enumerate() {
        if passthrough[i] {
            kept.push(Kept::All);
            continue;
        }
        if !reachable[i] {
            kept.push(Kept::Empty);
            continue;
        }
        lock.push(t.quoted.clone());
        let temp = format!("pg_temp.dataforge_keep_{i}");
        keeper
                .batch_execute(&format!(
                    "CREATE TEMP TABLE dataforge_keep_{i} (id tid PRIMARY KEY, gen int NOT NULL DEFAULT 0, via int NOT NULL DEFAULT -1)"
                ))
                .await
                .pg(|| format!("keeping the rows of {}", t.table.name))?;
        kept.push(Kept::Listed { temp, rows: 0 });
    }
    // from here on the keeper writes nothing but its temporary tables, which a
    // read-only transaction allows: a condition of the config that would write to
    // the source (a function with side effects) fails instead
    if !lock.is_empty() {
        keeper
            .batch_execute(&format!(
                "LOCK TABLE {} IN ACCESS SHARE MODE",
                lock.join(", ")
            ))
            .await
            .pg(|| "locking the subset's tables against a rewrite".into())?;
    }
    keeper
        .batch_execute("SET TRANSACTION READ ONLY")
        .await
        .pg(|| "preparing the subset's sample".into())?;
    Ok(kept)
}
