//! Fault injection on the commands that replace a database (issue 15, §5): `kill -9` at
//! ten instants of `anonymize --to` a database, `snapshot import` and `restore`; Ctrl-C
//! and SIGTERM; a panicking worker. After each, the target's name holds the old database
//! or the new one — never nothing, never half of one — no pg_dump or pg_restore of the run
//! is still going, and the next run names and drops what the stopped one left.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{dataforge, one, run, shared_tempdir, stderr, KEY};
use dataforge::fixtures::{empty_database, Fixture, TestDb};

fn config() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("anonymize.toml")
}

/// The staging and replaced copies beside `target` on its server.
async fn leftovers(db: &TestDb) -> Vec<String> {
    let c = dataforge::pg::connect(db.url()).await.unwrap();
    c.query(
        "SELECT datname::text FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1",
        &[&dataforge::cleanup::staging_prefix(db.name())],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Which database the target's name holds: the old one (it has the marker table) or the
/// new one (no marker, every client row of the source). Panics when it holds neither.
async fn state(target: &TestDb, clients: i64) -> &'static str {
    // a connection made at the very instant a swap commits (the server finishes the swap a
    // killed run had sent) can find the database it looked up renamed: PostgreSQL says so
    // and the next attempt finds the other one. Anything else is a target without a database.
    let mut tries = 0;
    let c = loop {
        match dataforge::pg::connect(target.url()).await {
            Ok(c) => break c,
            Err(e) if tries < 5 && e.to_string().contains("just been dropped or renamed") => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the target's name holds no database: {e}"),
        }
    };
    let old: bool = c
        .query_one("SELECT to_regclass('public.old_marker') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    if old {
        return "old";
    }
    let n: i64 = c
        .query_one("SELECT count(*) FROM clients", &[])
        .await
        .expect("the new database has its tables")
        .get(0);
    assert_eq!(n, clients, "the new database is whole");
    c.batch_execute("CREATE TABLE old_marker ()").await.unwrap();
    "new"
}

/// No pg_dump or pg_restore naming any of `dbs` runs any more (they die with dataforge).
fn no_children_left(dbs: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| {
                (c.contains("pg_restore") || c.contains("pg_dump"))
                    && dbs.iter().any(|db| c.contains(db))
            })
            .collect();
        if alive.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "children outlived dataforge: {alive:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill(child: &mut Child, signal: i32) -> std::process::Output {
    // SAFETY: signalling our own child
    unsafe { libc::kill(child.id() as i32, signal) };
    let out = std::mem::replace(child, Command::new("true").spawn().unwrap());
    out.wait_with_output().unwrap()
}

/// Runs `make()` once whole (timed), then kills ten runs of it at instants spread over that
/// time, checking the target after each; a last whole run must name and drop whatever the
/// killed ones left.
async fn kill_loop(
    target: &TestDb,
    source: &str,
    clients: i64,
    what: &str,
    make: impl Fn() -> Command,
) {
    let started = Instant::now();
    let out = make().output().unwrap();
    assert!(out.status.success(), "{what}: {}", stderr(&out));
    let whole = started.elapsed();
    assert_eq!(state(target, clients).await, "new");
    let mut seen = std::collections::BTreeMap::<&str, u32>::new();
    for i in 0..10u32 {
        let delay = whole.mul_f64(f64::from(i) / 10.0 + 0.03);
        let mut child = make()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let out = kill(&mut child, libc::SIGKILL);
        no_children_left(&[target.name(), source]);
        let s = state(target, clients).await;
        *seen.entry(s).or_default() += 1;
        let _ = out;
    }
    // a statement a killed run had sent (the DROP of a replaced copy) runs on in the
    // server until it notices the client gone: what is left is what remains after
    let c = dataforge::pg::connect(target.url()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let busy: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()
                 AND state = 'active' AND strpos(query, $1) > 0",
                &[&target.name()],
            )
            .await
            .unwrap()
            .get(0);
        if busy == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(c);
    let left = leftovers(target).await;
    eprintln!("{what}: after 10 kills the target held {seen:?}; left beside it: {left:?}");
    assert!(
        seen.get("old").is_some_and(|n| *n > 0),
        "{what}: no kill landed before the swap: {seen:?}"
    );
    let out = run(&mut make(), 0);
    for name in &left {
        assert!(
            stderr(&out).contains(&format!(
                "dropped {name}, an unfinished copy of {}",
                target.name()
            )),
            "{what}: the next run does not name {name}: {}",
            stderr(&out)
        );
    }
    assert_eq!(leftovers(target).await, Vec::<String>::new(), "{what}");
    assert_eq!(state(target, clients).await, "new");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_ten_instants_of_anonymize_snapshot_import_and_restore() {
    let source = Fixture::new("demo-firm").scale(20).create().await.unwrap();
    let clients = one::<i64>(source.url(), "SELECT count(*) FROM clients").await;
    let target = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().to_path_buf();

    let (src, dst) = (source.url().to_string(), target.url().to_string());
    let anonymize = |verb: &[&str]| {
        let mut c = dataforge(&dir);
        c.env("DATAFORGE_KEY", KEY)
            .args(verb)
            .arg("--config")
            .arg(config())
            .args(["--from", &src, "--to", &dst, "--replace"]);
        c
    };
    kill_loop(
        &target,
        source.name(),
        clients,
        "anonymize --to a database",
        || {
            let mut c = anonymize(&["anonymize"]);
            c.arg("--no-verify");
            c
        },
    )
    .await;
    kill_loop(&target, source.name(), clients, "snapshot import", || {
        anonymize(&["snapshot", "import"])
    })
    .await;

    // restore: the backup is of a target without the marker table
    let c = dataforge::pg::connect(target.url()).await.unwrap();
    c.batch_execute("DROP TABLE old_marker").await.unwrap();
    drop(c);
    let out = run(
        dataforge(&dir)
            .args(["backup", "--dir", "b", "--json"])
            .env("DATABASE_URL", target.url()),
        0,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = v["path"].as_str().unwrap().to_string();
    let c = dataforge::pg::connect(target.url()).await.unwrap();
    c.batch_execute("CREATE TABLE old_marker ()").await.unwrap();
    drop(c);
    kill_loop(&target, source.name(), clients, "restore", || {
        let mut c = dataforge(&dir);
        c.args(["restore", "--backup-dir", "b", &file])
            .env("DATABASE_URL", target.url());
        c
    })
    .await;
    // the pre-restore backups the kills cut short were swept by the later runs
    let partial: Vec<_> = std::fs::read_dir(dir.join("b"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "partial"))
        .collect();
    assert!(partial.is_empty(), "{partial:?}");
}

/// The same ten kills of a run with `[subset]`: the slice's lists of rows live in
/// temporary tables of a session on the source, which the server drops with the session,
/// so a killed run leaves nothing there either, and the target holds the old database or
/// the whole slice.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_ten_instants_of_a_subset_leaves_neither_source_nor_target_changed() {
    let source = Fixture::new("demo-firm").scale(20).create().await.unwrap();
    let target = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().to_path_buf();
    let sliced = dir.join("anonymize.toml");
    std::fs::write(
        &sliced,
        std::fs::read_to_string(config()).unwrap()
            + "\n[subset]\ntargets = [{ table = \"clients\", percent = 30 }]\n",
    )
    .unwrap();
    let (src, dst) = (source.url().to_string(), target.url().to_string());
    let make = || {
        let mut c = dataforge(&dir);
        c.env("DATAFORGE_KEY", KEY)
            .args(["anonymize", "--no-verify", "--config"])
            .arg(&sliced)
            .args(["--from", &src, "--to", &dst, "--replace"]);
        c
    };
    let dry = run(make().args(["--dry-run", "--json"]), 0);
    let dry: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    let clients = dry["subset"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "public.clients")
        .unwrap()["rows"]
        .as_i64()
        .unwrap();
    let all = one::<i64>(source.url(), "SELECT count(*) FROM clients").await;
    let before = rows(source.url()).await;
    assert!(clients > 0 && clients < all, "{clients} of {all}");
    kill_loop(
        &target,
        source.name(),
        clients,
        "anonymize with [subset]",
        make,
    )
    .await;
    // no session of the killed runs is left on the source (their temporary tables went
    // with them), and the source's rows are as they were
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: i64 = one(
            source.url(),
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .await;
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} sessions of killed runs are still on the source"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        rows(source.url()).await,
        before,
        "the source's rows changed"
    );
}

/// A digest of every row of the demo firm's tables.
async fn rows(url: &str) -> String {
    let mut all = String::new();
    for t in ["firms", "users", "clients", "cases", "documents", "tasks"] {
        let d: String = one(
            url,
            &format!(
                "SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {t} t"
            ),
        )
        .await;
        all.push_str(&d);
    }
    all
}

/// Ctrl-C and SIGTERM while the copy loads: the staging database is dropped, the message
/// says so and that the target is as it was, exit 130 and 143.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_and_sigterm_drop_the_unfinished_copy() {
    let source = Fixture::new("demo-firm").scale(50).create().await.unwrap();
    let target = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    for (signal, code, name) in [
        (libc::SIGINT, 130, "Ctrl-C"),
        (libc::SIGTERM, 143, "SIGTERM"),
    ] {
        let mut child = dataforge(tmp.path())
            .env("DATAFORGE_KEY", KEY)
            .args(["anonymize", "--config"])
            .arg(config())
            .args(["--from", source.url(), "--to", target.url(), "--replace"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while leftovers(&target).await.is_empty() {
            assert!(Instant::now() < deadline, "no staging database appeared");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let staging = leftovers(&target).await.remove(0);
        let out = kill(&mut child, signal);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{err}");
        assert!(
            err.contains(&format!(
                "dataforge: interrupted ({name}): dropped the unfinished copy {staging}; {} is as it was",
                target.name()
            )),
            "{err}"
        );
        assert_eq!(leftovers(&target).await, Vec::<String>::new());
        no_children_left(&[target.name(), source.name()]);
    }
}

/// A worker that panics (injected in a test build): exit 2, one line naming the bug, the
/// staging database dropped, the target untouched.
#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_worker_exits_2_and_leaves_nothing() {
    let source = Fixture::new("demo-firm").create().await.unwrap();
    let target = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let out = run(
        dataforge(tmp.path())
            .env("DATAFORGE_KEY", KEY)
            .env("DATAFORGE_TEST_PANIC", "copy-worker")
            .args(["anonymize", "--config"])
            .arg(config())
            .args(["--from", source.url(), "--to", target.url()]),
        2,
    );
    let err = stderr(&out);
    assert!(
        err.contains("dataforge: internal error at src/anonymize/pipeline/to_db.rs:")
            && err.contains(
                "injected for a test: a copy worker panics; this is a bug, please report it"
            ),
        "{err}"
    );
    assert!(!err.contains("RUST_BACKTRACE"), "{err}");
    assert_eq!(leftovers(&target).await, Vec::<String>::new());
    assert_eq!(
        one::<i64>(
            target.url(),
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        )
        .await,
        0
    );
}

/// `sh -c` running dataforge with writes capped at `blocks` × 512 bytes: a write past it
/// fails with EFBIG, as on a full disk (SIGXFSZ ignored, so the write returns the error).
fn with_file_cap(dir: &Path, blocks: u32, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.current_dir(dir)
        .env_remove("DATABASE_URL")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_dataforge"))
        .args(args);
    c
}

/// Every file in `dir` with its bytes, by name.
fn files_and_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn partials(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect()
}

/// `seed --out` that runs out of space leaves the earlier run's files as they were and no
/// partial file; `backup` likewise leaves no dump, checksum or manifest; a backup whose
/// audit line cannot be written is still a success, said so.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_leaves_earlier_files_whole_and_nothing_partial() {
    let tmp = shared_tempdir();
    let dir = tmp.path();
    run(
        dataforge(dir).args(["seed", "demo-firm", "--out", "seeds"]),
        0,
    );
    let before = files_and_bytes(&dir.join("seeds"));
    let out = with_file_cap(
        dir,
        64,
        &["seed", "demo-firm", "--scale", "200", "--out", "seeds"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("File too large"), "{}", stderr(&out));
    let after = files_and_bytes(&dir.join("seeds"));
    assert!(before == after, "the earlier run's files changed");

    let source = Fixture::new("demo-firm").scale(20).create().await.unwrap();
    let out = with_file_cap(dir, 16, &["backup", "--dir", "b"])
        .env("DATABASE_URL", source.url())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let left: Vec<String> = std::fs::read_dir(dir.join("b"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "audit.log")
        .collect();
    assert!(left.is_empty(), "a failed backup left {left:?}");

    // audit.log that cannot be written: the backup stands, and says so
    std::fs::create_dir(dir.join("b").join("audit.log")).unwrap_or(());
    let _ = std::fs::remove_file(dir.join("b").join("audit.log"));
    std::fs::create_dir_all(dir.join("b").join("audit.log")).unwrap();
    let out = run(
        dataforge(dir)
            .args(["backup", "--dir", "b"])
            .env("DATABASE_URL", source.url()),
        0,
    );
    assert!(
        stderr(&out)
            .contains("is complete and verified, but its line in audit.log was not written"),
        "{}",
        stderr(&out)
    );
}

/// A file output killed midway leaves a locked-while-written `.NAME.PID.partial`; the next
/// run to the same name removes it and says so, and the earlier output stays whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_file_output_is_swept_by_the_next_run() {
    let source = Fixture::new("demo-firm").scale(50).create().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path();
    let anonymize = || {
        let mut c = dataforge(dir);
        c.env("DATAFORGE_KEY", KEY)
            .args(["anonymize", "--no-verify", "--config"])
            .arg(config())
            .args(["--from", source.url(), "--to", "out.sql"]);
        c
    };
    run(&mut anonymize(), 0);
    // pg_dump 15.14+ writes a random `\restrict KEY` line into every dump: not ours to pin
    let content = || {
        std::fs::read_to_string(dir.join("out.sql"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let whole = content();
    let mut child = anonymize().stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while partials(dir).is_empty() {
        assert!(Instant::now() < deadline, "no partial file appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    kill(&mut child, libc::SIGKILL);
    let left = partials(dir);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with(".out.sql."), "{left:?}");
    assert!(content() == whole, "the earlier output is whole");
    let out = run(&mut anonymize(), 0);
    assert!(
        stderr(&out).contains(&format!(
            "removed ./{}, left unfinished by an earlier run that was stopped",
            left[0]
        )),
        "{}",
        stderr(&out)
    );
    assert!(partials(dir).is_empty());
    assert!(content() == whole, "same key, same output");
}
