//! `alter-column-type`: changing a column's type rewrites the table under an ACCESS
//! EXCLUSIVE lock (most type changes), and a narrowing cast can fail or lose data.

use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

use crate::migrate::lint::{existing_table_cmds, table_name, type_text, Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "alter-column-type",
    risk: Risk::High,
    advice: "expand-contract: add a new column of the new type, write both from the \
             application, backfill in batches (`dataforge backfill`), switch reads, then drop \
             the old column",
    bad: "ALTER TABLE users ALTER COLUMN email TYPE varchar(100);",
    good: "ALTER TABLE users ADD COLUMN email_v2 varchar(100);",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    let Some((rv, cmds)) = existing_table_cmds(ctx) else {
        return Vec::new();
    };
    cmds.iter()
        .filter(|c| c.subtype() == AlterTableType::AtAlterColumnType)
        .map(|c| {
            let ty = match c.def.as_deref().and_then(|d| d.node.as_ref()) {
                Some(NodeEnum::ColumnDef(def)) => {
                    def.type_name.as_ref().map(type_text).unwrap_or_default()
                }
                _ => String::new(),
            };
            format!(
                "changes the type of {}.{} to {ty}: the table is rewritten under an ACCESS \
                 EXCLUSIVE lock and values that do not cast are lost or fail",
                table_name(rv),
                c.name
            )
        })
        .collect()
}
