//! `drop-schema`: dropping a schema drops everything in it.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::migrate::lint::{object_name, Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "drop-schema",
    risk: Risk::High,
    advice: "move or drop the schema's tables one by one in reviewed migrations, with a \
             verified backup; approve the drop explicitly if it is really meant",
    bad: "DROP SCHEMA reporting CASCADE;",
    good: "-- Retire the schema without losing it: rename it, drop it after a release.\n\
           ALTER SCHEMA reporting RENAME TO reporting_retired;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    match ctx.node {
        NodeEnum::DropStmt(d) if d.remove_type() == ObjectType::ObjectSchema => d
            .objects
            .iter()
            .map(|o| format!("drops schema {} and everything in it", object_name(o)))
            .collect(),
        _ => Vec::new(),
    }
}
