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
    good: "-- after `ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;`\n\
           -- in an earlier migration:\n\
           ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null;\n\
           ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n\
           ALTER TABLE users DROP CONSTRAINT users_email_not_null;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    let Some((rv, cmds)) = existing_table_cmds(ctx) else {
        return Vec::new();
    };
    // The safe pattern: a CHECK (col IS NOT NULL) validated earlier in this file lets
    // PostgreSQL prove NOT NULL without a scan. The check is recognised by the name
    // `migrate lint --fix` gives it (table_col_not_null), exactly: a VALIDATE of any other
    // constraint proves nothing about NULLs.
    let proved = |col: &str| {
        let name = crate::migrate::fix::not_null_check_name(&rv.relname, col);
        ctx.validated.contains(&format!(
            "{}.{}",
            rv.relname.to_lowercase(),
            name.to_lowercase()
        ))
    };
    cmds.iter()
        .filter(|c| c.subtype() == AlterTableType::AtSetNotNull && !proved(&c.name))
        .map(|c| {
            format!(
                "sets {}.{} NOT NULL: every row is scanned while writes and reads wait",
                table_name(rv),
                c.name
            )
        })
        .collect()
}
