//! `transaction-control`: BEGIN / COMMIT / ROLLBACK inside a migration break the runner's
//! transaction: half a migration can commit while its history row says otherwise.

use pg_query::NodeEnum;

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "transaction-control",
    risk: Risk::High,
    advice: "remove the transaction statements: each migration already runs in one \
             transaction with its history row; split work that must commit separately into \
             migrations of its own",
    bad: "BEGIN;\nALTER TABLE users ADD COLUMN nickname text;\nCOMMIT;",
    good: "ALTER TABLE users ADD COLUMN nickname text;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    match ctx.node {
        NodeEnum::TransactionStmt(t) => {
            let what = format!("{:?}", t.kind());
            let what = what.trim_start_matches("TransStmt").to_ascii_uppercase();
            vec![format!(
                "{what} inside a migration ends or splits the transaction dataforge runs it in"
            )]
        }
        _ => Vec::new(),
    }
}
