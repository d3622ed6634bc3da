//! `not-null-column-without-default`: adding a NOT NULL column without a default fails on
//! any table that has rows, so the deploy breaks in production though it passed on an
//! empty development database.

use pg_query::protobuf::ConstrType;
use pg_query::NodeEnum;

use crate::migrate::lint::{added_columns, table_name, Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "not-null-column-without-default",
    risk: Risk::High,
    advice: "add the column with a constant DEFAULT (no rewrite since PostgreSQL 11), or add \
             it nullable, backfill it in batches, then set NOT NULL the safe way",
    bad: "ALTER TABLE users ADD COLUMN tenant_id uuid NOT NULL;",
    good: "ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free';",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    let Some((rv, defs)) = added_columns(ctx) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for def in defs {
        let kinds: Vec<ConstrType> = def
            .constraints
            .iter()
            .filter_map(|c| match c.node.as_ref() {
                Some(NodeEnum::Constraint(c)) => Some(c.contype()),
                _ => None,
            })
            .collect();
        let not_null = def.is_not_null
            || kinds
                .iter()
                .any(|k| matches!(k, ConstrType::ConstrNotnull | ConstrType::ConstrPrimary));
        let filled = def.raw_default.is_some()
            || super::volatile_default::is_serial(def)
            || kinds.iter().any(|k| {
                matches!(
                    k,
                    ConstrType::ConstrDefault
                        | ConstrType::ConstrIdentity
                        | ConstrType::ConstrGenerated
                )
            });
        if not_null && !filled {
            out.push(format!(
                "adds {}.{} NOT NULL without a default: fails if the table has any row",
                table_name(rv),
                def.colname
            ));
        }
    }
    out
}
