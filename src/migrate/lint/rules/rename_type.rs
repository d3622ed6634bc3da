//! `rename-type`: renaming a type breaks whatever refers to it by its old name.

use pg_query::protobuf::ObjectType;

use crate::migrate::lint::renamed;

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "rename-type",
    risk: Risk::High,
    advice: "expand-contract: create the new type, move columns and code to it, drop the old one in a later release",
    bad: "ALTER TYPE order_status RENAME TO order_state;",
    good: "CREATE TYPE order_state AS ENUM ('open', 'paid', 'shipped');",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    renamed(ctx, &[ObjectType::ObjectType, ObjectType::ObjectDomain])
        .map(|(old, new)| {
            format!(
                "renames a type {old} to {new}: code, scripts and monitoring naming the old name break"
            )
        })
        .into_iter()
        .collect()
}
