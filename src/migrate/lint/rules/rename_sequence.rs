//! `rename-sequence`: renaming a sequence breaks whatever refers to it by its old name.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::migrate::lint::{object_name, table_name};

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
    match ctx.node {
        NodeEnum::RenameStmt(r) if [ObjectType::ObjectSequence].contains(&r.rename_type()) => {
            let old = if !r.subname.is_empty() {
                r.subname.clone()
            } else if let Some(rv) = r.relation.as_ref() {
                table_name(rv)
            } else {
                r.object.as_deref().map(object_name).unwrap_or_default()
            };
            vec![format!(
                "renames a sequence {old} to {}: code, scripts and monitoring naming the old name break",
                r.newname
            )]
        }
        _ => Vec::new(),
    }
}
