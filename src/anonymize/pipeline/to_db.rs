//! Loading into a database beside the target: a dump statement by statement with its
//! COPY blocks through the plan, or a live source table by table over several
//! connections inside one snapshot.

use super::*;

/// A dump into the new database: its SQL statement by statement (refusals recorded),
/// its COPY blocks through the plan, then sequences raised above loaded keys. The dump
/// is read and transformed on a thread of its own while this task loads.
pub(super) async fn dump_to_db(
    d: &DumpSource,
    plan: &Arc<Plan>,
    target: &Target,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let client = target.connect().await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(16);
    let reader = d.reader()?;
    let (plan2, name) = (plan.clone(), d.name.clone());
    let bar = progress.bytes(&d.name, d.size());
    let bar2 = bar.clone();
    let producer = tokio::task::spawn_blocking(move || {
        dump::events(
            reader,
            &plan2,
            &name,
            |e| tx.blocking_send(e).is_ok(),
            |pos, _| bar2.set_position(pos),
        )
    });
    let mut rejected = Vec::new();
    let mut sink = None;
    let mut open: Option<(String, u64)> = None;
    let loaded: anyhow::Result<()> = async {
        while let Some(event) = rx.recv().await {
            match event {
                Event::Sql { text, line } => {
                    load::run_sql(&client, &text, &d.name, line, &mut rejected).await?;
                }
                Event::Begin {
                    table,
                    header,
                    line,
                } => {
                    bar.set_message(table.clone());
                    let s = client
                        .copy_in::<_, Bytes>(header.as_str())
                        .await
                        .pg(|| format!("starting to load {table} ({}:{line})", d.name))?;
                    sink = Some(Box::pin(s));
                    open = Some((table, line));
                }
                Event::Rows(data, _) => {
                    let (table, line) = open.as_ref().expect("rows come inside a block");
                    sink.as_mut()
                        .expect("rows come inside a block")
                        .send(Bytes::from(data))
                        .await
                        .pg(|| format!("loading {table} (the COPY block at {}:{line})", d.name))?;
                }
                Event::End => {
                    let (table, line) = open.take().expect("an end closes a block");
                    sink.take()
                        .expect("an end closes a block")
                        .as_mut()
                        .finish()
                        .await
                        .pg(|| format!("loading {table} (the COPY block at {}:{line})", d.name))?;
                }
            }
        }
        Ok(())
    }
    .await;
    drop(rx);
    let produced = producer.await.context("the dump reader stopped")?;
    // a row the plan cannot transform explains a stopped load better than the load does
    let stats = match (produced, loaded) {
        (Err(e @ dump::DumpError::Row { .. }), _)
        | (Err(e @ dump::DumpError::Unterminated { .. }), _) => return Err(e.into()),
        (_, Err(e)) => return Err(e),
        (Err(e), Ok(())) => return Err(e.into()),
        (Ok(stats), Ok(())) => stats,
    };
    client
        .batch_execute(load::SEQUENCE_FIXUP)
        .await
        .pg(|| "raising sequences above the loaded keys".into())?;
    bar.finish_and_clear();
    Ok(Outcome {
        stats,
        rejected,
        checks: Vec::new(),
    })
}

/// A live database into the new database: pg_dump's pre-data schema, the rows of every
/// table through the plan over `jobs` connections (each reading inside the snapshot and
/// loading by COPY), the sequences as the snapshot saw them, then indexes and
/// constraints.
pub(super) async fn live_to_db(
    live: Arc<Live>,
    plan: Arc<Plan>,
    config: &Config,
    target: &Target,
    opts: &RunOptions,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let client = target.connect().await?;
    let mut rejected = Vec::new();
    let pre = live.schema("pre-data", config).await?;
    load::run_sql(
        &client,
        &pre,
        "schema (pg_dump --section=pre-data)",
        1,
        &mut rejected,
    )
    .await?;
    let action = |name: &str| plan.table(name).map(|p| p.action);
    let pieces: VecDeque<Piece> = live
        .pieces(
            |t| action(&t.table.name) == Some(Action::Anonymize),
            opts.jobs,
            opts.split_pages,
        )
        .into();
    let counts: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let bars: Arc<BTreeMap<String, ProgressBar>> = Arc::new(
        live.tables
            .iter()
            .filter(|t| action(&t.table.name) == Some(Action::Anonymize))
            .map(|t| {
                (
                    t.table.name.clone(),
                    progress.rows(&t.table.name, t.rows_estimate as u64),
                )
            })
            .collect(),
    );
    let filters: Arc<BTreeMap<String, String>> = Arc::new(
        config
            .tables
            .keys()
            .filter_map(|k| filter(config, k).map(|f| (k.clone(), f)))
            .collect(),
    );
    let queue = Arc::new(Mutex::new(pieces));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..opts.jobs.max(1) {
        let (live, plan, queue, counts, bars, filters) = (
            live.clone(),
            plan.clone(),
            queue.clone(),
            counts.clone(),
            bars.clone(),
            filters.clone(),
        );
        let url = target.staging_url.clone();
        workers.spawn(async move {
            let reader = live.reader().await?;
            let writer = pg::connect(&url).await?;
            loop {
                let Some(piece) = queue.lock().expect("not poisoned").pop_front() else {
                    return Ok::<_, anyhow::Error>(());
                };
                // a test build's way to show what a panicking worker leaves (nothing)
                #[cfg(debug_assertions)]
                if std::env::var_os("DATAFORGE_TEST_PANIC").is_some_and(|v| v == "copy-worker") {
                    panic!("injected for a test: a copy worker panics");
                }
                let t = &live.tables[piece.table];
                let tp = plan
                    .table(&t.table.name)
                    .expect("pieces are of planned tables");
                let bar = &bars[&t.table.name];
                let cols: Vec<String> = t.table.columns.iter().map(|c| quote_ident(c)).collect();
                let into = format!("COPY {} ({}) FROM STDIN", t.quoted, cols.join(", "));
                let mut reads =
                    live.piece_reads(&piece, filters.get(&t.table.name).map(String::as_str));
                while let Some(sql) = reads.next().await? {
                    let n = copy_piece(&reader, &writer, &sql, &into, tp, bar)
                        .await
                        .with_context(|| match filters.get(&t.table.name) {
                            Some(f) => format!("copying {} (where = {f:?})", t.table.name),
                            None => format!("copying {}", t.table.name),
                        })?;
                    *counts
                        .lock()
                        .expect("not poisoned")
                        .entry(t.table.name.clone())
                        .or_default() += n;
                }
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        if let Err(e) = done.context("a copy worker stopped").and_then(|r| r) {
            workers.abort_all();
            return Err(e);
        }
    }
    for bar in bars.values() {
        bar.finish_and_clear();
    }
    load::run_sql(
        &client,
        &live.setvals(config).join("\n"),
        "sequences",
        1,
        &mut rejected,
    )
    .await?;
    crate::anonymize::large_objects::copy(
        &live.reader().await?,
        &client,
        &live.large_objects,
        plan.large_objects,
    )
    .await?;
    let post = live.schema("post-data", config).await?;
    load::run_sql(
        &client,
        &post,
        "schema (pg_dump --section=post-data)",
        1,
        &mut rejected,
    )
    .await?;
    if config.refresh_matviews {
        load::refresh_materialized_views(&live, &client).await?;
    }
    client
        .batch_execute(load::SEQUENCE_FIXUP)
        .await
        .pg(|| "raising sequences above the loaded keys".into())?;
    let counts = counts.lock().expect("not poisoned");
    let mut stats = DumpStats::default();
    for t in &live.tables {
        if let Some(p) = plan
            .table(&t.table.name)
            .filter(|p| p.action != Action::Skip)
        {
            stats
                .tables
                .push((p.name.clone(), counts.get(&p.name).copied().unwrap_or(0)));
        }
    }
    Ok(Outcome {
        stats,
        rejected,
        checks: Vec::new(),
    })
}

/// Streams one piece: COPY out of the source, each row through the plan, COPY into the
/// target. Returns the rows copied.
pub(super) async fn copy_piece(
    reader: &tokio_postgres::Client,
    writer: &tokio_postgres::Client,
    out_sql: &str,
    in_sql: &str,
    t: &plan::TablePlan,
    bar: &ProgressBar,
) -> anyhow::Result<u64> {
    let stream = reader
        .copy_out(out_sql)
        .await
        .pg(|| "starting to read".into())?;
    let sink = writer
        .copy_in::<_, Bytes>(in_sql)
        .await
        .pg(|| "starting to load".into())?;
    futures_util::pin_mut!(stream);
    futures_util::pin_mut!(sink);
    let (mut feed, mut shown, mut bytes) = (RowFeed::default(), 0u64, 0u64);
    let mut buf = Vec::with_capacity(300 << 10);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.pg(|| "reading".into())?;
        bytes += chunk.len() as u64;
        feed.feed(&chunk, t, &mut buf)?;
        if buf.len() >= 256 << 10 {
            sink.send(Bytes::from(std::mem::replace(
                &mut buf,
                Vec::with_capacity(300 << 10),
            )))
            .await
            .pg(|| "loading".into())?;
            bar.inc(feed.rows - std::mem::replace(&mut shown, feed.rows));
            bar.set_message(format!("{:.1} MB", bytes as f64 / 1e6));
        }
    }
    if !buf.is_empty() {
        sink.send(Bytes::from(buf)).await.pg(|| "loading".into())?;
    }
    bar.inc(feed.rows - shown);
    sink.as_mut()
        .finish()
        .await
        .pg(|| "finishing the load".into())?;
    Ok(feed.rows)
}

/// COPY TO STDOUT data as it arrives (a row per message, as the server sends it; a
/// partial line waits for its end), each complete row through the plan.
#[derive(Default)]
pub(super) struct RowFeed {
    pub(super) partial: Vec<u8>,
    pub(super) rows: u64,
}

impl RowFeed {
    pub(super) fn feed(
        &mut self,
        chunk: &[u8],
        t: &plan::TablePlan,
        out: &mut Vec<u8>,
    ) -> anyhow::Result<()> {
        let data: &[u8] = if self.partial.is_empty() {
            chunk
        } else {
            self.partial.extend_from_slice(chunk);
            &self.partial
        };
        let mut rest = data;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            self.rows += 1;
            t.transform_line(&rest[..nl], out)
                .map_err(|e| anyhow::anyhow!("row {}: {e}", self.rows))?;
            rest = &rest[nl + 1..];
        }
        self.partial = rest.to_vec();
        Ok(())
    }
}
