//! Applying a generated dataset to a database as a plan: per table, rows inserted,
//! updated, unchanged and deleted (deletes only with `--prune`), all in one transaction.
//!
//! Rows go in with COPY, never row by row: straight into a table that is empty, else
//! into a temporary staging table followed by set-based statements. An unchanged row is
//! never written, so it keeps its `xmin`; a row edited by hand is put back. Any failure
//! rolls the whole transaction back, schema included when the seed created it.

use std::collections::BTreeMap;

use bytes::BytesMut;
use futures_util::SinkExt;
use indicatif::ProgressBar;
use serde::Serialize;
use tokio_postgres::{Client, Transaction};

use tokio::sync::mpsc::Receiver;

use super::gen::{Event, GenError, SeedOptions};
use super::profile::Profile;
use crate::migrate::{self, MigrateError};
use crate::pg::{copy, quote_ident, PgContext as _, PgError};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "the database has a different schema than profile {profile} expects: {missing}. \
         Apply the profile's migrations (`dataforge migrate up --dir {dir}`) or point \
         --database-url at an empty database"
    )]
    SchemaMismatch {
        profile: String,
        missing: String,
        dir: String,
    },
    #[error(
        "the database has none of profile {profile}'s tables ({tables}) and the profile has no \
         migrations to create them; create the schema first"
    )]
    NoSchema { profile: String, tables: String },
    #[error("loading table {table}: {source}; nothing was written")]
    Table {
        table: String,
        #[source]
        source: PgError,
    },
    #[error("{0}; nothing was written")]
    Migrate(#[from] MigrateError),
    #[error("{0}; nothing was written")]
    Gen(GenError),
    #[error(transparent)]
    Pg(#[from] PgError),
}

/// What happened (or, with `--dry-run`, would happen) to one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TableCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    /// Rows in the table that the seed does not make, kept because `--prune` was not given.
    #[serde(skip)]
    pub kept_extra: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub migrations_applied: Vec<String>,
    pub tables: Vec<(String, TableCounts)>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    pub dry_run: bool,
    pub prune: bool,
    pub progress: bool,
}

/// Column names and types of the profile's tables as the database has them.
type Catalog = BTreeMap<String, BTreeMap<String, String>>;

async fn read_catalog(client: &Client, tables: &[&str]) -> Result<Catalog, PgError> {
    let names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
    let rows = client
        .query(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod)
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE c.relkind IN ('r', 'p') AND c.relname = ANY($1)",
            &[&names],
        )
        .await
        .pg(|| "reading the schema of the target tables".into())?;
    let mut cat = Catalog::new();
    for r in rows {
        cat.entry(r.get(0)).or_default().insert(r.get(1), r.get(2));
    }
    Ok(cat)
}

/// What the target lacks of the profile: `Ok(true)` when it has none of the tables (so
/// the migrations should run), `Ok(false)` when it has them all.
fn check_schema(
    profile: &Profile,
    tables: &[(String, Vec<String>)],
    cat: &Catalog,
) -> Result<bool, LoadError> {
    let present = tables.iter().filter(|(t, _)| cat.contains_key(t)).count();
    if present == 0 {
        if profile.migrations.is_empty() {
            return Err(LoadError::NoSchema {
                profile: profile.name.clone(),
                tables: tables
                    .iter()
                    .map(|(t, _)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        return Ok(true);
    }
    let mut missing = Vec::new();
    for (t, columns) in tables {
        match cat.get(t) {
            None => missing.push(format!("table {t} is missing")),
            Some(cols) => {
                for c in columns {
                    if !cols.contains_key(c) {
                        missing.push(format!("column {t}.{c} is missing"));
                    }
                }
            }
        }
    }
    if missing.is_empty() {
        return Ok(false);
    }
    let dir = if profile.origin.starts_with("builtin:") {
        format!("profiles/{}/migrations", profile.name)
    } else {
        std::path::Path::new(&profile.origin)
            .with_extension("")
            .join("migrations")
            .display()
            .to_string()
    };
    Err(LoadError::SchemaMismatch {
        profile: profile.name.clone(),
        missing: missing.join("; "),
        dir,
    })
}

/// What the generator thread sends the loader.
enum Msg {
    Begin,
    /// COPY text for some rows, and how many.
    Chunk(bytes::Bytes, u64),
    End,
}

/// Generates the profile and applies it to the database behind `client` in one
/// transaction. Generation runs on its own thread and streams COPY text through a
/// bounded channel, so memory holds only the entities other entities refer to.
pub async fn apply(
    client: &mut Client,
    profile: &Profile,
    seed: &SeedOptions,
    opts: ApplyOptions,
) -> Result<Outcome, LoadError> {
    let tables = profile.tables();
    let names: Vec<&str> = tables.iter().map(|(t, _)| t.as_str()).collect();
    let cat = read_catalog(client, &names).await?;
    let needs_schema = check_schema(profile, &tables, &cat)?;
    let tx = client
        .transaction()
        .await
        .pg(|| "starting the seed transaction".into())?;
    let mut outcome = Outcome::default();
    if needs_schema {
        outcome.migrations_applied =
            migrate::apply_in_transaction(&tx, &profile.migrations).await?;
    }
    let cat = if needs_schema {
        read_catalog(tx.client(), &names).await?
    } else {
        cat
    };
    check_schema(profile, &tables, &cat)?;
    let list: Vec<String> = names.iter().map(|n| quote_ident(n)).collect();
    tx.batch_execute(&format!(
        "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
        list.join(", ")
    ))
    .await
    .pg(|| "locking the seeded tables".into())?;

    let total: u64 = profile
        .entities
        .iter()
        .map(|e| e.count_at(seed.scale))
        .sum();
    let bar = progress_bar(opts.progress, total);
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Msg>(8);
    let generator = {
        let profile = profile.clone();
        let seed = *seed;
        tokio::task::spawn_blocking(move || -> Result<(), GenError> {
            let mut buf = BytesMut::with_capacity(1 << 18);
            let mut pending = 0u64;
            // A closed channel means the loader failed; it reports why.
            let closed = || GenError::Stopped;
            super::gen::stream(&profile, &seed, |ev| {
                match ev {
                    Event::Begin { .. } => {
                        sender.blocking_send(Msg::Begin).map_err(|_| closed())?
                    }
                    Event::Row(r) => {
                        copy::put_row(&mut buf, r.iter().map(|v| v.as_deref()));
                        pending += 1;
                        if buf.len() >= 1 << 18 {
                            sender
                                .blocking_send(Msg::Chunk(buf.split().freeze(), pending))
                                .map_err(|_| closed())?;
                            pending = 0;
                        }
                    }
                    Event::End => {
                        if !buf.is_empty() {
                            sender
                                .blocking_send(Msg::Chunk(buf.split().freeze(), pending))
                                .map_err(|_| closed())?;
                            pending = 0;
                        }
                        sender.blocking_send(Msg::End).map_err(|_| closed())?;
                    }
                }
                Ok(())
            })
        })
    };

    let mut staged = Vec::new();
    for (table, columns) in &tables {
        let loaded = upsert_table(&tx, table, columns, &cat[table], &mut receiver, &bar).await;
        let (counts, stage) = match loaded {
            Ok(v) => v,
            Err(source) => {
                drop(receiver);
                let gen_result = generator.await;
                // A generator error is the cause when it stopped first.
                if let Ok(Err(e)) = gen_result {
                    if !matches!(e, GenError::Stopped) {
                        return Err(LoadError::Gen(e));
                    }
                }
                return Err(LoadError::Table {
                    table: table.clone(),
                    source,
                });
            }
        };
        staged.push(stage);
        outcome.tables.push((table.clone(), counts));
    }
    match generator.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(LoadError::Gen(e)),
        Err(join) => return Err(LoadError::Gen(GenError::Panicked(join.to_string()))),
    }
    // Deletes run children first, against the same staged ids.
    for (idx, (table, columns)) in tables.iter().enumerate().rev() {
        let Some(stage) = &staged[idx] else { continue };
        let id = quote_ident(&columns[0]);
        let orphan_filter = format!(
            "FROM {tbl} t WHERE NOT EXISTS (SELECT 1 FROM {stage} s WHERE s.{id} = t.{id})",
            tbl = quote_ident(table),
        );
        let counts = &mut outcome.tables[idx].1;
        if opts.prune {
            counts.deleted = tx
                .execute(&format!("DELETE {orphan_filter}"), &[])
                .await
                .pg(|| format!("deleting rows of {table} that the seed does not make"))
                .map_err(|source| LoadError::Table {
                    table: table.clone(),
                    source,
                })?;
        } else {
            let row = tx
                .query_one(&format!("SELECT count(*) {orphan_filter}"), &[])
                .await
                .pg(|| format!("counting rows of {table} that the seed does not make"))?;
            counts.kept_extra = row.get::<_, i64>(0) as u64;
        }
    }
    bar.finish_and_clear();
    if opts.dry_run {
        tx.rollback()
            .await
            .pg(|| "rolling back the dry run".into())?;
    } else {
        tx.commit().await.pg(|| "committing the seed".into())?;
    }
    Ok(outcome)
}

fn progress_bar(enabled: bool, total: u64) -> ProgressBar {
    if !enabled || total < 50_000 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(crate::progress::style(
        "{msg:>12} [{bar:40}] {human_pos}/{human_len} rows ({rate}, {eta})",
    ));
    bar
}

/// Loads one table from the generator's stream; returns its counts and, when rows went
/// through a staging table, that table's name (for pruning).
async fn upsert_table(
    tx: &Transaction<'_>,
    table: &str,
    columns: &[String],
    types: &BTreeMap<String, String>,
    rx: &mut Receiver<Msg>,
    bar: &ProgressBar,
) -> Result<(TableCounts, Option<String>), PgError> {
    bar.set_message(table.to_string());
    let tbl = quote_ident(table);
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let col_list = cols.join(", ");
    let empty: bool = tx
        .query_one(&format!("SELECT NOT EXISTS (SELECT 1 FROM {tbl})"), &[])
        .await
        .pg(|| format!("looking into {table}"))?
        .get(0);
    if empty {
        let total = copy_rows(
            tx,
            &format!("COPY {tbl} ({col_list}) FROM STDIN"),
            table,
            rx,
            bar,
        )
        .await?;
        let counts = TableCounts {
            inserted: total,
            ..TableCounts::default()
        };
        return Ok((counts, None));
    }
    let stage = quote_ident(&format!("_dataforge_stage_{table}"));
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {col_list} FROM {tbl} WITH NO DATA"
    ))
    .await
    .pg(|| format!("creating a staging table for {table}"))?;
    let total = copy_rows(
        tx,
        &format!("COPY {stage} ({col_list}) FROM STDIN"),
        table,
        rx,
        bar,
    )
    .await?;
    tx.batch_execute(&format!("ANALYZE {stage}"))
        .await
        .pg(|| format!("analyzing the staging table for {table}"))?;
    let id = &cols[0];
    // Types without an equality operator compare by their text form.
    let cmp = |side: &str, c: &str, name: &str| -> String {
        let ty = types.get(name).map(String::as_str).unwrap_or("");
        if matches!(
            ty,
            "json" | "xml" | "point" | "line" | "lseg" | "box" | "path" | "polygon" | "circle"
        ) {
            format!("{side}.{c}::text")
        } else {
            format!("{side}.{c}")
        }
    };
    let lhs: Vec<String> = cols
        .iter()
        .zip(columns)
        .map(|(c, n)| cmp("t", c, n))
        .collect();
    let rhs: Vec<String> = cols
        .iter()
        .zip(columns)
        .map(|(c, n)| cmp("s", c, n))
        .collect();
    let sets: Vec<String> = cols[1..].iter().map(|c| format!("{c} = s.{c}")).collect();
    let updated = if sets.is_empty() {
        0
    } else {
        tx.execute(
            &format!(
                "UPDATE {tbl} t SET {} FROM {stage} s WHERE t.{id} = s.{id} \
                 AND ROW({}) IS DISTINCT FROM ROW({})",
                sets.join(", "),
                lhs.join(", "),
                rhs.join(", ")
            ),
            &[],
        )
        .await
        .pg(|| format!("updating changed rows of {table}"))?
    };
    let inserted = tx
        .execute(
            &format!(
                "INSERT INTO {tbl} ({col_list}) SELECT {} FROM {stage} s \
                 WHERE NOT EXISTS (SELECT 1 FROM {tbl} t WHERE t.{id} = s.{id})",
                cols.iter()
                    .map(|c| format!("s.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            &[],
        )
        .await
        .pg(|| format!("inserting new rows into {table}"))?;
    let counts = TableCounts {
        inserted,
        updated,
        unchanged: total - inserted - updated,
        ..TableCounts::default()
    };
    Ok((counts, Some(stage)))
}

/// Copies one table's stream (Begin, chunks, End) into `stmt`; returns the rows copied.
async fn copy_rows(
    tx: &Transaction<'_>,
    stmt: &str,
    table: &str,
    rx: &mut Receiver<Msg>,
    bar: &ProgressBar,
) -> Result<u64, PgError> {
    let sink = tx
        .copy_in(stmt)
        .await
        .pg(|| format!("starting COPY into {table}"))?;
    futures_util::pin_mut!(sink);
    let mut began = false;
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Begin => began = true,
            Msg::Chunk(bytes, rows) => {
                sink.send(bytes)
                    .await
                    .pg(|| format!("sending rows of {table}"))?;
                bar.inc(rows);
            }
            Msg::End => break,
        }
    }
    debug_assert!(began, "the generator sends Begin first");
    sink.as_mut()
        .finish()
        .await
        .pg(|| format!("finishing COPY into {table}"))
}
