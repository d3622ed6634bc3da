//! Migration runner benchmarks against a real server. Run with `cargo bench --bench
//! migrate`; it prints a Markdown table for the README.
//!
//! - `migrate lint` throughput over real SQL (pagila's pg_dump schema, repeated to ~10 MB,
//!   plus the demo-firm migrations and every rule's examples);
//! - `dataforge migrate status` with 1,000 migrations on disk and in the history;
//! - `dataforge migrate up` of 500 small migrations vs `psql -f` running the same files in
//!   order, each into a fresh database on the same server.
//!
//! The server is TEST_DATABASE_URL when set, else a throwaway cluster.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use dataforge::fixtures::empty_database;
use dataforge::migrate::{self, lint};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn run_ok(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let out = cmd.output().expect("command runs");
    let took = t.elapsed();
    assert!(
        out.status.success() || out.status.code() == Some(1),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bin = env!("CARGO_BIN_EXE_dataforge");

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
    let tmp = tempfile::tempdir().unwrap();
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
}
