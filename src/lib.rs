//! dataforge: safe, realistic data for PostgreSQL.
//!
//! - [`seed`]: reproducible, idempotent seeds from profiles (`dataforge seed`).
//! - [`migrate`]: Prisma-compatible migrations (`dataforge migrate`).
//! - [`backup`]: verified backups, safe restores, production marks.
//! - [`pg`]: connections, the COPY codec and the local cluster (`dataforge local`).
//! - [`fixtures`]: fresh seeded databases for tests, cloned from templates.
//! - [`pii`]: the shapes of personal data that init, the transformers and verify share.
//!
//! The binary is a thin layer over this library ([`cli`]).

pub mod anonymize;
pub mod backup;
pub mod bloom;
pub mod child;
pub mod cleanup;
pub mod cli;
pub mod fixtures;
pub mod migrate;
pub mod par;
pub mod pg;
pub mod pii;
pub mod progress;
pub mod seed;
pub mod snapshot;
pub mod source;
pub mod subset;
pub mod verify;

/// An error and its causes on one line, each cause said once: a cause whose text the
/// message already holds (an error that formats its source and also exposes it) is not
/// repeated a second time.
pub fn describe(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        // the server's own words are what a driver error says in its wrappings ("db
        // error: ERROR: …"): compared by them, an error already described is not again
        let server = cause
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(|pg| pg.as_db_error())
            .or_else(|| cause.downcast_ref::<tokio_postgres::error::DbError>());
        let text = match server {
            Some(db) => db.message().to_string(),
            None => cause.to_string(),
        };
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}
