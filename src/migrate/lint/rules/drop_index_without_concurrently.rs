//! `drop-index-without-concurrently`: `DROP INDEX` takes an ACCESS EXCLUSIVE lock on the
//! index's table.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::migrate::lint::{object_name, Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "drop-index-without-concurrently",
    risk: Risk::Medium,
    advice: "use `DROP INDEX CONCURRENTLY` in a migration of its own (dataforge runs it \
             outside a transaction)",
    bad: "DROP INDEX orders_created_at_idx;",
    good: "DROP INDEX CONCURRENTLY IF EXISTS orders_created_at_idx;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    match ctx.node {
        NodeEnum::DropStmt(d) if d.remove_type() == ObjectType::ObjectIndex && !d.concurrent => d
            .objects
            .iter()
            .map(|o| {
                format!(
                    "drops index {} without CONCURRENTLY: its table is locked for reads and writes",
                    object_name(o)
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}
