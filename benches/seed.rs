//! Seed benchmarks, end to end against a real server. Run with
//! `cargo bench --bench seed` (add `-- --scale N` for another size); it prints a Markdown
//! table for the README.
//!
//! - generation to CSV at --scale N (default 10000), rows per second on one thread;
//! - `dataforge seed` loading it into an empty schema vs `psql -f load.sql` loading the
//!   same CSV files into the same empty schema;
//! - re-running the unchanged seed (and checking that no row was rewritten);
//! - cloning a demo-firm fixture database for a test (measured first, on a quiet server).
//!
//! The server is TEST_DATABASE_URL when set, else a throwaway cluster (fsync off), the
//! same one for both sides of each comparison.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use dataforge::fixtures::{empty_database, Fixture};
use dataforge::seed::{out, profile, SeedOptions};

#[path = "support.rs"]
mod support;
use support::median;

fn run_ok(cmd: &mut Command) {
    support::run_ok(cmd, &[0]);
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

async fn xmin_digest(url: &str) -> String {
    let c = dataforge::pg::connect(url).await.unwrap();
    c.query_one(
        "SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (\
         SELECT xmin::text || id::text x FROM users UNION ALL SELECT xmin::text || id::text FROM clients \
         UNION ALL SELECT xmin::text || id::text FROM cases UNION ALL SELECT xmin::text || id::text FROM documents \
         UNION ALL SELECT xmin::text || id::text FROM tasks) s",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scale: u32 = args
        .iter()
        .position(|a| a == "--scale")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let bin = env!("CARGO_BIN_EXE_dataforge");
    let profile = profile::resolve("demo-firm").unwrap();
    let opts = SeedOptions {
        seed: profile.default_seed,
        scale,
        anchor: profile.anchor,
    };
    let work = tempfile::tempdir().unwrap();

    // 0. fixture clones on a quiet server, as a test suite sees it (the first call builds
    //    the template)
    drop(Fixture::new("demo-firm").create().await.unwrap());
    let mut clone_times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let db = Fixture::new("demo-firm").create().await.unwrap();
        clone_times.push(t.elapsed());
        drop(db);
    }
    let clone = median(clone_times);

    // 1. generation to CSV, in this thread only: into RAM (/dev/shm, where there is one),
    //    which measures generation, and into the temp folder on disk, which adds the disk
    let ram = Path::new("/dev/shm")
        .is_dir()
        .then(|| tempfile::tempdir_in("/dev/shm").ok())
        .flatten();
    let mut gen_runs = Vec::new();
    let mut rows = 0;
    let targets: Vec<(&str, std::path::PathBuf)> = ram
        .as_ref()
        .map(|r| ("RAM (/dev/shm)", r.path().join("csv")))
        .into_iter()
        .chain([("disk (temp folder)", work.path().join("csv"))])
        .collect();
    for (label, dir) in &targets {
        let mut times = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            let (_, n) = out::write_dir(dir, &profile, &opts).unwrap();
            times.push(t.elapsed());
            rows = n;
        }
        let best = *times.iter().min().expect("runs");
        gen_runs.push((*label, median(times), best));
    }

    // 2. load into an empty schema: psql -f load.sql vs dataforge seed
    let csv_dir = work.path().join("csv");
    let mut psql_times = Vec::new();
    let mut df_times = Vec::new();
    let mut rerun_times = Vec::new();
    let mut untouched = true;
    for _ in 0..3 {
        let a = empty_database().await.unwrap();
        run_ok(
            Command::new("psql")
                .args(["-X", "-q", "-d", a.url(), "-f", "schema.sql"])
                .current_dir(&csv_dir),
        );
        let t = Instant::now();
        run_ok(
            Command::new("psql")
                .args(["-X", "-q", "-d", a.url(), "-f", "load.sql"])
                .current_dir(&csv_dir),
        );
        psql_times.push(t.elapsed());
        drop(a);

        let b = empty_database().await.unwrap();
        let migrations =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo-firm/migrations");
        run_ok(
            Command::new(bin)
                .args(["migrate", "up", "--database-url", b.url(), "--dir"])
                .arg(&migrations),
        );
        let scale_s = scale.to_string();
        let seed_cmd = [
            "seed",
            "demo-firm",
            "--scale",
            &scale_s,
            "--database-url",
            b.url(),
        ];
        let t = Instant::now();
        run_ok(
            Command::new(bin)
                .args(seed_cmd)
                .current_dir(env!("CARGO_MANIFEST_DIR")),
        );
        df_times.push(t.elapsed());

        // 3. the same seed again: nothing may be rewritten
        let before = xmin_digest(b.url()).await;
        let t = Instant::now();
        let out = Command::new(bin)
            .args(seed_cmd)
            .arg("--json")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        rerun_times.push(t.elapsed());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for (_, c) in v["tables"].as_object().unwrap() {
            untouched &= c["inserted"] == 0 && c["updated"] == 0;
        }
        untouched &= xmin_digest(b.url()).await == before;
    }
    let (psql, df, rerun) = (median(psql_times), median(df_times), median(rerun_times));

    println!("| benchmark (--scale {scale}, {rows} rows) | result |");
    println!("| --- | --- |");
    for (label, med, best) in &gen_runs {
        println!(
            "| generate + write CSV into {label}, one thread, median of 7 | {} ({:.0} rows/s; best {:.0} rows/s) |",
            secs(*med),
            rows as f64 / med.as_secs_f64(),
            rows as f64 / best.as_secs_f64()
        );
    }
    println!(
        "| `psql -f load.sql` into an empty schema | {} |",
        secs(psql)
    );
    println!(
        "| `dataforge seed` into an empty schema (generation included) | {} ({:.2}x psql) |",
        secs(df),
        df.as_secs_f64() / psql.as_secs_f64()
    );
    println!(
        "| `dataforge seed` again, unchanged | {} ({:.2}x first load; rows rewritten: {}) |",
        secs(rerun),
        rerun.as_secs_f64() / df.as_secs_f64(),
        if untouched { "none" } else { "SOME" }
    );
    println!(
        "| fixture clone (demo-firm, scale 1), median of 20 | {:.0} ms |",
        clone.as_secs_f64() * 1000.0
    );
}
