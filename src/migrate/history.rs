//! The `_prisma_migrations` table, with Prisma's exact columns and meaning, so a database
//! migrated by Prisma reads correctly here and one migrated here reads correctly in Prisma.
//!
//! A row with `finished_at` set and `rolled_back_at` NULL is applied; `finished_at` NULL
//! and `rolled_back_at` NULL is a failed migration; `rolled_back_at` set means the
//! attempt no longer counts (Prisma's `migrate resolve --rolled-back`).

use tokio_postgres::GenericClient;

use crate::pg::{quote_literal, PgContext as _, PgError};

/// Prisma's own DDL for its history table.
pub const CREATE_TABLE: &str = r#"CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)"#;

/// Prisma's advisory lock key: holding the same one keeps dataforge and Prisma from
/// migrating one database at the same time.
pub const ADVISORY_LOCK_KEY: i64 = 72707369;

/// One row of `_prisma_migrations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub id: String,
    pub checksum: String,
    pub migration_name: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub rolled_back_at: Option<String>,
    pub logs: Option<String>,
    pub applied_steps_count: i32,
    /// finished_at − started_at, for applied rows.
    pub duration_ms: Option<i64>,
}

impl HistoryRow {
    pub fn is_applied(&self) -> bool {
        self.finished_at.is_some() && self.rolled_back_at.is_none()
    }

    pub fn is_failed(&self) -> bool {
        self.finished_at.is_none() && self.rolled_back_at.is_none()
    }
}

pub async fn ensure_table(client: &impl GenericClient) -> Result<(), PgError> {
    client
        .batch_execute(CREATE_TABLE)
        .await
        .pg(|| "creating _prisma_migrations".into())
}

/// Whether the history table exists (without creating it).
pub async fn exists(client: &impl GenericClient) -> Result<bool, PgError> {
    let row = client
        .query_one(
            "SELECT to_regclass('public._prisma_migrations') IS NOT NULL",
            &[],
        )
        .await
        .pg(|| "looking for _prisma_migrations".into())?;
    Ok(row.get(0))
}

/// Every row, oldest first. Empty when the table does not exist.
pub async fn read(client: &impl GenericClient) -> Result<Vec<HistoryRow>, PgError> {
    if !exists(client).await? {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            r#"SELECT id, checksum, migration_name, started_at::text, finished_at::text,
                      rolled_back_at::text, logs, applied_steps_count,
                      (extract(epoch FROM finished_at - started_at) * 1000)::bigint
               FROM "_prisma_migrations" ORDER BY started_at, migration_name"#,
            &[],
        )
        .await
        .pg(|| "reading _prisma_migrations".into())?;
    Ok(rows
        .iter()
        .map(|r| HistoryRow {
            id: r.get(0),
            checksum: r.get(1),
            migration_name: r.get(2),
            started_at: r.get(3),
            finished_at: r.get(4),
            rolled_back_at: r.get(5),
            logs: r.get(6),
            applied_steps_count: r.get(7),
            duration_ms: r.get(8),
        })
        .collect())
}

/// The statement that records the start of migration `name` under `id`. The writers
/// here are SQL text so a run can send them in one round trip with `BEGIN`, `SET LOCAL`
/// and `COMMIT` around a migration (a small migration costs little more than its SQL).
pub fn started_sql(id: &str, name: &str, checksum: &str) -> String {
    format!(
        r#"INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count)
           VALUES ({}, {}, {}, clock_timestamp(), 0)"#,
        quote_literal(id),
        quote_literal(checksum),
        quote_literal(name)
    )
}

/// The statements that mark the row `id` finished and log it (as an `up`), with the
/// duration the server measured from the started row, so they can travel in one round
/// trip with the migration itself.
pub fn finished_sql(id: &str, name: &str, checksum: &str, facts: &Facts) -> String {
    let id = quote_literal(id);
    format!(
        r#"UPDATE "_prisma_migrations" SET finished_at = clock_timestamp(), applied_steps_count = 1
           WHERE id = {id};
           {}"#,
        log_insert(
            name,
            Action::Up,
            checksum,
            facts,
            "started_at",
            "(extract(epoch FROM finished_at - started_at) * 1000)::bigint",
            &format!(r#" FROM "_prisma_migrations" WHERE id = {id}"#),
        )
    )
}

/// Records a started migration; returns its id.
pub async fn insert_started(
    client: &impl GenericClient,
    name: &str,
    checksum: &str,
) -> Result<String, PgError> {
    let id = uuid::Uuid::new_v4().to_string();
    client
        .batch_execute(&started_sql(&id, name, checksum))
        .await
        .pg(|| format!("recording the start of migration {name}"))?;
    Ok(id)
}

/// Records the error of a started attempt (a migration run outside a transaction, whose
/// started row is already committed): `finished_at` stays NULL, as Prisma leaves it.
pub async fn record_failure(
    client: &impl GenericClient,
    id: &str,
    logs: &str,
) -> Result<(), PgError> {
    client
        .execute(
            r#"UPDATE "_prisma_migrations" SET logs = $2 WHERE id = $1"#,
            &[&id, &logs],
        )
        .await
        .pg(|| "recording a failed migration".into())?;
    Ok(())
}

/// Removes the started row `id` of an attempt that changed nothing (it stays pending).
pub async fn delete_started(client: &impl GenericClient, id: &str) -> Result<(), PgError> {
    client
        .execute(r#"DELETE FROM "_prisma_migrations" WHERE id = $1"#, &[&id])
        .await
        .pg(|| "removing the row of an attempt that changed nothing".into())?;
    Ok(())
}

/// Records a failed attempt as Prisma does: no `finished_at`, the error in `logs`.
pub async fn insert_failed(
    client: &impl GenericClient,
    name: &str,
    checksum: &str,
    logs: &str,
) -> Result<(), PgError> {
    let id = uuid::Uuid::new_v4().to_string();
    client
        .execute(
            r#"INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, logs, applied_steps_count)
               VALUES ($1, $2, $3, clock_timestamp(), $4, 0)"#,
            &[&id, &checksum, &name, &logs],
        )
        .await
        .pg(|| format!("recording the failure of migration {name}"))?;
    Ok(())
}

/// dataforge's own facts about each run, beside Prisma's table (which it leaves exactly
/// as Prisma defines it): what was done, by whom, how long it took.
pub const CREATE_LOG_TABLE: &str = r#"CREATE TABLE IF NOT EXISTS "_dataforge_migration_log" (
    "id"                BIGSERIAL PRIMARY KEY,
    "migration_name"    VARCHAR(255) NOT NULL,
    "action"            TEXT NOT NULL,
    "checksum"          VARCHAR(64) NOT NULL,
    "started_at"        TIMESTAMPTZ NOT NULL,
    "finished_at"       TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    "duration_ms"       BIGINT NOT NULL,
    "run_by"            TEXT NOT NULL,
    "dataforge_version" TEXT NOT NULL,
    "lint_findings"     JSONB,
    "approval"          TEXT,
    "backup"            TEXT,
    "error"             TEXT
);
ALTER TABLE "_dataforge_migration_log"
    ADD COLUMN IF NOT EXISTS "lint_findings" JSONB,
    ADD COLUMN IF NOT EXISTS "approval" TEXT,
    ADD COLUMN IF NOT EXISTS "backup" TEXT,
    ADD COLUMN IF NOT EXISTS "error" TEXT"#;

/// What else a log row records about an `up`: the lint findings, the approval it ran
/// under, and the backup taken before it (by `deploy`).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// JSON array of findings.
    pub findings: Option<String>,
    pub approval: Option<String>,
    pub backup: Option<String>,
}

/// What a log row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    /// An `up` that failed (the error is in the row's `error`).
    UpFailed,
    Down,
    ResolveApplied,
    ResolveRolledBack,
    /// A deploy's health checks passed (the row names its newest migration).
    HealthPassed,
    /// A deploy's health checks failed (which, in the row's `error`).
    HealthFailed,
    /// A deploy was rolled back after its health checks failed (how, in `error`).
    DeployRolledBack,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Up => "up",
            Action::UpFailed => "up-failed",
            Action::Down => "down",
            Action::ResolveApplied => "resolve-applied",
            Action::ResolveRolledBack => "resolve-rolled-back",
            Action::HealthPassed => "health-check",
            Action::HealthFailed => "health-check-failed",
            Action::DeployRolledBack => "deploy-rolled-back",
        }
    }
}

pub async fn ensure_log_table(client: &impl GenericClient) -> Result<(), PgError> {
    client
        .batch_execute(CREATE_LOG_TABLE)
        .await
        .pg(|| "creating _dataforge_migration_log".into())
}

/// The OS account running dataforge, for the log: `$USER` or `$LOGNAME`, else (a
/// container, CI) the account the system names for this process's user id, else `uid N`.
pub fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(system_user)
}

fn system_user() -> String {
    // SAFETY: getuid takes nothing and cannot fail
    let uid = unsafe { libc::getuid() };
    // SAFETY: passwd is a plain C struct of integers and pointers; all-zero is a valid value
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes only into `pwd`, `buf` (of the length given) and `found`
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc == 0 && !found.is_null() && !pwd.pw_name.is_null() {
        // SAFETY: pw_name points into `buf`, NUL-terminated by getpwuid_r
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        if let Ok(n) = name.to_str() {
            return n.to_string();
        }
    }
    format!("uid {uid}")
}

/// An insert into the log whose `started_at` and `duration_ms` are the SQL expressions
/// `started` and `ms`, evaluated over `from` (a `FROM …` clause, or empty).
fn log_insert(
    name: &str,
    action: Action,
    checksum: &str,
    facts: &Facts,
    started: &str,
    ms: &str,
    from: &str,
) -> String {
    let opt = |v: &Option<String>| v.as_deref().map_or("NULL".to_string(), quote_literal);
    format!(
        r#"INSERT INTO "_dataforge_migration_log"
             (migration_name, action, checksum, started_at, duration_ms, run_by, dataforge_version,
              lint_findings, approval, backup)
           SELECT {name}, {action}, {checksum}, {started}, {ms},
                  current_user || ' (os user ' || {by} || ')', {version}, {findings}::jsonb,
                  {approval}, {backup}{from}"#,
        name = quote_literal(name),
        action = quote_literal(action.as_str()),
        checksum = quote_literal(checksum),
        by = quote_literal(&os_user()),
        version = quote_literal(env!("CARGO_PKG_VERSION")),
        findings = opt(&facts.findings),
        approval = opt(&facts.approval),
        backup = opt(&facts.backup),
    )
}

/// Records one finished action, in the caller's transaction.
pub async fn log(
    client: &impl GenericClient,
    name: &str,
    action: Action,
    checksum: &str,
    started: std::time::Instant,
    facts: &Facts,
) -> Result<(), PgError> {
    let ms = started.elapsed().as_millis() as i64;
    let sql = log_insert(
        name,
        action,
        checksum,
        facts,
        &format!("clock_timestamp() - make_interval(secs => {ms} / 1000.0)"),
        &ms.to_string(),
        "",
    );
    client
        .batch_execute(&sql)
        .await
        .pg(|| format!("logging {} of {name}", action.as_str()))
}

/// Records one failed attempt, on its own (autocommit: the attempt's transaction is gone).
pub async fn log_failed(
    client: &impl GenericClient,
    name: &str,
    checksum: &str,
    started: std::time::Instant,
    facts: &Facts,
    error: &str,
) -> Result<(), PgError> {
    log_error(
        client,
        name,
        Action::UpFailed,
        checksum,
        started,
        facts,
        error,
    )
    .await
}

/// Records one action with what went wrong (`error`; empty for none), on its own.
pub async fn log_error(
    client: &impl GenericClient,
    name: &str,
    action: Action,
    checksum: &str,
    started: std::time::Instant,
    facts: &Facts,
    error: &str,
) -> Result<(), PgError> {
    let ms = started.elapsed().as_millis() as i64;
    let sql = log_insert(
        name,
        action,
        checksum,
        facts,
        &format!("clock_timestamp() - make_interval(secs => {ms} / 1000.0)"),
        &ms.to_string(),
        "",
    );
    // the row, then its error: one statement string, one implicit transaction
    let sql = format!(
        "{sql};\nUPDATE \"_dataforge_migration_log\" SET error = {} \
         WHERE id = currval(pg_get_serial_sequence('\"_dataforge_migration_log\"', 'id'))",
        if error.is_empty() {
            "NULL".to_string()
        } else {
            crate::pg::quote_literal(error)
        }
    );
    client
        .batch_execute(&sql)
        .await
        .pg(|| format!("logging {} of {name}", action.as_str()))
}

/// Marks the applied row of `name` rolled back, as `prisma migrate resolve --rolled-back`
/// does for failed ones: Prisma and dataforge then both see the migration as pending.
pub async fn mark_rolled_back(client: &impl GenericClient, name: &str) -> Result<u64, PgError> {
    client
        .execute(
            r#"UPDATE "_prisma_migrations" SET rolled_back_at = clock_timestamp()
               WHERE migration_name = $1 AND rolled_back_at IS NULL"#,
            &[&name],
        )
        .await
        .pg(|| format!("recording the rollback of {name}"))
}

/// Records `name` as applied without running it, as `prisma migrate resolve --applied`
/// does: a finished row with no steps.
pub async fn insert_applied_without_running(
    client: &impl GenericClient,
    name: &str,
    checksum: &str,
) -> Result<(), PgError> {
    let id = uuid::Uuid::new_v4().to_string();
    client
        .execute(
            r#"INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
               VALUES ($1, $2, $3, clock_timestamp(), clock_timestamp(), 0)"#,
            &[&id, &checksum, &name],
        )
        .await
        .pg(|| format!("recording {name} as applied"))?;
    Ok(())
}

/// Marks the failed attempts of `name` rolled back; returns how many there were.
pub async fn mark_failed_rolled_back(
    client: &impl GenericClient,
    name: &str,
) -> Result<u64, PgError> {
    client
        .execute(
            r#"UPDATE "_prisma_migrations" SET rolled_back_at = clock_timestamp()
               WHERE migration_name = $1 AND finished_at IS NULL AND rolled_back_at IS NULL"#,
            &[&name],
        )
        .await
        .pg(|| format!("marking the failed attempt of {name} rolled back"))
}

#[cfg(test)]
mod os_user_tests {
    /// Without `$USER` and `$LOGNAME` the account still has its name (issue 15, §5).
    #[test]
    fn the_account_is_named_without_the_environment() {
        let name = super::system_user();
        assert!(!name.is_empty() && name != "unknown", "{name}");
        // SAFETY: getuid cannot fail
        if unsafe { libc::getuid() } == 0 {
            assert_eq!(name, "root");
        }
    }
}
