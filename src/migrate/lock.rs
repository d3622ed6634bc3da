//! Prisma's advisory lock, held for the whole of a run: taken with a wait that names who
//! holds it, and released on every path.

use super::*;

pub(super) async fn try_lock(client: &Client) -> Result<bool, PgError> {
    Ok(client
        .query_one(
            "SELECT pg_try_advisory_lock($1)",
            &[&history::ADVISORY_LOCK_KEY],
        )
        .await
        .pg(|| "taking the migration lock".into())?
        .get(0))
}

/// Who holds the migration lock, for messages.
pub(super) async fn lock_holder(client: &Client) -> String {
    // A bigint advisory key shows in pg_locks as classid (high half), objid (low half);
    // advisory locks are per database, so only this database's holder counts.
    let key = history::ADVISORY_LOCK_KEY;
    let sql = format!(
        "SELECT a.pid, coalesce(nullif(a.application_name, ''), '?'), a.usename::text,
                date_trunc('second', a.backend_start)::text
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {} AND l.objid = {}
           AND l.objsubid = 1
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
         LIMIT 1",
        key >> 32,
        key & 0xffff_ffff
    );
    match client.query(&sql, &[]).await {
        Ok(rows) if !rows.is_empty() => {
            let r = &rows[0];
            format!(
                "pid {} ({}, user {}, connected {})",
                r.get::<_, i32>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3)
            )
        }
        _ => "another session".into(),
    }
}

/// Takes Prisma's advisory lock on this connection, waiting up to `opts.lock_wait` for
/// another runner (Prisma or dataforge) and saying who it waits for.
pub(super) async fn lock(client: &Client, opts: &RunOptions) -> Result<(), MigrateError> {
    if try_lock(client).await? {
        return Ok(());
    }
    let holder = lock_holder(client).await;
    opts.on_event.emit(&RunEvent::LockWait {
        holder: holder.clone(),
    });
    (opts.notify)(&format!(
        "waiting for the migration lock, held by {holder} (up to {:?})",
        opts.lock_wait
    ));
    let deadline = Instant::now() + opts.lock_wait;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if try_lock(client).await? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(MigrateError::LockWait {
                waited: opts.lock_wait,
                holder: lock_holder(client).await,
            });
        }
    }
}

/// Runs `work` holding the migration lock (see [`lock`]), and releases the lock on
/// every path: `work`'s error first, then the release's. What up, down and resolve
/// each do inside the lock.
pub(super) async fn with_lock<T>(
    client: &mut Client,
    opts: &RunOptions,
    work: impl AsyncFnOnce(&mut Client) -> Result<T, MigrateError>,
) -> Result<T, MigrateError> {
    lock(client, opts).await?;
    let result = work(client).await;
    let unlocked = unlock(client).await;
    let value = result?;
    unlocked?;
    Ok(value)
}

pub(super) async fn unlock(client: &Client) -> Result<(), PgError> {
    client
        .execute(
            "SELECT pg_advisory_unlock($1)",
            &[&history::ADVISORY_LOCK_KEY],
        )
        .await
        .pg(|| "releasing the migration lock".into())?;
    Ok(())
}
