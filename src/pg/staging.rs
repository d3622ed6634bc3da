//! Putting a database built beside its target into the target's place: the step that
//! `anonymize` (into a database) and `restore` share.
//!
//! The swap is one transaction of two renames, so at every instant the target's name
//! holds the old database or the new one, never neither; the old one is marked in the same
//! transaction (a comment [`crate::cleanup`] reads) for the next run to drop should this
//! one stop before it does. Who builds the new database, and what happens to sessions
//! still on the target, stays with the caller.

use tokio_postgres::Client;

use super::{quote_ident, PgContext as _, PgError};

/// Why a swap did not complete.
#[derive(Debug)]
pub enum SwapError {
    /// The renames failed: rolled back, the target is as it was, and `staging` is still
    /// there for the caller to drop.
    Swap(PgError),
    /// The new database is in place; dropping the old one failed (it is marked, and the
    /// next run drops it).
    DropOld(PgError),
}

/// Renames `target` to `old` and `staging` to `target` in one transaction, with `extra`
/// (statements ending in `;`, e.g. a setting carried over) inside it, then drops `old`.
/// `what` names the new database in messages ("the restored copy").
pub async fn swap_in(
    admin: &Client,
    target: &str,
    staging: &str,
    old: &str,
    extra: &str,
    what: &str,
) -> Result<(), SwapError> {
    let swap = admin
        .batch_execute(&format!(
            "BEGIN; ALTER DATABASE {t} RENAME TO {o}; ALTER DATABASE {s} RENAME TO {t}; \
             {extra} {c} COMMIT",
            t = quote_ident(target),
            o = quote_ident(old),
            s = quote_ident(staging),
            c = crate::cleanup::swap_comments(old, target),
        ))
        .await
        .pg(|| format!("swapping {what} in for {target}"));
    if let Err(e) = swap {
        // a failed statement leaves the transaction aborted: end it, so the caller's DROP
        // of the staging database can run
        let _ = admin.batch_execute("ROLLBACK").await;
        return Err(SwapError::Swap(e));
    }
    // FORCE ends sessions that reached the old copy in the meantime (PostgreSQL 13+);
    // an older server does without
    let with_force = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(old));
    let dropped = match admin.batch_execute(&with_force).await {
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::SYNTAX_ERROR) => {
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {}", quote_ident(old)))
                .await
        }
        other => other,
    };
    dropped
        .pg(|| format!("dropping the replaced copy of {target}"))
        .map_err(SwapError::DropOld)
}
