//! `truncate`: deletes every row, under an ACCESS EXCLUSIVE lock.

use pg_query::NodeEnum;

use crate::migrate::lint::{table_name, Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "truncate",
    risk: Risk::High,
    advice: "delete the rows you mean with a WHERE clause, in batches (`dataforge backfill` \
             style), or approve the truncate if emptying the table is intended",
    bad: "TRUNCATE audit_events;",
    good: "DELETE FROM audit_events WHERE created_at < now() - interval '90 days';",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    let NodeEnum::TruncateStmt(t) = ctx.node else {
        return Vec::new();
    };
    t.relations
        .iter()
        .filter_map(|r| match r.node.as_ref() {
            Some(NodeEnum::RangeVar(rv)) if !ctx.is_new(Some(rv)) => Some(format!(
                "truncates {}: every row is deleted",
                table_name(rv)
            )),
            _ => None,
        })
        .collect()
}
