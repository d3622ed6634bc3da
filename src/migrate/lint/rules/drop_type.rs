//! `drop-type`: dropping a type (or domain) fails while columns use it, or, with CASCADE, drops those columns and their data.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::migrate::lint::{dotted, object_name};

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "drop-type",
    risk: Risk::High,
    advice: "move every column and function off the type first, then drop it in a later, approved migration; never CASCADE",
    bad: "DROP TYPE order_status CASCADE;",
    good: "-- First release: move the column off the type.\nALTER TABLE orders ADD COLUMN state text;",
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
    dropped(ctx, &[ObjectType::ObjectType, ObjectType::ObjectDomain])
        .into_iter()
        .map(|n| {
            format!("drops type {n}: columns of that type block it, or go with it under CASCADE")
        })
        .collect()
}
