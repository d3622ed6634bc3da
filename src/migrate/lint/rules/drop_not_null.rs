//! `drop-not-null`: dropping NOT NULL lets NULLs in that code written for the column's guarantee may not handle.

use pg_query::protobuf::AlterTableType;

use crate::migrate::lint::{existing_table_cmds, table_name};

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "drop-not-null",
    risk: Risk::Medium,
    advice: "make sure every reader handles NULL first (Prisma: make the field optional in the same release)",
    bad: "ALTER TABLE users ALTER COLUMN email DROP NOT NULL;",
    good: "ALTER TABLE users ADD COLUMN secondary_email text;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    let Some((rv, cmds)) = existing_table_cmds(ctx) else {
        return Vec::new();
    };
    cmds.iter()
        .filter(|c| c.subtype() == AlterTableType::AtDropNotNull)
        .map(|c| {
            format!(
                "drops NOT NULL of {}.{}: readers may now see NULL",
                table_name(rv),
                c.name
            )
        })
        .collect()
}
