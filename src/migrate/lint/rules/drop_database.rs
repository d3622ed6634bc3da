//! `drop-database`: a migration has no business dropping a database.

use pg_query::NodeEnum;

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "drop-database",
    risk: Risk::High,
    advice: "drop databases by hand, outside migrations, after `dataforge backup`",
    bad: "DROP DATABASE analytics;",
    good: "-- Nothing: databases are created and dropped outside migrations.\nSELECT 1;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    match ctx.node {
        NodeEnum::DropdbStmt(d) => vec![format!("drops database {}", d.dbname)],
        _ => Vec::new(),
    }
}
