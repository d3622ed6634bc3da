//! Large objects (`lo_create`, `lowrite`; `oid` columns point at them) hold whole files —
//! scanned contracts, vCards, photos — outside every table, so no column transformer sees
//! them. They are covered like columns, fail closed: a source that holds any needs
//! `[large_objects] action = …` in the config, or the run stops before a row is read
//! (issue 14). `empty` keeps each object (every `oid` that points at one still resolves)
//! with no content, `drop` leaves them out, `keep` (only with a `reason`) copies them as
//! they are.
//!
//! Dumps carry them as SQL lines pg_dump writes in fixed forms, filtered here line by
//! line; a live source's are copied inside the run's snapshot, or written to a file in
//! pg_dump's own forms.

use std::fmt::Write as _;

use tokio_postgres::Client;

use crate::pg::{PgContext as _, PgError};

/// What happens to the source's large objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoAction {
    /// Each object is made again, with no content.
    Empty,
    /// None is in the copy.
    Drop,
    /// Copied as they are (the config says why).
    Keep,
}

impl LoAction {
    pub fn parse(s: &str) -> Option<LoAction> {
        match s {
            "empty" => Some(LoAction::Empty),
            "drop" => Some(LoAction::Drop),
            "keep" => Some(LoAction::Keep),
            _ => None,
        }
    }

    /// As the config writes it.
    pub fn name(self) -> &'static str {
        match self {
            LoAction::Empty => "empty",
            LoAction::Drop => "drop",
            LoAction::Keep => "keep",
        }
    }

    /// How many objects the copy holds when the source holds `n`.
    pub fn expected(self, n: u64) -> u64 {
        match self {
            LoAction::Drop => 0,
            LoAction::Empty | LoAction::Keep => n,
        }
    }

    /// Whether a line of a plain dump, outside COPY data, goes to the output: pg_dump
    /// writes each large-object statement on a line of its own.
    pub fn passes(self, line: &[u8]) -> bool {
        match self {
            LoAction::Keep => true,
            LoAction::Empty => !line.starts_with(b"SELECT pg_catalog.lowrite("),
            LoAction::Drop => !is_statement(line),
        }
    }
}

/// Whether `line` is one of the statements pg_dump writes for a large object.
pub fn is_statement(line: &[u8]) -> bool {
    const FORMS: [&[u8]; 8] = [
        b"SELECT pg_catalog.lo_create(",
        b"SELECT pg_catalog.lo_open(",
        b"SELECT pg_catalog.lowrite(",
        b"SELECT pg_catalog.lo_close(",
        b"ALTER LARGE OBJECT ",
        b"COMMENT ON LARGE OBJECT ",
        b"GRANT ",
        b"REVOKE ",
    ];
    FORMS[..6].iter().any(|f| line.starts_with(f))
        || (FORMS[6..].iter().any(|f| line.starts_with(f))
            && memchr::memmem::find(line, b" ON LARGE OBJECT ").is_some())
}

pub use crate::source::catalog::large_object_created as created;

/// Bytes read from an object at a time.
const CHUNK: i32 = 1 << 20;

/// The chunk of object `oid` at offset `at`: [`CHUNK`] bytes, fewer for the last, none
/// past the end.
async fn chunk_at(reader: &Client, oid: u32, at: i64) -> Result<Vec<u8>, PgError> {
    Ok(reader
        .query_one("SELECT pg_catalog.lo_get($1, $2, $3)", &[&oid, &at, &CHUNK])
        .await
        .pg(|| format!("reading large object {oid}"))?
        .get(0))
}

/// Makes the objects `oids` of the source in the database `writer` is connected to, as
/// `action` says, reading their content (for `keep`) through `reader` a chunk at a time.
pub async fn copy(
    reader: &Client,
    writer: &Client,
    oids: &[u32],
    action: LoAction,
) -> Result<(), PgError> {
    if action == LoAction::Drop {
        return Ok(());
    }
    for batch in oids.chunks(10_000) {
        writer
            .execute(
                "SELECT pg_catalog.lo_create(o) FROM unnest($1::oid[]) o",
                &[&batch],
            )
            .await
            .pg(|| "making the large objects in the copy".into())?;
    }
    if action == LoAction::Keep {
        for &oid in oids {
            let mut at: i64 = 0;
            loop {
                let chunk = chunk_at(reader, oid, at).await?;
                if !chunk.is_empty() {
                    writer
                        .execute("SELECT pg_catalog.lo_put($1, $2, $3)", &[&oid, &at, &chunk])
                        .await
                        .pg(|| format!("writing large object {oid}"))?;
                }
                at += chunk.len() as i64;
                if chunk.len() < CHUNK as usize {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// The statements that make the objects `oids` in a plain SQL file, in pg_dump's own
/// forms, reading their content (for `keep`) through `reader`.
pub async fn sql(reader: &Client, oids: &[u32], action: LoAction) -> Result<String, PgError> {
    let mut out = String::new();
    if action == LoAction::Drop || oids.is_empty() {
        return Ok(out);
    }
    out.push_str("\n-- large objects (anonymize.toml: [large_objects])\n");
    for oid in oids {
        let _ = writeln!(out, "SELECT pg_catalog.lo_create('{oid}');");
    }
    if action == LoAction::Keep {
        out.push_str("BEGIN;\n");
        for &oid in oids {
            let _ = writeln!(out, "SELECT pg_catalog.lo_open('{oid}', 131072);");
            let mut at: i64 = 0;
            loop {
                let chunk = chunk_at(reader, oid, at).await?;
                if !chunk.is_empty() {
                    out.push_str("SELECT pg_catalog.lowrite(0, '\\x");
                    for b in &chunk {
                        let _ = write!(out, "{b:02x}");
                    }
                    out.push_str("');\n");
                }
                at += chunk.len() as i64;
                if chunk.len() < CHUNK as usize {
                    break;
                }
            }
            out.push_str("SELECT pg_catalog.lo_close(0);\n");
        }
        out.push_str("COMMIT;\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines pg_dump writes for a large object, and what each action lets through.
    #[test]
    fn dump_lines_pass_as_the_action_says() {
        let lines: [&[u8]; 9] = [
            b"SELECT pg_catalog.lo_create('424242');",
            b"ALTER LARGE OBJECT 424242 OWNER TO postgres;",
            b"COMMENT ON LARGE OBJECT 424242 IS 'a vCard';",
            b"GRANT SELECT ON LARGE OBJECT 424242 TO reader;",
            b"SELECT pg_catalog.lo_open('424242', 131072);",
            b"SELECT pg_catalog.lowrite(0, '\\x424547');",
            b"SELECT pg_catalog.lo_close(0);",
            b"GRANT SELECT ON TABLE public.t TO reader;",
            b"SELECT pg_catalog.setval('public.t_id_seq', 3, true);",
        ];
        let through = |a: LoAction| -> Vec<usize> {
            (0..lines.len()).filter(|&i| a.passes(lines[i])).collect()
        };
        assert_eq!(through(LoAction::Keep), (0..9).collect::<Vec<_>>());
        assert_eq!(
            through(LoAction::Empty),
            [0, 1, 2, 3, 4, 6, 7, 8],
            "content only"
        );
        assert_eq!(
            through(LoAction::Drop),
            [7, 8],
            "every statement of the object"
        );
        assert_eq!(
            created("SELECT pg_catalog.lo_create('424242');"),
            Some("424242")
        );
        assert_eq!(LoAction::Drop.expected(3), 0);
        assert_eq!(LoAction::Empty.expected(3), 3);
    }
}
