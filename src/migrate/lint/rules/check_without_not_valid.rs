//! `check-without-not-valid`: validating a new CHECK scans the table under an ACCESS
//! EXCLUSIVE lock.

use pg_query::protobuf::ConstrType;

use super::constraint_without_not_valid::validated_at_once;
use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "check-without-not-valid",
    risk: Risk::Medium,
    advice: "add it `NOT VALID` (instant), then `ALTER TABLE … VALIDATE CONSTRAINT` in a later \
             migration, which lets reads and writes go on",
    bad: "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0);",
    good: "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0) NOT VALID;\n\
           ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    validated_at_once(ctx, ConstrType::ConstrCheck)
        .into_iter()
        .map(|(table, c)| {
            format!(
                "adds check {}on {table} and validates it at once: reads and writes wait for \
                 a full scan",
                if c.conname.is_empty() {
                    String::new()
                } else {
                    format!("{} ", c.conname)
                }
            )
        })
        .collect()
}
