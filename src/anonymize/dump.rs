//! Plain pg_dump files (and stdin): COPY blocks stream through the plan, every other
//! line passes through unchanged, so the output restores with `psql -f` as the input did.

use std::io::{BufRead, Write};

use super::config::{qualified, split_qualified, Action};
use super::plan::{Plan, SourceTable};

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
    let mut columns = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = cols.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => columns.push(std::mem::take(&mut cur).trim().to_string()),
            c => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        columns.push(cur.trim().to_string());
    }
    let parts = split_qualified(name);
    let name = if parts.len() == 2 {
        format!("{}.{}", parts[0], parts[1])
    } else {
        qualified(name)
    };
    Some((name, columns))
}

/// What one line of a plain dump is.
enum Line<'a> {
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
fn walk(
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

/// The tables a dump holds data for, from its COPY lines (a pass that keeps no row), so
/// the config is checked before any row is read.
pub fn scan_tables(input: impl BufRead, source_name: &str) -> Result<Vec<SourceTable>, DumpError> {
    let mut out: Vec<SourceTable> = Vec::new();
    walk(input, source_name, |_, _, line| {
        if let Line::Header { table, columns } = line {
            if !out.iter().any(|t| t.name == table) {
                let types = vec![None; columns.len()];
                out.push(SourceTable {
                    name: table,
                    columns,
                    types,
                });
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// Up to `n` rows of each table, decoded, per column: what `anonymize init` looks at.
pub fn sample(
    input: impl BufRead,
    source_name: &str,
    n: usize,
) -> Result<std::collections::BTreeMap<String, Vec<Vec<String>>>, DumpError> {
    let mut out = std::collections::BTreeMap::<String, Vec<Vec<String>>>::new();
    let mut current: Option<(String, usize)> = None;
    walk(input, source_name, |_, _, line| {
        match line {
            Line::Header { table, .. } => current = Some((table, 0)),
            Line::Row(l) => {
                if let Some((table, seen)) = current.as_mut().filter(|(_, seen)| *seen < n) {
                    *seen += 1;
                    let cols = out.entry(table.clone()).or_default();
                    for (i, f) in crate::pg::copy::split_fields(l).enumerate() {
                        if cols.len() <= i {
                            cols.resize(i + 1, Vec::new());
                        }
                        if let Some(v) = crate::pg::copy::decode_field(f) {
                            cols[i].push(String::from_utf8_lossy(&v).into_owned());
                        }
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
) -> Result<DumpStats, DumpError> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, output);
    let mut stats = DumpStats::default();
    let mut buf = Vec::with_capacity(1 << 12);
    let mut current: Option<&super::plan::TablePlan> = None;
    let mut rows: u64 = 0;
    walk(input, source_name, |line_no, raw, line| {
        stats.bytes_in += raw.len() as u64;
        let write = match line {
            Line::Other => true,
            Line::Header { table, .. } => {
                let t = plan.table(&table).ok_or_else(|| DumpError::Row {
                    source_name: source_name.into(),
                    line: line_no,
                    table: table.clone(),
                    message: "the table is not in the plan (the dump changed while it was read?)"
                        .into(),
                })?;
                current = Some(t);
                rows = 0;
                t.action != Action::Skip
            }
            Line::Row(l) => {
                let t = current.expect("rows come after their header");
                rows += 1;
                if t.action == Action::Anonymize {
                    buf.clear();
                    t.transform_line(l, &mut buf)
                        .map_err(|message| DumpError::Row {
                            source_name: source_name.into(),
                            line: line_no,
                            table: t.name.clone(),
                            message,
                        })?;
                    out.write_all(&buf).map_err(DumpError::Write)?;
                }
                false
            }
            Line::End => {
                let t = current.take().expect("an end comes after its header");
                stats.tables.push((t.name.clone(), rows));
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
    out.flush().map_err(DumpError::Write)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

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
