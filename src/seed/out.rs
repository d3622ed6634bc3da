//! Seed output as files: one RFC 4180 CSV per table (header row) plus `load.sql`, which
//! `psql -f` runs to load them with `\copy` in foreign-key order, and `schema.sql` with
//! the profile's migrations, so a seed committed under `seeds/` loads without dataforge.
//!
//! The CSV is written by hand rather than with the `csv` crate because PostgreSQL's CSV
//! format tells NULL from the empty string by quoting: NULL is an unquoted empty field,
//! the empty string is `""`. The `csv` crate cannot be told to quote one empty field and
//! not another.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::gen::{format_date, stream, Event, GenError, SeedOptions};
use super::profile::Profile;
use crate::pg::quote_ident;

/// Appends one CSV field: NULL unquoted and empty; quoted when it holds a comma, quote,
/// CR or LF, is empty, or is `\.` (COPY's end-of-data marker).
pub fn put_csv_field(out: &mut Vec<u8>, value: Option<&str>) {
    let Some(v) = value else { return };
    let bytes = v.as_bytes();
    let needs_quotes = v.is_empty()
        || v == "\\."
        || memchr::memchr3(b',', b'"', b'\n', bytes).is_some()
        || memchr::memchr(b'\r', bytes).is_some();
    if !needs_quotes {
        out.extend_from_slice(v.as_bytes());
        return;
    }
    out.push(b'"');
    let mut rest = bytes;
    while let Some(q) = memchr::memchr(b'"', rest) {
        out.extend_from_slice(&rest[..=q]);
        out.push(b'"');
        rest = &rest[q + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Appends one CSV record and its `\n` (RFC 4180 allows it; PostgreSQL and every CSV
/// reader accept it).
pub fn put_csv_record<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = Option<&'a str>>) {
    for (k, v) in fields.into_iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        put_csv_field(out, v);
    }
    out.push(b'\n');
}

/// Writes one table as CSV with a header row.
pub fn write_table_csv<W: Write>(
    w: &mut W,
    columns: &[String],
    rows: &[Vec<Option<String>>],
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1 << 16);
    put_csv_record(&mut buf, columns.iter().map(|c| Some(c.as_str())));
    for row in rows {
        put_csv_record(&mut buf, row.iter().map(|v| v.as_deref()));
        if buf.len() > (1 << 16) {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Gen(#[from] GenError),
}

/// Generates the profile straight into `<table>.csv` files, then writes `schema.sql` and
/// `load.sql`, all in `dir`. Returns the files written (in load order) and the row count.
pub fn write_dir(
    dir: &Path,
    profile: &Profile,
    opts: &SeedOptions,
) -> Result<(Vec<PathBuf>, u64), WriteError> {
    let io_at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io_at(dir))?;
    let mut written = Vec::new();
    // Every file is written as `.NAME.PID.partial` (0600 while written, locked; a killed
    // run's are removed by the next) and takes its name only once all are complete,
    // load.sql last: a full disk leaves the earlier run's files as they were.
    let mut partials: Vec<(File, PathBuf, crate::cleanup::Registered, PathBuf)> = Vec::new();
    let mut open_partial = |file: &Path| -> Result<File, WriteError> {
        let (f, partial, guard) =
            crate::cleanup::partial_file(file, &mut |m| crate::cli::say(m)).map_err(io_at(file))?;
        let handle = f.try_clone().map_err(io_at(file))?;
        partials.push((f, partial, guard, file.to_path_buf()));
        Ok(handle)
    };
    let mut load = format!(
        "-- dataforge seed of profile {} (seed {}, scale {}, anchor {}).\n\
         -- Load it from this folder into a database that has the schema:\n\
         --   psql \"$DATABASE_URL\" -f schema.sql   # only if the tables do not exist yet\n\
         --   psql \"$DATABASE_URL\" -f load.sql\n\
         -- Everything loads in one transaction: on any error nothing is written.\n\
         \\set ON_ERROR_STOP on\nBEGIN;\n",
        profile.name,
        opts.seed,
        opts.scale,
        format_date(opts.anchor)
    );
    // Records gather in `buf` and go to the file in 1 MiB writes: no second buffer.
    let mut current: Option<(PathBuf, File)> = None;
    let mut plain_cols: Vec<bool> = Vec::new();
    let mut buf = Vec::with_capacity(1 << 21);
    let mut rows = 0u64;
    stream(profile, opts, |ev| -> Result<(), WriteError> {
        match ev {
            Event::Begin {
                table,
                columns,
                plain,
                ..
            } => {
                plain_cols = plain.to_vec();
                let file = dir.join(format!("{table}.csv"));
                let w = open_partial(&file)?;
                put_csv_record(&mut buf, columns.iter().map(|c| Some(c.as_str())));
                let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
                load.push_str(&format!(
                    "\\copy {} ({}) FROM '{}.csv' WITH (FORMAT csv, HEADER true)\n",
                    quote_ident(table),
                    cols.join(", "),
                    table.replace('\'', "''")
                ));
                current = Some((file, w));
            }
            Event::Row(r) => {
                rows += 1;
                for (k, (v, &plain)) in r.iter().zip(&plain_cols).enumerate() {
                    if k > 0 {
                        buf.push(b',');
                    }
                    match v {
                        Some(v) if plain => buf.extend_from_slice(v.as_bytes()),
                        v => put_csv_field(&mut buf, v.as_deref()),
                    }
                }
                buf.push(b'\n');
                if buf.len() >= 1 << 20 {
                    let (file, w) = current.as_mut().expect("begun");
                    w.write_all(&buf).map_err(io_at(file))?;
                    buf.clear();
                }
            }
            Event::End => {
                let (file, mut w) = current.take().expect("begun");
                w.write_all(&buf)
                    .and_then(|_| w.flush())
                    .map_err(io_at(&file))?;
                buf.clear();
                written.push(file);
            }
        }
        Ok(())
    })?;
    load.push_str("COMMIT;\n");
    let mut schema = String::from(
        "-- The schema of the profile's migrations, in order.\n\\set ON_ERROR_STOP on\n",
    );
    for m in &profile.migrations {
        schema.push_str(&format!(
            "\n-- migration {}\n{}\n",
            m.name,
            m.sql.trim_end()
        ));
    }
    let schema_path = dir.join("schema.sql");
    open_partial(&schema_path)?
        .write_all(schema.as_bytes())
        .map_err(io_at(&schema_path))?;
    written.push(schema_path);
    let load_path = dir.join("load.sql");
    open_partial(&load_path)?
        .write_all(load.as_bytes())
        .map_err(io_at(&load_path))?;
    written.push(load_path);
    for (f, _, _, file) in &partials {
        f.sync_all().map_err(io_at(file))?;
    }
    for (f, partial, guard, file) in partials {
        // readable as any file the user writes (the data is generated, not personal)
        {
            use std::os::unix::fs::PermissionsExt as _;
            f.set_permissions(fs::Permissions::from_mode(0o644))
                .map_err(io_at(&file))?;
        }
        fs::rename(&partial, &file).map_err(io_at(&file))?;
        drop(guard);
    }
    Ok((written, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(v: Option<&str>) -> String {
        let mut b = Vec::new();
        put_csv_field(&mut b, v);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn null_and_empty_differ() {
        assert_eq!(field(None), "");
        assert_eq!(field(Some("")), "\"\"");
        assert_eq!(field(Some("a,b")), "\"a,b\"");
        assert_eq!(field(Some("say \"hi\"\n")), "\"say \"\"hi\"\"\n\"");
        assert_eq!(field(Some("\\.")), "\"\\.\"");
        assert_eq!(field(Some("ș ț")), "ș ț");
    }

    #[test]
    fn output_parses_as_rfc4180() {
        let rows = vec![
            vec![Some("1".to_string()), Some("a \"q\", b\nc".to_string())],
            vec![Some("2".to_string()), None],
        ];
        let mut out = Vec::new();
        write_table_csv(&mut out, &["id".into(), "t".into()], &rows).unwrap();
        let mut r = csv::Reader::from_reader(&out[..]);
        let recs: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(&recs[0][1], "a \"q\", b\nc");
        assert_eq!(&recs[1][1], "");
    }
}
