//! `drop-view`: dropping a view or materialized view breaks every query, report and role that reads it.

use pg_query::protobuf::ObjectType;

use crate::migrate::lint::dropped_objects;

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "drop-view",
    risk: Risk::High,
    advice: "release code that no longer reads the view first, then drop it in a later, approved migration",
    bad: "DROP VIEW active_customers;",
    good: "CREATE OR REPLACE VIEW active_customers AS SELECT id, name FROM customers WHERE active;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    dropped_objects(ctx, &[ObjectType::ObjectView, ObjectType::ObjectMatview])
        .into_iter()
        .map(|n| format!("drops view {n}: whatever still uses it fails from this moment"))
        .collect()
}
