//! `rename-schema`: renaming a schema breaks whatever refers to it by its old name.

use pg_query::protobuf::ObjectType;

use crate::migrate::lint::renamed;

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "rename-schema",
    risk: Risk::High,
    advice: "expand-contract: create the new schema, move objects and code, keep the old name until nothing uses it",
    bad: "ALTER SCHEMA billing RENAME TO invoicing;",
    good: "CREATE SCHEMA invoicing;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    renamed(ctx, &[ObjectType::ObjectSchema])
        .map(|(old, new)| {
            format!(
                "renames a schema {old} to {new}: code, scripts and monitoring naming the old name break"
            )
        })
        .into_iter()
        .collect()
}
