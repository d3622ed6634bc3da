//! `unique-constraint-without-index`: adding a UNIQUE or PRIMARY KEY constraint builds its
//! index under an ACCESS EXCLUSIVE lock.

use pg_query::protobuf::{AlterTableType, ConstrType};
use pg_query::NodeEnum;

use crate::migrate::lint::{existing_table_cmds, table_name, Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "unique-constraint-without-index",
    risk: Risk::Medium,
    advice: "build the index first with `CREATE UNIQUE INDEX CONCURRENTLY` (own migration), \
             then `ADD CONSTRAINT … UNIQUE USING INDEX`, which is instant",
    bad: "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);",
    good: "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    let Some((rv, cmds)) = existing_table_cmds(ctx) else {
        return Vec::new();
    };
    cmds.iter()
        .filter(|c| c.subtype() == AlterTableType::AtAddConstraint)
        .filter_map(|c| match c.def.as_deref().and_then(|d| d.node.as_ref()) {
            Some(NodeEnum::Constraint(con))
                if matches!(
                    con.contype(),
                    ConstrType::ConstrUnique | ConstrType::ConstrPrimary
                ) && con.indexname.is_empty() =>
            {
                Some(format!(
                    "adds {} {}on {}: its index is built while reads and writes wait",
                    if con.contype() == ConstrType::ConstrPrimary {
                        "primary key"
                    } else {
                        "unique constraint"
                    },
                    if con.conname.is_empty() {
                        String::new()
                    } else {
                        format!("{} ", con.conname)
                    },
                    table_name(rv)
                ))
            }
            _ => None,
        })
        .collect()
}
