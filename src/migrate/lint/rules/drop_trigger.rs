//! `drop-trigger`: dropping a trigger silently stops what it kept in step (audit rows, derived columns, checks).

use pg_query::protobuf::ObjectType;

use crate::migrate::lint::dropped_objects;

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "drop-trigger",
    risk: Risk::Medium,
    advice: "make sure the application or another trigger now does the trigger's work, in the same release",
    bad: "DROP TRIGGER orders_audit ON orders;",
    good: "CREATE OR REPLACE TRIGGER orders_audit AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION audit();",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    dropped_objects(ctx, &[ObjectType::ObjectTrigger])
        .into_iter()
        .map(|n| format!("drops trigger {n}: whatever still uses it fails from this moment"))
        .collect()
}
