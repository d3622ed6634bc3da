//! `drop-trigger`: dropping a trigger silently stops what it kept in step (audit rows, derived columns, checks).

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::migrate::lint::{dotted, object_name};

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "drop-trigger",
    risk: Risk::Medium,
    advice: "make sure the application or another trigger now does the trigger's work, in the same release",
    bad: "DROP TRIGGER orders_audit ON orders;",
    good: "CREATE OR REPLACE TRIGGER orders_audit AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION audit();",
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
    dropped(ctx, &[ObjectType::ObjectTrigger])
        .into_iter()
        .map(|n| format!("drops trigger {n}: whatever still uses it fails from this moment"))
        .collect()
}
