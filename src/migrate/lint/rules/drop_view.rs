//! `drop-view`: dropping a view or materialized view breaks every query, report and role that reads it.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::migrate::lint::{dotted, object_name};

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "drop-view",
    risk: Risk::High,
    advice: "release code that no longer reads the view first, then drop it in a later, approved migration",
    bad: "DROP VIEW active_customers;",
    good: "CREATE OR REPLACE VIEW active_customers AS SELECT id, name FROM customers WHERE active;",
    check,
};

fn dropped(ctx: &Ctx<'_>, kinds: &[ObjectType]) -> Vec<String> {
    match ctx.node {
        NodeEnum::DropStmt(d) if kinds.contains(&d.remove_type()) => d
            .objects
            .iter()
            .map(|o| match o.node.as_ref() {
                Some(NodeEnum::ObjectWithArgs(f)) => dotted(&f.objname),
                _ => object_name(o),
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    dropped(ctx, &[ObjectType::ObjectView, ObjectType::ObjectMatview])
        .into_iter()
        .map(|n| format!("drops view {n}: whatever still uses it fails from this moment"))
        .collect()
}
