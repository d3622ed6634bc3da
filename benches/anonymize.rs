//! Anonymize and verify on the shared benchmark table (`../shared/bench/people.sql`,
//! 2M rows, its 7 personal columns anonymized): `cargo bench --bench anonymize`.
//! BENCH_ROWS sets another row count. Prints a Markdown table for the README.
//!
//! Each run is a whole process, timed with its CPU time (user + system) and peak memory
//! from wait4: anonymize (with `--no-verify`, so it is measured alone) dump file → dump
//! file with one worker (rows/s per core of CPU) and two (the speed-up); live database →
//! dump file against `pg_dump -a -t people`; live database → live database against
//! `pg_dump -Fc -t people | pg_restore` into an empty database (both build the primary
//! key and the unique index) and against a raw psql COPY pipe; then `dataforge verify` of
//! each copy against its source, to be read against the anonymize run that made it.

use std::process::Command;
use std::time::Instant;

use dataforge::fixtures::empty_database;

#[path = "support.rs"]
mod support;
use support::{best_of, measure};

use support::PEOPLE_CONFIG as CONFIG;

/// The floor the determinism contract sets (mapping 2): every distinct value costs a
/// keyed blake3 hash and a xoshiro256++ stream seeded from it, before any parsing,
/// formatting or I/O.
/// Three of the people table's personal columns (email, phone, street) are distinct in
/// every row, so this is the least CPU a row can take. Returns nanoseconds per row.
fn prf_floor(rows: u64) -> f64 {
    use rand::Rng as _;
    let key = dataforge::anonymize::key::Key::from_secret(b"benchmark key, not a secret");
    let domains = [
        key.domain("email"),
        key.domain("phone"),
        key.domain("street"),
    ];
    let mut input = String::new();
    let mut sink = 0u64;
    let t = Instant::now();
    for g in 1..=rows {
        for (d, shape) in domains
            .iter()
            .zip(["user{}@example.org", "+40-7{}", "{} Strada Lunga"])
        {
            input.clear();
            input.push_str(&shape.replace("{}", itoa::Buffer::new().format(g)));
            sink ^= d.rng(input.as_bytes()).next_u64();
        }
    }
    let ns = t.elapsed().as_secs_f64() * 1e9 / rows as f64;
    assert_ne!(sink, 0);
    ns
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bin = env!("CARGO_BIN_EXE_dataforge");
    let rows: u64 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let floor = prf_floor(rows);
    eprintln!("keyed hash + stream floor: {floor:.0} ns per row");
    let people = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/bench/people.sql");
    let db = empty_database().await.unwrap();
    let psql = dataforge::backup::find_tool("psql").unwrap();
    let pg_dump = dataforge::backup::find_tool("pg_dump").unwrap();
    let ok = Command::new(&psql)
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            &format!("rows={rows}"),
            "-d",
            db.url(),
            "-f",
            people,
        ])
        .status()
        .unwrap();
    assert!(ok.success(), "loading people.sql");
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("people.sql");
    let ok = Command::new(&pg_dump)
        .args(["--data-only", "-t", "people", "-f"])
        .arg(&dump)
        .arg(db.url())
        .status()
        .unwrap();
    assert!(ok.success(), "pg_dump");
    std::fs::write(dir.path().join("anonymize.toml"), CONFIG).unwrap();
    let size = std::fs::metadata(&dump).unwrap().len();
    let anonymize = |args: &[&str]| {
        let mut c = Command::new(bin);
        c.current_dir(dir.path())
            .env("DATAFORGE_KEY", "benchmark key, not a secret")
            .env("CI", "true")
            .arg("anonymize")
            .arg("--no-verify")
            .args(args);
        c
    };
    let verify = |from: &str, to: &str| {
        best_of(3, || {
            let mut c = Command::new(bin);
            c.current_dir(dir.path())
                .env("DATAFORGE_KEY", "benchmark key, not a secret")
                .env("CI", "true")
                .args(["verify", "--jobs", "2", "--from", from, "--to", to]);
            measure(&mut c)
        })
    };

    let file = |jobs: &str| {
        best_of(3, || {
            measure(&mut anonymize(&[
                "--from",
                "people.sql",
                "--to",
                "out.sql",
                "--jobs",
                jobs,
            ]))
        })
    };
    let one = file("1");
    let two = file("2");
    let verify_file = verify("people.sql", "out.sql");

    // live → file against pg_dump writing the same rows, unanonymized
    let pg_dump_a = best_of(3, || {
        measure(
            Command::new(&pg_dump)
                .args(["-a", "-t", "people", "-f"])
                .arg(dir.path().join("plain.sql"))
                .arg(db.url()),
        )
    });
    let live_file = best_of(3, || {
        measure(&mut anonymize(&[
            "--from",
            db.url(),
            "--to",
            "live.sql",
            "--jobs",
            "2",
        ]))
    });
    let verify_live_file = verify(db.url(), "live.sql");

    // live → live against pg_dump -Fc | pg_restore into an empty database: the schema,
    // the rows, the primary key and the unique index on both sides
    let pg_restore = dataforge::backup::find_tool("pg_restore").unwrap();
    let restore = best_of(3, || {
        let fresh = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(empty_database())
        })
        .unwrap();
        let m = measure(Command::new("bash").arg("-c").arg(format!(
            "set -o pipefail; '{d}' -Fc -t people '{src}' | '{r}' --no-owner -d '{dst}'",
            d = pg_dump.display(),
            r = pg_restore.display(),
            src = db.url(),
            dst = fresh.url()
        )));
        drop(fresh);
        m
    });

    // live → live against a raw COPY pipe between the same two servers' databases
    let target = empty_database().await.unwrap();
    let t = dataforge::pg::connect(target.url()).await.unwrap();
    let pipe = best_of(3, || {
        let ok = Command::new(&psql)
            .args(["-X", "-q", "-d", target.url(), "-c"])
            .arg(format!(
                "DROP TABLE IF EXISTS people_copy; CREATE TABLE people_copy ({PEOPLE_COLUMNS})"
            ))
            .status()
            .unwrap();
        assert!(ok.success());
        measure(Command::new("bash").arg("-c").arg(format!(
            "set -o pipefail; '{p}' -X -q -d '{src}' -c 'COPY people TO STDOUT' | \
             '{p}' -X -q -d '{dst}' -c 'COPY people_copy FROM STDIN'",
            p = psql.display(),
            src = db.url(),
            dst = target.url()
        )))
    });
    t.batch_execute("DROP TABLE IF EXISTS people_copy")
        .await
        .unwrap();
    // a session on the target would (rightly) stop the swap
    drop(t);
    let live = best_of(3, || {
        measure(&mut anonymize(&[
            "--from",
            db.url(),
            "--to",
            target.url(),
            "--replace",
            "--jobs",
            "2",
        ]))
    });
    let verify_live = verify(db.url(), target.url());
    // no generated phone is a real one: the copy's numbers against the source's (issue 14)
    let (real, copied) = (
        phone_digits(db.url()).await,
        phone_digits(target.url()).await,
    );
    let real_phones = copied.intersection(&real).count();

    // the repository's own config on its own demo at a large scale, verify on: the copy
    // must pass every check (issue 14; scale 1 is too small for the distribution checks)
    let demo = dataforge::fixtures::Fixture::new("demo-firm")
        .scale(2000)
        .create()
        .await
        .unwrap();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/anonymize.toml");
    let demo_out = dir.path().join("demo.sql");
    let mut c = Command::new(bin);
    c.current_dir(dir.path())
        .env("DATAFORGE_KEY", "benchmark key, not a secret")
        .env("CI", "true")
        .args([
            "anonymize",
            "--config",
            config,
            "--from",
            demo.url(),
            "--to",
        ])
        .arg(&demo_out);
    let demo_run = measure(&mut c);
    let demo_rows: i64 = dataforge::pg::connect(demo.url())
        .await
        .unwrap()
        .query_one(
            "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM clients)
                  + (SELECT count(*) FROM cases) + (SELECT count(*) FROM documents)
                  + (SELECT count(*) FROM tasks)",
            &[],
        )
        .await
        .unwrap()
        .get(0);

    println!("| benchmark | result |");
    println!("|---|---|");
    println!(
        "| dump file → dump file, {rows} rows ({:.0} MB), 1 worker | {:.2} s wall, {:.2} s CPU = **{:.0} rows/s per core**; peak {:.0} MB |",
        size as f64 / 1e6,
        one.wall,
        one.cpu,
        rows as f64 / one.cpu,
        one.peak_mb
    );
    println!(
        "| keyed blake3 + xoshiro256++ seed (mapping 2) for the 3 columns distinct in every row, nothing else | {floor:.0} ns per row = at most **{:.0} rows/s per core** before parsing, fake data or I/O |",
        1e9 / floor
    );
    println!(
        "| dump file → dump file, 2 workers | {:.2} s wall = **{:.2}x** one worker; peak {:.0} MB |",
        two.wall,
        one.wall / two.wall,
        two.peak_mb
    );
    println!(
        "| live → dump file, 2 workers | {:.2} s wall vs {:.2} s for `pg_dump -a -t people` = **{:.2}x** its time; peak {:.0} MB |",
        live_file.wall,
        pg_dump_a.wall,
        live_file.wall / pg_dump_a.wall,
        live_file.peak_mb
    );
    println!(
        "| live → live (new database: schema, rows, primary key and unique index, swap), 2 workers | {:.2} s wall vs {:.2} s for `pg_dump -Fc -t people \\| pg_restore` into an empty database = **{:.2}x** its throughput; vs {:.2} s for `psql COPY TO STDOUT \\| psql COPY FROM STDIN` into an index-less table = {:.2}x; peak {:.0} MB |",
        live.wall,
        restore.wall,
        restore.wall / live.wall,
        pipe.wall,
        pipe.wall / live.wall,
        live.peak_mb
    );
    println!(
        "| verify dump file against dump file, 2 workers | {:.2} s wall ({:.2} s CPU) = **{:.2}x** the time anonymize took to write it; peak {:.0} MB |",
        verify_file.wall,
        verify_file.cpu,
        verify_file.wall / two.wall,
        verify_file.peak_mb
    );
    println!(
        "| verify live database against the dump file it wrote, 2 workers | {:.2} s wall ({:.2} s CPU) = **{:.2}x** the time anonymize took to write it; peak {:.0} MB |",
        verify_live_file.wall,
        verify_live_file.cpu,
        verify_live_file.wall / live_file.wall,
        verify_live_file.peak_mb
    );
    println!(
        "| verify live database against live database, 2 workers | {:.2} s wall ({:.2} s CPU) = **{:.2}x** the time anonymize took to load it; peak {:.0} MB |",
        verify_live.wall,
        verify_live.cpu,
        verify_live.wall / live.wall,
        verify_live.peak_mb
    );
    println!(
        "| phones in the live copy that are a real number of the source | **{real_phones}** of {} (the source has {} distinct) |",
        copied.len(),
        real.len()
    );
    println!(
        "| `seed demo-firm --scale 2000` ({demo_rows} rows) → file with the repository's anonymize.toml, verify on | {:.2} s wall; peak {:.0} MB; **verify passed** |",
        demo_run.wall,
        demo_run.peak_mb
    );
}

const PEOPLE_COLUMNS: &str = "id uuid, first_name text, last_name text, email text, \
    phone text, street text, city text, birth date, created_at timestamptz, notes text, \
    status text, score integer";

/// The distinct digit strings of the `people.phone` column at `url`, streamed by COPY.
async fn phone_digits(url: &str) -> std::collections::HashSet<String> {
    use futures_util::StreamExt as _;
    let c = dataforge::pg::connect(url).await.unwrap();
    let stream = c
        .copy_out(
            "COPY (SELECT regexp_replace(phone, '[^0-9]', '', 'g') FROM people \
             WHERE phone IS NOT NULL) TO STDOUT",
        )
        .await
        .unwrap();
    futures_util::pin_mut!(stream);
    let (mut out, mut partial) = (std::collections::HashSet::new(), Vec::new());
    while let Some(chunk) = stream.next().await {
        partial.extend_from_slice(&chunk.unwrap());
        while let Some(n) = partial.iter().position(|&b| b == b'\n') {
            out.insert(String::from_utf8_lossy(&partial[..n]).into_owned());
            partial.drain(..=n);
        }
    }
    out
}
