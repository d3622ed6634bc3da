//! `rename-constraint`: renaming a constraint breaks whatever refers to it by its old name.

use pg_query::protobuf::ObjectType;

use crate::migrate::lint::renamed;

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
    renamed(ctx, &[ObjectType::ObjectTabconstraint, ObjectType::ObjectDomconstraint])
        .map(|(old, new)| {
            format!(
                "renames a constraint {old} to {new}: code, scripts and monitoring naming the old name break"
            )
        })
        .into_iter()
        .collect()
}
