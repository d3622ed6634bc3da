//! The config's names matched in the source: the tables (a partitioned table standing
//! for its partitions), the targets, and the references the closure follows, each
//! checked before anything is kept.

use std::collections::HashMap;

use tokio_postgres::Client;

use super::config::{Subset, Target};
use super::place::placed;
use crate::anonymize::config::Config;
use crate::pg::{self, quote_ident, PgContext as _};
use crate::source::live::Live;

/// A reference the closure follows: `child.columns` hold `parent.parent_columns`, on
/// the child rows matching `filter`.
#[derive(Debug)]
pub(super) struct Edge {
    pub(super) name: String,
    pub(super) child: usize,
    pub(super) columns: Vec<String>,
    pub(super) parent: usize,
    pub(super) parent_columns: Vec<String>,
    pub(super) filter: Option<String>,
    /// The parent columns are a unique key (a declared foreign key's are): a child
    /// row refers to one row through it.
    pub(super) unique: bool,
}

/// What [`resolve`] found.
pub(super) struct Resolved<'a> {
    /// By table index: copied whole.
    pub(super) passthrough: Vec<bool>,
    /// The targets, each on a table (a partitioned one's, on each partition).
    pub(super) targets: Vec<(usize, &'a Target)>,
    pub(super) edges: Vec<Edge>,
    /// The primary key columns of each table, by qualified name.
    pub(super) pks: HashMap<String, Vec<String>>,
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

/// Matches the config's tables, columns and conditions in the source (on the keeper,
/// inside the snapshot), each error at its place in the file.
pub(super) async fn resolve<'a>(
    live: &Live,
    config: &Config,
    subset: &'a Subset,
    keeper: &Client,
) -> anyhow::Result<Resolved<'a>> {
    let names = names(live, keeper).await?;
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
    let column = |i: &[usize], table: &str, c: &str, span: &std::ops::Range<usize>, what: &str| {
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
    let pks = primary_keys(keeper).await?;
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
        let (Some(children), Some(parents)) = (names.get(&fk.table), names.get(&fk.parent)) else {
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
    Ok(Resolved {
        passthrough,
        targets,
        edges,
        pks,
    })
}
