//! A database built beside its target and put into the target's place: the life cycle
//! that `anonymize` (into a database) and `restore` share. [`Staging::create`] makes it
//! (named after the target, claimed, on the clean-up list before it exists, marked as
//! whose copy it is), [`Staging::drop_now`] drops it on any failure, [`swap_in`] puts it in
//! place.
//!
//! The swap is one transaction of two renames, so at every instant the target's name
//! holds the old database or the new one, never neither; the old one is marked in the same
//! transaction (a comment [`crate::cleanup`] reads) for the next run to drop should this
//! one stop before it does. Who builds the new database, and what happens to sessions
//! still on the target, stays with the caller.

use tokio_postgres::Client;

use super::{quote_ident, PgContext as _, PgError};

/// A database made beside `target` to build a copy in. Its name starts with the target's
/// staging prefix ([`crate::cleanup::staging_prefix`]), so a run killed with `kill -9`
/// leaves one the next run on that target drops; while this process lives, a signal
/// drops it too.
pub struct Staging {
    pub name: String,
    pub target: String,
    _cleanup: crate::cleanup::Registered,
}

impl Staging {
    /// Drops the copies earlier runs on `target` left (naming one a live run is still
    /// making, through `say`), then creates a new staging database through `admin` (a
    /// connection to `admin_url`), `CREATE DATABASE … TEMPLATE template0` with
    /// `template0`. `creating` words the error when the server refuses (no CREATEDB).
    pub async fn create(
        admin: &Client,
        admin_url: &str,
        target: &str,
        template0: bool,
        creating: impl FnOnce(&str) -> String,
        say: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Staging, PgError> {
        crate::cleanup::leftovers(admin, target, say).await?;
        let tag = &blake3::hash(format!("{target}{:?}", std::time::SystemTime::now()).as_bytes())
            .to_hex()[..8];
        let name = format!("{}{tag}", crate::cleanup::staging_prefix(target));
        crate::cleanup::claim(admin, &name).await?;
        // on the clean-up list before it exists: a signal between CREATE and here would
        // otherwise leave it behind (the clean-up skips a database that is not there)
        let cleanup = crate::cleanup::staging_database(admin_url, &name, target);
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {}{}",
                quote_ident(&name),
                if template0 { " TEMPLATE template0" } else { "" }
            ))
            .await
            .pg(|| creating(&name))?;
        let staging = Staging {
            name,
            target: target.to_string(),
            _cleanup: cleanup,
        };
        if let Err(e) = crate::cleanup::mark_staging(admin, &staging.name, target).await {
            staging.drop_now(admin).await;
            return Err(e);
        }
        Ok(staging)
    }

    /// Drops the staging database; the target was never touched. Sessions of this run
    /// may still be closing: FORCE ends them (PostgreSQL 13+; an older server does
    /// without).
    pub async fn drop_now(&self, admin: &Client) {
        let name = quote_ident(&self.name);
        if admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .is_err()
        {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
                .await;
        }
    }

    /// [`swap_in`] for this staging database, the old target renamed `NAME_old`.
    pub async fn swap_in(&self, admin: &Client, extra: &str, what: &str) -> Result<(), SwapError> {
        let old = format!("{}_old", self.name);
        swap_in(admin, &self.target, &self.name, &old, extra, what).await
    }
}

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
