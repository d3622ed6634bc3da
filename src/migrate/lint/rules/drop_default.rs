//! `drop-default`: dropping a column's default makes inserts that leave the column out write NULL, or fail on NOT NULL.

use pg_query::protobuf::AlterTableType;

use crate::migrate::lint::{existing_table_cmds, table_name};

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "drop-default",
    risk: Risk::Medium,
    advice: "make sure every writer sets the column explicitly first; then drop the default",
    bad: "ALTER TABLE orders ALTER COLUMN status DROP DEFAULT;",
    good: "ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'open';",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    let Some((rv, cmds)) = existing_table_cmds(ctx) else {
        return Vec::new();
    };
    cmds.iter()
        .filter(|c| c.subtype() == AlterTableType::AtColumnDefault && c.def.is_none())
        .map(|c| {
            format!(
                "drops the default of {}.{}: inserts leaving it out now write NULL or fail",
                table_name(rv),
                c.name
            )
        })
        .collect()
}
