//! `drop-column`: dropping a column loses its data, and breaks code still reading it.

use pg_query::protobuf::AlterTableType;

use crate::migrate::lint::{existing_table_cmds, table_name, Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "drop-column",
    risk: Risk::High,
    advice: "expand-contract: release code that no longer reads or writes the column (Prisma: \
             remove it from the schema with @ignore first), then drop it in a later, approved \
             migration",
    bad: "ALTER TABLE users DROP COLUMN legacy_phone;",
    good: "-- First release: make the column optional so new code can stop writing it.\n\
           ALTER TABLE users ALTER COLUMN legacy_phone DROP NOT NULL;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    let Some((rv, cmds)) = existing_table_cmds(ctx) else {
        return Vec::new();
    };
    cmds.iter()
        .filter(|c| c.subtype() == AlterTableType::AtDropColumn)
        .map(|c| format!("drops column {}.{} and its data", table_name(rv), c.name))
        .collect()
}
