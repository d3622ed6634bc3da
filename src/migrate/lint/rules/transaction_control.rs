//! `transaction-control`: a COMMIT or ROLLBACK in the middle of a migration makes it
//! non-atomic. dataforge runs such a file as psql does, statement by statement in the
//! file's own transactions, so a failure after a COMMIT leaves what was committed applied.
//! A file that is one `BEGIN … COMMIT` around everything is fine: the runner keeps that
//! transaction whole, with the history row inside.

use pg_query::protobuf::TransactionStmtKind as K;
use pg_query::NodeEnum;

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "transaction-control",
    risk: Risk::Medium,
    advice: "let the migration be one transaction (no transaction statements, or one \
             BEGIN … COMMIT around all of it); split work that must commit separately into \
             migrations of its own",
    bad: "BEGIN;\nALTER TABLE users ADD COLUMN nickname text;\nCOMMIT;\nUPDATE users SET nickname = name;",
    good: "BEGIN;\nALTER TABLE users ADD COLUMN nickname text;\nUPDATE users SET nickname = name;\nCOMMIT;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    if ctx.wrapped {
        return Vec::new();
    }
    match ctx.node {
        NodeEnum::TransactionStmt(t)
            if matches!(
                t.kind(),
                K::TransStmtCommit | K::TransStmtRollback | K::TransStmtPrepare
            ) =>
        {
            let what = format!("{:?}", t.kind());
            let what = what.trim_start_matches("TransStmt").to_ascii_uppercase();
            vec![format!(
                "{what} in the middle of a migration: it is not atomic — if a later statement \
                 fails, what was committed before stays applied (dataforge runs it as psql \
                 does and names what stayed)"
            )]
        }
        _ => Vec::new(),
    }
}
