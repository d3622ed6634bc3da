//! Plain pg_dump files (and stdin) as a source: the one walk over their lines (SQL
//! outside COPY blocks, a block's header, its rows, its end), the check that a file is
//! whole, and the scan that reads what a run needs to know before any row moves.

use std::io::BufRead;

use super::catalog::DdlScan;
use super::SourceTable;
use crate::anonymize::config::{qualified, split_qualified, split_quoted};
use crate::anonymize::real::{self, Collector, RealSets, Wanted};

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

/// What a stretch of a plain dump is, as [`walk_blocks`] tells it.
pub(crate) enum Block<'a> {
    /// One line outside COPY data (SQL, a comment, a blank line), newline included.
    Sql(&'a [u8]),
    /// A `COPY … FROM stdin;` line (`raw`, newline included): a data block starts.
    Header {
        table: String,
        columns: Vec<String>,
        raw: &'a [u8],
    },
    /// Whole rows of the open block, each with its newline (a `\r\n` left as it is):
    /// `lines` of them, the first at byte `offset` of the input.
    Rows {
        data: &'a [u8],
        lines: u64,
        offset: u64,
    },
    /// The `\.` line that ends the block, newline included.
    End(&'a [u8]),
}

/// Where the `\.` line that ends a COPY block is in `run` (which starts at a line's
/// start): where it starts and where the line after it does.
fn terminator(run: &[u8]) -> Option<(usize, usize)> {
    let end_at = |at: usize| {
        let rest = &run[at..];
        if rest.starts_with(b"\\.\n") {
            Some((at, at + 3))
        } else if rest.starts_with(b"\\.\r\n") {
            Some((at, at + 4))
        } else {
            None
        }
    };
    end_at(0).or_else(|| memchr::memmem::find_iter(run, b"\n\\.").find_map(|p| end_at(p + 1)))
}

/// The one walk over a plain dump, for every reader of one (the scan, anonymize, verify):
/// a line at a time outside COPY blocks, a block's rows a run of whole lines at a time
/// (at most about `chunk` bytes, straight from the reader's buffer; a row longer than
/// that, or one that straddles a refill of the buffer, is copied on its own). `f` gets each stretch with the number of its first line. A map
/// of a file read as `&[u8]` is walked in place: [`Block::Rows`]' offsets are ranges of
/// it, and it is touched only as far as it has been read. A COPY block without its end
/// is an error naming the line it began on.
pub(crate) fn walk_blocks<E: From<DumpError>>(
    mut input: impl BufRead,
    source_name: &str,
    chunk: usize,
    mut f: impl FnMut(u64, Block<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let read_err = |e| DumpError::Read(source_name.into(), e);
    let mut line = Vec::with_capacity(1 << 12);
    // lines and bytes read so far
    let (mut line_no, mut offset) = (0u64, 0u64);
    loop {
        line.clear();
        let n = input.read_until(b'\n', &mut line).map_err(read_err)?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        offset += n as u64;
        let header = line
            .starts_with(b"COPY ")
            .then(|| {
                std::str::from_utf8(trim_newline(&line))
                    .ok()
                    .and_then(parse_copy_header)
            })
            .flatten();
        let Some((table, columns)) = header else {
            f(line_no, Block::Sql(&line))?;
            continue;
        };
        let started = line_no;
        let unterminated = DumpError::Unterminated {
            source_name: source_name.into(),
            line: started,
            table: table.clone(),
        };
        f(
            line_no,
            Block::Header {
                table,
                columns,
                raw: &line,
            },
        )?;
        loop {
            let buf = input.fill_buf().map_err(read_err)?;
            if buf.is_empty() {
                return Err(unterminated.into());
            }
            let window = &buf[..buf.len().min(chunk.max(1))];
            let Some(last) = memchr::memrchr(b'\n', window) else {
                // a row longer than the window, or a last line without its newline
                line.clear();
                let n = input.read_until(b'\n', &mut line).map_err(read_err)?;
                line_no += 1;
                let at = offset;
                offset += n as u64;
                if trim_newline(&line) == b"\\." {
                    f(line_no, Block::End(&line))?;
                    break;
                }
                f(
                    line_no,
                    Block::Rows {
                        data: &line,
                        lines: 1,
                        offset: at,
                    },
                )?;
                continue;
            };
            let run = &window[..=last];
            let (rows, end) = match terminator(run) {
                Some((stop, after)) => (&run[..stop], Some(&run[stop..after])),
                None => (run, None),
            };
            if !rows.is_empty() {
                let lines = memchr::memchr_iter(b'\n', rows).count() as u64;
                f(
                    line_no + 1,
                    Block::Rows {
                        data: rows,
                        lines,
                        offset,
                    },
                )?;
                line_no += lines;
            }
            let used = rows.len() + end.map_or(0, <[u8]>::len);
            if let Some(end) = end {
                line_no += 1;
                f(line_no, Block::End(end))?;
            }
            let ended = end.is_some();
            offset += used as u64;
            input.consume(used);
            if ended {
                break;
            }
        }
    }
}

/// [`walk_blocks`] a line at a time: `f` gets each line's number, its raw bytes (newline
/// included) and what it is.
pub(crate) fn walk(
    input: impl BufRead,
    source_name: &str,
    mut f: impl FnMut(u64, &[u8], Line<'_>) -> Result<(), DumpError>,
) -> Result<(), DumpError> {
    walk_blocks(input, source_name, 1 << 20, |at, block| match block {
        Block::Sql(raw) => f(at, raw, Line::Other),
        Block::Header {
            table,
            columns,
            raw,
        } => f(at, raw, Line::Header { table, columns }),
        Block::Rows { data, .. } => {
            let mut start = 0;
            for (i, end) in memchr::memchr_iter(b'\n', data).enumerate() {
                let raw = &data[start..=end];
                f(at + i as u64, raw, Line::Row(trim_newline(raw)))?;
                start = end + 1;
            }
            if start < data.len() {
                // a last row without its newline (the block ends at the input's end)
                let raw = &data[start..];
                let i = memchr::memchr_iter(b'\n', data).count() as u64;
                f(at + i, raw, Line::Row(trim_newline(raw)))?;
            }
            Ok(())
        }
        Block::End(raw) => f(at, raw, Line::End),
    })
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
    let mut collector = Collector::new(real::SEED);
    // the wanted columns of the block being read: (field, its slots), by field
    let mut collecting: Vec<(usize, real::Slots)> = Vec::new();
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

pub(crate) fn trim_newline(line: &[u8]) -> &[u8] {
    let l = line.strip_suffix(b"\n").unwrap_or(line);
    l.strip_suffix(b"\r").unwrap_or(l)
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

    /// What [`walk_blocks`] tells, as text: `S` a SQL line, `H` a header, `R` rows
    /// (first line, count, offset), `E` an end.
    fn blocks(text: &[u8], chunk: usize) -> Result<Vec<String>, DumpError> {
        let mut out = Vec::new();
        walk_blocks(text, "t.sql", chunk, |at, b| {
            out.push(match b {
                Block::Sql(raw) => format!("{at} S {:?}", String::from_utf8_lossy(raw)),
                Block::Header { table, columns, .. } => format!("{at} H {table} {columns:?}"),
                Block::Rows {
                    data,
                    lines,
                    offset,
                } => {
                    assert_eq!(&text[offset as usize..offset as usize + data.len()], data);
                    format!(
                        "{at} R {lines}@{offset} {:?}",
                        String::from_utf8_lossy(data)
                    )
                }
                Block::End(raw) => format!("{at} E {:?}", String::from_utf8_lossy(raw)),
            });
            Ok::<_, DumpError>(())
        })?;
        Ok(out)
    }

    #[test]
    fn the_walk_gives_rows_in_runs_of_whole_lines_with_their_places() {
        let text = b"SET x;\nCOPY public.t (a, b) FROM stdin;\n1\tx\n2\ty\r\n333\tzzzzzzzzzz\n\\.\r\nSELECT 1;\nCOPY t2 FROM stdin;\n\\.";
        // a window of 12 bytes: runs cut at line ends, a longer row on its own
        assert_eq!(
            blocks(text, 12).unwrap(),
            [
                "1 S \"SET x;\\n\"",
                "2 H public.t [\"a\", \"b\"]",
                "3 R 2@40 \"1\\tx\\n2\\ty\\r\\n\"",
                "5 R 1@49 \"333\\tzzzzzzzzzz\\n\"",
                "6 E \"\\\\.\\r\\n\"",
                "7 S \"SELECT 1;\\n\"",
                "8 H public.t2 []",
                "9 E \"\\\\.\"",
            ]
        );
        // one window for all: the same stretches, the rows in one run
        let whole = blocks(text, 1 << 20).unwrap();
        assert_eq!(
            whole[2],
            "3 R 3@40 \"1\\tx\\n2\\ty\\r\\n333\\tzzzzzzzzzz\\n\""
        );
        assert_eq!(whole[3], "6 E \"\\\\.\\r\\n\"");
        // a row that starts with `\.` but is longer is a row
        let odd = b"COPY t (a) FROM stdin;\n\\.x\n\\.\n";
        assert_eq!(blocks(odd, 64).unwrap()[1], "2 R 1@23 \"\\\\.x\\n\"");
    }

    #[test]
    fn a_block_cut_short_names_the_line_it_began_on() {
        let text = b"SET x;\n\nCOPY public.a (id) FROM stdin;\n1\n2";
        let e = blocks(text, 4).unwrap_err().to_string();
        assert!(
            e.starts_with("t.sql:3: the COPY block of public.a has no end"),
            "{e}"
        );
    }
}
