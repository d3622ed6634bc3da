//! `rename-index`: renaming an index breaks whatever refers to it by its old name.

use pg_query::protobuf::ObjectType;

use crate::migrate::lint::renamed;

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "rename-index",
    risk: Risk::Low,
    advice: "rename only if nothing refers to the index by name (hints, monitoring, later migrations); otherwise keep the name",
    bad: "ALTER INDEX orders_created_idx RENAME TO orders_created_at_idx;",
    good: "CREATE INDEX CONCURRENTLY orders_created_at_idx ON orders (created_at);",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    renamed(ctx, &[ObjectType::ObjectIndex])
        .map(|(old, new)| {
            format!(
                "renames an index {old} to {new}: code, scripts and monitoring naming the old name break"
            )
        })
        .into_iter()
        .collect()
}
