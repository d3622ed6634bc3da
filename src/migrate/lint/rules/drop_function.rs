//! `drop-function`: dropping a function or procedure breaks the triggers, defaults, views and code that call it.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::migrate::lint::{dotted, object_name};

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "drop-function",
    risk: Risk::High,
    advice: "release callers that no longer use it first; replace a function in place with CREATE OR REPLACE",
    bad: "DROP FUNCTION order_total(bigint);",
    good: "CREATE OR REPLACE FUNCTION order_total(bigint) RETURNS numeric LANGUAGE sql AS 'SELECT 0';",
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
    dropped(
        ctx,
        &[
            ObjectType::ObjectFunction,
            ObjectType::ObjectProcedure,
            ObjectType::ObjectRoutine,
            ObjectType::ObjectAggregate,
        ],
    )
    .into_iter()
    .map(|n| format!("drops function {n}: whatever still uses it fails from this moment"))
    .collect()
}
