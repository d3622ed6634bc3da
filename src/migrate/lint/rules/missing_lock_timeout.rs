//! `missing-lock-timeout`: a statement that waits for a strong lock queues every later
//! query on the table behind it; without `lock_timeout` that wait has no end. Reported once
//! per file, at the first such statement.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::migrate::lint::{object_name, table_name, Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "missing-lock-timeout",
    risk: Risk::Low,
    advice: "start the migration with `SET lock_timeout = '5s';` so it fails fast instead of \
             queueing traffic (dataforge sets --lock-timeout for you; other runners do not)",
    bad: "ALTER TABLE users ADD COLUMN nickname text;",
    good: "SET lock_timeout = '5s';\nALTER TABLE users ADD COLUMN nickname text;",
    check,
};

/// The existing table a statement locks strongly, if any.
fn locked_table(ctx: &Ctx<'_>) -> Option<String> {
    match ctx.node {
        NodeEnum::AlterTableStmt(a) if !ctx.is_new(a.relation.as_ref()) => {
            a.relation.as_ref().map(table_name)
        }
        NodeEnum::IndexStmt(i) if !i.concurrent && !ctx.is_new(i.relation.as_ref()) => {
            i.relation.as_ref().map(table_name)
        }
        NodeEnum::RenameStmt(r) if !ctx.is_new(r.relation.as_ref()) => {
            r.relation.as_ref().map(table_name)
        }
        NodeEnum::TruncateStmt(t) => Some(
            t.relations
                .iter()
                .filter_map(|r| match r.node.as_ref() {
                    Some(NodeEnum::RangeVar(rv)) => Some(table_name(rv)),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        NodeEnum::DropStmt(d) if !d.concurrent && d.remove_type() == ObjectType::ObjectTable => {
            Some(
                d.objects
                    .iter()
                    .map(object_name)
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        }
        NodeEnum::DropStmt(d) if !d.concurrent && d.remove_type() == ObjectType::ObjectIndex => {
            Some(format!(
                "the table of index {}",
                d.objects
                    .iter()
                    .map(object_name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
        _ => None,
    }
}

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    if ctx.lock_timeout_set {
        return Vec::new();
    }
    locked_table(ctx)
        .map(|t| {
            vec![format!(
                "locks {t} with no lock_timeout set: if it has to wait, every query on the \
                 table waits behind it"
            )]
        })
        .unwrap_or_default()
}
