//! Seed output as files: one RFC 4180 CSV per table (header row) plus `load.sql`, which
//! `psql -f` runs to load them with `\copy` in foreign-key order, and `schema.sql` with
//! the profile's migrations, so a seed committed under `seeds/` loads without dataforge.
//!
//! The CSV is written by hand rather than with the `csv` crate because PostgreSQL's CSV
//! format tells NULL from the empty string by quoting: NULL is an unquoted empty field,
//! the empty string is `""`. The `csv` crate cannot be told to quote one empty field and
//! not another.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::gen::{format_date, Dataset, SeedOptions};
use super::profile::Profile;
use crate::pg::quote_ident;

/// Appends one CSV field: NULL unquoted and empty; quoted when it holds a comma, quote,
/// CR or LF, is empty, or is `\.` (COPY's end-of-data marker).
pub fn put_csv_field(out: &mut Vec<u8>, value: Option<&str>) {
    let Some(v) = value else { return };
    let needs_quotes =
        v.is_empty() || v == "\\." || v.bytes().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'));
    if !needs_quotes {
        out.extend_from_slice(v.as_bytes());
        return;
    }
    out.push(b'"');
    for b in v.bytes() {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Writes one table as CSV with a header row; CRLF-free, `\n` line ends (RFC 4180 allows
/// both for readers; PostgreSQL and every CSV reader accept it).
pub fn write_table_csv<W: Write>(
    w: &mut W,
    columns: &[String],
    rows: &[Vec<Option<String>>],
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1 << 16);
    for (k, c) in columns.iter().enumerate() {
        if k > 0 {
            buf.push(b',');
        }
        put_csv_field(&mut buf, Some(c));
    }
    buf.push(b'\n');
    for row in rows {
        for (k, v) in row.iter().enumerate() {
            if k > 0 {
                buf.push(b',');
            }
            put_csv_field(&mut buf, v.as_deref());
        }
        buf.push(b'\n');
        if buf.len() > (1 << 16) {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)
}

/// Writes `<table>.csv` for every table, `schema.sql` and `load.sql` into `dir`.
/// Returns the files written, in load order.
pub fn write_dir(
    dir: &Path,
    profile: &Profile,
    opts: &SeedOptions,
    data: &Dataset,
) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut load = String::new();
    load.push_str(&format!(
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
    ));
    for t in &data.tables {
        let file = dir.join(format!("{}.csv", t.name));
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&file)?);
        write_table_csv(&mut w, &t.columns, &t.rows)?;
        w.flush()?;
        let cols: Vec<String> = t.columns.iter().map(|c| quote_ident(c)).collect();
        load.push_str(&format!(
            "\\copy {} ({}) FROM '{}.csv' WITH (FORMAT csv, HEADER true)\n",
            quote_ident(&t.name),
            cols.join(", "),
            t.name.replace('\'', "''")
        ));
        written.push(file);
    }
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
    fs::write(&schema_path, schema)?;
    written.push(schema_path);
    let load_path = dir.join("load.sql");
    fs::write(&load_path, load)?;
    written.push(load_path);
    Ok(written)
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
