//! Helpers shared by the integration tests: running the real binary and reporting
//! everything about a run that went differently than expected.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// The anonymization key the tests use (`DATAFORGE_KEY`); not a secret.
pub const KEY: &str = "a test key, 16+ characters";

/// The one value `sql` returns, on a new connection to `url`.
pub async fn one<T: for<'a> tokio_postgres::types::FromSql<'a>>(url: &str, sql: &str) -> T {
    let c = dataforge::pg::connect(url).await.unwrap();
    c.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get(0)
}

/// Runs `sql` (one or more statements) on a new connection to `url`.
pub async fn exec(url: &str, sql: &str) {
    let c = dataforge::pg::connect(url).await.unwrap();
    c.batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
}

/// The count (or other bigint) `sql` returns on `c`, naming the query on failure.
pub async fn count(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get(0)
}

/// The built `dataforge` binary, run with a clean environment for the variables it reads.
pub fn dataforge(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dataforge"));
    c.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("DATAFORGE_PG_BIN");
    c
}

/// Runs `cmd` and returns its output; panics with the command line, exit status, stdout
/// and stderr when the exit code is not `expected`.
pub fn run(cmd: &mut Command, expected: i32) -> Output {
    let out = cmd.output().expect("the command runs");
    if out.status.code() != Some(expected) {
        panic!(
            "{cmd:?}\nexpected exit {expected}, got {:?}\n--- stdout\n{}\n--- stderr\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A temporary folder the `postgres` OS account can enter too (the server runs as that
/// account when the tests run as root).
pub fn shared_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let d = tempfile::Builder::new()
        .prefix("dataforge-it-")
        .tempdir()
        .expect("tempdir");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    d
}

/// Writes `DIR/NAME/migration.sql`.
pub fn write_migration(dir: &Path, name: &str, sql: &str) {
    std::fs::create_dir_all(dir.join(name)).unwrap();
    std::fs::write(dir.join(name).join("migration.sql"), sql).unwrap();
}

/// Skips the calling test with a line saying why, on a developer's machine. In CI
/// (`CI` set) nothing may be skipped: the test fails with the same words, since a check
/// that did not run is not a check that passed.
pub fn skip(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{why}, and CI must run this test");
    }
    eprintln!("skipped: {why}");
}

/// A file of the shared pagila dataset (real pg_dump output), or `None` after [`skip`]
/// when the dataset is not on this machine.
pub fn pagila(file: &str) -> Option<std::path::PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/datasets/pagila")
        .join(file);
    if p.is_file() {
        Some(p)
    } else {
        skip(&format!(
            "{} is absent (the shared pagila dataset is not on this machine)",
            p.display()
        ));
        None
    }
}

/// Loads an SQL file into the database at `url` with psql, stopping at the first error
/// (`-v ON_ERROR_STOP=1`): how a user restores a plain dump. Panics with psql's stderr.
pub fn psql_strict(url: &str, file: &Path) {
    let psql = dataforge::backup::find_tool("psql").expect("psql is installed");
    let out = Command::new(psql)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f"])
        .arg(file)
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql -f {} failed:\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The adversarial source schema of `fixtures/adversarial.sql` (issue 14).
pub fn adversarial_sql() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/adversarial.sql")
}

/// Two list-partitioned tables, `account` and `invoice`, each in two partitions, with a
/// foreign key between the partitioned tables: 100 accounts, 990 invoices.
pub const PARTITIONED_SQL: &str = "
CREATE TABLE account (id int, region int, name text, PRIMARY KEY (id, region))
  PARTITION BY LIST (region);
CREATE TABLE account_1 PARTITION OF account FOR VALUES IN (1);
CREATE TABLE account_2 PARTITION OF account FOR VALUES IN (2);
CREATE TABLE invoice (id int, region int, account int, total int,
                      PRIMARY KEY (id, region),
                      FOREIGN KEY (account, region) REFERENCES account (id, region))
  PARTITION BY LIST (region);
CREATE TABLE invoice_1 PARTITION OF invoice FOR VALUES IN (1);
CREATE TABLE invoice_2 PARTITION OF invoice FOR VALUES IN (2);
INSERT INTO account SELECT i, 1 + i % 2, 'a' || i FROM generate_series(1, 100) i;
INSERT INTO invoice SELECT i, 1 + (i % 100) % 2, i % 100, i FROM generate_series(1, 1000) i
  WHERE i % 100 > 0;
";

/// An anonymize config keeping every column of [`PARTITIONED_SQL`]'s partitions, which
/// hold the rows.
pub fn partitioned_config() -> String {
    let mut config = String::new();
    for p in ["1", "2"] {
        config += &format!(
            "[tables.account_{p}]\ncolumns.id = \"keep\"\ncolumns.region = \"keep\"\ncolumns.name = \"keep\"\n\n\
             [tables.invoice_{p}]\ncolumns.id = \"keep\"\ncolumns.region = \"keep\"\ncolumns.account = \"keep\"\ncolumns.total = \"keep\"\n\n"
        );
    }
    config
}

/// Each line of a `--json` stream (one event per line), parsed.
pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}
