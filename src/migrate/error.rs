//! What can go wrong with migrations, each error saying where and what to do next.

use std::path::PathBuf;
use std::time::Duration;

use super::{approval, lint};
use crate::pg::PgError;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot read the migrations folder {}: {source} (choose one with --dir DIR)", .dir.display())]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", .path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is missing: every migration folder needs one", .path.display())]
    MissingScript { path: PathBuf },
    #[error(
        "migration {name} failed earlier and is recorded as failed in _prisma_migrations \
         (started {started_at}{logs}). Undo what it changed by hand and fix the script, then \
         run `dataforge migrate resolve --rolled-back {name}` (or Prisma's \
         `prisma migrate resolve --rolled-back {name}`) and `dataforge migrate up` again"
    )]
    PreviouslyFailed {
        name: String,
        started_at: String,
        logs: String,
    },
    #[error(
        "migration {name} was changed after it was applied (checksum {recorded} recorded, \
         {on_disk} on disk). Restore the applied file, and put the change in a new migration"
    )]
    Modified {
        name: String,
        recorded: String,
        on_disk: String,
    },
    #[error(
        "migration {rewrite} is `migrate lint --fix`'s rewrite of {original}, and {original} \
         is still in the migrations folder: both would apply. Review the rewrite, then delete \
         the folder {original} (or delete the rewrite's folders to keep the original)"
    )]
    RewriteBesideOriginal { rewrite: String, original: String },
    #[error(
        "migration {rewrite} is `migrate lint --fix`'s rewrite of {original}, which this \
         database has applied already: the rewrite would make the same changes again. On this \
         database, record each rewrite folder as applied without running it (`dataforge migrate \
         resolve --applied {rewrite}`, and the same for the others); the rewrite is for \
         databases that have not applied {original}"
    )]
    RewriteOfApplied { rewrite: String, original: String },
    #[error(
        "migration {original} has been replaced by {rewrite}, `migrate lint --fix`'s rewrite of \
         it, which this database has applied: running {original} as well would make the same \
         changes again. Delete the folder {original} (it came back, from a merge perhaps)"
    )]
    OriginalOfAppliedRewrite { rewrite: String, original: String },
    #[error("{why}; fix or delete that rewrite.toml (it names the migration its folder rewrites)")]
    BadRewriteMarker { why: String },
    #[error("migration {name} failed{at}: {source}{blocked_by}; nothing of it was applied, and the attempt is recorded in _prisma_migrations")]
    Failed {
        name: String,
        /// ` at FILE:LINE:COL`, where the server placed the error in the file (or empty).
        at: String,
        #[source]
        source: Box<PgError>,
        /// Who blocked it, when a lock timeout ended it.
        blocked_by: String,
    },
    #[error(
        "migration {name} failed at {at}: {source}{blocked_by}. It runs outside a transaction, \
         so the statements before that one stayed applied; a failed row is recorded in \
         _prisma_migrations. Make the migration safe to re-run (IF NOT EXISTS), fix the failing \
         statement, then run `dataforge migrate resolve --rolled-back {name}` and `dataforge \
         migrate up` (an INVALID index left by a failed concurrent build is dropped before the retry)"
    )]
    FailedOutside {
        name: String,
        at: String,
        #[source]
        source: Box<PgError>,
        blocked_by: String,
    },
    #[error(
        "migration {name} could not take its locks within --lock-timeout ({tries}){blocked_by}: \
         {source}. Nothing of it was applied and it stays pending (no failed row): run \
         `dataforge migrate up` again once the blocker is done, or raise --lock-timeout or \
         --retries"
    )]
    LockTimeoutPending {
        name: String,
        tries: String,
        blocked_by: String,
        #[source]
        source: Box<PgError>,
    },
    /// `up` stopped at a failure: the failure, and what the run applied and left unrun.
    #[error("{0}")]
    Stopped(Box<Stopped>),
    /// A migration with its own transaction control failed (boxed: the error stays small).
    #[error("{0}")]
    FailedOwnTransactions(Box<OwnTransactionsFailure>),
    #[error("gave up waiting for the migration lock after {waited:?}: {holder} still holds it (raise --lock-wait, or stop the other run)")]
    LockWait { waited: Duration, holder: String },
    #[error("`{name}` is not a migration name: use letters, digits and underscores, e.g. add_users_email_index")]
    BadName { name: String },
    #[error("{} exists already", .path.display())]
    Exists { path: PathBuf },
    #[error("cannot resolve {name}: {why}")]
    Resolve { name: String, why: String },
    #[error("no migration {name} in the folder (there are: {known})")]
    Unknown { name: String, known: String },
    #[error("cannot roll back {name}: {why}; nothing was rolled back")]
    CannotRollBack { name: String, why: String },
    #[error(
        "rolling back {name} failed at {at}: {source}. Its down.sql runs statement by \
         statement outside a transaction ({why}), so the statements before that one stayed \
         applied; the migration is still recorded as applied. Make down.sql safe to re-run \
         (IF EXISTS), fix the failing statement, and run `dataforge migrate down` again"
    )]
    DownFailedOutside {
        name: String,
        at: String,
        why: String,
        #[source]
        source: Box<PgError>,
    },
    #[error("rolling back {name} failed: {source}; that migration is still applied (its down.sql was rolled back)")]
    DownFailed {
        name: String,
        #[source]
        source: PgError,
    },
    #[error("{}:{line}:{col}: {message} (PostgreSQL's grammar rejects this migration; nothing was run)", .file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{}:{line}:{col}: {why} (fix the file, or delete it and run `dataforge migrate approve` again)", .path.display())]
    BadApproval {
        path: PathBuf,
        line: usize,
        col: usize,
        why: String,
    },
    #[error("refusing to run unapproved destructive migrations; nothing was run:{}", approval::refusal_text(.0))]
    Unapproved(Vec<approval::Refusal>),
    #[error("nothing to approve in {name}: it has no high-risk findings (`dataforge migrate lint` shows all findings)")]
    NothingToApprove { name: String },
    #[error(transparent)]
    Pg(#[from] PgError),
}

impl MigrateError {
    /// A syntax error found by the parser, placed in `file`.
    pub fn syntax(file: PathBuf, e: lint::SyntaxError) -> Self {
        MigrateError::Syntax {
            file,
            line: e.line,
            col: e.column,
            message: e.message,
        }
    }

    pub(super) fn failed(name: &str, source: PgError) -> Self {
        MigrateError::Failed {
            name: name.to_string(),
            at: String::new(),
            source: Box::new(source),
            blocked_by: String::new(),
        }
    }
}

/// Where an `up` stopped: its failure, then what it applied before (which stays applied)
/// and what it did not run.
#[derive(Debug)]
pub struct Stopped {
    pub cause: MigrateError,
    pub applied: Vec<String>,
    pub not_run: Vec<String>,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let applied = if self.applied.is_empty() {
            "This run applied nothing before it".to_string()
        } else {
            format!(
                "This run applied {} before it (they stay applied)",
                self.applied.join(", ")
            )
        };
        let not_run = if self.not_run.is_empty() {
            String::new()
        } else {
            format!(" and did not run {}", self.not_run.join(", "))
        };
        write!(f, "{}. {applied}{not_run}", self.cause)
    }
}

impl MigrateError {
    /// The failure itself, looking through [`MigrateError::Stopped`].
    pub fn root(&self) -> &MigrateError {
        match self {
            MigrateError::Stopped(s) => s.cause.root(),
            e => e,
        }
    }

    /// What failed and where, without what it left behind or what to do next: for a
    /// caller that is about to change what it left (deploy restoring its backup).
    pub fn headline(&self) -> Option<String> {
        match self.root() {
            MigrateError::FailedOutside {
                name,
                at,
                source,
                blocked_by,
            } => Some(format!(
                "migration {name} failed at {at}: {source}{blocked_by}"
            )),
            MigrateError::FailedOwnTransactions(f) => Some(format!(
                "migration {} failed at {}: {}{}",
                f.name, f.at, f.cause, f.blocked_by
            )),
            _ => None,
        }
    }
}

/// What a migration that controls its own transactions left when it failed.
#[derive(Debug)]
pub struct OwnTransactionsFailure {
    pub name: String,
    pub at: String,
    /// The server's error, or why the run stopped.
    pub cause: String,
    pub blocked_by: String,
    /// What stayed applied, in words with `file:line:col`.
    pub committed: String,
    /// What of its open transaction was rolled back, in words (or empty).
    pub rolled_back: String,
}

impl std::fmt::Display for OwnTransactionsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let OwnTransactionsFailure {
            name,
            at,
            cause,
            blocked_by,
            committed,
            rolled_back,
        } = self;
        write!(
            f,
            "migration {name} failed at {at}: {cause}{blocked_by}. It controls its own \
             transactions (BEGIN/COMMIT), so it ran as psql runs it: {committed}; the failing \
             statement and everything after it were not applied{rolled_back}. One failed row is \
             recorded in _prisma_migrations. Undo what stayed applied or make the migration \
             safe to re-run, fix it, then run `dataforge migrate resolve --rolled-back {name}` \
             and `dataforge migrate up`"
        )
    }
}
