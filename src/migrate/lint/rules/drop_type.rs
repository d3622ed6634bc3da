//! `drop-type`: dropping a type (or domain) fails while columns use it, or, with CASCADE, drops those columns and their data.

use pg_query::protobuf::ObjectType;

use crate::migrate::lint::dropped_objects;

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "drop-type",
    risk: Risk::High,
    advice: "move every column and function off the type first, then drop it in a later, approved migration; never CASCADE",
    bad: "DROP TYPE order_status CASCADE;",
    good: "-- First release: move the column off the type.\nALTER TABLE orders ADD COLUMN state text;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    dropped_objects(ctx, &[ObjectType::ObjectType, ObjectType::ObjectDomain])
        .into_iter()
        .map(|n| {
            format!("drops type {n}: columns of that type block it, or go with it under CASCADE")
        })
        .collect()
}
