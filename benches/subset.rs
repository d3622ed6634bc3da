//! A 10% subset against the full anonymized copy of the same database:
//! `cargo bench --bench subset`. The database is the shared people table
//! (`../shared/bench/people.sql`, 2M rows; BENCH_ROWS sets another count) and a child
//! table made here, `orders`, five rows per person (10M), with its foreign key and the
//! index on it. Prints a Markdown table for the README.
//!
//! Both runs are live → live into an empty database (`--jobs 2`, `--no-verify`, so the
//! copy is measured alone), each a whole process timed with its wall and CPU time and
//! peak memory from wait4. The subset keeps 10% of people by the keyed PRF of their
//! primary key, their orders (`children = "all"`), and every person those refer to.

use std::process::Command;

use dataforge::fixtures::empty_database;

#[path = "support.rs"]
mod support;
use support::{best_of, measure, Measured, PEOPLE_CONFIG};

const ORDERS: &str = r#"
[tables.orders]
columns.id = "keep"
columns.person = "keep"
columns.amount = "keep"
columns.placed_at = "keep"
"#;

const SUBSET: &str = r#"
[subset]
targets = [{ table = "public.people", percent = 10 }]
children = "all"
"#;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bin = env!("CARGO_BIN_EXE_dataforge");
    let rows: u64 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let people = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/bench/people.sql");
    let db = empty_database().await.unwrap();
    let psql = dataforge::backup::find_tool("psql").unwrap();
    let ok = Command::new(&psql)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-v"])
        .arg(format!("rows={rows}"))
        .args(["-d", db.url(), "-f", people])
        .status()
        .unwrap();
    assert!(ok.success(), "loading people.sql");
    let c = dataforge::pg::connect(db.url()).await.unwrap();
    c.batch_execute(&format!(
        "CREATE TABLE orders (id bigint PRIMARY KEY, person uuid NOT NULL, amount numeric(10,2),
                              placed_at timestamptz NOT NULL);
         INSERT INTO orders
         SELECT g, md5((1 + g % {rows})::text)::uuid, (g % 100000) / 100.0,
                timestamptz '2020-01-01' + g * interval '1 second'
         FROM generate_series(1, {}) g;
         ALTER TABLE orders ADD FOREIGN KEY (person) REFERENCES people;
         CREATE INDEX ON orders (person);",
        rows * 5
    ))
    .await
    .unwrap();
    c.batch_execute("VACUUM ANALYZE").await.unwrap();
    let orders: i64 = c
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    drop(c);

    let dir = tempfile::tempdir().unwrap();
    let config = format!("{PEOPLE_CONFIG}{ORDERS}");
    std::fs::write(dir.path().join("full.toml"), &config).unwrap();
    std::fs::write(dir.path().join("subset.toml"), format!("{config}{SUBSET}")).unwrap();
    let copy = |config: &str| {
        best_of(2, || {
            let target = tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(empty_database())
            })
            .unwrap();
            let m = measure(
                Command::new(bin)
                    .current_dir(dir.path())
                    .env("DATAFORGE_KEY", "benchmark key, not a secret")
                    .env("CI", "true")
                    .args([
                        "anonymize",
                        "--no-verify",
                        "--jobs",
                        "2",
                        "--config",
                        config,
                    ])
                    .args(["--from", db.url(), "--to", target.url()]),
            );
            drop(target);
            m
        })
    };
    let closure = best_of(2, || {
        measure(
            Command::new(bin)
                .current_dir(dir.path())
                .env("DATAFORGE_KEY", "benchmark key, not a secret")
                .env("CI", "true")
                .args([
                    "anonymize",
                    "--config",
                    "subset.toml",
                    "--dry-run",
                    "--json",
                ])
                .args(["--from", db.url()]),
        )
    });
    let full = copy("full.toml");
    let subset = copy("subset.toml");
    let total = rows as i64 + orders;
    let row = |what: &str, m: &Measured| {
        println!(
            "| {what} | {:.2} s | {:.2} s | {:.0} MB |",
            m.wall, m.cpu, m.peak_mb
        );
    };
    println!("\n{rows} people and {orders} orders ({total} rows), live → live, `--jobs 2`:\n");
    println!("| run | wall | CPU | peak memory |");
    println!("|---|---|---|---|");
    row("full anonymized copy", &full);
    row("10% subset (`children = \"all\"`)", &subset);
    row("the subset's closure alone (`--dry-run`)", &closure);
    println!(
        "\nsubset / full: {:.2}x the time (target at most 0.3x)",
        subset.wall / full.wall
    );
}
