//! `rename-sequence`: renaming a sequence breaks whatever refers to it by its old name.

use pg_query::protobuf::ObjectType;

use crate::migrate::lint::renamed;

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "rename-sequence",
    risk: Risk::Medium,
    advice: "rename only if no default, code or script calls nextval on the old name; column defaults follow the rename, code does not",
    bad: "ALTER SEQUENCE invoice_no RENAME TO invoice_number;",
    good: "CREATE SEQUENCE invoice_number;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    renamed(ctx, &[ObjectType::ObjectSequence])
        .map(|(old, new)| {
            format!(
                "renames a sequence {old} to {new}: code, scripts and monitoring naming the old name break"
            )
        })
        .into_iter()
        .collect()
}
