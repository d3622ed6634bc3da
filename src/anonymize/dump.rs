//! Plain pg_dump files (and stdin): COPY blocks stream through the plan, every other
//! line passes through unchanged, so the output restores with `psql -f` as the input did.

use std::io::{BufRead, Write};

use super::config::{qualified, split_qualified, split_quoted, Action};
use super::ddl::DdlScan;
use super::plan::{Plan, SourceTable, TablePlan};
use super::real::{Collector, RealSets, Wanted};

/// pg_dump's first and last lines of a plain dump (pg_dumpall's say "cluster dump").
const DUMP_HEADER: &str = "-- PostgreSQL database";
const DUMP_TRAILER: &[&str] = &[
    "-- PostgreSQL database dump complete",
    "-- PostgreSQL database cluster dump complete",
];

/// Refuses a plain pg_dump file that lacks pg_dump's closing line: one cut by a full disk,
/// an interrupted dump or copy would otherwise load as far as it goes (a target with its
/// rows but without the constraints and indexes of the post-data section). Names the last
/// section the file holds. SQL that does not start as pg_dump output is not checked.
pub fn check_complete(
    file: &mut (impl std::io::Read + std::io::Seek),
    name: &str,
) -> std::io::Result<Result<(), String>> {
    use std::io::SeekFrom;
    let mut head = [0u8; 64];
    file.seek(SeekFrom::Start(0))?;
    let n = read_up_to(file, &mut head)?;
    let head = String::from_utf8_lossy(&head[..n]);
    if !head
        .trim_start_matches(['\u{feff}', '-', '\n', '\r'])
        .trim_start()
        .starts_with(&DUMP_HEADER[3..])
    {
        return Ok(Ok(()));
    }
    let len = file.seek(SeekFrom::End(0))?;
    let from = len.saturating_sub(1 << 20);
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::with_capacity((len - from) as usize);
    std::io::Read::read_to_end(file, &mut tail)?;
    file.seek(SeekFrom::Start(0))?;
    let tail = String::from_utf8_lossy(&tail);
    // pg_dump writes its closing line last: a file cut anywhere lacks it (statements a
    // person appended after it are theirs)
    // pg_dumpall's file holds a database dump's closing line for each database: only the
    // cluster's own closing line ends it
    let cluster = head.contains("cluster dump");
    let trailer = DUMP_TRAILER[usize::from(cluster)];
    if tail.lines().any(|l| l.trim_end() == trailer) {
        return Ok(Ok(()));
    }
    let section = tail
        .lines()
        .rev()
        .find_map(|l| {
            l.strip_prefix("-- Data for Name: ")
                .map(|r| format!("Data for Name: {r}"))
                .or_else(|| l.strip_prefix("-- Name: ").map(|r| format!("Name: {r}")))
        })
        .map(|s| format!("; the last section it holds begins `-- {s}`"))
        .unwrap_or_default();
    Ok(Err(format!(
        "{name} is not a complete pg_dump file: it lacks pg_dump's closing line `{trailer}`, \
         so it was cut short (a full disk, an interrupted dump or \
         copy){section}. Nothing was loaded; take the dump again"
    )))
}

fn read_up_to(r: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A failure while streaming a dump.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("{source_name}:{line}: table {table}: {message}; nothing was written to the target")]
    Row {
        source_name: String,
        line: u64,
        table: String,
        message: String,
    },
    #[error(
        "{source_name}:{line}: the COPY block of {table} has no end (`\\.`): the dump is cut short"
    )]
    Unterminated {
        source_name: String,
        line: u64,
        table: String,
    },
    #[error("reading {0}: {1}")]
    Read(String, #[source] std::io::Error),
    #[error("writing the output: {0}")]
    Write(#[source] std::io::Error),
}

/// Rows per table, in the order the dump holds them.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DumpStats {
    pub tables: Vec<(String, u64)>,
    pub bytes_in: u64,
}

/// The table and columns of a pg_dump `COPY … FROM stdin;` line.
pub fn parse_copy_header(line: &str) -> Option<(String, Vec<String>)> {
    let rest = line.strip_prefix("COPY ")?.strip_suffix(" FROM stdin;")?;
    // the name ends at the first ` (` outside double quotes
    let mut quoted = false;
    let mut split = None;
    for (i, c) in rest.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted && rest[i..].starts_with(" (") => {
                split = Some(i);
                break;
            }
            _ => {}
        }
    }
    let (name, cols) = match split {
        Some(i) => (&rest[..i], rest[i + 2..].strip_suffix(')')?),
        None => (rest, ""),
    };
    let columns: Vec<String> = split_quoted(cols, ',')
        .into_iter()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    let parts = split_qualified(name);
    let name = if parts.len() == 2 {
        format!("{}.{}", parts[0], parts[1])
    } else {
        qualified(name)
    };
    Some((name, columns))
}

/// What one line of a plain dump is.
pub(crate) enum Line<'a> {
    /// Outside COPY data: SQL, comments, blank lines.
    Other,
    /// A `COPY … FROM stdin;` line: a data block starts.
    Header { table: String, columns: Vec<String> },
    /// A row of the current block, without its newline.
    Row(&'a [u8]),
    /// The `\.` that ends the block.
    End,
}

/// Reads a plain dump line by line and tells `f` what each line is (with its number and
/// its raw bytes, newline included). A COPY block without its end is an error.
pub(crate) fn walk(
    mut input: impl BufRead,
    source_name: &str,
    mut f: impl FnMut(u64, &[u8], Line<'_>) -> Result<(), DumpError>,
) -> Result<(), DumpError> {
    let mut line = Vec::with_capacity(1 << 12);
    let mut line_no: u64 = 0;
    // the table whose rows are streaming, with the line its block started on
    let mut open: Option<(String, u64)> = None;
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|e| DumpError::Read(source_name.into(), e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let l = trim_newline(&line);
        let kind = if open.is_some() {
            if l == b"\\." {
                open = None;
                Line::End
            } else {
                Line::Row(l)
            }
        } else {
            match l
                .starts_with(b"COPY ")
                .then(|| std::str::from_utf8(l).ok().and_then(parse_copy_header))
                .flatten()
            {
                Some((table, columns)) => {
                    open = Some((table.clone(), line_no));
                    Line::Header { table, columns }
                }
                None => Line::Other,
            }
        };
        f(line_no, &line, kind)?;
    }
    match open {
        Some((table, line)) => Err(DumpError::Unterminated {
            source_name: source_name.into(),
            line,
            table,
        }),
        None => Ok(()),
    }
}

/// What a pass over a dump finds before any row is transformed.
#[derive(Debug, Default)]
pub struct Scan {
    /// The tables it holds data for, from its COPY lines.
    pub tables: Vec<SourceTable>,
    /// Its DDL: unique keys and created tables.
    pub ddl: DdlScan,
    /// The identifying values of the columns the scan was asked for, by domain.
    pub real: RealSets,
}

/// The tables a dump holds data for and what its DDL says (a pass that keeps no row),
/// so the config is checked before any row is read; on the way, the values of the
/// `wanted` columns go into their domains' sets of real values.
pub fn scan(input: impl BufRead, source_name: &str, wanted: &Wanted) -> Result<Scan, DumpError> {
    let mut out = Scan::default();
    let mut collector = Collector::new(super::real::SEED);
    // the wanted columns of the block being read: (field, its slots), by field
    let mut collecting: Vec<(usize, super::real::Slots)> = Vec::new();
    walk(input, source_name, |line_no, raw, line| {
        match line {
            Line::Header { table, columns } => {
                collecting = columns
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| {
                        let feeds = wanted.get(&(table.clone(), c.clone()))?;
                        Some((i, collector.slots(feeds)))
                    })
                    .collect();
                if !out.tables.iter().any(|t| t.name == table) {
                    let types = vec![None; columns.len()];
                    out.tables.push(SourceTable {
                        name: table,
                        columns,
                        types,
                    });
                }
            }
            Line::Row(row) if !collecting.is_empty() => {
                // the wanted fields, in order, without collecting the row's fields
                let mut want = collecting.iter().peekable();
                for (i, f) in crate::pg::copy::split_fields(row).enumerate() {
                    let Some((_, slots)) = want.next_if(|(w, _)| *w == i) else {
                        continue;
                    };
                    if let Some(v) = crate::pg::copy::decode_field_cow(f) {
                        collector.add_to(slots, &v);
                    }
                    if want.peek().is_none() {
                        break;
                    }
                }
            }
            Line::Other => out.ddl.line(&String::from_utf8_lossy(raw), line_no),
            _ => {}
        }
        Ok(())
    })?;
    out.real = collector.finish();
    for t in &mut out.tables {
        t.types = t
            .columns
            .iter()
            .map(|c| out.ddl.types.column(&t.name, c))
            .collect();
    }
    Ok(out)
}

/// The first `n` COPY lines of each table, raw (what `--dry-run` shows transformed).
pub fn sample_lines(
    input: impl BufRead,
    source_name: &str,
    n: usize,
) -> Result<std::collections::BTreeMap<String, Vec<Vec<u8>>>, DumpError> {
    let mut out = std::collections::BTreeMap::<String, Vec<Vec<u8>>>::new();
    let mut current: Option<String> = None;
    walk(input, source_name, |_, _, line| {
        match line {
            Line::Header { table, .. } => current = Some(table),
            Line::Row(l) => {
                if let Some(table) = &current {
                    let rows = out.entry(table.clone()).or_default();
                    if rows.len() < n {
                        rows.push(l.to_vec());
                    }
                }
            }
            Line::End => current = None,
            Line::Other => {}
        }
        Ok(())
    })?;
    Ok(out)
}

/// Raw COPY lines turned into decoded values per column (NULLs left out): what
/// `anonymize init` looks at.
pub fn columns_of(lines: &[Vec<u8>]) -> Vec<Vec<String>> {
    let mut cols: Vec<Vec<String>> = Vec::new();
    for l in lines {
        for (i, f) in crate::pg::copy::split_fields(l).enumerate() {
            if cols.len() <= i {
                cols.resize(i + 1, Vec::new());
            }
            if let Some(v) = crate::pg::copy::decode_field(f) {
                cols[i].push(String::from_utf8_lossy(&v).into_owned());
            }
        }
    }
    cols
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

fn trim_newline(line: &[u8]) -> &[u8] {
    let l = line.strip_suffix(b"\n").unwrap_or(line);
    l.strip_suffix(b"\r").unwrap_or(l)
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

/// A piece of the output, in input order.
enum Chunk<'p> {
    /// Passes as it is.
    Raw(Vec<u8>),
    /// COPY lines (each ending in a newline) of `table`, the first at input line `first`.
    Rows {
        table: &'p TablePlan,
        data: Vec<u8>,
        first: u64,
    },
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
    use std::sync::mpsc::{sync_channel, Receiver};
    use std::sync::Mutex;

    if jobs <= 1 {
        return anonymize(input, output, plan, source_name, progress);
    }
    let in_flight = 4 * jobs.max(1);
    let (tokens_tx, tokens_rx) = sync_channel::<()>(in_flight);
    for _ in 0..in_flight {
        tokens_tx.send(()).expect("the channel has room");
    }
    let (work_tx, work_rx) = sync_channel::<(u64, Chunk)>(in_flight);
    let work_rx: Mutex<Receiver<(u64, Chunk)>> = Mutex::new(work_rx);
    let (done_tx, done_rx) = sync_channel::<(u64, Result<Vec<u8>, DumpError>)>(in_flight);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, output);

    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut stats = DumpStats::default();
            let mut seq = 0u64;
            let mut raw_buf = Vec::new();
            let mut rows_buf = Vec::new();
            let mut first = 0;
            let mut current: Option<&TablePlan> = None;
            let mut rows = 0u64;
            let send = |chunk: Chunk<'a>, seq: &mut u64| -> Result<(), DumpError> {
                let stopped = || DumpError::Write(std::io::Error::other("the writer stopped"));
                tokens_rx.recv().map_err(|_| stopped())?;
                work_tx.send((*seq, chunk)).map_err(|_| stopped())?;
                *seq += 1;
                Ok(())
            };
            let send_rows =
                |rows_buf: &mut Vec<u8>, table: &'a TablePlan, first: u64, seq: &mut u64| {
                    let data = std::mem::take(rows_buf);
                    send(Chunk::Rows { table, data, first }, seq)
                };
            let mut sql_lines = plan.sql_lines();
            walk(input, source_name, |line_no, raw, line| {
                stats.bytes_in += raw.len() as u64;
                match line {
                    Line::Other if !sql_lines.passes(raw) => {}
                    Line::Other => raw_buf.extend_from_slice(raw),
                    Line::Header { table, .. } => {
                        let t = planned(plan, &table, source_name, line_no)?;
                        current = Some(t);
                        rows = 0;
                        if t.action != Action::Skip {
                            raw_buf.extend_from_slice(raw);
                        }
                    }
                    Line::Row(_) => {
                        let t = current.expect("rows come after their header");
                        rows += 1;
                        if t.action == Action::Anonymize {
                            if rows_buf.is_empty() {
                                first = line_no;
                                if !raw_buf.is_empty() {
                                    send(Chunk::Raw(std::mem::take(&mut raw_buf)), &mut seq)?;
                                }
                            }
                            rows_buf.extend_from_slice(raw);
                            if rows_buf.len() >= BATCH {
                                send_rows(&mut rows_buf, t, first, &mut seq)?;
                                progress(stats.bytes_in, &t.name);
                            }
                        }
                    }
                    Line::End => {
                        let t = current.take().expect("an end comes after its header");
                        stats.tables.push((t.name.clone(), rows));
                        if !rows_buf.is_empty() {
                            send_rows(&mut rows_buf, t, first, &mut seq)?;
                        }
                        if t.action != Action::Skip {
                            raw_buf.extend_from_slice(b"\\.\n");
                        }
                    }
                }
                Ok(())
            })?;
            if plan.changes_keys() {
                raw_buf.extend_from_slice(super::load::SEQUENCE_FIXUP_NOTE);
                raw_buf.extend_from_slice(super::load::SEQUENCE_FIXUP.as_bytes());
            }
            if !raw_buf.is_empty() {
                send(Chunk::Raw(raw_buf), &mut seq)?;
            }
            Ok::<_, DumpError>(stats)
        });
        for _ in 0..jobs.max(1) {
            let (work_rx, done_tx) = (&work_rx, done_tx.clone());
            scope.spawn(move || loop {
                let next = work_rx.lock().map(|rx| rx.recv());
                let Ok(Ok((seq, chunk))) = next else { return };
                let result = match chunk {
                    Chunk::Raw(data) => Ok(data),
                    Chunk::Rows { table, data, first } => {
                        let mut out = Vec::with_capacity(data.len() + data.len() / 4);
                        let mut result = Ok(());
                        for (i, line) in data.split_inclusive(|&b| b == b'\n').enumerate() {
                            if let Err(message) = table.transform_line(trim_newline(line), &mut out)
                            {
                                result =
                                    Err(row_error(source_name, first + i as u64, table, message));
                                break;
                            }
                        }
                        result.map(|()| out)
                    }
                };
                if done_tx.send((seq, result)).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        let written = (|| {
            let mut pending = std::collections::BTreeMap::new();
            let mut next = 0u64;
            for (seq, result) in done_rx.iter() {
                pending.insert(seq, result);
                while let Some(result) = pending.remove(&next) {
                    out.write_all(&result?).map_err(DumpError::Write)?;
                    next += 1;
                    let _ = tokens_tx.send(());
                }
            }
            out.flush().map_err(DumpError::Write)
        })();
        drop(tokens_tx);
        drop(done_rx);
        let read = reader.join().expect("the reader does not panic");
        // a transform error comes first: the reader only saw the writer stop
        written.and(read)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_pg_dump_file_without_its_closing_line_is_refused_naming_the_last_section() {
        let whole = "--\n-- PostgreSQL database dump\n--\n\nSET x = 1;\n\n--\n-- Data for Name: people; Type: TABLE DATA; Schema: public; Owner: -\n--\n\nCOPY public.people (id) FROM stdin;\n1\n\\.\n\n--\n-- Name: people people_pkey; Type: CONSTRAINT; Schema: public; Owner: -\n--\n\nALTER TABLE x;\n\n--\n-- PostgreSQL database dump complete\n--\n\n";
        let check = |t: &str| {
            super::check_complete(&mut std::io::Cursor::new(t.as_bytes()), "in.sql").unwrap()
        };
        assert_eq!(check(whole), Ok(()));
        let cut = &whole[..whole.find("--\n-- Name: people people_pkey").unwrap()];
        let e = check(cut).unwrap_err();
        assert!(
            e.starts_with("in.sql is not a complete pg_dump file: it lacks pg_dump's closing line")
                && e.contains(
                    "the last section it holds begins `-- Data for Name: people; Type: TABLE DATA"
                ),
            "{e}"
        );
        // hand-written SQL is not pg_dump output: not checked
        assert_eq!(check("COPY t (a) FROM stdin;\n1\n\\.\n"), Ok(()));
        assert_eq!(check(""), Ok(()));
    }

    use super::*;

    proptest::proptest! {
        /// Any bytes, dump-like or not, are read or refused, never a panic: the scan
        /// (COPY headers, DDL, rows, the wanted columns) and the walk under it (issue 15).
        #[test]
        fn any_dump_text_is_read_or_refused(
            head in "(COPY [a-z\".( ,é)]{0,30} FROM stdin;\n|CREATE TABLE [a-z\". (é]{0,20}\n|ALTER TABLE ONLY \"[ a-z]{0,8}\"\n|    ADD CONSTRAINT [^\n]{0,30}\n|\\.\n|[^\n]{0,30}\n){0,8}",
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            let mut bytes = head.into_bytes();
            bytes.extend(body);
            let _ = scan(&bytes[..], "fuzz.sql", &Default::default());
        }
    }

    #[test]
    fn copy_headers_parse_with_quotes() {
        assert_eq!(
            parse_copy_header("COPY public.actor (actor_id, first_name) FROM stdin;"),
            Some((
                "public.actor".into(),
                vec!["actor_id".into(), "first_name".into()]
            ))
        );
        assert_eq!(
            parse_copy_header("COPY sales.\"Order (x)\" (\"Id\", \"a,b\") FROM stdin;"),
            Some(("sales.Order (x)".into(), vec!["Id".into(), "a,b".into()]))
        );
        assert_eq!(parse_copy_header("COPY x TO stdout;"), None);
    }
}
