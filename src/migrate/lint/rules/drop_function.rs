//! `drop-function`: dropping a function or procedure breaks the triggers, defaults, views and code that call it.

use pg_query::protobuf::ObjectType;

use crate::migrate::lint::dropped_objects;

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "drop-function",
    risk: Risk::High,
    advice: "release callers that no longer use it first; replace a function in place with CREATE OR REPLACE",
    bad: "DROP FUNCTION order_total(bigint);",
    good: "CREATE OR REPLACE FUNCTION order_total(bigint) RETURNS numeric LANGUAGE sql AS 'SELECT 0';",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    dropped_objects(
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
