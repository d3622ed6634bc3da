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

/// The tables a dump holds data for, from its COPY lines (a pass that reads no row
/// into memory), so the config is checked before any row is read.
pub fn scan_tables(
    mut input: impl BufRead,
    source_name: &str,
) -> Result<Vec<SourceTable>, DumpError> {
    let mut out: Vec<SourceTable> = Vec::new();
    let mut line = Vec::with_capacity(1 << 12);
    let mut in_copy = false;
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|e| DumpError::Read(source_name.into(), e))?;
        if n == 0 {
            break;
        }
        let l = trim_newline(&line);
        if in_copy {
            in_copy = l != b"\\.";
            continue;
        }
        if l.starts_with(b"COPY ") {
            if let Some((name, columns)) = std::str::from_utf8(l).ok().and_then(parse_copy_header) {
                in_copy = true;
                if !out.iter().any(|t| t.name == name) {
                    let types = vec![None; columns.len()];
                    out.push(SourceTable {
                        name,
                        columns,
                        types,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Up to `n` rows of each table, decoded, per column: what `anonymize init` looks at.
pub fn sample(
    mut input: impl BufRead,
    n: usize,
) -> std::io::Result<std::collections::BTreeMap<String, Vec<Vec<String>>>> {
    let mut out = std::collections::BTreeMap::new();
    let mut line = Vec::new();
    let mut current: Option<(String, usize)> = None;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let l = trim_newline(&line);
        if let Some((name, seen)) = current.as_mut() {
            if l == b"\\." {
                current = None;
                continue;
            }
            if *seen < n {
                *seen += 1;
                let cols: &mut Vec<Vec<String>> = out.entry(name.clone()).or_default();
                for (i, f) in crate::pg::copy::split_fields(l).enumerate() {
                    if cols.len() <= i {
                        cols.resize(i + 1, Vec::new());
                    }
                    if let Some(v) = crate::pg::copy::decode_field(f) {
                        cols[i].push(String::from_utf8_lossy(&v).into_owned());
                    }
                }
            }
            continue;
        }
        if l.starts_with(b"COPY ") {
            if let Some((name, _)) = std::str::from_utf8(l).ok().and_then(parse_copy_header) {
                current = Some((name, 0));
            }
        }
    }
    Ok(out)
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let l = line.strip_suffix(b"\n").unwrap_or(line);
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// Streams `input` to `output`: COPY rows of each table through its plan (none for a
/// `truncate` table; the whole block left out for a `skip` one), everything else as is.
pub fn anonymize(
    mut input: impl BufRead,
    output: impl Write,
    plan: &Plan,
    source_name: &str,
) -> Result<DumpStats, DumpError> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, output);
    let mut stats = DumpStats::default();
    let mut line = Vec::with_capacity(1 << 12);
    let mut buf = Vec::with_capacity(1 << 12);
    let mut line_no: u64 = 0;
    // the table whose rows are streaming, with its start line
    let mut current: Option<(&super::plan::TablePlan, u64)> = None;
    let mut rows: u64 = 0;
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|e| DumpError::Read(source_name.into(), e))?;
        if n == 0 {
            break;
        }
        stats.bytes_in += n as u64;
        line_no += 1;
        if let Some((table, _)) = current {
            let l = trim_newline(&line);
            if l == b"\\." {
                if table.action != Action::Skip {
                    out.write_all(b"\\.\n").map_err(DumpError::Write)?;
                }
                stats.tables.push((table.name.clone(), rows));
                current = None;
                continue;
            }
            rows += 1;
            match table.action {
                Action::Anonymize => {
                    buf.clear();
                    table
                        .transform_line(l, &mut buf)
                        .map_err(|message| DumpError::Row {
                            source_name: source_name.into(),
                            line: line_no,
                            table: table.name.clone(),
                            message,
                        })?;
                    out.write_all(&buf).map_err(DumpError::Write)?;
                }
                Action::Truncate | Action::Skip => {}
            }
            continue;
        }
        if line.starts_with(b"COPY ") {
            if let Some((name, _)) = std::str::from_utf8(trim_newline(&line))
                .ok()
                .and_then(parse_copy_header)
            {
                let table = plan.table(&name).ok_or_else(|| DumpError::Row {
                    source_name: source_name.into(),
                    line: line_no,
                    table: name.clone(),
                    message: "the table is not in the plan (the dump changed while it was read?)"
                        .into(),
                })?;
                current = Some((table, line_no));
                rows = 0;
                if table.action == Action::Skip {
                    continue;
                }
            }
        }
        out.write_all(&line).map_err(DumpError::Write)?;
    }
    if let Some((table, start)) = current {
        return Err(DumpError::Unterminated {
            source_name: source_name.into(),
            line: start,
            table: table.name.clone(),
        });
    }
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
