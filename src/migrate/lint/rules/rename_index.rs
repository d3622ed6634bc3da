//! `rename-index`: renaming an index breaks whatever refers to it by its old name.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::migrate::lint::{object_name, table_name};

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
    match ctx.node {
        NodeEnum::RenameStmt(r) if [ObjectType::ObjectIndex].contains(&r.rename_type()) => {
            let old = if !r.subname.is_empty() {
                r.subname.clone()
            } else if let Some(rv) = r.relation.as_ref() {
                table_name(rv)
            } else {
                r.object.as_deref().map(object_name).unwrap_or_default()
            };
            vec![format!(
                "renames an index {old} to {}: code, scripts and monitoring naming the old name break",
                r.newname
            )]
        }
        _ => Vec::new(),
    }
}
