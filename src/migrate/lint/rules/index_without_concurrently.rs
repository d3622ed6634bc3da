//! `index-without-concurrently`: `CREATE INDEX` blocks writes to the table until the index
//! is built.

use pg_query::NodeEnum;

use crate::migrate::lint::{table_name, Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "index-without-concurrently",
    risk: Risk::Medium,
    advice: "use `CREATE INDEX CONCURRENTLY` in a migration of its own: dataforge runs it \
             outside a transaction and drops the INVALID index a failed build leaves before \
             retrying",
    bad: "CREATE INDEX orders_created_at_idx ON orders (created_at);",
    good: "CREATE INDEX CONCURRENTLY orders_created_at_idx ON orders (created_at);",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    match ctx.node {
        // `ON ONLY parent` builds nothing: an invalid index on the parent alone, until the
        // partitions' indexes are attached (and CONCURRENTLY is refused there anyway)
        NodeEnum::IndexStmt(i)
            if !i.concurrent
                && !ctx.is_new(i.relation.as_ref())
                && i.relation.as_ref().is_none_or(|rv| rv.inh) =>
        {
            let table = i.relation.as_ref().map(table_name).unwrap_or_default();
            vec![format!(
                "builds {}index {}on {table} without CONCURRENTLY: writes to {table} wait \
                 until it is built",
                if i.unique { "unique " } else { "" },
                if i.idxname.is_empty() {
                    String::new()
                } else {
                    format!("{} ", i.idxname)
                }
            )]
        }
        _ => Vec::new(),
    }
}
