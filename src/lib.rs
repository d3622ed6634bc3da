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
pub mod verify;
