//! Migration runner benchmarks against a real server. Run with `cargo bench --bench
//! migrate`; it prints a Markdown table for the README.
//!
//! - `migrate lint` throughput over real SQL (pagila's pg_dump schema, repeated to ~10 MB,
//!   plus the demo-firm migrations and every rule's examples);
//! - `dataforge migrate status` with 1,000 migrations on disk and in the history;
//! - `dataforge migrate up` of 500 small migrations vs `psql -f` running the same files in
//!   order, each into a fresh database on the same server.
//!
//! - `dataforge migrate lint` against squawk (installed from its PyPI wheel into
//!   `target/squawk` when not on PATH; the comparison is skipped, saying why, when it
//!   cannot be had), whole processes on the same inputs in the same run: 2,000 small
//!   migration files, and one 1 MB file of statements of every kind (pg_dump DDL, DO
//!   blocks, long INSERT lists, risky ALTERs). Throughput and peak memory (wait4).
//!
//! The server is TEST_DATABASE_URL when set, else a throwaway cluster.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use dataforge::fixtures::empty_database;

#[path = "support.rs"]
mod support;
use dataforge::migrate::{self, lint};
use support::{best_of, measure_allowing, median, Measured};

/// A command that must exit 0, or 1 (lint's "something needs attention").
fn run_ok(cmd: &mut Command) -> Duration {
    support::run_ok(cmd, &[0, 1])
}

fn corpus() -> (String, &'static str) {
    let mut base = String::new();
    let pagila = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/datasets/pagila/pagila-schema.sql"
    );
    let source = match std::fs::read_to_string(pagila) {
        Ok(s) => {
            base.push_str(&s);
            "pagila schema (pg_dump) + demo-firm migrations + rule examples"
        }
        Err(_) => "demo-firm migrations + rule examples (pagila absent)",
    };
    for dir in std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/profiles/demo-firm/migrations"
    ))
    .unwrap()
    {
        let p = dir.unwrap().path().join("migration.sql");
        if let Ok(s) = std::fs::read_to_string(p) {
            base.push_str(&s);
            base.push('\n');
        }
    }
    for r in lint::rules::ALL {
        base.push_str(r.bad);
        base.push('\n');
    }
    let mut sql = String::new();
    while sql.len() < 10_000_000 {
        sql.push_str(&base);
        sql.push('\n');
    }
    (sql, source)
}

fn write_migrations(dir: &Path, n: usize) {
    for i in 0..n {
        let d = dir.join(format!("2024010100{i:04}_m{i}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("migration.sql"),
            format!("CREATE TABLE t{i} (id int PRIMARY KEY, v text);\nINSERT INTO t{i} VALUES (1, 'x');\n"),
        )
        .unwrap();
    }
}

/// squawk, from PATH or installed from its PyPI wheel into `target/squawk`; `Err` says why
/// it cannot be had.
fn squawk() -> Result<std::path::PathBuf, String> {
    if let Ok(out) = Command::new("squawk").arg("--version").output() {
        if out.status.success() {
            return Ok("squawk".into());
        }
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/squawk");
    let bin = target.join("bin/squawk");
    if !bin.exists() {
        let out = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(&target)
            .arg("squawk-cli")
            .output()
            .map_err(|e| format!("python3 cannot be run ({e})"))?;
        if !out.status.success() {
            return Err(format!(
                "pip install squawk-cli failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(bin)
}

/// One risky migration of every kind, numbered `i`: ALTERs that lint flags, a DO block
/// with DDL inside, a new table.
fn risky(i: usize) -> String {
    format!(
        "ALTER TABLE users ADD COLUMN note_{i} text;\n\
         CREATE INDEX users_note_{i} ON users (note_{i});\n\
         ALTER TABLE orders ADD CONSTRAINT orders_user_{i} FOREIGN KEY (user_id) REFERENCES users (id);\n\
         ALTER TABLE users ALTER COLUMN note_{i} SET NOT NULL;\n\
         DO $$\nBEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mood_{i}') THEN\n    \
         CREATE TYPE mood_{i} AS ENUM ('happy', 'sad');\n  END IF;\n  \
         EXECUTE 'CREATE INDEX users_c{i} ON users (note_{i})';\nEND $$;\n\
         CREATE TABLE t{i} (id int PRIMARY KEY, v text);\n"
    )
}

/// The lint comparison's inputs: 2,000 small files, and one file of about `size` bytes.
fn lint_inputs(dir: &Path, size: usize) -> (Vec<std::path::PathBuf>, std::path::PathBuf) {
    let small: Vec<_> = (0..2000)
        .map(|i| {
            let p = dir.join(format!("small/{i:04}.sql"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, risky(i)).unwrap();
            p
        })
        .collect();
    let pagila = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/datasets/pagila/pagila-schema.sql"
    ))
    .unwrap_or_default();
    let insert = format!(
        "INSERT INTO events (id, name, payload) VALUES {};\n",
        (0..2000)
            .map(|i| format!("({i}, 'name {i}', '{{\"k\": {i}}}')"))
            .collect::<Vec<_>>()
            .join(",\n")
    );
    let mut big = String::new();
    let mut i = 0;
    while big.len() < size {
        big.push_str(&pagila);
        big.push_str(&insert);
        for _ in 0..50 {
            big.push_str(&risky(i));
            i += 1;
        }
    }
    let path = dir.join("large.sql");
    std::fs::write(&path, big).unwrap();
    (small, path)
}

/// `dataforge migrate lint` and squawk over the same files, best of 3 each.
fn lint_vs_squawk(bin: &str, squawk: &Path, files: &[std::path::PathBuf]) -> (Measured, Measured) {
    let ours = best_of(3, || {
        measure_allowing(
            Command::new(bin)
                .args(["migrate", "lint", "--for", "psql"])
                .args(files),
            &[0, 1],
        )
    });
    let theirs = best_of(3, || {
        measure_allowing(Command::new(squawk).args(files), &[0, 1])
    });
    (ours, theirs)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bin = env!("CARGO_BIN_EXE_dataforge");

    // lint against squawk, whole processes on the same files; first, while this process
    // holds little (see support::own_peak_mb)
    let tmp = tempfile::tempdir().unwrap();
    let compared = match squawk() {
        Ok(sq) => {
            let (small, large) = lint_inputs(tmp.path(), 1_000_000);
            let bytes = |fs: &[std::path::PathBuf]| -> u64 {
                fs.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum()
            };
            let version = Command::new(&sq)
                .arg("--version")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            let small_r = lint_vs_squawk(bin, &sq, &small);
            let large_r = lint_vs_squawk(bin, &sq, std::slice::from_ref(&large));
            println!(
                "(this bench's own peak while measuring: {:.1} MB)",
                support::own_peak_mb()
            );
            Some((version, bytes(&small), small_r, bytes(&[large]), large_r))
        }
        Err(why) => {
            println!("squawk comparison skipped: {why}");
            None
        }
    };

    // lint throughput
    let (sql, source) = corpus();
    let mut times = Vec::new();
    let mut findings = 0;
    for _ in 0..5 {
        let t = Instant::now();
        findings = lint::lint_sql(&sql).expect("corpus parses").len();
        times.push(t.elapsed());
    }
    let lint_t = median(times);
    let mbps = sql.len() as f64 / 1e6 / lint_t.as_secs_f64();

    // status over 1,000 migrations on disk and in history
    let dir1000 = tmp.path().join("m1000");
    write_migrations(&dir1000, 1000);
    let db = empty_database().await.unwrap();
    let ms = migrate::load_dir(&dir1000).unwrap();
    let names: Vec<String> = ms.iter().map(|m| m.name.clone()).collect();
    let mut c = db.connect().await.unwrap();
    migrate::resolve(
        &mut c,
        &ms,
        &names,
        migrate::Resolution::Applied,
        &Default::default(),
    )
    .await
    .unwrap();
    let mut times = Vec::new();
    for _ in 0..7 {
        times.push(run_ok(
            Command::new(bin)
                .args(["migrate", "status", "--dir"])
                .arg(&dir1000)
                .env("DATABASE_URL", db.url()),
        ));
    }
    let status_t = median(times);

    // 500 small migrations: dataforge up vs psql -f, each into a fresh database
    let dir500 = tmp.path().join("m500");
    write_migrations(&dir500, 500);
    let files: Vec<_> = migrate::load_dir(&dir500)
        .unwrap()
        .iter()
        .map(|m| m.file())
        .collect();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..3 {
        let a = empty_database().await.unwrap();
        ours.push(run_ok(
            Command::new(bin)
                .args(["migrate", "up", "--dir"])
                .arg(&dir500)
                .env("DATABASE_URL", a.url()),
        ));
        let b = empty_database().await.unwrap();
        let mut psql = Command::new("psql");
        psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", b.url()]);
        for f in &files {
            psql.arg("-f").arg(f);
        }
        theirs.push(run_ok(&mut psql));
    }
    let (up_t, psql_t) = (median(ours), median(theirs));

    println!("| benchmark | result |");
    println!("|---|---|");
    println!(
        "| `migrate lint`, {:.1} MB of SQL ({source}), {findings} findings | {:.2} s = **{mbps:.1} MB/s** |",
        sql.len() as f64 / 1e6,
        lint_t.as_secs_f64()
    );
    println!(
        "| `dataforge migrate status`, 1,000 migrations on disk and in history (whole process) | **{:.0} ms** |",
        status_t.as_secs_f64() * 1000.0
    );
    println!(
        "| `dataforge migrate up`, 500 small migrations vs `psql -f` the same files | {:.2} s vs {:.2} s = **{:.2}x** |",
        up_t.as_secs_f64(),
        psql_t.as_secs_f64(),
        up_t.as_secs_f64() / psql_t.as_secs_f64()
    );
    if let Some((version, small_bytes, (o1, t1), large_bytes, (o2, t2))) = compared {
        for (what, bytes, o, t) in [
            ("2,000 small migration files", small_bytes, o1, t1),
            ("one file of every kind of statement", large_bytes, o2, t2),
        ] {
            let mb = bytes as f64 / 1e6;
            println!(
                "| lint vs {version}, {what} ({mb:.2} MB), best of 3 | dataforge {:.2} s ({:.1} MB/s), peak {:.1} MB; squawk {:.2} s ({:.1} MB/s), peak {:.1} MB: **{:.1}x the throughput, {:.2}x the memory** |",
                o.wall,
                mb / o.wall,
                o.peak_mb,
                t.wall,
                mb / t.wall,
                t.peak_mb,
                t.wall / o.wall,
                o.peak_mb / t.peak_mb
            );
        }
    }
}
