//! `rename-schema`: renaming a schema breaks whatever refers to it by its old name.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::migrate::lint::{object_name, table_name};

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "rename-schema",
    risk: Risk::High,
    advice: "expand-contract: create the new schema, move objects and code, keep the old name until nothing uses it",
    bad: "ALTER SCHEMA billing RENAME TO invoicing;",
    good: "CREATE SCHEMA invoicing;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    match ctx.node {
        NodeEnum::RenameStmt(r) if [ObjectType::ObjectSchema].contains(&r.rename_type()) => {
            let old = if !r.subname.is_empty() {
                r.subname.clone()
            } else if let Some(rv) = r.relation.as_ref() {
                table_name(rv)
            } else {
                r.object.as_deref().map(object_name).unwrap_or_default()
            };
            vec![format!(
                "renames a schema {old} to {}: code, scripts and monitoring naming the old name break",
                r.newname
            )]
        }
        _ => Vec::new(),
    }
}
