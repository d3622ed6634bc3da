//! `set-not-null`: `SET NOT NULL` scans the whole table under an ACCESS EXCLUSIVE lock.

use pg_query::protobuf::AlterTableType;

use crate::migrate::lint::{existing_table_cmds, table_name, Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "set-not-null",
    risk: Risk::Medium,
    advice: "add `CHECK (col IS NOT NULL) NOT VALID`, then `VALIDATE CONSTRAINT` (a weaker \
             lock), then `SET NOT NULL`, which PostgreSQL 12+ proves from the valid check \
             without a scan, and drop the check",
    bad: "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
    good:
        "ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    let Some((rv, cmds)) = existing_table_cmds(ctx) else {
        return Vec::new();
    };
    cmds.iter()
        .filter(|c| c.subtype() == AlterTableType::AtSetNotNull)
        .map(|c| {
            format!(
                "sets {}.{} NOT NULL: every row is scanned while writes and reads wait",
                table_name(rv),
                c.name
            )
        })
        .collect()
}
