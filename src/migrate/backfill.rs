//! Batched backfills: `UPDATE … SET expr WHERE cond` in primary-key ranges, each batch in
//! its own short transaction, throttled, and resumable: the last key done is saved in
//! `_dataforge_backfill` in the same transaction as the batch, so an interrupted run picks
//! up exactly where it stopped.

use std::time::Duration;

use tokio_postgres::Client;

use crate::pg::{self, PgContext as _, PgError};

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("no table {0} (give it as table or schema.table)")]
    NoTable(String),
    #[error("{table} has {n} primary key columns: backfill walks a single-column primary key (add one, or backfill with your own key ranges)")]
    KeyShape { table: String, n: usize },
    #[error("batch after key {after} of {table} failed: {source}; every batch before it is committed and saved, so running the same command again resumes there")]
    Batch {
        table: String,
        after: String,
        #[source]
        source: PgError,
    },
    #[error(transparent)]
    Pg(#[from] PgError),
}

/// What to backfill.
#[derive(Debug, Clone)]
pub struct Backfill {
    pub table: String,
    pub set: String,
    pub filter: Option<String>,
    pub batch: i64,
    pub sleep: Duration,
    pub lock_timeout: Duration,
    /// Run a job that already finished again, over the rows that match now.
    pub again: bool,
}

/// How far a backfill got.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Progress {
    pub job: String,
    pub batches: u64,
    pub updated: u64,
    /// Rows walked (of `total`), for the progress bar.
    pub scanned: u64,
    pub total: u64,
    pub resumed_after: Option<String>,
    pub finished: bool,
    /// The job had finished before this run, which did nothing (see `again`); `updated`
    /// and `batches` are then what that earlier run did.
    pub already_finished: bool,
}

const STATE_TABLE: &str = r#"CREATE TABLE IF NOT EXISTS "_dataforge_backfill" (
    "job"         TEXT PRIMARY KEY,
    "table_name"  TEXT NOT NULL,
    "set_expr"    TEXT NOT NULL,
    "where_expr"  TEXT,
    "last_key"    TEXT,
    "batches"     BIGINT NOT NULL DEFAULT 0,
    "updated"     BIGINT NOT NULL DEFAULT 0,
    "started_at"  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    "finished_at" TIMESTAMPTZ
)"#;

impl Backfill {
    /// The job's identity: the same table, SET and WHERE resume the same job.
    pub fn job(&self) -> String {
        let key = format!(
            "{}\n{}\n{}",
            self.table,
            self.set,
            self.filter.as_deref().unwrap_or("")
        );
        blake3::hash(key.as_bytes()).to_hex()[..16].to_string()
    }
}

/// Runs (or resumes) the backfill, calling `tick` after every batch.
pub async fn run(
    client: &mut Client,
    b: &Backfill,
    mut tick: impl FnMut(&Progress),
) -> Result<Progress, BackfillError> {
    let rel: Option<u32> = client
        .query_one("SELECT to_regclass($1)::oid", &[&b.table])
        .await
        .pg(|| format!("looking up {}", b.table))?
        .get(0);
    let rel = rel.ok_or_else(|| BackfillError::NoTable(b.table.clone()))?;
    let keys = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), format('%s', $1::oid::regclass)
             FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = $1::oid AND i.indisprimary",
            &[&rel],
        )
        .await
        .pg(|| format!("reading the primary key of {}", b.table))?;
    if keys.len() != 1 {
        return Err(BackfillError::KeyShape {
            table: b.table.clone(),
            n: keys.len(),
        });
    }
    let (key, key_type, table): (String, String, String) =
        (keys[0].get(0), keys[0].get(1), keys[0].get(2));
    let key_q = pg::quote_ident(&key);
    client
        .batch_execute(STATE_TABLE)
        .await
        .pg(|| "creating _dataforge_backfill".into())?;
    let job = b.job();
    client
        .execute(
            r#"INSERT INTO "_dataforge_backfill" (job, table_name, set_expr, where_expr)
               VALUES ($1, $2, $3, $4) ON CONFLICT (job) DO NOTHING"#,
            &[&job, &table, &b.set, &b.filter],
        )
        .await
        .pg(|| "recording the backfill".into())?;
    if b.again {
        client
            .execute(
                r#"UPDATE "_dataforge_backfill" SET last_key = NULL, batches = 0, updated = 0,
                     started_at = clock_timestamp(), finished_at = NULL
                   WHERE job = $1 AND finished_at IS NOT NULL"#,
                &[&job],
            )
            .await
            .pg(|| "starting the finished backfill again".into())?;
    }
    let state = client
        .query_one(
            r#"SELECT last_key, batches, updated, finished_at IS NOT NULL FROM "_dataforge_backfill" WHERE job = $1"#,
            &[&job],
        )
        .await
        .pg(|| "reading the backfill state".into())?;
    let mut last: Option<String> = state.get(0);
    let total: i64 = client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .pg(|| format!("counting {table}"))?
        .get(0);
    let mut p = Progress {
        job: job.clone(),
        batches: state.get::<_, i64>(1) as u64,
        updated: state.get::<_, i64>(2) as u64,
        total: total as u64,
        resumed_after: last.clone(),
        finished: state.get(3),
        ..Progress::default()
    };
    if let Some(after) = &last {
        p.scanned = client
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE {key_q} <= $1::text::{key_type}"),
                &[after],
            )
            .await
            .pg(|| format!("counting the rows already done in {table}"))?
            .get::<_, i64>(0) as u64;
    }
    if p.finished {
        p.already_finished = true;
        return Ok(p);
    }
    let cond = b
        .filter
        .as_deref()
        .map(|w| format!(" AND ({w})"))
        .unwrap_or_default();
    // The batch's upper key, then the update of that key range, and the saved position,
    // in one transaction.
    // The last key by ORDER BY rather than max(): any key a btree orders works (uuid has
    // no max aggregate). `s.k`, not `k`: ORDER BY would take the text output column.
    let upper = format!(
        "WITH s AS (SELECT {key_q} AS k FROM {table}
           WHERE $1::text IS NULL OR {key_q} > $1::text::{key_type} ORDER BY {key_q} LIMIT $2)
         SELECT (SELECT s.k::text AS last_key FROM s ORDER BY s.k DESC LIMIT 1), (SELECT count(*) FROM s)"
    );
    let update = format!(
        "UPDATE {table} SET {set} WHERE ($1::text IS NULL OR {key_q} > $1::text::{key_type})
           AND {key_q} <= $2::text::{key_type}{cond}",
        set = b.set
    );
    loop {
        let after = last.clone().unwrap_or_else(|| "(start)".into());
        let batch_err = |source| BackfillError::Batch {
            table: table.clone(),
            after: after.clone(),
            source,
        };
        let tx = client
            .transaction()
            .await
            .pg(|| "starting a batch".into())
            .map_err(batch_err)?;
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = {}",
            b.lock_timeout.as_millis()
        ))
        .await
        .pg(|| "setting lock_timeout".into())
        .map_err(batch_err)?;
        let row = tx
            .query_one(&upper, &[&last, &b.batch])
            .await
            .pg(|| format!("finding the next {} keys of {table}", b.batch))
            .map_err(batch_err)?;
        let (hi, n): (Option<String>, i64) = (row.get(0), row.get(1));
        let Some(hi) = hi else {
            tx.execute(
                r#"UPDATE "_dataforge_backfill" SET finished_at = clock_timestamp() WHERE job = $1"#,
                &[&job],
            )
            .await
            .pg(|| "recording the end of the backfill".into())
            .map_err(batch_err)?;
            tx.commit()
                .await
                .pg(|| "committing".into())
                .map_err(batch_err)?;
            p.finished = true;
            return Ok(p);
        };
        let updated = tx
            .execute(&update, &[&last, &hi])
            .await
            .pg(|| format!("updating {table} after key {after}"))
            .map_err(batch_err)?;
        tx.execute(
            r#"UPDATE "_dataforge_backfill" SET last_key = $2, batches = batches + 1, updated = updated + $3
               WHERE job = $1"#,
            &[&job, &hi, &(updated as i64)],
        )
        .await
        .pg(|| "saving the backfill position".into())
        .map_err(batch_err)?;
        tx.commit()
            .await
            .pg(|| "committing a batch".into())
            .map_err(batch_err)?;
        p.batches += 1;
        p.updated += updated;
        p.scanned += n as u64;
        last = Some(hi);
        tick(&p);
        if !b.sleep.is_zero() {
            tokio::time::sleep(b.sleep).await;
        }
    }
}
