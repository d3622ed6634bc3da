//! `drop-constraint`: dropping a constraint removes a guarantee the data and the application rely on; dropping a primary or unique key can break the foreign keys that reference it.

use pg_query::protobuf::AlterTableType;

use crate::migrate::lint::{existing_table_cmds, table_name};

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "drop-constraint",
    risk: Risk::Medium,
    advice: "make sure no code or foreign key relies on it; to replace a constraint, add the new one (NOT VALID, then VALIDATE) before dropping the old one",
    bad: "ALTER TABLE orders DROP CONSTRAINT orders_total_check;",
    good: "ALTER TABLE orders ADD CONSTRAINT orders_total_nonnegative CHECK (total >= 0) NOT VALID;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    let Some((rv, cmds)) = existing_table_cmds(ctx) else {
        return Vec::new();
    };
    cmds.iter()
        .filter(|c| c.subtype() == AlterTableType::AtDropConstraint)
        .map(|c| {
            format!(
                "drops constraint {} of {}: what it guaranteed is no longer checked",
                c.name,
                table_name(rv)
            )
        })
        .collect()
}
