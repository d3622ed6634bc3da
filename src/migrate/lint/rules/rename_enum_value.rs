//! `rename-enum-value`: renaming an enum value breaks every query and every stored value comparison written with the old label.

use pg_query::NodeEnum;

use crate::migrate::lint::dotted;

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "rename-enum-value",
    risk: Risk::High,
    advice: "add the new value, migrate rows and code to it, and stop using the old one (enum values cannot be dropped: consider a lookup table)",
    bad: "ALTER TYPE order_status RENAME VALUE 'shipped' TO 'sent';",
    good: "ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'sent';",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    match ctx.node {
        NodeEnum::AlterEnumStmt(e) if !e.old_val.is_empty() => vec![format!(
            "renames value '{}' of {} to '{}': code and queries using the old label break",
            e.old_val,
            dotted(&e.type_name),
            e.new_val
        )],
        _ => Vec::new(),
    }
}
