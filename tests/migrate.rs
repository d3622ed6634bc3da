//! `dataforge migrate up | status` against a real server, through the binary.

mod common;

use std::fs;
use std::path::Path;

use common::{dataforge, run, shared_tempdir, stderr, stdout, write_migration};
use dataforge::fixtures::empty_database;

#[tokio::test]
async fn up_records_history_exactly_as_prisma_does_and_is_idempotent() {
    let db = empty_database().await.unwrap();
    let repo = env!("CARGO_MANIFEST_DIR");
    let dir = Path::new(repo).join("profiles/demo-firm/migrations");
    let tmp = shared_tempdir();
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "up", "--dir"])
            .arg(&dir)
            .env("DATABASE_URL", db.url()),
        0,
    );
    assert_eq!(
        stdout(&out),
        "applied 20250101000000_init\napplied 20250101000100_cases_documents_tasks\n"
    );
    let c = db.connect().await.unwrap();
    let cols: Vec<String> = c
        .query(
            "SELECT column_name || ' ' || data_type || ' ' || is_nullable FROM information_schema.columns \
             WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        cols,
        [
            "id character varying NO",
            "checksum character varying NO",
            "finished_at timestamp with time zone YES",
            "migration_name character varying NO",
            "logs text YES",
            "rolled_back_at timestamp with time zone YES",
            "started_at timestamp with time zone NO",
            "applied_steps_count integer NO",
        ]
    );
    let rows = c
        .query(
            "SELECT migration_name, checksum, applied_steps_count, finished_at IS NOT NULL, length(id) \
             FROM _prisma_migrations ORDER BY migration_name",
            &[],
        )
        .await
        .unwrap();
    let sql = fs::read_to_string(dir.join("20250101000000_init/migration.sql")).unwrap();
    assert_eq!(
        rows[0].get::<_, String>(1),
        dataforge::migrate::checksum(&sql)
    );
    assert_eq!(rows[0].get::<_, String>(1).len(), 64);
    assert_eq!(rows[0].get::<_, i32>(2), 1);
    assert!(rows[0].get::<_, bool>(3));
    assert_eq!(rows[0].get::<_, i32>(4), 36);

    let again = run(
        dataforge(tmp.path())
            .args(["migrate", "up", "--dir"])
            .arg(&dir)
            .env("DATABASE_URL", db.url()),
        0,
    );
    assert!(stdout(&again).is_empty());
    assert!(
        stderr(&again).contains("is up to date (2 migrations)"),
        "{}",
        stderr(&again)
    );
    let status = run(
        dataforge(tmp.path())
            .args(["migrate", "status", "--dir"])
            .arg(&dir)
            .env("DATABASE_URL", db.url()),
        0,
    );
    assert_eq!(
        stdout(&status).matches(" applied ").count(),
        2,
        "{}",
        stdout(&status)
    );
}

#[tokio::test]
async fn status_reads_a_prisma_history_and_flags_pending_modified_and_missing() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("prisma/migrations");
    write_migration(&dir, "20240101000000_a", "CREATE TABLE a (id int);");
    write_migration(&dir, "20240102000000_b", "CREATE TABLE b (id int);");
    write_migration(&dir, "20240103000000_c", "CREATE TABLE c (id int);");
    // history as Prisma writes it: a applied, b applied from an older file, gone applied
    let c = db.connect().await.unwrap();
    c.batch_execute(dataforge::migrate::history::CREATE_TABLE)
        .await
        .unwrap();
    let ck = dataforge::migrate::checksum("CREATE TABLE a (id int);");
    c.execute(
        "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count) VALUES
         ('0c5e2d6f-0000-4000-8000-000000000001', $1, now(), '20240101000000_a', 1),
         ('0c5e2d6f-0000-4000-8000-000000000002', 'deadbeef', now(), '20240102000000_b', 1),
         ('0c5e2d6f-0000-4000-8000-000000000003', 'cafe', now(), '20231231000000_gone', 1)",
        &[&ck],
    )
    .await
    .unwrap();
    // no --dir: prisma/migrations is the default
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "status", "--json"])
            .env("DATABASE_URL", db.url()),
        1,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let states: Vec<(String, String)> = v["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("20240101000000_a".to_string(), "applied".to_string()),
            ("20240102000000_b".to_string(), "modified".to_string()),
            ("20240103000000_c".to_string(), "pending".to_string()),
            (
                "20231231000000_gone".to_string(),
                "missing_on_disk".to_string()
            ),
        ]
    );
    let up = run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", db.url()),
        2,
    );
    let err = stderr(&up);
    assert!(
        err.contains("migration 20240102000000_b was changed after it was applied"),
        "{err}"
    );
}

#[tokio::test]
async fn a_failing_migration_is_rolled_back_recorded_and_blocks_the_next_run() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_migration(&dir, "20240101000000_ok", "CREATE TABLE ok (id int);");
    write_migration(
        &dir,
        "20240102000000_bad",
        "CREATE TABLE half (id int);\nSELECT * FROM no_such_table;",
    );
    let up = run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", db.url()),
        2,
    );
    let err = stderr(&up);
    // the server's position, as file:line:col (issue 16, §2)
    assert!(
        err.contains("migration 20240102000000_bad failed at migrations/20240102000000_bad/migration.sql:2:15"),
        "{err}"
    );
    assert!(
        err.contains("relation \"no_such_table\" does not exist (SQLSTATE 42P01)"),
        "{err}"
    );
    // said once: not again as the driver words it ("db error: ERROR: …")
    assert_eq!(err.matches("does not exist").count(), 1, "{err}");
    // what was applied before the failure is said as it happened (issue 16, §2)
    assert_eq!(stdout(&up), "applied 20240101000000_ok\n");
    assert!(
        err.contains("This run applied 20240101000000_ok before it"),
        "{err}"
    );
    let c = db.connect().await.unwrap();
    let half: bool = c
        .query_one("SELECT to_regclass('half') IS NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(half, "the failed migration's first statement was kept");
    let ok: bool = c
        .query_one("SELECT to_regclass('ok') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(ok);
    let failed = c
        .query_one(
            "SELECT finished_at IS NULL, logs FROM _prisma_migrations WHERE migration_name = '20240102000000_bad'",
            &[],
        )
        .await
        .unwrap();
    assert!(failed.get::<_, bool>(0));
    assert!(failed.get::<_, String>(1).contains("no_such_table"));

    let again = run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", db.url()),
        2,
    );
    assert!(
        stderr(&again).contains("failed earlier"),
        "{}",
        stderr(&again)
    );
    assert!(stderr(&again).contains("prisma migrate resolve --rolled-back 20240102000000_bad"));
    let status = run(
        dataforge(tmp.path())
            .args(["migrate", "status"])
            .env("DATABASE_URL", db.url()),
        1,
    );
    assert!(stdout(&status).contains("FAILED"), "{}", stdout(&status));
}

#[test]
fn a_missing_migrations_folder_says_which_and_how_to_choose() {
    let tmp = shared_tempdir();
    let out = run(
        dataforge(tmp.path()).args([
            "migrate",
            "status",
            "--database-url",
            "postgresql://x@127.0.0.1:1/x",
        ]),
        2,
    );
    let err = stderr(&out);
    assert!(
        err.contains("cannot read the migrations folder migrations"),
        "{err}"
    );
    assert!(err.contains("--dir DIR"), "{err}");
}

fn write_with_down(dir: &Path, name: &str, up: &str, down: &str) {
    write_migration(dir, name, up);
    fs::write(dir.join(name).join("down.sql"), down).unwrap();
}

#[tokio::test]
async fn up_down_round_trips_record_history_for_prisma_and_dataforge() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_with_down(
        &dir,
        "20240101000000_a",
        "CREATE TABLE a (id int);",
        "DROP TABLE a;",
    );
    write_with_down(
        &dir,
        "20240102000000_b",
        "CREATE TABLE b (id int);",
        "DROP TABLE b;",
    );
    write_with_down(
        &dir,
        "20240103000000_c",
        "CREATE TABLE c (id int);",
        "DROP TABLE c;",
    );
    let df = |args: &[&str]| {
        let mut c = dataforge(tmp.path());
        c.args(args).env("DATABASE_URL", db.url());
        c
    };
    // up --to stops after the named migration
    let out = run(
        &mut df(&["migrate", "up", "--to", "20240102000000_b", "--json"]),
        0,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["applied"],
        serde_json::json!(["20240101000000_a", "20240102000000_b"])
    );
    run(&mut df(&["migrate", "up"]), 0);
    let c = db.connect().await.unwrap();
    let exists = |t: &'static str| {
        let c = &c;
        async move {
            c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&t])
                .await
                .unwrap()
                .get::<_, bool>(0)
        }
    };
    assert!(exists("c").await);

    // down: one step by default, newest first
    assert_eq!(
        stdout(&run(&mut df(&["migrate", "down"]), 0)),
        "rolled back 20240103000000_c\n"
    );
    assert!(!exists("c").await);
    let status = run(&mut df(&["migrate", "status"]), 1);
    assert!(stdout(&status).contains("20240103000000_c") && stdout(&status).contains("pending"));
    // down --to keeps the named one
    run(&mut df(&["migrate", "down", "--to", "20240101000000_a"]), 0);
    assert!(exists("a").await && !exists("b").await);
    // and everything comes back
    run(&mut df(&["migrate", "up"]), 0);
    assert!(exists("b").await && exists("c").await);

    // Prisma's view: rolled-back rows are marked, current ones are finished
    let rows: Vec<(String, bool)> = c
        .query(
            "SELECT migration_name, rolled_back_at IS NOT NULL FROM _prisma_migrations ORDER BY started_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rows.iter().filter(|(_, rolled)| *rolled).count(),
        2,
        "{rows:?}"
    );
    assert_eq!(
        rows.iter().filter(|(_, rolled)| !*rolled).count(),
        3,
        "{rows:?}"
    );
    // dataforge's own log: 3 + 2 ups, 2 downs, with who ran them
    let log: Vec<(String, String)> = c
        .query(
            "SELECT action, run_by FROM _dataforge_migration_log ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(log.iter().filter(|(a, _)| a == "up").count(), 5, "{log:?}");
    assert_eq!(
        log.iter().filter(|(a, _)| a == "down").count(),
        2,
        "{log:?}"
    );
    assert!(log[0].1.starts_with("postgres (os user "), "{log:?}");

    // history lists every attempt with its checksum state
    let h = run(&mut df(&["migrate", "history", "--json"]), 0);
    let v: serde_json::Value = serde_json::from_slice(&h.stdout).unwrap();
    let items = v["history"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert!(items.iter().all(|i| i["checksum_ok"] == true));
    assert_eq!(
        items
            .iter()
            .filter(|i| !i["rolled_back_at"].is_null())
            .count(),
        2
    );
}

#[tokio::test]
async fn down_without_down_sql_is_refused_before_anything_changes() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_with_down(
        &dir,
        "20240101000000_a",
        "CREATE TABLE a (id int);",
        "DROP TABLE a;",
    );
    write_migration(&dir, "20240102000000_b", "CREATE TABLE b (id int);");
    run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "down", "--steps", "2"])
            .env("DATABASE_URL", db.url()),
        2,
    );
    let err = stderr(&out);
    assert!(
        err.contains("cannot roll back 20240102000000_b: it has no down.sql"),
        "{err}"
    );
    assert!(err.contains("nothing was rolled back"), "{err}");
    let c = db.connect().await.unwrap();
    let both: bool = c
        .query_one(
            "SELECT to_regclass('a') IS NOT NULL AND to_regclass('b') IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(both);
}

#[tokio::test]
async fn crlf_checkouts_still_match_and_verify_gates_modified_files() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_migration(
        &dir,
        "20240101000000_a",
        "CREATE TABLE a (id int);\nCREATE TABLE a2 (id int);\n",
    );
    write_migration(&dir, "20240102000000_b", "CREATE TABLE b (id int);\n");
    run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    // the same files checked out on Windows
    fs::write(
        dir.join("20240101000000_a/migration.sql"),
        "CREATE TABLE a (id int);\r\nCREATE TABLE a2 (id int);\r\n",
    )
    .unwrap();
    let ok = run(
        dataforge(tmp.path())
            .args(["migrate", "verify"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    assert_eq!(
        stdout(&ok),
        "ok: 2 migrations, checksums match, 0 pending\n"
    );
    // a real edit is caught
    fs::write(
        dir.join("20240102000000_b/migration.sql"),
        "CREATE TABLE b (id bigint);\n",
    )
    .unwrap();
    let bad = run(
        dataforge(tmp.path())
            .args(["migrate", "verify", "--json"])
            .env("DATABASE_URL", db.url()),
        1,
    );
    let v: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"][0]["name"], "20240102000000_b");
    assert_eq!(v["problems"][0]["state"], "modified");
}

#[test]
fn new_makes_a_timestamped_folder_with_both_scripts() {
    let tmp = shared_tempdir();
    let out = run(
        dataforge(tmp.path()).args(["migrate", "new", "Add case priority", "--dir", "migrations"]),
        0,
    );
    let folder = std::path::PathBuf::from(stdout(&out).trim());
    let name = folder.file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.ends_with("_add_case_priority"), "{name}");
    assert_eq!(
        name.len(),
        "20260101000000_add_case_priority".len(),
        "{name}"
    );
    let folder = tmp.path().join(&folder);
    assert!(folder.join("migration.sql").is_file());
    assert!(folder.join("down.sql").is_file());
    assert!(tmp.path().join("migrations/migration_lock.toml").is_file());
    let bad = run(
        dataforge(tmp.path()).args(["migrate", "new", "--", "---"]),
        2,
    );
    assert!(
        stderr(&bad).contains("is not a migration name"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn up_to_an_unknown_migration_names_the_ones_there_are() {
    let tmp = shared_tempdir();
    write_migration(
        &tmp.path().join("migrations"),
        "20240101000000_a",
        "SELECT 1;",
    );
    let out = run(
        dataforge(tmp.path()).args([
            "migrate",
            "up",
            "--to",
            "nope",
            "--database-url",
            "postgresql://x@127.0.0.1:1/x",
        ]),
        2,
    );
    let err = stderr(&out);
    assert!(
        err.contains("no migration nope in the folder (there are: 20240101000000_a)"),
        "{err}"
    );
}

#[tokio::test]
async fn resolve_and_baseline_settle_history_without_running_sql() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_migration(&dir, "20240101000000_a", "CREATE TABLE a (id int);");
    write_migration(&dir, "20240102000000_b", "CREATE TABLE b (id int);");
    write_migration(
        &dir,
        "20240103000000_c",
        "CREATE TABLE c (id int); SELECT * FROM nope;",
    );
    let df = |args: &[&str]| {
        let mut c = dataforge(tmp.path());
        c.args(args).env("DATABASE_URL", db.url());
        c
    };
    // an existing database that already has a and b
    let c = db.connect().await.unwrap();
    c.batch_execute("CREATE TABLE a (id int); CREATE TABLE b (id int);")
        .await
        .unwrap();
    // without --to, off a terminal: lists what it would record, records nothing
    let refused = run(&mut df(&["migrate", "baseline"]), 2);
    assert!(
        stderr(&refused).contains(
            "baseline without --to records every pending migration as applied without running it: 20240101000000_a, 20240102000000_b, 20240103000000_c; nothing was recorded. Give --to NAME"
        ),
        "{}",
        stderr(&refused)
    );
    let out = run(
        &mut df(&["migrate", "baseline", "--to", "20240102000000_b"]),
        0,
    );
    assert_eq!(
        stdout(&out),
        "recorded as applied 20240101000000_a\nrecorded as applied 20240102000000_b\n"
    );
    // c fails, is recorded failed, and blocks
    run(&mut df(&["migrate", "up"]), 2);
    let refused = run(
        &mut df(&["migrate", "resolve", "--rolled-back", "20240101000000_a"]),
        2,
    );
    assert!(
        stderr(&refused).contains("cannot resolve 20240101000000_a: it is not a failed migration")
    );
    // fix the script, resolve the failed attempt, apply
    write_migration(&dir, "20240103000000_c", "CREATE TABLE c (id int);");
    run(
        &mut df(&["migrate", "resolve", "--rolled-back", "20240103000000_c"]),
        0,
    );
    run(&mut df(&["migrate", "up"]), 0);
    let verified = run(&mut df(&["migrate", "verify"]), 0);
    assert_eq!(
        stdout(&verified),
        "ok: 3 migrations, checksums match, 0 pending\n"
    );
    // resolve --applied refuses an applied migration
    let again = run(
        &mut df(&["migrate", "resolve", "--applied", "20240103000000_c"]),
        2,
    );
    assert!(
        stderr(&again).contains("it is already applied"),
        "{}",
        stderr(&again)
    );
    let actions: Vec<String> = c
        .query(
            "SELECT action FROM _dataforge_migration_log ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // the failed attempt is in the log too (issue 16, §2)
    assert_eq!(
        actions,
        [
            "resolve-applied",
            "resolve-applied",
            "up-failed",
            "resolve-rolled-back",
            "up"
        ]
    );
}

#[tokio::test]
async fn a_second_runner_waits_for_the_lock_then_gives_up_naming_the_holder() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    write_migration(
        &tmp.path().join("migrations"),
        "20240101000000_a",
        "CREATE TABLE a (id int);",
    );
    // another runner (here: this test) holds Prisma's migration lock
    let holder = db.connect().await.unwrap();
    let pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    holder
        .execute("SELECT pg_advisory_lock($1)", &[&72707369i64])
        .await
        .unwrap();
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "up", "--lock-wait", "1s"])
            .env("DATABASE_URL", db.url()),
        2,
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "waiting for the migration lock, held by pid {pid}"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "gave up waiting for the migration lock after 1s: pid {pid}"
        )),
        "{err}"
    );
    holder
        .execute("SELECT pg_advisory_unlock($1)", &[&72707369i64])
        .await
        .unwrap();
    run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", db.url()),
        0,
    );
}

#[tokio::test]
async fn a_lock_timeout_is_retried_and_names_who_blocked_it() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_migration(&dir, "20240101000000_a", "CREATE TABLE t (id int);");
    run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    write_migration(&dir, "20240102000000_b", "ALTER TABLE t ADD COLUMN x int;");
    // a long transaction holds the table
    let mut blocker = db.connect().await.unwrap();
    let pid: i32 = blocker
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let tx = blocker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE t IN ACCESS SHARE MODE")
        .await
        .unwrap();
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "up", "--lock-timeout", "500ms", "--retries", "1"])
            .env("DATABASE_URL", db.url()),
        2,
    );
    let err = stderr(&out);
    assert!(
        err.contains("20240102000000_b: lock timeout after 500ms"),
        "{err}"
    );
    assert!(err.contains("retry 1 of 1"), "{err}");
    assert!(err.contains(&format!("blocked by pid {pid}")), "{err}");
    assert!(err.contains("SQLSTATE 55P03"), "{err}");
    // nothing was applied: pending, not failed (issue 16, §2), and the attempt is logged
    assert!(
        err.contains("Nothing of it was applied and it stays pending (no failed row)"),
        "{err}"
    );
    tx.commit().await.unwrap();
    let c = db.connect().await.unwrap();
    let rows: i64 = c
        .query_one(
            "SELECT count(*) FROM _prisma_migrations WHERE migration_name = '20240102000000_b'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);
    let logged: String = c
        .query_one(
            "SELECT action || ': ' || error FROM _dataforge_migration_log WHERE migration_name = '20240102000000_b'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        logged.starts_with("up-failed: ") && logged.contains("55P03"),
        "{logged}"
    );
    // the blocker gone, the next run applies it with no resolve
    run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", db.url()),
        0,
    );
}

/// A migration's own transaction control (issue 16, §2): `BEGIN … COMMIT` around the whole
/// file stays one atomic transaction (its isolation level honoured); transaction control
/// in the middle runs as psql runs it, with one history row, the committed statements
/// named and the rest not applied.
#[tokio::test]
async fn a_migrations_own_begin_and_commit_are_honoured_and_told() {
    let tmp = shared_tempdir();
    let dir = tmp.path().join("m");
    let db = empty_database().await.unwrap();
    let c = db.connect().await.unwrap();
    let up = || {
        let mut cmd = dataforge(tmp.path());
        cmd.args(["migrate", "up", "--dir", "m"])
            .env("DATABASE_URL", db.url());
        cmd
    };
    let rows = |name: &'static str| {
        let c = &c;
        async move {
            c.query(
                "SELECT finished_at IS NOT NULL, coalesce(logs, '') FROM _prisma_migrations WHERE migration_name = $1",
                &[&name],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, bool>(0), r.get::<_, String>(1)))
            .collect::<Vec<_>>()
        }
    };
    let exists = |t: &'static str| {
        let c = &c;
        async move {
            c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&t])
                .await
                .unwrap()
                .get::<_, bool>(0)
        }
    };

    // wrapped, with its own isolation level: applies (was SQLSTATE 25001)
    write_migration(
        &dir,
        "20240101000000_wrapped",
        "BEGIN;\nSET TRANSACTION ISOLATION LEVEL REPEATABLE READ;\nCREATE TABLE w (id int);\nCOMMIT;\n",
    );
    run(&mut up(), 0);
    assert_eq!(rows("20240101000000_wrapped").await.len(), 1);
    assert!(exists("w").await);

    // wrapped and failing: atomic, nothing of it applied, one failed row
    write_migration(
        &dir,
        "20240102000000_wrapped_fails",
        "BEGIN;\nCREATE TABLE wf (id int);\n  SELECT nope FROM wf;\nCOMMIT;\n",
    );
    let out = run(&mut up(), 2);
    assert!(
        stderr(&out).contains("nothing of it was applied"),
        "{}",
        stderr(&out)
    );
    // the server's position, mapped back through the rebuilt transaction to the file
    assert!(
        stderr(&out).contains(
            "migration 20240102000000_wrapped_fails failed at m/20240102000000_wrapped_fails/migration.sql:3:10:"
        ),
        "{}",
        stderr(&out)
    );
    assert!(!exists("wf").await);
    let r = rows("20240102000000_wrapped_fails").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        !r[0].0 && r[0].1.contains("column \"nope\" does not exist"),
        "{r:?}"
    );
    fs::remove_dir_all(dir.join("20240102000000_wrapped_fails")).unwrap();
    c.batch_execute(
        "DELETE FROM _prisma_migrations WHERE migration_name = '20240102000000_wrapped_fails'",
    )
    .await
    .unwrap();

    // control in the middle: as psql — a and b committed, named; one failed row
    write_migration(
        &dir,
        "20240103000000_own",
        "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\nCREATE TABLE b (id int);\nBEGIN;\nCREATE TABLE c (id int);\nSELECT 1/0;\nCOMMIT;\n",
    );
    let out = run(&mut up(), 2);
    let err = stderr(&out);
    assert!(
        err.contains("It controls its own transactions (BEGIN/COMMIT), so it ran as psql runs it: these statements committed and stay applied: `CREATE TABLE a (id…` (m/20240103000000_own/migration.sql:2:1), `CREATE TABLE b (id…` (m/20240103000000_own/migration.sql:4:1); the failing statement and everything after it were not applied (its open transaction was rolled back, with `CREATE TABLE c (id…` (m/20240103000000_own/migration.sql:6:1))"),
        "{err}"
    );
    assert!(
        err.contains("failed at statement 7 of 8 (m/20240103000000_own/migration.sql:7:1)"),
        "{err}"
    );
    assert!(exists("a").await && exists("b").await && !exists("c").await);
    let r = rows("20240103000000_own").await;
    assert_eq!(r.len(), 1, "never two rows: {r:?}");
    assert!(!r[0].0 && r[0].1.contains("division by zero"), "{r:?}");
}

/// `down.sql` with `DROP INDEX CONCURRENTLY` (the undo of a concurrent build) rolls back:
/// it runs outside a transaction, as migration.sql would (issue 16, §2).
#[tokio::test]
async fn a_down_sql_with_a_concurrent_index_drop_rolls_back() {
    let tmp = shared_tempdir();
    let dir = tmp.path().join("m");
    let db = empty_database().await.unwrap();
    write_migration(&dir, "20240101000000_t", "CREATE TABLE t (id int);");
    write_migration(
        &dir,
        "20240102000000_ix",
        "CREATE INDEX CONCURRENTLY t_id_idx ON t (id);",
    );
    fs::write(
        dir.join("20240102000000_ix/down.sql"),
        "DROP INDEX CONCURRENTLY IF EXISTS t_id_idx;",
    )
    .unwrap();
    let df = |args: &[&str]| {
        let mut cmd = dataforge(tmp.path());
        cmd.args(args).env("DATABASE_URL", db.url());
        cmd
    };
    run(&mut df(&["migrate", "up", "--dir", "m"]), 0);
    let c = db.connect().await.unwrap();
    let has_index = || async {
        c.query_one("SELECT to_regclass('t_id_idx') IS NOT NULL", &[])
            .await
            .unwrap()
            .get::<_, bool>(0)
    };
    assert!(has_index().await);
    run(&mut df(&["migrate", "down", "--dir", "m"]), 0);
    assert!(!has_index().await);
    let status = stdout(&run(&mut df(&["migrate", "status", "--dir", "m"]), 1));
    assert!(status.contains("20240102000000_ix"), "{status}");
}

/// A failed `up` says what it applied (each on stdout as it happened) and what it did not
/// run; `down --json` uses snake_case keys (issue 16, §2 and §6).
#[tokio::test]
async fn a_failed_up_says_what_it_applied_and_what_it_did_not_run() {
    let tmp = shared_tempdir();
    let dir = tmp.path().join("m");
    let db = empty_database().await.unwrap();
    write_migration(&dir, "20240101000000_a", "CREATE TABLE a (id int);");
    write_migration(&dir, "20240102000000_b", "CREATE TABLE b (id int);");
    write_migration(&dir, "20240103000000_c", "SELECT 1/0;");
    write_migration(&dir, "20240104000000_d", "CREATE TABLE d (id int);");
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "up", "--dir", "m"])
            .env("DATABASE_URL", db.url()),
        2,
    );
    assert_eq!(
        stdout(&out),
        "applied 20240101000000_a\napplied 20240102000000_b\n"
    );
    assert!(
        stderr(&out).contains("migration 20240103000000_c failed")
            && stderr(&out).contains(
                "This run applied 20240101000000_a, 20240102000000_b before it (they stay applied) and did not run 20240104000000_d"
            ),
        "{}",
        stderr(&out)
    );
    // --json: one document with the same story, and every event
    let other = empty_database().await.unwrap();
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "up", "--json", "--dir", "m"])
            .env("DATABASE_URL", other.url()),
        2,
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v["applied"],
        serde_json::json!(["20240101000000_a", "20240102000000_b"]),
        "{v}"
    );
    assert_eq!(v["failed"]["name"], "20240103000000_c", "{v}");
    assert!(
        v["failed"]["error"]
            .as_str()
            .unwrap()
            .contains("division by zero"),
        "{v}"
    );
    assert_eq!(v["not_run"], serde_json::json!(["20240104000000_d"]), "{v}");
    let kinds: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "migration_started",
            "migration_finished",
            "migration_started",
            "migration_finished",
            "migration_started",
            "migration_failed"
        ],
        "{v}"
    );
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("did not run 20240104000000_d"));
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "down", "--json", "--dir", "m"])
            .env("DATABASE_URL", db.url()),
        2,
    );
    // no down.sql: refused, as JSON on stdout
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(v["error"].as_str().is_some(), "{v}");
    fs::write(dir.join("20240102000000_b/down.sql"), "DROP TABLE b;").unwrap();
    let c = db.connect().await.unwrap();
    c.batch_execute("DELETE FROM _prisma_migrations WHERE finished_at IS NULL")
        .await
        .unwrap();
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "down", "--json", "--dir", "m"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["rolled_back"][0], "20240102000000_b", "{v}");
}
