//! `rename-constraint`: renaming a constraint breaks whatever refers to it by its old name.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::migrate::lint::{object_name, table_name};

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "rename-constraint",
    risk: Risk::Low,
    advice: "rename only if no code matches on the constraint's name (error handling often does); otherwise keep the name",
    bad: "ALTER TABLE orders RENAME CONSTRAINT orders_total_check TO orders_total_positive;",
    good: "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0) NOT VALID;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    match ctx.node {
        NodeEnum::RenameStmt(r)
            if [
                ObjectType::ObjectTabconstraint,
                ObjectType::ObjectDomconstraint,
            ]
            .contains(&r.rename_type()) =>
        {
            let old = if !r.subname.is_empty() {
                r.subname.clone()
            } else if let Some(rv) = r.relation.as_ref() {
                table_name(rv)
            } else {
                r.object.as_deref().map(object_name).unwrap_or_default()
            };
            vec![format!(
                "renames a constraint {old} to {}: code, scripts and monitoring naming the old name break",
                r.newname
            )]
        }
        _ => Vec::new(),
    }
}
