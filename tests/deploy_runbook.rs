//! `migrate deploy` as the whole runbook, against a real server and real HTTP receivers
//! started here: alerts to JSON and chat webhooks (one of them down), health checks by URL
//! and by command, and the rollback a failing check triggers: by `down.sql`, or by the
//! pre-deploy backup.

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use common::json_lines as events;
use common::{count, dataforge, run, shared_tempdir, stderr, write_migration};
use dataforge::fixtures::empty_database;

/// A local HTTP server: records each request's body and answers with `status`.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start(status: u16) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let (b, s) = (bodies.clone(), Arc::new(AtomicU16::new(status)));
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (b, s) = (b.clone(), s.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut conn = conn;
                    // requests on one connection, until the client closes it
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut length = 0;
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                                return;
                            }
                            if h.trim().is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':') {
                                if k.eq_ignore_ascii_case("content-length") {
                                    length = v.trim().parse().unwrap();
                                }
                            }
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).unwrap();
                        if line.starts_with("POST") {
                            b.lock().unwrap().push(String::from_utf8(body).unwrap());
                        }
                        let code = s.load(Ordering::SeqCst);
                        let answer = format!(
                            "HTTP/1.1 {code} X\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"
                        );
                        if conn.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Receiver { url, bodies }
    }

    fn json(&self) -> Vec<serde_json::Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap_or_else(|e| panic!("{b}: {e}")))
            .collect()
    }
}

/// A URL nothing listens on.
fn dead_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/dead-secret-path", l.local_addr().unwrap());
    drop(l);
    url
}

/// Reads `pipe` on a thread until it closes: the receiver hears when a line holds
/// `needle`, and the thread returns all it read.
fn watch(
    pipe: impl std::io::Read + Send + 'static,
    needle: &'static str,
) -> (
    std::sync::mpsc::Receiver<()>,
    std::thread::JoinHandle<String>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if line.contains(needle) {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    (rx, reader)
}

fn psql() -> String {
    dataforge::backup::find_tool("psql")
        .unwrap()
        .display()
        .to_string()
}

fn with_down(dir: &std::path::Path, name: &str, up: &str, down: &str) {
    write_migration(dir, name, up);
    std::fs::write(dir.join(name).join("down.sql"), down).unwrap();
}

#[tokio::test]
async fn alerts_reach_json_and_chat_receivers_in_order_and_a_dead_one_is_named() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_migration(&dir, "20240101000000_a", "CREATE TABLE t (id int);");
    write_migration(&dir, "20240102000000_b", "ALTER TABLE t ADD COLUMN v text;");
    let events_hook = Receiver::start(200);
    let chat = Receiver::start(200);
    let health = Receiver::start(200);
    let dead = dead_url();
    // one receiver from dataforge.toml, the others on the command line
    std::fs::write(
        tmp.path().join("dataforge.toml"),
        format!(
            "[deploy]\nnotify = [\"{}/events/secret-token-1\"]\n",
            events_hook.url
        ),
    )
    .unwrap();
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "deploy", "--backup-dir", "b"])
            .arg(format!(
                "--notify=slack:{}/services/T0/B0/secret-token-2",
                chat.url
            ))
            .arg(format!("--notify={dead}"))
            .arg(format!("--health-check={}/health", health.url))
            .arg(format!(
                "--health-check={} -X -q {} -c 'select 1'",
                psql(),
                db.url()
            ))
            .env("DATABASE_URL", db.url()),
        0,
    );
    let err = stderr(&out);
    // the receivers' secrets are never shown
    assert!(
        !err.contains("secret-token") && !err.contains("dead-secret-path"),
        "{err}"
    );
    assert!(err.contains("[5/5] health: 2 check(s) passed"), "{err}");
    assert!(
        err.contains("final state: deployed 2 migration(s); the health checks pass"),
        "{err}"
    );
    // a receiver that is down did not fail the deploy, and the summary names it
    let dead_shown = format!("{}/…", dead.trim_end_matches("/dead-secret-path"));
    assert!(
        err.contains(&format!("notify: {dead_shown} (json): NOT DELIVERED")),
        "{err}"
    );
    assert!(err.contains("connection refused"), "{err}");
    assert!(
        err.contains(&format!(
            "notify: {}/… (chat): 2 message(s) delivered",
            chat.url
        )),
        "{err}"
    );

    // the JSON receiver: every event, in order: started, the migrations, done
    let got = events_hook.json();
    let kinds: Vec<String> = got
        .iter()
        .map(|e| {
            let k = e["event"].as_str().unwrap().to_string();
            match e["name"].as_str() {
                Some(m) => format!("{k} {m}"),
                None => k,
            }
        })
        .filter(|k| !k.starts_with("step_"))
        .collect();
    assert_eq!(
        kinds,
        [
            "deploy_started",
            "migration_finished 20240101000000_a",
            "migration_finished 20240102000000_b",
            "done"
        ]
    );
    assert_eq!(got[0]["event"], "deploy_started");
    let last = got.last().unwrap();
    assert_eq!(last["ok"], true);
    assert!(
        last["database"]
            .as_str()
            .unwrap()
            .contains(" at 127.0.0.1:"),
        "{last}"
    );
    assert!(!last["by"].as_str().unwrap().is_empty());
    let health_done = got
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == "health")
        .expect("the health step's outcome");
    assert_eq!(health_done["detail"]["checks"].as_array().unwrap().len(), 2);
    // the chat receiver: short messages for people, started and done
    let texts: Vec<String> = chat
        .json()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[0].starts_with("dataforge deploy started on "),
        "{texts:?}"
    );
    assert!(
        texts[1].contains(" done in ")
            && texts[1].contains("deployed 2 migration(s)")
            && texts[1].contains("(applied: 20240101000000_a, 20240102000000_b)")
            && texts[1].contains("(by "),
        "{texts:?}"
    );
    // the audit log has every step, the health checks included
    let audit = std::fs::read_to_string(tmp.path().join("b/audit.log")).unwrap();
    assert!(
        audit.contains(r#""event":"deploy step finished","step":"health""#),
        "{audit}"
    );
    // and it names the receivers without their secrets
    assert!(
        audit.contains("deploy alerts")
            && !audit.contains("secret-token")
            && !audit.contains("dead-secret-path"),
        "{audit}"
    );
    let c = db.connect().await.unwrap();
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM _dataforge_migration_log
             WHERE action = 'health-check' AND migration_name = '20240102000000_b'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_failing_health_check_rolls_back_by_down_sql_and_checks_again() {
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
    with_down(
        &dir,
        "20240102000000_widgets",
        "CREATE TABLE widgets (id int);",
        "DROP TABLE widgets;",
    );
    with_down(
        &dir,
        "20240103000000_t_note",
        "ALTER TABLE t ADD COLUMN note text;",
        "ALTER TABLE t DROP COLUMN note;",
    );
    let hook = Receiver::start(200);
    // a command check that fails while the deploy's table exists, and passes without it
    let check = format!(
        "{} -X -q -v ON_ERROR_STOP=1 {} -c \"SELECT 1 / (to_regclass('public.widgets') IS NULL)::int\"",
        psql(),
        db.url()
    );
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "deploy", "--json", "--backup-dir", "b"])
            .args(["--health-timeout", "3s", "--health-interval", "1s"])
            .arg(format!("--notify={}/hook", hook.url))
            .arg(format!("--health-check={check}"))
            .env("DATABASE_URL", db.url()),
        2,
    );
    let ev = events(&out);
    let attempts = ev.iter().filter(|e| e["event"] == "health_attempt").count();
    assert!(attempts >= 3, "retried within the timeout: {attempts}");
    let failed = ev
        .iter()
        .find(|e| e["event"] == "step_failed" && e["step"] == "health")
        .expect("the health step failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("division by zero"),
        "{failed}"
    );
    let rolled = ev.iter().find(|e| e["event"] == "rolled_back").unwrap();
    assert_eq!(rolled["how"], "down");
    assert_eq!(
        rolled["migrations"],
        serde_json::json!(["20240103000000_t_note", "20240102000000_widgets"])
    );
    // the second run of the checks, reported: it passes against the schema as it was
    let again = ev
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == "health again")
        .expect("the checks ran again and passed");
    assert_eq!(again["detail"]["checks"][0]["passed"], true);
    let done = ev.iter().find(|e| e["event"] == "done").unwrap();
    assert_eq!(done["ok"], false);
    assert!(
        done["state"]
            .as_str()
            .unwrap()
            .contains("the schema and history are as before the deploy"),
        "{done}"
    );
    assert!(stderr(&out).contains("the deploy was rolled back (down.sql)"));
    // schema and history as before the deploy
    let c = db.connect().await.unwrap();
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM pg_class WHERE relname = 'widgets'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'note'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL"
        )
        .await,
        1
    );
    // every step in the log: the checks that failed, both downs, the rollback, the checks again
    let actions: Vec<String> = c
        .query(
            "SELECT action FROM _dataforge_migration_log WHERE action <> 'up' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        actions,
        [
            "health-check-failed",
            "down",
            "down",
            "deploy-rolled-back",
            "health-check"
        ]
    );
    // the receiver heard the rollback
    let heard: Vec<String> = hook
        .json()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert!(heard.contains(&"rolled_back".to_string()), "{heard:?}");
    assert_eq!(heard.last().unwrap(), "done");
}

#[tokio::test]
async fn without_down_sql_the_pre_deploy_backup_is_restored() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_migration(
        &dir,
        "20240101000000_a",
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2);",
    );
    run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    // no down.sql: only the backup can undo it
    write_migration(&dir, "20240102000000_drop", "DELETE FROM t WHERE id = 2;");
    let health = Receiver::start(500);
    let chat = Receiver::start(200);
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "deploy", "--backup-dir", "b"])
            .args(["--health-timeout", "2s", "--health-interval", "1s"])
            .arg(format!("--notify=teams:{}/webhookb2/secret", chat.url))
            .arg(format!("--health-check={}/health", health.url))
            .env("DATABASE_URL", db.url()),
        2,
    );
    let err = stderr(&out);
    // a health URL keeps its path (it names the service); a webhook's is its secret
    assert!(
        err.contains(&format!("{}/health: HTTP 500", health.url)),
        "{err}"
    );
    assert!(!err.contains("webhookb2/secret"), "{err}");
    assert!(
        err.contains("[5/5] health FAILED: failing after up"),
        "{err}"
    );
    assert!(err.contains("[6/7] rollback"), "{err}");
    assert!(err.contains("restored the pre-deploy backup"), "{err}");
    // what a restore costs is said: writes since the backup are in the pre-restore one
    assert!(
        err.contains("anything written to the database since the backup is not in it; the database as it was before the restore is in "),
        "{err}"
    );
    assert!(
        err.contains("[7/7] health again FAILED: still failing"),
        "{err}"
    );
    assert!(err.contains("they still fail after it"), "{err}");
    let c = dataforge::pg::connect(db.url()).await.unwrap();
    assert_eq!(count(&c, "SELECT count(*) FROM t").await, 2);
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM _prisma_migrations WHERE migration_name = '20240102000000_drop'"
        )
        .await,
        0
    );
    // the log, written after the restore, says what happened
    let why: String = c
        .query_one(
            "SELECT error FROM _dataforge_migration_log WHERE action = 'deploy-rolled-back'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(why.contains("restored the pre-deploy backup"), "{why}");
    let texts: Vec<String> = chat
        .json()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("was rolled back, by restoring the pre-deploy backup")),
        "{texts:?}"
    );
    assert!(
        texts.last().unwrap().contains("FAILED after") && texts.last().unwrap().contains("Next: "),
        "{texts:?}"
    );
}

#[tokio::test]
async fn no_rollback_only_reports_a_failing_check() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    with_down(
        &dir,
        "20240101000000_a",
        "CREATE TABLE t (id int);",
        "DROP TABLE t;",
    );
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "deploy", "--backup-dir", "b", "--no-rollback"])
            .args([
                "--health-timeout",
                "1s",
                "--health-check",
                "API_TOKEN=abc123 sh -c 'echo token=abc123 >&2; exit 7'",
            ])
            .env("DATABASE_URL", db.url()),
        2,
    );
    let err = stderr(&out);
    assert!(
        err.contains("(exit 7: token=*** after 1 attempt(s))"),
        "{err}"
    );
    // the token is nowhere: not on stderr, not in the audit log, not in the history
    assert!(!err.contains("abc123"), "{err}");
    let audit = std::fs::read_to_string(tmp.path().join("b/audit.log")).unwrap();
    assert!(
        audit.contains("API_TOKEN=***") && !audit.contains("abc123"),
        "{audit}"
    );
    assert!(err.contains("not rolled back (--no-rollback)"), "{err}");
    assert!(err.contains("dataforge migrate down --steps 1"), "{err}");
    let c = db.connect().await.unwrap();
    assert_eq!(
        count(&c, "SELECT count(*) FROM pg_class WHERE relname = 't'").await,
        1
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM _dataforge_migration_log WHERE action = 'health-check-failed'
             AND error NOT LIKE '%abc123%'"
        )
        .await,
        1
    );
    // nothing pending: the checks run all the same, and their failure is not hidden
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "deploy", "--backup-dir", "b"])
            .args(["--health-timeout", "1s", "--health-check", "exit 3"])
            .env("DATABASE_URL", db.url()),
        2,
    );
    let err = stderr(&out);
    assert!(
        err.contains("[2/2] health FAILED")
            && err
                .contains("final state: up to date: nothing to deploy, but the health checks fail")
            && err.contains("nothing to deploy, and the health checks fail: exit 3"),
        "{err}"
    );
    // and the history has them, under the newest applied migration
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM _dataforge_migration_log WHERE action = 'health-check-failed'
             AND migration_name = '20240101000000_a' AND error LIKE 'with nothing to deploy: exit 3%'"
        )
        .await,
        1
    );
}

#[test]
fn bad_receivers_and_checks_are_refused_before_anything_runs() {
    let tmp = shared_tempdir();
    let out = run(
        dataforge(tmp.path()).args([
            "migrate",
            "deploy",
            "--database-url",
            "postgresql://nobody@127.0.0.1:1/x",
            "--notify",
            "ftp://files.example.com/secret",
        ]),
        2,
    );
    let err = stderr(&out);
    assert!(
        err.contains("--notify: `ftp://files.example.com/…` is not an http(s) URL")
            && !err.contains("secret"),
        "{err}"
    );
    let out = run(
        dataforge(tmp.path()).args([
            "migrate",
            "deploy",
            "--database-url",
            "postgresql://nobody@127.0.0.1:1/x",
            "--no-rollback",
        ]),
        2,
    );
    assert!(
        stderr(&out).contains("--no-rollback applies to a failed health check, and there is none"),
        "{}",
        stderr(&out)
    );
    std::fs::write(
        tmp.path().join("dataforge.toml"),
        "[deploy]\nnotify = [\"https://ok.example.com/x\"]\nhealth_checks = [\"true\"]\n",
    )
    .unwrap();
    let out = run(
        dataforge(tmp.path()).args([
            "migrate",
            "deploy",
            "--database-url",
            "postgresql://nobody@127.0.0.1:1/x",
        ]),
        2,
    );
    let err = stderr(&out);
    assert!(
        err.contains("dataforge.toml") && err.contains("3:1") && err.contains("health_checks"),
        "{err}"
    );
    // a toml error that quotes a webhook does not show its secret
    std::fs::write(
        tmp.path().join("dataforge.toml"),
        "[deploy]\nnotify = \"https://hooks.slack.com/services/T0/B0/SUPERSECRET\"\n",
    )
    .unwrap();
    let err = stderr(&run(
        dataforge(tmp.path()).args([
            "migrate",
            "deploy",
            "--database-url",
            "postgresql://nobody@127.0.0.1:1/x",
        ]),
        2,
    ));
    assert!(
        err.contains("dataforge.toml") && !err.contains("SUPERSECRET"),
        "{err}"
    );
    std::fs::remove_file(tmp.path().join("dataforge.toml")).unwrap();
    // a receiver URL that cannot be sent to is refused up front, and a flood too
    let err = stderr(&run(
        dataforge(tmp.path()).args(["migrate", "deploy", "--notify", "http://127.0.0.1:99999/x"]),
        2,
    ));
    assert!(err.contains("its port `99999` is not a port"), "{err}");
    let err = stderr(&run(
        dataforge(tmp.path()).args([
            "migrate",
            "deploy",
            "--health-check",
            "true",
            "--health-interval",
            "0s",
        ]),
        2,
    ));
    assert!(
        err.contains("--health-interval under 100ms would flood the service"),
        "{err}"
    );
    // a deploy that cannot start still ends its JSON stream with the step that failed and
    // a done, and so its receivers hear it
    let out = run(
        dataforge(tmp.path()).args([
            "migrate",
            "deploy",
            "--json",
            "--dir",
            "nothere",
            "--database-url",
            "postgresql://nobody@127.0.0.1:1/x",
        ]),
        2,
    );
    let ev = events(&out);
    assert_eq!(ev[ev.len() - 2]["event"], "step_failed", "{ev:?}");
    assert_eq!(ev[ev.len() - 2]["step"], "verify");
    assert_eq!(ev.last().unwrap()["event"], "done");
    assert_eq!(ev.last().unwrap()["state"], "nothing changed");
}

#[tokio::test]
async fn a_second_deploy_waits_for_the_first_ones_checks_and_its_rollback_undoes_only_its_own() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    with_down(
        &dir,
        "20240101000000_m1",
        "CREATE TABLE m1 (id int);",
        "DROP TABLE m1;",
    );
    with_down(
        &dir,
        "20240102000000_m2",
        "CREATE TABLE m2 (id int);",
        "DROP TABLE m2;",
    );
    // the first deploy goes to m1, and its check fails after 2 s
    let first = dataforge(tmp.path())
        .args([
            "migrate",
            "deploy",
            "--json",
            "--backup-dir",
            "b1",
            "--to",
            "20240101000000_m1",
        ])
        .args([
            "--health-timeout",
            "1s",
            "--health-check",
            "sleep 2; exit 1",
        ])
        .env("DATABASE_URL", db.url())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // once m1 is applied, a second deploy of everything starts
    let c = db.connect().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while count(&c, "SELECT count(*) FROM pg_class WHERE relname = 'm1'").await == 0 {
        assert!(std::time::Instant::now() < deadline, "m1 was never applied");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let second = run(
        dataforge(tmp.path())
            .args([
                "migrate",
                "deploy",
                "--backup-dir",
                "b2",
                "--health-check",
                "true",
            ])
            .env("DATABASE_URL", db.url()),
        0,
    );
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(2), "{}", stderr(&first));
    // the first rolled back its own m1 and nothing else; the second waited, then applied both
    let rolled = events(&first)
        .into_iter()
        .find(|e| e["event"] == "rolled_back")
        .expect("the first deploy rolled back");
    assert_eq!(
        rolled["migrations"],
        serde_json::json!(["20240101000000_m1"])
    );
    assert!(
        stderr(&second).contains("waiting for the migration lock"),
        "{}",
        stderr(&second)
    );
    assert!(
        stderr(&second).contains("deployed 2 migration(s)"),
        "{}",
        stderr(&second)
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM pg_class WHERE relname IN ('m1', 'm2')"
        )
        .await,
        2
    );
}

/// Each migration's table exists exactly when the history says it is applied.
async fn consistent(url: &str) -> Result<String, String> {
    let c = dataforge::pg::connect(url).await.unwrap();
    let history = count(
        &c,
        "SELECT count(*) FROM pg_class WHERE relname = '_prisma_migrations'",
    )
    .await
        > 0;
    let mut state = String::new();
    for (name, table) in [("20240101000000_w1", "w1"), ("20240102000000_w2", "w2")] {
        let exists = count(
            &c,
            &format!("SELECT count(*) FROM pg_class WHERE relname = '{table}'"),
        )
        .await
            > 0;
        let applied = history
            && count(
                &c,
                &format!(
                    "SELECT count(*) FROM _prisma_migrations WHERE migration_name = '{name}'
                     AND finished_at IS NOT NULL AND rolled_back_at IS NULL"
                ),
            )
            .await
                > 0;
        if exists != applied {
            return Err(format!(
                "{name}: table {} but history says {}",
                if exists { "exists" } else { "missing" },
                if applied { "applied" } else { "not applied" }
            ));
        }
        state.push(if applied { 'A' } else { '-' });
    }
    Ok(state)
}

#[tokio::test]
async fn kill_9_during_the_health_checks_and_the_rollback_leaves_each_migration_whole() {
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    // each down.sql takes a second, so a kill lands inside one
    with_down(
        &dir,
        "20240101000000_w1",
        "CREATE TABLE w1 (id int);",
        "SELECT pg_sleep(1);\nDROP TABLE w1;",
    );
    with_down(
        &dir,
        "20240102000000_w2",
        "CREATE TABLE w2 (id int);",
        "SELECT pg_sleep(1);\nDROP TABLE w2;",
    );
    let mut seen = std::collections::BTreeSet::new();
    for ms in [300u64, 900, 1500, 2100, 2700, 3300, 3900, 4800] {
        let db = empty_database().await.unwrap();
        let mut child = dataforge(tmp.path())
            .args(["migrate", "deploy", "--backup-dir", "b"])
            .args([
                "--health-timeout",
                "1s",
                "--health-check",
                "sleep 1; exit 1",
            ])
            .env("DATABASE_URL", db.url())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        child.kill().unwrap(); // SIGKILL: nothing runs after this in dataforge
        let _ = child.wait();
        let state = consistent(db.url())
            .await
            .unwrap_or_else(|e| panic!("killed at {ms} ms: {e}"));
        seen.insert(state);
        // the next deploy, with a check that passes, finishes the job
        let out = run(
            dataforge(tmp.path())
                .args([
                    "migrate",
                    "deploy",
                    "--backup-dir",
                    "b",
                    "--health-check",
                    "true",
                ])
                .env("DATABASE_URL", db.url()),
            0,
        );
        assert_eq!(
            consistent(db.url()).await.unwrap(),
            "AA",
            "after a kill at {ms} ms: {}",
            stderr(&out)
        );
    }
    // the kills landed before up, during the checks and between the two rollbacks
    assert!(seen.contains("AA") && seen.contains("A-"), "{seen:?}");
}

#[tokio::test]
async fn ctrl_c_during_the_rollback_says_what_is_left_and_how_to_finish_it() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    write_migration(&dir, "20240101000000_init", "CREATE TABLE t (id int);");
    run(
        dataforge(tmp.path())
            .args(["migrate", "up"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    // the older of the deploy's two takes its time to undo
    with_down(
        &dir,
        "20240102000000_m2",
        "CREATE TABLE m2 (id int);",
        "DROP TABLE m2;\nSELECT pg_sleep(3);",
    );
    with_down(
        &dir,
        "20240103000000_m3",
        "CREATE TABLE m3 (id int);",
        "DROP TABLE m3;",
    );
    let mut child = dataforge(tmp.path())
        .args(["migrate", "deploy", "--backup-dir", "b"])
        .args(["--health-timeout", "1s", "--health-check", "exit 1"])
        .env("DATABASE_URL", db.url())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr_pipe = child.stderr.take().unwrap();
    let (started, reader) = watch(stderr_pipe, "[6/7] rollback");
    started
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the rollback started");
    // m3 is undone at once; m2's down.sql sleeps: interrupt it there
    let c = db.connect().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while count(&c, "SELECT count(*) FROM pg_class WHERE relname = 'm3'").await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "m3 was never rolled back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let signalled = std::time::Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let err = reader.join().unwrap();
    assert!(
        signalled.elapsed() < std::time::Duration::from_secs(10),
        "the interrupt took {:?}",
        signalled.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{err}");
    // what is true, and a way to finish that undoes this deploy's and nothing older
    assert!(err.contains("PARTLY ROLLED BACK"), "{err}");
    assert!(
        err.contains("finish by hand: dataforge migrate down --to 20240101000000_init"),
        "{err}"
    );
    assert!(!err.contains("nothing was left half-done"), "{err}");
    // m2's down.sql was cancelled and rolled back with its history: m2 applied, m3 not
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM pg_class WHERE relname IN ('t', 'm2')"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL"
        )
        .await,
        2
    );
    // the lock went with the session: the advice runs
    run(
        dataforge(tmp.path())
            .args(["migrate", "down", "--to", "20240101000000_init"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM pg_class WHERE relname = 'm2'").await,
        0
    );
}

#[tokio::test]
async fn ctrl_c_during_the_checks_stops_the_check_and_says_the_deploy_stays_unchecked() {
    let db = empty_database().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    with_down(
        &dir,
        "20240101000000_a",
        "CREATE TABLE t (id int);",
        "DROP TABLE t;",
    );
    // a check that would run for a minute, named so it can be looked for
    let mut child = dataforge(tmp.path())
        .args(["migrate", "deploy", "--json", "--backup-dir", "b"])
        .args([
            "--health-timeout",
            "2m",
            "--health-check",
            "sleep 61.437; exit 1",
        ])
        .env("DATABASE_URL", db.url())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout_pipe = child.stdout.take().unwrap();
    let (started, reader) = watch(stdout_pipe, r#""step":"health""#);
    started
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the checks started");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let signalled = std::time::Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let out = reader.join().unwrap();
    assert!(signalled.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(status.code(), Some(130), "{out}");
    let done: serde_json::Value = serde_json::from_str(
        out.lines()
            .rev()
            .find(|l| l.contains(r#""event":"done""#))
            .unwrap(),
    )
    .unwrap();
    assert!(
        done["state"]
            .as_str()
            .unwrap()
            .contains("the health checks were interrupted, so nothing was rolled back"),
        "{done}"
    );
    // the check's program went with it
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("sleep 61.437"))
        .collect();
    assert!(left.is_empty(), "still running: {left:?}");
    // and the history says the checks were interrupted
    let c = db.connect().await.unwrap();
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM _dataforge_migration_log
             WHERE action = 'health-check-failed' AND error LIKE 'interrupted%'"
        )
        .await,
        1
    );
}
