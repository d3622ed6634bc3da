//! `drop-table`: dropping a table loses its data for good.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::migrate::lint::{base_name, object_name, Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "drop-table",
    risk: Risk::High,
    advice: "expand-contract: release code that no longer reads the table, keep a verified \
             backup (`dataforge backup`), then drop it in a later migration approved with \
             `dataforge migrate approve NAME --reason …`",
    bad: "DROP TABLE legacy_orders;",
    good: "-- First release: stop writing to the table and revoke the application's access.\n\
           REVOKE INSERT, UPDATE, DELETE ON legacy_orders FROM app;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    match ctx.node {
        NodeEnum::DropStmt(d) if d.remove_type() == ObjectType::ObjectTable => d
            .objects
            .iter()
            .map(object_name)
            .filter(|name| !ctx.created.contains(&base_name(name)))
            .map(|name| format!("drops table {name} and every row in it"))
            .collect(),
        _ => Vec::new(),
    }
}
