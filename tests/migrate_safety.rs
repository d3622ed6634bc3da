//! The safety net around `migrate up`, against a real server through the binary: the lint
//! gate and approvals, migrations that cannot run in a transaction, and Ctrl-C.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::json_lines as events;
use common::{count, dataforge, run, shared_tempdir, stderr, stdout, write_migration};
use dataforge::fixtures::empty_database;

#[tokio::test]
async fn destructive_migrations_need_an_approval_bound_to_their_checksum() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_migration(
        &dir,
        "20240101000000_a",
        "CREATE TABLE t (id int, legacy text);",
    );
    run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    write_migration(
        &dir,
        "20240102000000_drop_legacy",
        "SET lock_timeout = '5s';\nALTER TABLE t DROP COLUMN legacy;\n",
    );
    let up = || {
        let mut c = dataforge(tmp.path());
        c.args(["migrate", "up"]).env("DATABASE_URL", db.url());
        c
    };

    // refused before anything runs, naming file:line:col, the rule and both ways out
    let err = stderr(&run(&mut up(), 2));
    assert!(
        err.contains("refusing to run unapproved destructive migrations; nothing was run"),
        "{err}"
    );
    assert!(
        err.contains("20240102000000_drop_legacy: drop-column (first at migrations/20240102000000_drop_legacy/migration.sql:2:15: drops column t.legacy and its data)"),
        "{err}"
    );
    assert!(
        err.contains("dataforge migrate approve 20240102000000_drop_legacy --reason"),
        "{err}"
    );
    assert!(
        err.contains("--allow-destructive 20240102000000_drop_legacy"),
        "{err}"
    );
    // --json: the refusal as one document, with what was not run
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "up", "--json"])
            .env("DATABASE_URL", db.url()),
        2,
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["applied"], serde_json::json!([]), "{v}");
    assert_eq!(
        v["not_run"],
        serde_json::json!(["20240102000000_drop_legacy"]),
        "{v}"
    );
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("refusing to run unapproved destructive migrations"),
        "{v}"
    );
    let c = db.connect().await.unwrap();
    assert_eq!(
        count(&c, "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'legacy'").await,
        1
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM _prisma_migrations").await,
        1
    );

    // an approval needs a reason, and a migration with nothing to approve is refused
    let err = stderr(&run(
        dataforge(tmp.path()).args(["migrate", "approve", "20240101000000_a", "--reason", "x"]),
        2,
    ));
    assert!(
        err.contains("nothing to approve in 20240101000000_a"),
        "{err}"
    );

    // approved: the file beside the migration binds the approval to its checksum
    let out = run(
        dataforge(tmp.path()).args([
            "migrate",
            "approve",
            "20240102000000_drop_legacy",
            "--reason",
            "legacy was unused since release 41",
        ]),
        0,
    );
    let approval_file = dir.join("20240102000000_drop_legacy/approval.toml");
    assert_eq!(
        stdout(&out).trim(),
        "migrations/20240102000000_drop_legacy/approval.toml"
    );
    let approval = fs::read_to_string(&approval_file).unwrap();
    let sql = fs::read_to_string(dir.join("20240102000000_drop_legacy/migration.sql")).unwrap();
    assert!(
        approval.contains(&format!(
            "checksum = \"{}\"",
            dataforge::migrate::checksum(&sql)
        )),
        "{approval}"
    );
    assert!(approval.contains("rules = [\"drop-column\"]"), "{approval}");

    // editing the migration voids the approval
    fs::write(
        dir.join("20240102000000_drop_legacy/migration.sql"),
        format!("{sql}ALTER TABLE t DROP COLUMN id;\n"),
    )
    .unwrap();
    let err = stderr(&run(&mut up(), 2));
    assert!(
        err.contains("its approval was given for different contents"),
        "{err}"
    );
    // one line per migration: the new finding is counted (`migrate lint` lists each)
    assert!(
        err.contains("20240102000000_drop_legacy: drop-column ×2"),
        "{err}"
    );
    fs::write(dir.join("20240102000000_drop_legacy/migration.sql"), &sql).unwrap();

    // with the approval it runs, and the log keeps the approval and the findings
    run(&mut up(), 0);
    assert_eq!(
        count(&c, "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'legacy'").await,
        0
    );
    let row = c
        .query_one(
            "SELECT approval, lint_findings->0->>'rule' FROM _dataforge_migration_log \
             WHERE migration_name = '20240102000000_drop_legacy'",
            &[],
        )
        .await
        .unwrap();
    let approval: String = row.get(0);
    assert!(
        approval.contains("legacy was unused since release 41"),
        "{approval}"
    );
    assert_eq!(row.get::<_, String>(1), "drop-column");

    // --allow-destructive lets one run through without an approval file
    write_migration(&dir, "20240103000000_truncate", "TRUNCATE t;");
    run(&mut up(), 2);
    run(
        up().args(["--allow-destructive", "20240103000000_truncate"]),
        0,
    );
    let approval: String = c
        .query_one(
            "SELECT approval FROM _dataforge_migration_log WHERE migration_name = '20240103000000_truncate'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(approval.contains("--allow-destructive"), "{approval}");
}

#[tokio::test]
async fn a_syntax_error_stops_up_before_anything_runs() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_migration(&dir, "20240101000000_a", "CREATE TABLE a (id int);");
    write_migration(
        &dir,
        "20240102000000_b",
        "CREATE TABLE b (id int);\nCREATE TABEL c (id int);\n",
    );
    let err = stderr(&run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", db.url()),
        2,
    ));
    assert!(
        err.contains(
            "migrations/20240102000000_b/migration.sql:2:8: syntax error at or near \"TABEL\""
        ),
        "{err}"
    );
    let c = db.connect().await.unwrap();
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('a', 'b')"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn concurrent_index_builds_run_outside_a_transaction_and_a_failed_one_is_cleaned_up() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_migration(
        &dir,
        "20240101000000_a",
        "CREATE TABLE t (id int, email text);\nINSERT INTO t VALUES (1, 'a'), (2, 'a');",
    );
    write_migration(
        &dir,
        "20240102000000_idx",
        "CREATE INDEX CONCURRENTLY t_id_idx ON t (id);\n\
         CREATE UNIQUE INDEX CONCURRENTLY t_email_key ON t (email);\n",
    );
    let up = || {
        let mut c = dataforge(tmp.path());
        c.args(["migrate", "up"]).env("DATABASE_URL", db.url());
        c
    };
    // the duplicate emails fail the unique build, which leaves an INVALID index behind
    let err = stderr(&run(&mut up(), 2));
    assert!(
        err.contains(
            "runs statement by statement outside a transaction (CREATE INDEX CONCURRENTLY)"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "failed at statement 2 of 2 (migrations/20240102000000_idx/migration.sql:2:1)"
        ),
        "{err}"
    );
    assert!(
        err.contains("the statements before that one stayed applied"),
        "{err}"
    );
    let c = db.connect().await.unwrap();
    let invalid = "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                   WHERE c.relname = 't_email_key' AND NOT i.indisvalid";
    assert_eq!(count(&c, invalid).await, 1);
    let failed: Option<String> = c
        .query_one(
            "SELECT logs FROM _prisma_migrations WHERE migration_name = '20240102000000_idx' AND finished_at IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(failed.unwrap().contains("could not create unique index"));

    // the next run says how to recover; after fixing the data it drops the INVALID index and rebuilds
    let err = stderr(&run(&mut up(), 2));
    assert!(
        err.contains("migrate resolve --rolled-back 20240102000000_idx"),
        "{err}"
    );
    c.batch_execute("UPDATE t SET email = 'b' WHERE id = 2")
        .await
        .unwrap();
    fs::write(
        dir.join("20240102000000_idx/migration.sql"),
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_id_idx ON t (id);\n\
         CREATE UNIQUE INDEX CONCURRENTLY t_email_key ON t (email);\n",
    )
    .unwrap();
    run(
        dataforge(tmp.path())
            .args(["migrate", "resolve", "--rolled-back", "20240102000000_idx"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    let err = stderr(&run(&mut up(), 0));
    assert!(
        err.contains(
            "dropping INVALID index public.t_email_key left by an earlier failed concurrent build"
        ),
        "{err}"
    );
    assert_eq!(count(&c, invalid).await, 0);
    assert_eq!(
        count(&c, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname IN ('t_id_idx', 't_email_key') AND i.indisvalid").await,
        2
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM _prisma_migrations WHERE migration_name = '20240102000000_idx' AND finished_at IS NOT NULL").await,
        1
    );
}

#[tokio::test]
async fn ctrl_c_cancels_the_migration_and_releases_the_lock_at_once() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_migration(
        &dir,
        "20240101000000_slow",
        "CREATE TABLE slow (id int);\nSELECT pg_sleep(60);\n",
    );
    let child = dataforge(tmp.path())
        .args(["migrate", "up"])
        .env("DATABASE_URL", db.url())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let c = db.connect().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&c, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()").await == 0 {
        assert!(Instant::now() < deadline, "the migration never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let interrupted = Instant::now();
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    // the exit of any interrupted command: 130 for Ctrl-C
    assert_eq!(out.status.code(), Some(130));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("interrupted: the running migration was cancelled and rolled back, and the migration lock released"), "{err}");
    assert!(interrupted.elapsed() < Duration::from_secs(10));
    // the server let go: no advisory lock, no sleeping statement, nothing applied
    let mut released = false;
    for _ in 0..100 {
        if count(&c, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").await == 0
            && count(&c, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()").await == 0
        {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        released,
        "the lock or the statement outlived the interrupted run"
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'slow'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM _prisma_migrations WHERE migration_name = '20240101000000_slow'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn plan_reports_locks_live_table_sizes_findings_and_risk() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_migration(
        &dir,
        "20240101000000_a",
        "CREATE TABLE users (id int, legacy text);",
    );
    run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    let c = db.connect().await.unwrap();
    c.batch_execute("INSERT INTO users SELECT g, 'x' FROM generate_series(1, 1234) g")
        .await
        .unwrap();
    write_migration(
        &dir,
        "20240102000000_b",
        "ALTER TABLE users DROP COLUMN legacy;\nCREATE INDEX CONCURRENTLY users_id ON users (id);\n",
    );
    let plan = |format: &str, code: i32| {
        stdout(&run(
            dataforge(tmp.path())
                .args(["migrate", "plan", "--format", format])
                .env("DATABASE_URL", db.url()),
            code,
        ))
    };
    let text = plan("text", 1);
    assert!(
        text.contains("20240102000000_b  risk: high  (BLOCKED: needs approval)"),
        "{text}"
    );
    assert!(
        text.contains("runs outside a transaction (CREATE INDEX CONCURRENTLY)"),
        "{text}"
    );
    assert!(
        text.contains("lock: ACCESS EXCLUSIVE on users (blocks all reads and writes)"),
        "{text}"
    );
    assert!(
        text.contains("lock: SHARE UPDATE EXCLUSIVE on users"),
        "{text}"
    );
    assert!(text.contains("table users: 1234 rows, "), "{text}");
    assert!(
        text.contains("high risk: 1:19: drops column users.legacy"),
        "{text}"
    );

    let md = plan("markdown", 1);
    assert!(md.starts_with("# Migration plan for `"), "{md}");
    assert!(
        md.contains("1 pending migration(s); overall risk: **high**"),
        "{md}"
    );
    assert!(md.contains("| 1 | `ALTER TABLE users DROP COLUMN legacy` | ACCESS EXCLUSIVE on users | all reads and writes |"), "{md}");
    assert!(md.contains("| `users` | 1234 |"), "{md}");

    let v: serde_json::Value = serde_json::from_str(&plan("json", 1)).unwrap();
    assert_eq!(v["blocked"][0], "20240102000000_b");
    assert_eq!(v["migrations"][0]["tables"]["users"]["rows"], 1234);

    // approved, the plan no longer needs attention
    run(
        dataforge(tmp.path()).args([
            "migrate",
            "approve",
            "20240102000000_b",
            "--reason",
            "unused",
        ]),
        0,
    );
    assert!(plan("text", 0).contains("risk: high  (approved)"));
}

#[tokio::test]
async fn deploy_verifies_backs_up_applies_and_verifies_with_one_json_event_per_line() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_migration(&dir, "20240101000000_a", "CREATE TABLE t (id int);");
    write_migration(
        &dir,
        "20240102000000_slow",
        "INSERT INTO t SELECT 1 FROM pg_sleep(2.5);",
    );
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "deploy", "--json", "--backup-dir", "b"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    let ev = events(&out);
    let steps: Vec<String> = ev
        .iter()
        .filter(|e| e["event"].as_str().unwrap().starts_with("step_"))
        .map(|e| {
            format!(
                "{} {}",
                e["event"].as_str().unwrap(),
                e["step"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            "step_started verify",
            "step_finished verify",
            "step_started backup",
            "step_finished backup",
            "step_started up",
            "step_finished up",
            "step_started verify after",
            "step_finished verify after",
        ]
    );
    let kinds: Vec<&str> = ev.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"migration_started") && kinds.contains(&"migration_finished"),
        "{kinds:?}"
    );
    let progress = ev
        .iter()
        .find(|e| e["event"] == "progress")
        .expect("a progress event during the slow migration");
    assert_eq!(progress["migration"], "20240102000000_slow");
    assert!(
        progress["query"].as_str().unwrap().contains("pg_sleep"),
        "{progress}"
    );
    assert_eq!(ev.last().unwrap()["event"], "done");
    assert_eq!(ev.last().unwrap()["state"], "deployed 2 migration(s)");
    // the log names the backup taken before
    let backup_file = ev[3]["detail"]["file"].as_str().unwrap().to_string();
    let c = db.connect().await.unwrap();
    let logged: String = c
        .query_one(
            "SELECT backup FROM _dataforge_migration_log WHERE migration_name = '20240101000000_a'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(logged, backup_file);

    // nothing pending: no backup, exit 0
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "deploy", "--backup-dir", "b"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    assert!(
        stderr(&out).contains("final state: up to date: nothing to deploy"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_failed_non_transactional_deploy_is_restored_with_restore_on_failure() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_migration(
        &dir,
        "20240101000000_a",
        "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1), (1);",
    );
    run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    write_migration(
        &dir,
        "20240102000000_idx",
        "CREATE INDEX CONCURRENTLY t_plain ON t (id);\nCREATE UNIQUE INDEX CONCURRENTLY t_unique ON t (id);\n",
    );
    let out = run(
        dataforge(tmp.path())
            .args([
                "migrate",
                "deploy",
                "--json",
                "--restore-on-failure",
                "--backup-dir",
                "b",
            ])
            .env("DATABASE_URL", db.url()),
        2,
    );
    let ev = events(&out);
    let failed = ev.iter().find(|e| e["event"] == "step_failed").unwrap();
    assert_eq!(failed["step"], "up");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("failed at statement 2 of 2"), "{failed}");
    // what is said is true after the restore: nothing "stayed applied"
    assert!(
        error.ends_with("; restoring the pre-deploy backup") && !error.contains("stayed applied"),
        "{failed}"
    );
    assert!(ev
        .iter()
        .any(|e| e["event"] == "step_finished" && e["step"] == "restore"));
    assert_eq!(
        ev.last().unwrap()["state"],
        "restored to the pre-deploy backup: the database is as before the deploy"
    );
    // and the closing error on stderr says the same, not what stayed applied before
    let err = stderr(&out);
    assert!(
        err.contains("the pre-deploy backup was restored, so the database is as before the deploy")
            && !err.contains("stayed applied"),
        "{err}"
    );
    // as before: no index from the first statement, no history row for the migration
    let c = db.connect().await.unwrap();
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname IN ('t_plain', 't_unique')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM _prisma_migrations WHERE migration_name = '20240102000000_idx'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn backfill_updates_in_key_batches_and_resumes_after_an_interruption() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let c = db.connect().await.unwrap();
    c.batch_execute(
        "CREATE TABLE users (id bigint PRIMARY KEY, email text, email_lower text);
         INSERT INTO users SELECT g, 'User' || g || '@Example.com', NULL FROM generate_series(1, 25) g;
         UPDATE users SET email_lower = 'kept' WHERE id = 3;",
    )
    .await
    .unwrap();
    let backfill = |extra: &[&str]| {
        let mut cmd = dataforge(tmp.path());
        cmd.args([
            "backfill",
            "--table",
            "users",
            "--set",
            "email_lower = lower(email)",
            "--where",
            "email_lower IS NULL",
            "--batch",
            "10",
        ])
        .args(extra)
        .env("DATABASE_URL", db.url());
        cmd
    };
    // interrupted after its first batch (it sleeps 3 s before the second)
    let child = backfill(&["--sleep", "3s"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = c
            .query_opt("SELECT batches FROM _dataforge_backfill", &[])
            .await
            .ok()
            .flatten()
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(0);
        if done >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no batch committed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait_with_output();
    assert_eq!(
        count(&c, "SELECT count(*) FROM users WHERE email_lower IS NULL").await,
        15
    );

    // the same command resumes after key 10 and finishes
    let out = run(&mut backfill(&["--json"]), 0);
    assert!(stderr(&out).contains("resuming job"), "{}", stderr(&out));
    assert!(stderr(&out).contains("after key 10"), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["batches"], 3);
    assert_eq!(v["updated"], 24, "id 3 was already set and is left alone");
    assert_eq!(v["finished"], true);
    assert_eq!(
        count(&c, "SELECT count(*) FROM users WHERE email_lower IS NULL").await,
        0
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM users WHERE email_lower = 'kept'").await,
        1
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM users WHERE email_lower = 'user7@example.com'"
        )
        .await,
        1
    );

    // run again once finished: says so and does nothing; --again takes the rows that
    // match now (issue 15, §5)
    c.batch_execute("INSERT INTO users VALUES (26, 'New@Example.com', NULL)")
        .await
        .unwrap();
    let out = run(&mut backfill(&[]), 0);
    assert_eq!(stdout(&out), "", "no update reported");
    assert!(
        stderr(&out).contains("finished before: it updated 24 rows in 3 batches then, and nothing was done now. To run it again over the rows that match now, add --again"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM users WHERE email_lower IS NULL").await,
        1
    );
    let out = run(&mut backfill(&["--again", "--json"]), 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (v["updated"].as_u64(), v["finished"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM users WHERE email_lower = 'new@example.com'"
        )
        .await,
        1
    );

    // any key a btree orders: uuid (no max(uuid) in PostgreSQL) and text
    c.batch_execute(
        "CREATE TABLE u (id uuid PRIMARY KEY, n int);
         INSERT INTO u SELECT md5(g::text)::uuid, NULL FROM generate_series(1, 23) g;
         CREATE TABLE t (code text PRIMARY KEY, n int);
         INSERT INTO t SELECT 'k' || g, NULL FROM generate_series(1, 23) g;",
    )
    .await
    .unwrap();
    for table in ["u", "t"] {
        let out = run(
            dataforge(tmp.path())
                .args([
                    "backfill", "--table", table, "--set", "n = 1", "--batch", "5", "--json",
                ])
                .env("DATABASE_URL", db.url()),
            0,
        );
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(
            (v["updated"].as_u64(), v["batches"].as_u64()),
            (Some(23), Some(5)),
            "{table}"
        );
        assert_eq!(
            count(&c, &format!("SELECT count(*) FROM {table} WHERE n IS NULL")).await,
            0
        );
    }

    // Ctrl-C: the running batch rolls back, the message says how to resume, exit 130
    c.batch_execute("UPDATE users SET email_lower = NULL")
        .await
        .unwrap();
    let child = dataforge(tmp.path())
        .args([
            "backfill",
            "--table",
            "users",
            "--set",
            "email_lower = lower(email)",
            "--batch",
            "5",
            "--sleep",
            "5s",
        ])
        .env("DATABASE_URL", db.url())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(
        &c,
        "SELECT count(*) FROM users WHERE email_lower IS NOT NULL",
    )
    .await
        < 5
    {
        assert!(Instant::now() < deadline, "no batch committed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dataforge: interrupted (Ctrl-C): the running batch was cancelled and rolled back; every batch before it is committed and saved, so the same command resumes after it"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // a table without a single-column key is refused, naming it
    c.batch_execute("CREATE TABLE pairs (a int, b int, PRIMARY KEY (a, b))")
        .await
        .unwrap();
    let out = run(
        dataforge(tmp.path())
            .args(["backfill", "--table", "pairs", "--set", "b = b"])
            .env("DATABASE_URL", db.url()),
        2,
    );
    assert!(
        stderr(&out).contains("pairs has 2 primary key columns"),
        "{}",
        stderr(&out)
    );
}

/// Adopting a history (issue 16, §1): 50 migrations, 10 of them destructive. The refusal
/// is one line per migration and ends with the one command; `approve --through` once, and
/// a fresh database builds with plain `up`; editing one approved file makes `up` refuse
/// that one alone.
#[tokio::test]
async fn approve_through_adopts_a_history_in_one_command() {
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    for i in 0..50 {
        let name = format!("2024010100{i:04}_m{i}");
        let sql = if i % 5 == 4 {
            format!("ALTER TABLE t{} DROP COLUMN x;", i - 1)
        } else {
            format!("CREATE TABLE t{i} (id int, x int);")
        };
        write_migration(&dir, &name, &sql);
    }
    let last = "20240101000049_m49";
    let db = empty_database().await.unwrap();
    let up = |db: &dataforge::fixtures::TestDb| {
        let mut c = dataforge(tmp.path());
        c.args(["migrate", "up"]).env("DATABASE_URL", db.url());
        c
    };
    let refused = run(&mut up(&db), 2);
    let err = stderr(&refused);
    assert_eq!(
        err.matches(": drop-column (first at ").count(),
        10,
        "one line per destructive migration: {err}"
    );
    assert!(
        err.contains(&format!(
            "approve them all at once: `dataforge migrate approve --through {last} --reason"
        )),
        "{err}"
    );
    assert!(err.lines().count() < 20, "a short refusal: {err}");

    let out = run(
        dataforge(tmp.path()).args([
            "migrate",
            "approve",
            "--through",
            last,
            "--reason",
            "adopting the existing history",
        ]),
        0,
    );
    assert!(
        stderr(&out).contains("approved 10 migration(s)"),
        "{}",
        stderr(&out)
    );
    assert!(dir.join("approvals.toml").exists());
    let applied = run(&mut up(&db), 0);
    assert_eq!(stdout(&applied).lines().count(), 50);

    // a fresh database; one approved file edited: that one alone is refused
    let fresh = empty_database().await.unwrap();
    std::fs::write(
        dir.join("20240101000009_m9/migration.sql"),
        "ALTER TABLE t8 DROP COLUMN x; -- edited",
    )
    .unwrap();
    let refused = run(&mut up(&fresh), 2);
    let err = stderr(&refused);
    assert!(
        err.contains("20240101000009_m9: drop-column")
            && err.contains("its approval was given for different contents"),
        "{err}"
    );
    assert_eq!(err.matches(": drop-column (first at ").count(), 1, "{err}");
    assert!(
        err.contains("dataforge migrate approve 20240101000009_m9 --reason"),
        "{err}"
    );
}

/// `migrate plan` quotes every name as SQL needs it: mixed case, spaces, a dot inside a
/// name, a reserved word — each table found and counted (issue 16, §5).
#[tokio::test]
async fn plan_quotes_names_with_spaces_quotes_dots_and_mixed_case() {
    let db = empty_database().await.unwrap();
    let c = db.connect().await.unwrap();
    c.batch_execute(
        r#"CREATE SCHEMA "Sales Dept";
           CREATE TABLE "Sales Dept"."Order Items" (id int); INSERT INTO "Sales Dept"."Order Items" VALUES (1), (2);
           CREATE TABLE "Customer" (id int); INSERT INTO "Customer" VALUES (1), (2), (3);
           CREATE TABLE "a.b" (id int); INSERT INTO "a.b" VALUES (1);
           CREATE TABLE "order" (id int);
           CREATE TABLE "we""ird" (id int);"#,
    )
    .await
    .unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_migration(
        &dir,
        "20240101000000_touch",
        r#"ALTER TABLE "Sales Dept"."Order Items" ADD COLUMN note text;
ALTER TABLE "Customer" ADD COLUMN note text;
ALTER TABLE "a.b" ADD COLUMN note text;
ALTER TABLE "order" ADD COLUMN note text;
ALTER TABLE "we""ird" ADD COLUMN note text;
"#,
    );
    let out = dataforge(tmp.path())
        .args(["migrate", "plan"])
        .env("DATABASE_URL", db.url())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.code().is_some_and(|c| c < 2), "{}", stderr(&out));
    for want in [
        r#"table "Sales Dept"."Order Items": 2 rows"#,
        r#"table "Customer": 3 rows"#,
        r#"table "a.b": 1 rows"#,
        r#"table "order": 0 rows"#,
        r#"table "we""ird": 0 rows"#,
    ] {
        assert!(text.contains(want), "{want}\n{text}");
    }
}

/// The risky migration of the `lint --fix` test, on tables that hold rows.
const TIGHTEN: &str = "-- tighten things
CREATE UNIQUE INDEX \"User_email_key\" ON \"User\"(\"email\");
ALTER TABLE \"Post\" ADD CONSTRAINT \"Post_authorId_fkey\" FOREIGN KEY (\"authorId\") REFERENCES \"User\"(id), ADD CHECK (n > 0);
ALTER TABLE \"User\" ALTER COLUMN email SET NOT NULL;
ALTER TABLE \"Post\" ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE \"Post\" DROP COLUMN legacy;
";

/// `(statement, lock)` of every statement `migrate plan` lists, for every pending migration.
fn planned_locks(tmp: &std::path::Path, url: &str, code: i32) -> Vec<(String, String)> {
    let out = run(
        dataforge(tmp)
            .args(["migrate", "plan", "--format", "json"])
            .env("DATABASE_URL", url),
        code,
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mut locks = Vec::new();
    for m in v["migrations"].as_array().unwrap() {
        for s in m["statements"].as_array().unwrap() {
            locks.push((
                s["sql"].as_str().unwrap().to_string(),
                s["lock"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    locks
}

#[tokio::test]
async fn lint_fix_rewrites_apply_to_a_database_with_rows_and_take_weaker_locks() {
    let db = empty_database().await.unwrap();
    let applied_elsewhere = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_migration(
        &dir,
        "20240101000000_init",
        "CREATE TABLE \"User\" (id int PRIMARY KEY, email text, age int);\n\
         CREATE TABLE \"Post\" (id int PRIMARY KEY, \"authorId\" int, legacy text, n int);\n",
    );
    run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    let c = db.connect().await.unwrap();
    c.batch_execute(
        "INSERT INTO \"User\" SELECT g, 'u' || g || '@example.com', 30 FROM generate_series(1, 2000) g;
         INSERT INTO \"Post\" SELECT g, 1 + g % 2000, 'old', 1 + g % 7 FROM generate_series(1, 5000) g;",
    )
    .await
    .unwrap();
    let original = "20240201000000_tighten";
    write_migration(&dir, original, TIGHTEN);
    // another database has applied the original already
    run(
        dataforge(tmp.path())
            .args(["migrate", "up", "--allow-destructive", original])
            .env("DATABASE_URL", applied_elsewhere.url()),
        0,
    );

    // the original: the scans happen under locks that block writes (or everything)
    let before = planned_locks(tmp.path(), db.url(), 1);
    let lock_of = |locks: &[(String, String)], start: &str| {
        locks
            .iter()
            .find(|(sql, _)| sql.starts_with(start))
            .unwrap_or_else(|| panic!("no statement starting {start:?} in {locks:#?}"))
            .1
            .clone()
    };
    assert_eq!(
        lock_of(&before, "CREATE UNIQUE INDEX \"User_email_key\""),
        "SHARE"
    );
    assert_eq!(
        lock_of(
            &before,
            "ALTER TABLE \"User\" ALTER COLUMN email SET NOT NULL"
        ),
        "ACCESS EXCLUSIVE"
    );

    // --dry-run: the diff, and nothing written
    let dry = run(
        dataforge(tmp.path()).args(["migrate", "lint", "--fix", "--dry-run"]),
        0,
    );
    let diff = stdout(&dry);
    assert!(
        stderr(&dry).contains("rewriting the newest migration, 20240201000000_tighten"),
        "{}",
        stderr(&dry)
    );
    assert!(
        diff.contains("+++ migrations/20240201000000_tighten_02_concurrent_index/migration.sql\n"),
        "{diff}"
    );
    assert!(
        diff.contains(
            "+CREATE UNIQUE INDEX CONCURRENTLY \"User_email_key\" ON \"User\"(\"email\");"
        ),
        "{diff}"
    );
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 2, "--dry-run wrote");

    // --fix: five folders beside the untouched original
    run(
        dataforge(tmp.path())
            .args(["migrate", "lint", "--fix", original])
            .current_dir(&dir),
        0,
    );
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "20240101000000_init",
            "20240201000000_tighten",
            "20240201000000_tighten_01_expand",
            "20240201000000_tighten_02_concurrent_index",
            "20240201000000_tighten_03_backfill",
            "20240201000000_tighten_04_validate",
            "20240201000000_tighten_05_contract",
        ]
    );
    assert_eq!(
        fs::read_to_string(dir.join(original).join("migration.sql")).unwrap(),
        TIGHTEN
    );
    // a second --fix refuses to overwrite the first one's folders
    let again = run(
        dataforge(tmp.path()).args([
            "migrate",
            "lint",
            "--fix",
            "migrations/20240201000000_tighten",
        ]),
        2,
    );
    assert!(
        stderr(&again).contains("exists already"),
        "{}",
        stderr(&again)
    );

    // both would apply: up refuses, and nothing runs
    let up = |to: Option<&str>, code: i32| {
        let mut cmd = dataforge(tmp.path());
        cmd.args(["migrate", "up"]).env("DATABASE_URL", db.url());
        if let Some(to) = to {
            cmd.args(["--to", to]);
        }
        run(&mut cmd, code)
    };
    let refused = stderr(&up(None, 2));
    assert!(
        refused.contains("20240201000000_tighten_01_expand is `migrate lint --fix`'s rewrite of 20240201000000_tighten, and 20240201000000_tighten is still in the migrations folder"),
        "{refused}"
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'User_email_key'"
        )
        .await,
        0
    );

    // the original deleted: a database that applied it refuses the rewrite
    fs::remove_dir_all(dir.join(original)).unwrap();
    let err = stderr(&run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", applied_elsewhere.url()),
        2,
    ));
    assert!(
        err.contains("which this database has applied already"),
        "{err}"
    );

    // the rewrite: every scan runs under SHARE UPDATE EXCLUSIVE (reads and writes go on);
    // the stronger locks left are taken by statements that scan nothing
    let after = planned_locks(tmp.path(), db.url(), 1);
    assert_eq!(
        lock_of(
            &after,
            "CREATE UNIQUE INDEX CONCURRENTLY \"User_email_key\""
        ),
        "SHARE UPDATE EXCLUSIVE"
    );
    for validate in [
        "ALTER TABLE \"Post\" VALIDATE CONSTRAINT \"Post_authorId_fkey\"",
        "ALTER TABLE \"Post\" VALIDATE CONSTRAINT \"Post_n_check\"",
        "ALTER TABLE \"User\" VALIDATE CONSTRAINT \"User_email_not_null\"",
        "ALTER TABLE \"Post\" VALIDATE CONSTRAINT \"Post_token_not_null\"",
    ] {
        assert_eq!(
            lock_of(&after, validate),
            "SHARE UPDATE EXCLUSIVE",
            "{validate}"
        );
    }
    assert!(after.iter().all(|(_, lock)| lock != "SHARE"), "{after:#?}");
    // and lint finds none of the rewritten risks in them
    let lint = stdout(&run(dataforge(tmp.path()).args(["migrate", "lint"]), 1));
    for rule in [
        "index-without-concurrently",
        "foreign-key-without-not-valid",
        "check-without-not-valid",
        "set-not-null",
        "volatile-default",
    ] {
        assert!(!lint.contains(rule), "{rule}: {lint}");
    }
    assert!(lint.contains("_05_contract/migration.sql"), "{lint}");

    // applied in order on a database with rows: expand and index, backfill, validate
    let post_file = "SELECT pg_relation_filenode('\"Post\"')::bigint";
    let filenode = count(&c, post_file).await;
    up(Some("20240201000000_tighten_02_concurrent_index"), 0);
    assert_eq!(
        count(&c, post_file).await,
        filenode,
        "adding the column rewrote the table"
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM \"Post\" WHERE token IS NULL").await,
        5000
    );
    // between the steps the application goes on writing, old rows included
    c.batch_execute(
        "UPDATE \"Post\" SET n = n + 1 WHERE id <= 10;
         INSERT INTO \"Post\" (id, \"authorId\", n) VALUES (9001, 1, 1);",
    )
    .await
    .unwrap();
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM \"Post\" WHERE id = 9001 AND token IS NOT NULL"
        )
        .await,
        1,
        "new rows get the default at once"
    );
    run(
        dataforge(tmp.path())
            .args([
                "backfill",
                "--table",
                "\"Post\"",
                "--set",
                "token = gen_random_uuid()",
                "--where",
                "token IS NULL",
            ])
            .env("DATABASE_URL", db.url()),
        0,
    );
    up(Some("20240201000000_tighten_04_validate"), 0);
    run(
        dataforge(tmp.path()).args([
            "migrate",
            "approve",
            "20240201000000_tighten_05_contract",
            "--reason",
            "no release reads Post.legacy",
        ]),
        0,
    );
    up(None, 0);

    // the end state is the original's
    assert_eq!(
        count(&c, "SELECT count(*) FROM pg_constraint WHERE conrelid IN ('\"Post\"'::regclass, '\"User\"'::regclass) AND NOT convalidated").await,
        0
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM pg_constraint WHERE conname IN ('Post_authorId_fkey', 'Post_n_check')").await,
        2
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM pg_attribute WHERE attrelid IN ('\"Post\"'::regclass, '\"User\"'::regclass) AND attname IN ('email', 'token') AND attnotnull").await,
        2
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM pg_index WHERE indexrelid = '\"User_email_key\"'::regclass AND indisvalid AND indisunique").await,
        1
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM pg_attribute WHERE attrelid = '\"Post\"'::regclass AND attname = 'legacy' AND NOT attisdropped").await,
        0
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM \"Post\" WHERE token IS NOT NULL").await,
        5001
    );
    // the temporary NOT NULL checks are gone again
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM pg_constraint WHERE conname LIKE '%_not_null'"
        )
        .await,
        0
    );

    // straight through, with no manual backfill: the backfill migration gives old rows
    // their values before NOT NULL is validated
    let fresh = empty_database().await.unwrap();
    run(
        dataforge(tmp.path())
            .args(["migrate", "up", "--to", "20240101000000_init"])
            .env("DATABASE_URL", fresh.url()),
        0,
    );
    let f = fresh.connect().await.unwrap();
    f.batch_execute(
        "INSERT INTO \"User\" SELECT g, 'u' || g, 1 FROM generate_series(1, 50) g;
         INSERT INTO \"Post\" SELECT g, 1, 'old', 1 FROM generate_series(1, 300) g;",
    )
    .await
    .unwrap();
    run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", fresh.url()),
        0,
    );
    assert_eq!(
        count(&f, "SELECT count(DISTINCT token) FROM \"Post\"").await,
        300,
        "every old row has its own value, as the original's volatile default gave it"
    );

    // the original coming back (a merge) where its rewrite is applied: refused
    write_migration(&dir, original, TIGHTEN);
    let err = stderr(&run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", fresh.url()),
        2,
    ));
    assert!(
        err.contains(
            "migration 20240201000000_tighten has been replaced by 20240201000000_tighten_01_expand"
        ),
        "{err}"
    );
}

/// A non-transactional migration killed with SIGKILL between its statements leaves a
/// history row that says how far it got, not one with empty logs.
#[tokio::test]
async fn a_killed_non_transactional_migration_leaves_a_row_saying_how_far_it_got() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_migration(
        &dir,
        "20240101000000_slow_index",
        "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY t_id ON t (id);\nSELECT pg_sleep(60);\n",
    );
    let mut child = dataforge(tmp.path())
        .args(["migrate", "up"])
        .env("DATABASE_URL", db.url())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let c = db.connect().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&c, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()").await == 0 {
        assert!(Instant::now() < deadline, "the migration never reached its third statement");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL: nothing runs after this in dataforge
    child.wait().unwrap();
    c.batch_execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()")
        .await
        .unwrap();
    let row = c
        .query_one(
            "SELECT finished_at IS NULL, logs FROM _prisma_migrations WHERE migration_name = '20240101000000_slow_index'",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    let logs: String = row.get(1);
    assert!(
        logs.starts_with("interrupted: dataforge was running statement 3 of 3 (migrations/20240101000000_slow_index/migration.sql:3:1)"),
        "{logs}"
    );
    assert!(
        logs.contains("2 statement(s) before it committed"),
        "{logs}"
    );
    // the next run refuses, quoting that note
    let err = stderr(&run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", db.url()),
        2,
    ));
    assert!(err.contains("was running statement 3 of 3"), "{err}");
}
