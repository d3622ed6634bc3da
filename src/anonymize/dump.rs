//! Plain pg_dump files (and stdin) through the plan: COPY blocks stream through it, every
//! other line passes through unchanged, so the output restores with `psql -f` as the input
//! did. The input comes through the source's one walk ([`crate::source::dump::walk_blocks`],
//! a line at a time through [`crate::source::dump::walk`] where that is simpler).

use std::io::{BufRead, Write};

use super::config::Action;
use super::plan::{Plan, TablePlan};
use crate::par;
pub use crate::source::dump::DumpError;
use crate::source::dump::{trim_newline, walk, walk_blocks, Block, Line};

/// Rows per table, in the order the dump holds them.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DumpStats {
    pub tables: Vec<(String, u64)>,
    pub bytes_in: u64,
}

/// The plan of the table a COPY header names.
fn planned<'p>(
    plan: &'p Plan,
    table: &str,
    source_name: &str,
    line: u64,
) -> Result<&'p TablePlan, DumpError> {
    plan.table(table).ok_or_else(|| DumpError::Row {
        source_name: source_name.into(),
        line,
        table: table.into(),
        message: "the table is not in the plan (the dump changed while it was read?)".into(),
    })
}

/// A row of `t` at `line` that its plan cannot transform.
fn row_error(source_name: &str, line: u64, t: &TablePlan, message: String) -> DumpError {
    DumpError::Row {
        source_name: source_name.into(),
        line,
        table: t.name.clone(),
        message,
    }
}

/// Streams `input` to `output`: COPY rows of each table through its plan (none for a
/// `truncate` table; the whole block left out for a `skip` one), everything else as is.
pub fn anonymize(
    input: impl BufRead,
    output: impl Write,
    plan: &Plan,
    source_name: &str,
    progress: &dyn Fn(u64, &str),
) -> Result<DumpStats, DumpError> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, output);
    let mut stats = DumpStats::default();
    let mut buf = Vec::with_capacity(BATCH + (1 << 12));
    let mut current: Option<&TablePlan> = None;
    let mut rows: u64 = 0;
    let mut sql_lines = plan.sql_lines();
    walk(input, source_name, |line_no, raw, line| {
        stats.bytes_in += raw.len() as u64;
        let write = match line {
            Line::Other => sql_lines.passes(raw),
            Line::Header { table, .. } => {
                let t = planned(plan, &table, source_name, line_no)?;
                current = Some(t);
                rows = 0;
                t.action != Action::Skip
            }
            Line::Row(l) => {
                let t = current.expect("rows come after their header");
                rows += 1;
                if t.action == Action::Anonymize {
                    t.transform_line(l, &mut buf)
                        .map_err(|message| row_error(source_name, line_no, t, message))?;
                    if buf.len() >= BATCH {
                        out.write_all(&buf).map_err(DumpError::Write)?;
                        buf.clear();
                        progress(stats.bytes_in, &t.name);
                    }
                }
                false
            }
            Line::End => {
                let t = current.take().expect("an end comes after its header");
                stats.tables.push((t.name.clone(), rows));
                out.write_all(&buf).map_err(DumpError::Write)?;
                buf.clear();
                if t.action != Action::Skip {
                    out.write_all(b"\\.\n").map_err(DumpError::Write)?;
                }
                false
            }
        };
        if write {
            out.write_all(raw).map_err(DumpError::Write)?;
        }
        Ok(())
    })?;
    if plan.changes_keys() {
        out.write_all(super::load::SEQUENCE_FIXUP_NOTE)
            .map_err(DumpError::Write)?;
        out.write_all(super::load::SEQUENCE_FIXUP.as_bytes())
            .map_err(DumpError::Write)?;
    }
    out.flush().map_err(DumpError::Write)?;
    Ok(stats)
}

/// Rows are handed on in batches of about this many bytes.
const BATCH: usize = 256 * 1024;

/// What a dump holds, for a sink that is not a file: SQL to run, and COPY blocks whose
/// rows have been through the plan (in batches). `skip` and `truncate` tables send no
/// block.
#[derive(Debug)]
pub enum Event {
    Sql {
        text: String,
        line: u64,
    },
    Begin {
        table: String,
        header: String,
        line: u64,
    },
    Rows(Vec<u8>, u64),
    End,
}

/// Streams `input` through the plan as [`Event`]s; `send` returns false when the
/// receiver has gone (and the walk stops).
pub fn events(
    input: impl BufRead,
    plan: &Plan,
    source_name: &str,
    mut send: impl FnMut(Event) -> bool,
    mut progress: impl FnMut(u64, u64),
) -> Result<DumpStats, DumpError> {
    let mut stats = DumpStats::default();
    let mut sql = String::new();
    let mut sql_line = 1;
    let mut batch = Vec::with_capacity(BATCH + (1 << 12));
    let mut batch_rows = 0;
    let mut current: Option<&TablePlan> = None;
    let mut rows: u64 = 0;
    let gone = || DumpError::Write(std::io::Error::other("the loader stopped"));
    let mut sql_lines = plan.sql_lines();
    walk(input, source_name, |line_no, raw, line| {
        stats.bytes_in += raw.len() as u64;
        match line {
            Line::Other if !sql_lines.passes(raw) => {}
            Line::Other => {
                if sql.is_empty() {
                    sql_line = line_no;
                }
                sql.push_str(&String::from_utf8_lossy(raw));
            }
            Line::Header { table, .. } => {
                if !sql.is_empty()
                    && !send(Event::Sql {
                        text: std::mem::take(&mut sql),
                        line: sql_line,
                    })
                {
                    return Err(gone());
                }
                let t = planned(plan, &table, source_name, line_no)?;
                current = Some(t);
                rows = 0;
                if t.action == Action::Anonymize {
                    let header = String::from_utf8_lossy(trim_newline(raw));
                    let header = header.trim_end_matches(';').to_string();
                    if !send(Event::Begin {
                        table,
                        header,
                        line: line_no,
                    }) {
                        return Err(gone());
                    }
                }
            }
            Line::Row(l) => {
                let t = current.expect("rows come after their header");
                rows += 1;
                if t.action == Action::Anonymize {
                    t.transform_line(l, &mut batch)
                        .map_err(|message| row_error(source_name, line_no, t, message))?;
                    batch_rows += 1;
                    if batch.len() >= BATCH {
                        progress(stats.bytes_in, batch_rows);
                        let full =
                            std::mem::replace(&mut batch, Vec::with_capacity(BATCH + (1 << 12)));
                        if !send(Event::Rows(full, std::mem::take(&mut batch_rows))) {
                            return Err(gone());
                        }
                    }
                }
            }
            Line::End => {
                let t = current.take().expect("an end comes after its header");
                stats.tables.push((t.name.clone(), rows));
                if t.action == Action::Anonymize {
                    progress(stats.bytes_in, batch_rows);
                    if !batch.is_empty()
                        && !send(Event::Rows(
                            std::mem::take(&mut batch),
                            std::mem::take(&mut batch_rows),
                        ))
                    {
                        return Err(gone());
                    }
                    if !send(Event::End) {
                        return Err(gone());
                    }
                }
            }
        }
        Ok(())
    })?;
    if !sql.is_empty()
        && !send(Event::Sql {
            text: sql,
            line: sql_line,
        })
    {
        return Err(gone());
    }
    Ok(stats)
}

/// COPY lines (each ending in a newline) of a table, the first at input line `first`:
/// what a worker transforms.
struct Rows<'p> {
    table: &'p TablePlan,
    data: Vec<u8>,
    first: u64,
}

/// [`anonymize`] with the rows transformed by `jobs` threads (one: on this thread). One thread reads and cuts
/// the input into chunks, the workers transform them, and this thread writes them back
/// in input order. At most `4 * jobs` chunks (of about 256 kB) are in flight, so memory
/// stays bounded whatever the table size.
pub fn anonymize_parallel<'a>(
    input: impl BufRead + Send,
    output: impl Write,
    plan: &'a Plan,
    source_name: &str,
    jobs: usize,
    progress: &(dyn Fn(u64, &str) + Sync),
) -> Result<DumpStats, DumpError> {
    if jobs <= 1 {
        return anonymize(input, output, plan, source_name, progress);
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 20, output);
    let stopped = || DumpError::Write(std::io::Error::other("the writer stopped"));
    let read = |feed: &mut par::Feed<Rows<'a>, Result<Vec<u8>, DumpError>>| {
        let mut stats = DumpStats::default();
        let mut raw_buf = Vec::new();
        let mut rows_buf = Vec::new();
        let mut first = 0;
        let mut current: Option<&TablePlan> = None;
        let mut rows = 0u64;
        let send_raw =
            |feed: &mut par::Feed<_, _>, raw: Vec<u8>| feed.pass(Ok(raw)).map_err(|_| stopped());
        let send_rows = |feed: &mut par::Feed<_, _>,
                         rows_buf: &mut Vec<u8>,
                         table: &'a TablePlan,
                         first: u64| {
            let data = std::mem::take(rows_buf);
            feed.work(Rows { table, data, first })
                .map_err(|_| stopped())
        };
        let mut sql_lines = plan.sql_lines();
        // whole runs of rows at a time: one copy of a run into its batch, no call a row;
        // runs of at most a quarter batch, so a batch stays within a quarter of BATCH as
        // it did when rows came a line at a time (memory is batches in flight)
        walk_blocks(input, source_name, BATCH / 4, |line_no, block| {
            match block {
                Block::Sql(raw) => {
                    stats.bytes_in += raw.len() as u64;
                    if sql_lines.passes(raw) {
                        raw_buf.extend_from_slice(raw);
                    }
                }
                Block::Header { table, raw, .. } => {
                    stats.bytes_in += raw.len() as u64;
                    let t = planned(plan, &table, source_name, line_no)?;
                    current = Some(t);
                    rows = 0;
                    if t.action != Action::Skip {
                        raw_buf.extend_from_slice(raw);
                    }
                }
                Block::Rows { data, lines, .. } => {
                    stats.bytes_in += data.len() as u64;
                    let t = current.expect("rows come after their header");
                    rows += lines;
                    if t.action == Action::Anonymize {
                        if rows_buf.is_empty() {
                            first = line_no;
                            if !raw_buf.is_empty() {
                                send_raw(feed, std::mem::take(&mut raw_buf))?;
                            }
                        }
                        rows_buf.extend_from_slice(data);
                        if rows_buf.len() >= BATCH {
                            send_rows(feed, &mut rows_buf, t, first)?;
                            progress(stats.bytes_in, &t.name);
                        }
                    }
                }
                Block::End(raw) => {
                    stats.bytes_in += raw.len() as u64;
                    let t = current.take().expect("an end comes after its header");
                    stats.tables.push((t.name.clone(), rows));
                    if !rows_buf.is_empty() {
                        send_rows(feed, &mut rows_buf, t, first)?;
                    }
                    if t.action != Action::Skip {
                        raw_buf.extend_from_slice(b"\\.\n");
                    }
                }
            }
            Ok::<_, DumpError>(())
        })?;
        if plan.changes_keys() {
            raw_buf.extend_from_slice(super::load::SEQUENCE_FIXUP_NOTE);
            raw_buf.extend_from_slice(super::load::SEQUENCE_FIXUP.as_bytes());
        }
        if !raw_buf.is_empty() {
            send_raw(feed, raw_buf)?;
        }
        Ok::<_, DumpError>(stats)
    };
    let work = |Rows { table, data, first }: Rows<'a>| {
        let mut out = Vec::with_capacity(data.len() + data.len() / 4);
        for (i, line) in data.split_inclusive(|&b| b == b'\n').enumerate() {
            if let Err(message) = table.transform_line(trim_newline(line), &mut out) {
                return Err(row_error(source_name, first + i as u64, table, message));
            }
        }
        Ok(out)
    };
    // at most 4 chunks (of about 256 kB) a worker in flight
    let stats = par::ordered(jobs, 4 * jobs, read, work, |result| {
        out.write_all(&result?).map_err(DumpError::Write)
    })?;
    out.flush().map_err(DumpError::Write)?;
    Ok(stats)
}
