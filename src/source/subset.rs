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

use std::collections::HashMap;

use tokio_postgres::Client;

use super::live::Live;
use crate::anonymize::config::Config;
use crate::anonymize::key::Key;
use crate::anonymize::subset::{Children, Subset};
use crate::pg::{self, quote_ident, quote_literal, PgContext as _};

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

/// A reference the closure follows: `child.columns` hold `parent.parent_columns`, on
/// the child rows matching `filter`.
#[derive(Debug)]
struct Edge {
    name: String,
    child: usize,
    columns: Vec<String>,
    parent: usize,
    parent_columns: Vec<String>,
    filter: Option<String>,
    /// The parent columns are a unique key (a declared foreign key's are): a child
    /// row refers to one row through it.
    unique: bool,
}

fn cols(prefix: &str, columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| format!("{prefix}{}", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where in `condition` the server's error `e` points, as a character index: the
/// statement is `head`, `(`, the condition, then the rest.
fn position(e: &tokio_postgres::Error, head: &str, condition: &str) -> Option<usize> {
    e.as_db_error()
        .and_then(|d| match d.position() {
            Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p as usize),
            _ => None,
        })
        // 1-based, and the condition follows the head's `(`
        .and_then(|p| p.checked_sub(head.chars().count() + 2))
        .filter(|&i| i < condition.chars().count())
}

/// An error of the server about a `where` the config gives (in `span`, a quoted
/// string), placed at the character it points to (exact for a condition without
/// escapes), or at the string.
fn placed(
    config: &Config,
    span: &std::ops::Range<usize>,
    what: &str,
    head: &str,
    condition: &str,
    e: tokio_postgres::Error,
) -> anyhow::Error {
    let offset = position(&e, head, condition);
    let at = span.start
        + 1
        + offset.map_or(0, |i| {
            condition
                .char_indices()
                .nth(i)
                .map_or(condition.len(), |(b, _)| b)
        });
    anyhow::Error::new(config.err(
        at..at,
        format!(
            "{what}: the server rejects {condition:?}{}: {}",
            offset.map_or(String::new(), |i| format!(" at character {}", i + 1)),
            pg::describe(&e)
        ),
    ))
}

/// An error of the server about a target's statement: placed in its `where` when it
/// points there, else at the target, quoting what it was given.
fn rejected(
    config: &Config,
    target: &crate::anonymize::subset::Target,
    head: &str,
    e: tokio_postgres::Error,
) -> anyhow::Error {
    let what = format!("subset target {}", target.table);
    let condition = target.filter.as_deref().unwrap_or("true");
    if let Some(span) = &target.filter_span {
        if !head.is_empty() && position(&e, head, condition).is_some() {
            return placed(config, span, &what, head, condition, e);
        }
    }
    let mut given = Vec::new();
    if let Some(f) = &target.filter {
        given.push(format!("where = {f:?}"));
    }
    if let Some(o) = &target.order {
        given.push(format!("order = {o:?}"));
    }
    anyhow::Error::new(config.err(
        target.span.clone(),
        format!(
            "{what}: the server rejects it{}: {}",
            if given.is_empty() {
                String::new()
            } else {
                format!(" ({})", given.join(", "))
            },
            pg::describe(&e)
        ),
    ))
}

/// Every table of the source by its qualified name, partitioned tables standing for
/// their leaf partitions.
async fn names(live: &Live, keeper: &Client) -> anyhow::Result<HashMap<String, Vec<usize>>> {
    let mut out: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, t) in live.tables.iter().enumerate() {
        out.entry(t.table.name.clone()).or_default().push(i);
    }
    let parts = keeper
        .query(
            "SELECT n.nspname || '.' || c.relname,
                    array(SELECT ln.nspname || '.' || l.relname
                          FROM pg_partition_tree(c.oid) t JOIN pg_class l ON l.oid = t.relid
                          JOIN pg_namespace ln ON ln.oid = l.relnamespace
                          WHERE t.isleaf ORDER BY 1)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'p'",
            &[],
        )
        .await
        .pg(|| "reading the source's partitioned tables".into())?;
    for r in parts {
        let leaves: Vec<String> = r.get(1);
        let idx: Vec<usize> = leaves
            .iter()
            .filter_map(|l| out.get(l).and_then(|v| v.first().copied()))
            .collect();
        // a partitioned table with no partition holds no rows to keep or refer to
        if !idx.is_empty() {
            out.insert(r.get(0), idx);
        }
    }
    Ok(out)
}

/// The primary key columns of each table, by qualified name.
async fn primary_keys(keeper: &Client) -> anyhow::Result<HashMap<String, Vec<String>>> {
    Ok(keeper
        .query(
            "SELECT n.nspname || '.' || c.relname,
                    array(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                          JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n
                          ORDER BY u.i)
             FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE k.contype = 'p'",
            &[],
        )
        .await
        .pg(|| "reading the source's primary keys".into())?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Opens the keeper: a session in the run's snapshot that may hold temporary tables.
async fn keeper(live: &Live) -> anyhow::Result<Client> {
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
        let keeper = keeper(live).await?;
        let names = names(live, &keeper).await?;
        let find = |table: &str, span: &std::ops::Range<usize>, what: &str| {
            names.get(table).cloned().ok_or_else(|| {
                let mut known: Vec<&String> = names.keys().collect();
                known.sort();
                let close = known
                    .iter()
                    .min_by_key(|k| crate::anonymize::transformers::strsim_distance(k, table))
                    .filter(|k| crate::anonymize::transformers::strsim_distance(k, table) <= 3)
                    .map(|k| format!(" (did you mean {k}?)"))
                    .unwrap_or_default();
                config.err(
                    span.clone(),
                    format!("{what}: the source has no table {table}{close}"),
                )
            })
        };
        let column =
            |i: &[usize], table: &str, c: &str, span: &std::ops::Range<usize>, what: &str| {
                let cols = &live.tables[i[0]].table.columns;
                if cols.iter().any(|x| x == c) {
                    Ok(())
                } else {
                    Err(config.err(
                        span.clone(),
                        format!(
                            "{what}: {table} has no column {c:?}; its columns are {}",
                            cols.join(", ")
                        ),
                    ))
                }
            };
        let n = live.tables.len();
        // a table the config truncates or skips has no rows in the copy: the closure
        // neither keeps rows of it nor follows references through it
        let copied: Vec<bool> = live
            .tables
            .iter()
            .map(|t| {
                config
                    .tables
                    .get(&t.table.name)
                    .is_none_or(|c| c.action == crate::anonymize::config::Action::Anonymize)
            })
            .collect();
        let mut passthrough = vec![false; n];
        for (t, span) in &subset.passthrough {
            for i in find(t, span, "[subset] passthrough")? {
                if !copied[i] {
                    return Err(config
                        .err(
                            span.clone(),
                            format!(
                                "[subset] passthrough: the config copies no rows of {t} (its \
                                 action is truncate or skip); leave it out of passthrough"
                            ),
                        )
                        .into());
                }
                passthrough[i] = true;
            }
        }
        let pks = primary_keys(&keeper).await?;
        let mut targets = Vec::new();
        for t in &subset.targets {
            let what = format!("subset target {}", t.table);
            let idx = find(&t.table, &t.table_span, &what)?;
            if t.percent.is_some()
                && !idx
                    .iter()
                    .all(|&i| pks.contains_key(&live.tables[i].table.name))
            {
                return Err(config
                    .err(
                        t.table_span.clone(),
                        format!(
                            "{what}: `percent` samples rows by their primary key, and {} has \
                             none. Give it one (ALTER TABLE {} ADD PRIMARY KEY (…)), or choose \
                             the rows with `where` (and `order` with `limit`)",
                            t.table,
                            pg::quote_qualified(&t.table)
                        ),
                    )
                    .into());
            }
            for i in idx {
                if !copied[i] {
                    return Err(config
                        .err(
                            t.table_span.clone(),
                            format!(
                                "{what}: the config copies no rows of {} (its action is \
                                 truncate or skip)",
                                t.table
                            ),
                        )
                        .into());
                }
                if passthrough[i] {
                    return Err(config
                        .err(
                            t.table_span.clone(),
                            format!(
                                "{what}: {} is also passthrough (copied whole); keep one",
                                t.table
                            ),
                        )
                        .into());
                }
                targets.push((i, t));
            }
        }
        let mut edges: Vec<Edge> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for fk in &live.foreign {
            // a key of or to a partitioned table holds between its partitions: the
            // catalog lists it at the partitioned ends (and again per partition), so
            // each end stands for its partitions, once per pair
            let (Some(children), Some(parents)) = (names.get(&fk.table), names.get(&fk.parent))
            else {
                continue;
            };
            for &c in children.iter().filter(|&&c| copied[c]) {
                for &p in parents.iter().filter(|&&p| copied[p]) {
                    if seen.insert((c, p, fk.columns.clone(), fk.parent_columns.clone())) {
                        edges.push(Edge {
                            name: format!("{} ({})", fk.name, fk.table),
                            child: c,
                            columns: fk.columns.clone(),
                            parent: p,
                            parent_columns: fk.parent_columns.clone(),
                            filter: None,
                            unique: true,
                        });
                    }
                }
            }
        }
        for r in &subset.relations {
            let what = "[[subset.relations]]";
            let from = find(&r.from.0, &r.from_span, &format!("{what} from"))?;
            column(
                &from,
                &r.from.0,
                &r.from.1,
                &r.from_span,
                &format!("{what} from"),
            )?;
            let to = find(&r.to.0, &r.to_span, &format!("{what} to"))?;
            column(&to, &r.to.0, &r.to.1, &r.to_span, &format!("{what} to"))?;
            // the two columns must compare, which the closure's joins need
            keeper
                .execute(
                    &format!(
                        "SELECT FROM {} c WHERE c.{} IN (SELECT p.{} FROM {} p) LIMIT 0",
                        live.tables[from[0]].only(),
                        quote_ident(&r.from.1),
                        quote_ident(&r.to.1),
                        live.tables[to[0]].only()
                    ),
                    &[],
                )
                .await
                .map_err(|e| {
                    config.err(
                        r.from_span.clone(),
                        format!(
                            "{what}: {}.{} and {}.{} cannot be compared: {}. Relate columns of \
                             types that compare (bigint and integer do; text and integer do not)",
                            r.from.0,
                            r.from.1,
                            r.to.0,
                            r.to.1,
                            pg::describe(&e)
                        ),
                    )
                })?;
            if let (Some(f), Some(span)) = (&r.filter, &r.filter_span) {
                // on the referring table alone, so a name it lacks is an error here and
                // never a column of the other side in the closure's statements
                let head = format!("SELECT FROM {} WHERE ", live.tables[from[0]].only());
                keeper
                    .execute(&format!("{head}({f}) LIMIT 0"), &[])
                    .await
                    .map_err(|e| placed(config, span, &format!("{what} where"), &head, f, e))?;
            }
            for &c in from.iter().filter(|&&c| copied[c]) {
                for &p in to.iter().filter(|&&p| copied[p]) {
                    edges.push(Edge {
                        name: format!("relation {}.{} → {}.{}", r.from.0, r.from.1, r.to.0, r.to.1),
                        child: c,
                        columns: vec![r.from.1.clone()],
                        parent: p,
                        parent_columns: vec![r.to.1.clone()],
                        filter: r.filter.clone(),
                        // nothing says `to` is unique: a child may match several rows
                        unique: false,
                    });
                }
            }
        }
        // a list (a temporary table and its index) only for the tables a target or a
        // reference can reach; each of those is locked against a rewrite (VACUUM FULL,
        // CLUSTER) that would move the rows its list names before they are read
        let mut reachable = vec![false; n];
        for (i, _) in &targets {
            reachable[*i] = true;
        }
        for e in &edges {
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
        let temp = |i: usize| match &kept[i] {
            Kept::Listed { temp, .. } => Some(temp.clone()),
            Kept::All | Kept::Empty => None,
        };
        // the targets, round 0; then, per round, the rows each table gained in the one
        // before (a reference from a table that gained none has nothing new to follow)
        let mut fresh = vec![0u64; n];
        let sampler = key.domain("dataforge subset");
        for (i, t) in &targets {
            let (i, t) = (*i, *t);
            let lt = &live.tables[i];
            let into = temp(i).expect("a target is not passthrough");
            let what = format!("subset target {}", t.table);
            let order_limit = match (&t.order, t.limit) {
                (Some(o), Some(l)) => format!(" ORDER BY {o} LIMIT {l}"),
                (Some(o), None) => format!(" ORDER BY {o}"),
                _ => String::new(),
            };
            if t.percent.is_none() {
                let head = format!(
                    "INSERT INTO {into} (id) SELECT ctid FROM {} WHERE ",
                    lt.only()
                );
                let cond = t.filter.clone().unwrap_or_else(|| "true".into());
                let sql = format!("{head}({cond}){order_limit} ON CONFLICT DO NOTHING");
                fresh[i] += keeper
                    .execute(&sql, &[])
                    .await
                    .map_err(|e| rejected(config, t, &head, e))?;
                continue;
            }
            // percent: the primary key of each row (under the condition) through the PRF
            let pk = &pks[&lt.table.name];
            let head = format!(
                "COPY (SELECT ctid, {} FROM {} WHERE ",
                cols("", pk),
                lt.only()
            );
            let cond = t.filter.clone().unwrap_or_else(|| "true".into());
            let sql = format!("{head}({cond})) TO STDOUT");
            let threshold = t.percent.expect("percent") / 100.0;
            let take = |pk_text: &[u8]| -> bool {
                if threshold >= 1.0 {
                    return true;
                }
                // the table as the config names it (a partitioned table's, not a
                // partition's: a row moved between partitions stays in or out)
                let mut input = t.table.as_bytes().to_vec();
                input.push(0);
                input.extend_from_slice(pk_text);
                (sampler.hash_u64(&input) as f64) < threshold * (u64::MAX as f64)
            };
            // into the target's own list when it is still empty and nothing orders or
            // limits the sample (each row comes once); else through the sample table
            let direct = order_limit.is_empty() && fresh[i] == 0;
            if !direct {
                keeper
                    .batch_execute("DELETE FROM pg_temp.dataforge_sample")
                    .await
                    .pg(|| "preparing the subset's sample".into())?;
            }
            let reader = live.reader().await?;
            reader
                .batch_execute("SET bytea_output = 'hex'")
                .await
                .pg(|| "pinning how the sample reads keys".into())?;
            let stream = reader
                .copy_out(&sql)
                .await
                .map_err(|e| rejected(config, t, &head, e))?;
            let sink = keeper
                .copy_in::<_, bytes::Bytes>(&if direct {
                    format!("COPY {into} (id) FROM STDIN")
                } else {
                    "COPY pg_temp.dataforge_sample (id) FROM STDIN".to_string()
                })
                .await
                .pg(|| format!("{what}: keeping the sample"))?;
            futures_util::pin_mut!(stream);
            futures_util::pin_mut!(sink);
            let (mut partial, mut out) = (Vec::new(), Vec::with_capacity(1 << 20));
            let mut sampled = 0u64;
            use futures_util::{SinkExt as _, StreamExt as _};
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.pg(|| format!("{what}: reading its primary keys"))?;
                partial.extend_from_slice(&chunk);
                let mut start = 0;
                while let Some(nl) = memchr::memchr(b'\n', &partial[start..]) {
                    let line = &partial[start..start + nl];
                    if let Some(tab) = memchr::memchr(b'\t', line) {
                        if take(&line[tab + 1..]) {
                            out.extend_from_slice(&line[..tab]);
                            out.push(b'\n');
                            sampled += 1;
                        }
                    }
                    start += nl + 1;
                }
                partial.drain(..start);
                if out.len() >= 1 << 20 {
                    sink.send(bytes::Bytes::from(std::mem::take(&mut out)))
                        .await
                        .pg(|| format!("{what}: keeping the sample"))?;
                }
            }
            if !out.is_empty() {
                sink.send(bytes::Bytes::from(out))
                    .await
                    .pg(|| format!("{what}: keeping the sample"))?;
            }
            sink.as_mut()
                .finish()
                .await
                .pg(|| format!("{what}: keeping the sample"))?;
            if direct {
                fresh[i] += sampled;
                continue;
            }
            let sql = if order_limit.is_empty() {
                format!("INSERT INTO {into} (id) SELECT DISTINCT id FROM pg_temp.dataforge_sample ORDER BY id ON CONFLICT DO NOTHING")
            } else {
                format!(
                    "INSERT INTO {into} (id) SELECT ctid FROM {} WHERE ctid = ANY(ARRAY(SELECT id FROM pg_temp.dataforge_sample)){order_limit} ON CONFLICT DO NOTHING",
                    lt.only()
                )
            };
            fresh[i] += keeper
                .execute(&sql, &[])
                .await
                .map_err(|e| rejected(config, t, "", e))?;
        }
        let mut total = fresh.clone();
        // down: the rows that refer to kept rows, from the targets on
        let mut gen = 0;
        if subset.children != Children::None {
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
                            format!(
                                " AND NOT EXISTS (SELECT FROM {child} k WHERE k.id = {alias}.ctid)"
                            )
                        }
                    };
                    // (the climb back up this reference is skipped for these rows only
                    // when it leads to one row, the one kept)
                    let via = if e.unique { via as i64 } else { -1 };
                    let sql = match subset.children {
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
    /// range `pages`, past the TID `after`: an array literal (`'{"(0,1)",…}'::tid[]`),
    /// the first TID and the last, or `None` when there are no more. However the kept
    /// rows cluster, a read holds at most that many.
    pub async fn tids(
        &self,
        table: usize,
        pages: Option<(Option<i64>, Option<i64>)>,
        after: Option<&str>,
    ) -> anyhow::Result<Option<(String, String, String)>> {
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
                    "SELECT count(*), coalesce(array_agg(id ORDER BY id)::text, '{{}}'),
                            (array_agg(id ORDER BY id))[1]::text,
                            (array_agg(id ORDER BY id DESC))[1]::text
                     FROM (SELECT id FROM {temp} WHERE {} ORDER BY id LIMIT {ROWS_PER_READ}) s",
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
                row.get(3),
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
