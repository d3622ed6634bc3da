//! `identifier-too-long`: PostgreSQL truncates names longer than 63 bytes without an error, so the object gets another name than the one written, and two long names can collide.

use pg_query::NodeEnum;

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "identifier-too-long",
    risk: Risk::High,
    advice: "shorten the name to at most 63 bytes (Prisma: @@map / map: to set the database name)",
    bad: "CREATE INDEX orders_customer_id_created_at_status_total_currency_region_idx_v2 ON orders (customer_id);",
    good: "CREATE INDEX orders_customer_created_status_idx ON orders (customer_id);",
    check,
};

const MAX: usize = 63;

/// From the statement's text, not its tree: the parser has already cut the names.
fn check(ctx: &Ctx<'_>) -> Vec<String> {
    // only statements that name things this migration makes or renames
    if !matches!(
        ctx.node,
        NodeEnum::CreateStmt(_)
            | NodeEnum::IndexStmt(_)
            | NodeEnum::RenameStmt(_)
            | NodeEnum::AlterTableStmt(_)
            | NodeEnum::CreateSeqStmt(_)
    ) {
        return Vec::new();
    }
    let Ok(tokens) = pg_query::scan_tokens(ctx.text) else {
        return Vec::new();
    };
    tokens
        .iter()
        .filter(|t| t.token == pg_query::protobuf::Token::Ident as i32)
        .filter_map(|t| ctx.text.get(t.start as usize..t.end as usize))
        .map(|raw| {
            raw.strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .map(|r| r.replace("\"\"", "\""))
                .unwrap_or_else(|| raw.to_lowercase())
        })
        .filter(|n| n.len() > MAX)
        .map(|n| {
            let mut cut = MAX;
            while !n.is_char_boundary(cut) {
                cut -= 1;
            }
            format!(
                "the name {n} is {} bytes: PostgreSQL keeps only its first 63 ({})",
                n.len(),
                &n[..cut]
            )
        })
        .collect()
}
