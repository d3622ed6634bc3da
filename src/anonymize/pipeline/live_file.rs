//! A live source into a file: its tables read inside the snapshot and written as a
//! plain dump, through the same transform as a dump file.

use super::*;

/// A live database as the plain dump pg_dump would write of it: the pre-data schema, a
/// COPY block per table (rows as the server sends them; none for `truncate`, no block
/// for `skip`), the sequences as the snapshot saw them, then the post-data schema. Sent
/// in chunks to `tx`; [`dump::anonymize_parallel`] reads it like any dump, so a live
/// source gets the same transform workers as a file.
pub(super) async fn live_dump(
    live: &Live,
    plan: &Plan,
    config: &Config,
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    progress: &Progress,
    split_pages: i64,
) -> anyhow::Result<()> {
    let stopped = || anyhow::anyhow!("the writer stopped");
    tx.send(live.schema("pre-data", config).await?.into_bytes())
        .map_err(|_| stopped())?;
    let reader = live.reader().await?;
    for (i, t) in live.tables.iter().enumerate() {
        let Some(tp) = plan
            .table(&t.table.name)
            .filter(|p| p.action != Action::Skip)
        else {
            continue;
        };
        let cols: Vec<String> = t.table.columns.iter().map(|c| quote_ident(c)).collect();
        let mut buf =
            format!("\nCOPY {} ({}) FROM stdin;\n", t.quoted, cols.join(", ")).into_bytes();
        if tp.action == Action::Anonymize {
            let bar = progress.rows(&t.table.name, t.rows_estimate as u64);
            let mut rows = 0;
            // one piece, or a subset's kept rows a range of pages at a time
            for piece in live.table_pieces(i, split_pages) {
                let mut reads = live.piece_reads(&piece, filter(config, &t.table.name).as_deref());
                while let Some(sql) = reads.next().await? {
                    let stream = reader
                        .copy_out(&sql)
                        .await
                        .pg(|| format!("reading {}", t.table.name))?;
                    futures_util::pin_mut!(stream);
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk.pg(|| format!("reading {}", t.table.name))?;
                        rows += memchr::memchr_iter(b'\n', &chunk).count() as u64;
                        buf.extend_from_slice(&chunk);
                        if buf.len() >= 256 << 10 {
                            tx.send(std::mem::take(&mut buf)).map_err(|_| stopped())?;
                            bar.set_position(rows);
                        }
                    }
                }
            }
            bar.finish_and_clear();
        }
        buf.extend_from_slice(b"\\.\n");
        tx.send(buf).map_err(|_| stopped())?;
    }
    let mut tail = Vec::new();
    let setvals = live.setvals(config);
    if !setvals.is_empty() {
        tail.extend_from_slice(b"\n-- sequences, as the source's snapshot saw them\n");
        for s in setvals {
            tail.extend_from_slice(s.as_bytes());
            tail.push(b'\n');
        }
    }
    tail.extend_from_slice(
        crate::anonymize::large_objects::sql(&reader, &live.large_objects, plan.large_objects)
            .await?
            .as_bytes(),
    );
    // pg_dump's closing line goes last, after the refreshes: a reader of this file (our
    // own included) takes a file without it for a cut one
    const TRAILER: &str = "--\n-- PostgreSQL database dump complete\n--\n";
    let post = live.schema("post-data", config).await?;
    let post = match post.rfind(TRAILER) {
        Some(at) => format!("{}{}", &post[..at], &post[at + TRAILER.len()..]),
        None => post,
    };
    tail.extend_from_slice(post.trim_end().as_bytes());
    tail.extend_from_slice(b"\n\n");
    if !live.matviews.is_empty() && config.refresh_matviews {
        tail.extend_from_slice(b"-- materialized views the source has populated\n");
        for v in &live.matviews {
            tail.extend_from_slice(format!("REFRESH MATERIALIZED VIEW {v};\n").as_bytes());
        }
        tail.extend_from_slice(b"\n");
    }
    tail.extend_from_slice(TRAILER.as_bytes());
    tail.push(b'\n');
    tx.send(tail).map_err(|_| stopped())?;
    Ok(())
}

/// The receiving end of [`live_dump`] as a reader; the end of the stream when the
/// sender is done (or gone: its own result says which).
pub(super) struct ChannelReader {
    pub(super) rx: std::sync::mpsc::Receiver<Vec<u8>>,
    pub(super) chunk: Vec<u8>,
    pub(super) at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(c) => (self.chunk, self.at) = (c, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
