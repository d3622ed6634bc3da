//! Reading a source for verify on every core: one thread reads (a dump file, or COPY
//! from a live database) and cuts the rows into batches, workers turn each batch into
//! a result, and one thread merges the results in the order the batches were read, so
//! whatever the merge keeps (first examples, samples) is the same on every run.

use std::ops::Range;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

use futures_util::StreamExt as _;
use memmap2::Mmap;

use crate::par;
use crate::pg::PgContext as _;
use crate::source::dump::{self, Block};
use crate::source::live::{Live, Piece};
use crate::source::{DumpSource, Source};

/// Bytes of rows handed to a worker at a time.
const BATCH: usize = 256 << 10;

/// Where a row stream is: a table starts, a batch of its rows (whole lines, each
/// ending in `\n`) arrives, the table ends.
enum Ev<'a> {
    Table(&'a str, &'a [String]),
    /// A batch of rows, and how many.
    Rows(&'a [u8], u64),
    /// Rows at this range of the mapped dump file, and how many.
    Span(Range<usize>, u64),
    End,
}

/// A batch of rows as a worker gets it: its own buffer, or a range of the mapped file.
enum Batch {
    Owned(Vec<u8>),
    Mapped(Arc<Mmap>, Range<usize>),
}

impl Batch {
    fn bytes(&self) -> &[u8] {
        match self {
            Batch::Owned(b) => b,
            Batch::Mapped(map, at) => &map[at.clone()],
        }
    }
}

/// What the merge sees, in reading order: a table starts (as the workers saw it), a
/// batch's result, the table ends.
pub enum Step<C, R> {
    Table(Arc<C>),
    Rows(R),
    End,
}

/// Reads a plain dump through the reader: the rows of the wanted tables in batches of
/// about [`BATCH`] bytes (no copy of a row but the one into its batch).
fn read_dump(
    d: &DumpSource,
    wanted: &(dyn Fn(&str) -> bool + Sync),
    visit: &mut dyn FnMut(Ev<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut batch: Vec<u8> = Vec::with_capacity(BATCH + (1 << 20));
    // the rows in `batch`, as the walk counted them
    let mut rows = 0u64;
    let mut active = false;
    dump::walk_blocks(d.reader()?, &d.name, BATCH, |_, block| {
        match block {
            Block::Sql(_) => {}
            Block::Header { table, columns, .. } => {
                active = wanted(&table);
                if active {
                    visit(Ev::Table(&table, &columns))?;
                }
            }
            Block::Rows { data, lines, .. } if active => {
                batch.extend_from_slice(data);
                rows += lines;
                if data.last() != Some(&b'\n') {
                    batch.push(b'\n');
                    rows += 1;
                }
                if batch.len() >= BATCH {
                    visit(Ev::Rows(&batch, std::mem::take(&mut rows)))?;
                    batch.clear();
                }
            }
            Block::Rows { .. } => {}
            Block::End(_) if active => {
                if !batch.is_empty() {
                    visit(Ev::Rows(&batch, std::mem::take(&mut rows)))?;
                    batch.clear();
                }
                visit(Ev::End)?;
            }
            Block::End(_) => {}
        }
        Ok(())
    })
}

/// Maps a plain dump file, to be read in place: the workers get ranges of the page
/// cache, with no copy into the process at all.
fn map(path: &std::path::Path, name: &str) -> anyhow::Result<Mmap> {
    let file = std::fs::File::open(path).map_err(|e| dump::DumpError::Read(name.into(), e))?;
    // SAFETY: the map is only read. A file truncated by another process while it is
    // read would fault (SIGBUS); verify reads finished dumps, as pg_dump leaves them.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| dump::DumpError::Read(name.into(), e))?;
    Ok(map)
}

/// Lets go of the pages of a worked range of the map (those it starts in too, which
/// an unfinished neighbour would simply fault in again from the page cache), so what
/// verify holds of a dump stays the batches in flight, not the whole file.
fn release(map: &Mmap, at: Range<usize>) {
    const PAGE: usize = 4096;
    let (start, end) = (at.start & !(PAGE - 1), at.end & !(PAGE - 1));
    if end > start {
        // SAFETY: the map is a read-only shared mapping of a file: a page let go is
        // read again from the file on its next touch, unchanged
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
    }
}

/// Reads a mapped plain dump: the same walk as [`read_dump`], over memory. A COPY
/// block's rows are handed on as ranges of the map, cut at line ends about every
/// [`BATCH`] bytes; the pages of the tables not wanted are let go as they are passed.
fn read_mapped(
    d: &DumpSource,
    map: &Mmap,
    wanted: &(dyn Fn(&str) -> bool + Sync),
    visit: &mut dyn FnMut(Ev<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let data: &[u8] = map;
    let mut active = false;
    dump::walk_blocks(data, &d.name, BATCH, |_, block| {
        match block {
            Block::Sql(_) => {}
            Block::Header { table, columns, .. } => {
                active = wanted(&table);
                if active {
                    visit(Ev::Table(&table, &columns))?;
                }
            }
            Block::Rows {
                data,
                offset,
                lines,
            } => {
                let at = offset as usize..offset as usize + data.len();
                if active {
                    visit(Ev::Span(at, lines))?;
                } else {
                    release(map, at);
                }
            }
            Block::End(_) if active => visit(Ev::End)?,
            Block::End(_) => {}
        }
        Ok(())
    })
}

async fn read_live(
    live: &Live,
    wanted: &(dyn Fn(&str) -> bool + Sync),
    narrow: &Narrow<'_>,
    visit: &mut dyn FnMut(Ev<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let reader = live.reader().await?;
    for (i, t) in live.tables.iter().enumerate() {
        if !wanted(&t.table.name) {
            continue;
        }
        // a subset's table: its kept rows, whole, a range of pages at a time
        let sliced = live.slice.as_ref().is_some_and(|s| s.reads(i).is_some());
        let (columns, sql) = match narrow(&t.table.name) {
            _ if sliced => (t.table.columns.clone(), String::new()),
            Some(columns) => {
                let sql = live.copy_columns(i, &columns);
                (columns, sql)
            }
            None => {
                let piece = Piece {
                    table: i,
                    pages: None,
                };
                (t.table.columns.clone(), live.copy_out(&piece, None, None))
            }
        };
        visit(Ev::Table(&t.table.name, &columns))?;
        let mut carry: Vec<u8> = Vec::with_capacity(BATCH + 4096);
        // the whole table in one statement, or each piece's reads of its kept rows
        let mut pieces = match sliced {
            true => live.table_pieces(i, 2048),
            false => Vec::new(),
        }
        .into_iter();
        let mut whole = (!sliced).then_some(sql);
        let mut reads = None;
        loop {
            let sql = match (whole.take(), reads.as_mut()) {
                (Some(sql), _) => sql,
                (None, Some(r)) => match crate::source::live::PieceReads::next(r).await? {
                    Some(sql) => sql,
                    None => {
                        reads = None;
                        continue;
                    }
                },
                (None, None) => match pieces.next() {
                    Some(p) => {
                        reads = Some(live.piece_reads(&p, None));
                        continue;
                    }
                    None => break,
                },
            };
            let stream = reader
                .copy_out(&sql)
                .await
                .pg(|| format!("reading {}", t.table.name))?;
            futures_util::pin_mut!(stream);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.pg(|| format!("reading {}", t.table.name))?;
                carry.extend_from_slice(&chunk);
                if carry.len() >= BATCH {
                    if let Some(last) = memchr::memrchr(b'\n', &carry) {
                        let rows = &carry[..=last];
                        visit(Ev::Rows(
                            rows,
                            memchr::memchr_iter(b'\n', rows).count() as u64,
                        ))?;
                        carry.drain(..=last);
                    }
                }
            }
        }
        if !carry.is_empty() {
            if carry.last() != Some(&b'\n') {
                carry.push(b'\n');
            }
            visit(Ev::Rows(
                &carry,
                memchr::memchr_iter(b'\n', &carry).count() as u64,
            ))?;
        }
        visit(Ev::End)?;
    }
    Ok(())
}

/// The columns of a table a live read needs, when not all (`None`): a database is
/// asked for those alone. A dump's rows come whole; either way the workers are told
/// which columns they get.
pub type Narrow<'a> = dyn Fn(&str) -> Option<Vec<String>> + Sync + 'a;

/// Reads every table of `source` that `wanted` keeps with `jobs` workers: `table` says
/// how the workers see a table (with the columns its rows have), `work` turns a batch
/// of its rows (and the ordinal of the batch's first row in the table, from 0) into a
/// result, `merge` takes the steps in reading order. The first error stops the read.
#[allow(clippy::too_many_arguments)]
pub fn par_read<C, R>(
    source: &Source,
    wanted: &(dyn Fn(&str) -> bool + Sync),
    narrow: &Narrow<'_>,
    jobs: usize,
    table: &(dyn Fn(&str, &[String]) -> C + Sync),
    work: &(dyn Fn(&C, &[u8], u64) -> R + Sync),
    merge: &mut (dyn FnMut(Step<C, R>) -> anyhow::Result<()> + Send),
) -> anyhow::Result<()>
where
    C: Send + Sync,
    R: Send,
{
    tokio::task::block_in_place(|| {
        let handle = tokio::runtime::Handle::current();
        let mapped = match source {
            Source::Dump(d, _) => match d.plain_file() {
                Some(path) => Some(Arc::new(map(path, &d.name)?)),
                None => None,
            },
            Source::Live(_) => None,
        };
        // batch buffers go back to the reader once worked: a fresh one a batch is a
        // page fault every 4 KiB of the source
        let (pool_tx, pool_rx) = sync_channel::<Vec<u8>>(jobs.max(1) * 4);
        let stopped = || anyhow::anyhow!("verify stopped");
        let read = move |feed: &mut par::Feed<(Arc<C>, Batch, u64), Step<C, R>>| {
            let mut ctx: Option<Arc<C>> = None;
            let mut rows = 0u64;
            let mut visit = |ev: Ev<'_>| -> anyhow::Result<()> {
                match ev {
                    Ev::Table(name, columns) => {
                        let c = Arc::new(table(name, columns));
                        ctx = Some(c.clone());
                        rows = 0;
                        feed.pass(Step::Table(c)).map_err(|_| stopped())?;
                    }
                    Ev::Rows(bytes, n) => {
                        let c = ctx.clone().expect("rows come in a table");
                        let mut buf = pool_rx.try_recv().unwrap_or_default();
                        buf.extend_from_slice(bytes);
                        feed.work((c, Batch::Owned(buf), rows))
                            .map_err(|_| stopped())?;
                        rows += n;
                    }
                    Ev::Span(at, n) => {
                        let c = ctx.clone().expect("rows come in a table");
                        let map = mapped.clone().expect("spans come from a map");
                        feed.work((c, Batch::Mapped(map, at), rows))
                            .map_err(|_| stopped())?;
                        rows += n;
                    }
                    Ev::End => feed.pass(Step::End).map_err(|_| stopped())?,
                }
                Ok(())
            };
            match source {
                Source::Dump(d, _) => match &mapped {
                    Some(map) => read_mapped(d, map, wanted, &mut visit),
                    None => read_dump(d, wanted, &mut visit),
                },
                Source::Live(live) => handle.block_on(read_live(live, wanted, narrow, &mut visit)),
            }
        };
        let work = |(ctx, batch, first): (Arc<C>, Batch, u64)| {
            let result = work(&ctx, batch.bytes(), first);
            match batch {
                Batch::Owned(mut buf) => {
                    buf.clear();
                    let _ = pool_tx.try_send(buf);
                }
                Batch::Mapped(map, at) => release(&map, at),
            }
            Step::Rows(result)
        };
        // the merge's error is why the read stopped, and is the one returned
        par::ordered(jobs, jobs.max(1) * 6, read, work, merge)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`read_mapped`] hands on, as (table, its rows joined, how many batches).
    fn walk(sql: &str, wanted: &str) -> anyhow::Result<Vec<(String, String, usize)>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("in.sql");
        std::fs::write(&path, sql)?;
        let d = DumpSource::open(path.to_str().unwrap())?;
        let data = map(&path, &d.name)?;
        let mut out: Vec<(String, String, usize)> = Vec::new();
        read_mapped(&d, &data, &|t| t == wanted, &mut |ev| {
            match ev {
                Ev::Table(t, _) => out.push((t.to_string(), String::new(), 0)),
                Ev::Span(at, _) => {
                    let rows = std::str::from_utf8(&data[at]).unwrap();
                    assert!(rows.ends_with('\n'), "a batch ends at a line end");
                    let last = out.last_mut().unwrap();
                    last.1.push_str(rows);
                    last.2 += 1;
                }
                Ev::Rows(..) => unreachable!("a map is read in place"),
                Ev::End => {}
            }
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn a_mapped_dump_gives_the_wanted_blocks_rows_in_batches_cut_at_line_ends() {
        let big: String = (0..20_000)
            .map(|i| format!("{i}\tname {i:0>60}\n"))
            .collect();
        let sql = format!(
            "SET x = 1;\nCOPY public.a (id) FROM stdin;\n1\n\\.\n\nCOPY public.b (id, name) FROM stdin;\n{big}\\.\r\nSELECT 1;\n"
        );
        let got = walk(&sql, "public.b").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "public.b");
        assert_eq!(got[0].1, big);
        assert!(
            got[0].2 > 1,
            "{} batch(es) of {} bytes",
            got[0].2,
            big.len()
        );
        assert!(got[0].2 <= big.len() / BATCH + 1);
    }

    #[test]
    fn a_mapped_dump_cut_short_names_the_line_of_the_block() {
        let sql = "SET x = 1;\n\nCOPY public.a (id) FROM stdin;\n1\n2\n";
        let err = walk(sql, "public.a").unwrap_err().to_string();
        assert!(
            err.contains("in.sql:3") && err.contains("public.a"),
            "{err}"
        );
    }
}
