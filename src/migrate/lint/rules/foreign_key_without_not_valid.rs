//! `foreign-key-without-not-valid`: validating a new foreign key scans the table while
//! both it and the referenced table are locked against writes.

use pg_query::protobuf::ConstrType;

use super::constraint_without_not_valid::validated_at_once;
use crate::migrate::lint::{table_name, Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "foreign-key-without-not-valid",
    risk: Risk::Medium,
    advice: "add it `NOT VALID` (instant), then `ALTER TABLE … VALIDATE CONSTRAINT` in a later \
             migration: validation then takes a lock that lets reads and writes go on",
    bad: "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);",
    good: "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\n\
           ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    validated_at_once(ctx, ConstrType::ConstrForeign)
        .into_iter()
        .map(|(table, c)| {
            let target = c.pktable.as_ref().map(table_name).unwrap_or_default();
            format!(
                "adds foreign key {}on {table} referencing {target} and validates it at once: \
                 writes to both tables wait for a full scan",
                if c.conname.is_empty() {
                    String::new()
                } else {
                    format!("{} ", c.conname)
                }
            )
        })
        .collect()
}
