//! The real binary, run as a user runs it: help, bad input and its messages, files out,
//! JSON out, and the local cluster.

mod common;

use common::{dataforge, run, shared_tempdir, stderr, stdout};
use dataforge::fixtures::{empty_database, server_url, Fixture};

#[test]
fn every_command_explains_itself_with_examples() {
    let dir = shared_tempdir();
    for args in [
        vec!["--help"],
        vec!["seed", "--help"],
        vec!["migrate", "--help"],
        vec!["migrate", "up", "--help"],
        vec!["migrate", "status", "--help"],
        vec!["local", "--help"],
        vec!["anonymize", "--help"],
        vec!["anonymize", "init", "--help"],
        vec!["anonymize", "transformers", "--help"],
        vec!["verify", "--help"],
    ] {
        let out = run(dataforge(dir.path()).args(&args), 0);
        let text = stdout(&out);
        assert!(text.contains("Usage: dataforge"), "{args:?}: {text}");
        if !args.contains(&"up") && !args.contains(&"status") {
            assert!(
                text.contains("Examples:"),
                "{args:?} has no examples: {text}"
            );
        }
    }
    let seed_help = stdout(&run(dataforge(dir.path()).args(["seed", "--help"]), 0));
    for flag in [
        "--seed",
        "--scale",
        "--now",
        "--dry-run",
        "--prune",
        "--json",
        "--out",
        "--database-url",
    ] {
        assert!(seed_help.contains(flag), "seed --help lacks {flag}");
    }
}

#[test]
fn an_unknown_profile_lists_the_available_ones() {
    let dir = shared_tempdir();
    let out = run(
        dataforge(dir.path()).args(["seed", "no-such-firm", "--out", "x"]),
        2,
    );
    let err = stderr(&out);
    assert_eq!(
        err.trim(),
        "dataforge: unknown profile `no-such-firm`; available profiles: demo-firm. \
         A path to a profile .toml file works too"
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn a_malformed_profile_points_at_file_line_and_column() {
    let dir = shared_tempdir();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[profile]\nname = \"bad\"\nanchor = \"2026-01-01\"\n[[entity]]\nname = \"t\"\ncount = \"many\"\n",
    )
    .unwrap();
    let err = stderr(&run(
        dataforge(dir.path()).args(["seed", "./bad.toml", "--out", "o"]),
        2,
    ));
    assert!(err.starts_with("dataforge: ./bad.toml:6:9: "), "{err}");
    assert!(err.contains("expected"), "{err}");
    assert!(
        !dir.path().join("o").exists(),
        "files were written for a bad profile"
    );
}

#[test]
fn an_unreachable_database_is_one_line_with_the_password_masked() {
    let dir = shared_tempdir();
    let out = run(
        dataforge(dir.path()).args([
            "seed",
            "demo-firm",
            "--database-url",
            "postgresql://app:hunter2@127.0.0.1:1/prod",
        ]),
        2,
    );
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("dataforge: cannot connect to postgresql://app:***@127.0.0.1:1/prod"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    assert!(
        err.contains("connection refused") || err.contains("Connection refused"),
        "{err}"
    );
}

#[tokio::test]
async fn failed_authentication_is_one_clear_line_with_the_password_masked() {
    let admin = dataforge::pg::connect(&server_url().unwrap())
        .await
        .unwrap();
    let role = dataforge::pg::local::AUTH_PROBE_ROLE;
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN CREATE ROLE {role} LOGIN PASSWORD 'right'; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        ))
        .await
        .unwrap();
    if std::env::var("TEST_DATABASE_URL").is_ok() {
        eprintln!("skipped: TEST_DATABASE_URL's server decides its own authentication rules");
        return;
    }
    let url = server_url()
        .unwrap()
        .replace("postgres@", &format!("{role}:wrong-secret@"));
    let dir = shared_tempdir();
    let err = stderr(&run(
        dataforge(dir.path())
            .args(["migrate", "status", "--dir", "."])
            .env("DATABASE_URL", &url),
        2,
    ));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("{role}:***@")), "{err}");
    assert!(!err.contains("wrong-secret"), "{err}");
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(err.contains("SQLSTATE 28P01"), "{err}");
}

#[test]
fn no_server_binaries_and_no_url_says_how_to_get_one() {
    let dir = shared_tempdir();
    let out = run(
        dataforge(dir.path())
            .args(["seed", "demo-firm"])
            .env("DATAFORGE_PG_BIN", dir.path().join("nothing-here")),
        2,
    );
    let err = stderr(&out);
    assert!(err.contains("no PostgreSQL server binaries found"), "{err}");
    assert!(err.contains("apt-get install postgresql"), "{err}");
    assert!(err.contains("DATABASE_URL"), "{err}");
}

#[tokio::test]
async fn seed_json_then_rerun_then_dry_run_through_the_binary() {
    let db = empty_database().await.unwrap();
    let dir = shared_tempdir();
    let first = run(
        dataforge(dir.path())
            .args(["seed", "demo-firm", "--json"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(v["tables"]["users"]["inserted"], 5);
    assert_eq!(v["tables"]["tasks"]["inserted"], 30);
    assert_eq!(v["migrations_applied"].as_array().unwrap().len(), 2);
    let again = run(
        dataforge(dir.path()).args(["seed", "demo-firm", "--json", "--database-url", db.url()]),
        0,
    );
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    for t in ["firms", "users", "clients", "cases", "documents", "tasks"] {
        assert_eq!(v["tables"][t]["inserted"], 0, "{t}");
        assert_eq!(v["tables"][t]["updated"], 0, "{t}");
        assert_eq!(v["tables"][t]["deleted"], 0, "{t}");
    }
    let dry = run(
        dataforge(dir.path()).args([
            "seed",
            "demo-firm",
            "--seed",
            "2",
            "--dry-run",
            "--database-url",
            db.url(),
        ]),
        0,
    );
    let table = stdout(&dry);
    assert!(table.starts_with("table "), "{table}");
    assert!(stderr(&dry).contains("dry run: nothing was written"));
    let client = db.connect().await.unwrap();
    let title: String = client
        .query_one(
            "SELECT title FROM cases WHERE case_number LIKE 'DLF-%-00002'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let fresh = run(
        dataforge(dir.path()).args(["seed", "demo-firm", "--json", "--database-url", db.url()]),
        0,
    );
    let v: serde_json::Value = serde_json::from_slice(&fresh.stdout).unwrap();
    assert_eq!(
        v["tables"]["cases"]["updated"], 0,
        "the dry run with another seed changed rows: {title}"
    );
}

#[tokio::test]
async fn out_files_load_with_psql_into_the_same_rows_as_dataforge_writes() {
    let psql_ok = std::process::Command::new("psql")
        .arg("--version")
        .output()
        .is_ok();
    if !psql_ok {
        common::skip("psql is not installed");
        return;
    }
    let dir = shared_tempdir();
    run(
        dataforge(dir.path()).args(["seed", "demo-firm", "--out", "seeds/demo-firm"]),
        0,
    );
    let seeds = dir.path().join("seeds/demo-firm");
    for f in [
        "firms.csv",
        "users.csv",
        "cases.csv",
        "documents.csv",
        "tasks.csv",
        "clients.csv",
        "load.sql",
        "schema.sql",
    ] {
        assert!(seeds.join(f).is_file(), "{f} missing");
    }
    let mut rdr = csv::Reader::from_path(seeds.join("users.csv")).unwrap();
    assert_eq!(rdr.headers().unwrap().get(0), Some("id"));
    assert_eq!(rdr.records().count(), 5);

    let by_psql = empty_database().await.unwrap();
    for script in ["schema.sql", "load.sql"] {
        let out = std::process::Command::new("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                by_psql.url(),
                "-f",
                script,
            ])
            .current_dir(&seeds)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql -f {script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let by_dataforge = Fixture::new("demo-firm").create().await.unwrap();
    let digest = "SELECT md5(string_agg(x, E'\\n' ORDER BY x)) FROM (\
        SELECT t::text x FROM firms t UNION ALL SELECT t::text FROM users t \
        UNION ALL SELECT t::text FROM clients t UNION ALL SELECT t::text FROM cases t \
        UNION ALL SELECT t::text FROM documents t UNION ALL SELECT t::text FROM tasks t) s";
    async fn digest_of(db: &dataforge::fixtures::TestDb, sql: &str) -> String {
        let client = db.connect().await.unwrap();
        client.query_one(sql, &[]).await.unwrap().get(0)
    }
    let a = digest_of(&by_psql, digest).await;
    let b = digest_of(&by_dataforge, digest).await;
    assert_eq!(
        a, b,
        "psql -f load.sql and dataforge seed produced different rows"
    );
}

#[test]
fn local_cluster_start_status_url_stop_destroy() {
    let dir = shared_tempdir();
    let status = run(dataforge(dir.path()).args(["local", "status"]), 1);
    assert!(stdout(&status).starts_with("not created"));
    let started = run(dataforge(dir.path()).args(["local", "start"]), 0);
    let url = stdout(&started).trim().to_string();
    assert!(
        url.starts_with("postgresql://postgres@127.0.0.1:") && url.ends_with("/dataforge"),
        "{url}"
    );
    assert_eq!(
        stdout(&run(dataforge(dir.path()).args(["local", "url"]), 0)).trim(),
        url
    );
    assert!(
        stdout(&run(dataforge(dir.path()).args(["local", "status"]), 0)).starts_with("running")
    );
    if std::process::Command::new("psql")
        .arg("--version")
        .output()
        .is_ok()
    {
        let q = std::process::Command::new("psql")
            .args(["-X", "-Atc", "SELECT 1", &url])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&q.stdout).trim(),
            "1",
            "psql does not accept {url}"
        );
    }
    // seed with no URL uses the running cluster and says where
    let seeded = run(dataforge(dir.path()).args(["seed", "demo-firm"]), 0);
    assert!(
        stderr(&seeded).contains(&format!("psql {url}")),
        "{}",
        stderr(&seeded)
    );
    let gitignore = std::fs::read_to_string(dir.path().join(".dataforge/.gitignore")).unwrap();
    assert_eq!(gitignore.trim(), "*");
    run(dataforge(dir.path()).args(["local", "stop"]), 0);
    assert!(
        stdout(&run(dataforge(dir.path()).args(["local", "status"]), 1)).starts_with("stopped")
    );
    // the URL of a stopped cluster is still printed, but the exit says it is not running
    let stopped = run(dataforge(dir.path()).args(["local", "url"]), 1);
    assert_eq!(stdout(&stopped).trim(), url);
    assert_eq!(
        stderr(&stopped),
        "dataforge: the local cluster is not running; `dataforge local start` starts it\n"
    );
    // a stopped cluster starts again with its data
    run(dataforge(dir.path()).args(["local", "start"]), 0);
    let rerun = run(
        dataforge(dir.path()).args(["seed", "demo-firm", "--json"]),
        0,
    );
    let v: serde_json::Value = serde_json::from_slice(&rerun.stdout).unwrap();
    assert_eq!(v["tables"]["cases"]["unchanged"], 10);
    // a database in it marked production: destroy refuses (stopped or not) until confirmed
    run(
        dataforge(dir.path()).args(["mark", "production", "--database-url", &url]),
        0,
    );
    run(dataforge(dir.path()).args(["local", "stop"]), 0);
    let refused = run(dataforge(dir.path()).args(["local", "destroy"]), 2);
    assert!(
        stderr(&refused).contains(
            "refusing to destroy the local cluster and with it the database dataforge: it is marked production"
        ) && stderr(&refused).contains("pass --yes --confirm-database dataforge"),
        "{}",
        stderr(&refused)
    );
    assert!(dir.path().join(".dataforge/pg/data").exists());
    assert!(
        stdout(&run(dataforge(dir.path()).args(["local", "status"]), 1)).starts_with("stopped"),
        "a refused destroy leaves a stopped cluster stopped"
    );
    // two marked databases: each is named to confirm
    run(dataforge(dir.path()).args(["local", "start"]), 0);
    let c2 = url.replace("/dataforge", "/postgres");
    run(
        std::process::Command::new("psql").args(["-X", "-q", "-c", "CREATE DATABASE prod2", &c2]),
        0,
    );
    run(
        dataforge(dir.path()).args([
            "mark",
            "production",
            "--database-url",
            &url.replace("/dataforge", "/prod2"),
        ]),
        0,
    );
    let refused = run(
        dataforge(dir.path()).args([
            "local",
            "destroy",
            "--yes",
            "--confirm-database",
            "dataforge",
        ]),
        2,
    );
    assert!(
        stderr(&refused).contains("--confirm-database dataforge is not prod2"),
        "{}",
        stderr(&refused)
    );
    run(
        dataforge(dir.path()).args([
            "local",
            "destroy",
            "--yes",
            "--confirm-database",
            "dataforge",
            "--confirm-database",
            "prod2",
        ]),
        0,
    );
    assert!(!dir.path().join(".dataforge/pg").exists());
}

#[test]
fn a_project_folder_the_postgres_account_cannot_enter_is_named() {
    // SAFETY: geteuid has no preconditions
    if unsafe { libc::geteuid() } != 0 {
        common::skip("only root runs the local cluster as another account");
        return;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap(); // owned by root, closed to others:
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let o = run(dataforge(dir.path()).args(["seed", "demo-firm"]), 2);
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "that account cannot enter {} (mode 700), on the way to {}/.dataforge/pg. Run dataforge \
             from a folder it can reach, let it through with `chmod o+x {}`",
            dir.path().display(),
            dir.path().display(),
            dir.path().display()
        )),
        "{e}"
    );
    assert!(!dir.path().join(".dataforge").exists(), "nothing is made");
}

/// A missing config is one line, said once, with how to write one.
#[test]
fn a_missing_anonymization_config_says_how_to_write_one() {
    let dir = shared_tempdir();
    let o = run(
        dataforge(dir.path())
            .env("DATAFORGE_KEY", "a test key, 16+ characters")
            .args([
                "anonymize",
                "--config",
                "nothere.toml",
                "--from",
                "in.sql",
                "--to",
                "out.sql",
            ]),
        2,
    );
    let e = stderr(&o);
    assert_eq!(e.matches("No such file or directory").count(), 1, "{e}");
    assert!(
        e.contains("cannot read the anonymization config nothere.toml: ")
            && e.contains(
                "`dataforge anonymize init --from SRC > anonymize.toml` writes one to review"
            ),
        "{e}"
    );
}

/// A reader that goes away (`| head -1`) ends the run quietly: no message, exit 0.
#[test]
fn a_closed_stdout_is_a_quiet_exit() {
    let dir = shared_tempdir();
    for args in [
        &["anonymize", "transformers"][..],
        &["anonymize", "transformers", "--markdown"][..],
    ] {
        let mut child = dataforge(dir.path())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // closed before the child writes a byte
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}: {:?}", out.status);
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Completion scripts for each shell and man pages from the same definitions as --help
/// (issue 15, §6); bash checks the script's syntax, and each page names its command.
#[test]
fn completions_and_man_pages_are_generated_from_the_definitions() {
    let dir = shared_tempdir();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = stdout(&run(dataforge(dir.path()).args(["completions", shell]), 0));
        for word in ["dataforge", "seed", "migrate", "anonymize", "database-url"] {
            assert!(out.contains(word), "{shell} completions lack {word}");
        }
    }
    let bash = stdout(&run(dataforge(dir.path()).args(["completions", "bash"]), 0));
    std::fs::write(dir.path().join("dataforge.bash"), &bash).unwrap();
    run(
        std::process::Command::new("bash")
            .arg("-n")
            .arg(dir.path().join("dataforge.bash")),
        0,
    );
    let wrong = run(dataforge(dir.path()).args(["completions", "tcsh"]), 2);
    assert!(
        stderr(&wrong).contains("[possible values: bash, elvish, fish, powershell, zsh]"),
        "{}",
        stderr(&wrong)
    );

    let page = stdout(&run(dataforge(dir.path()).args(["man"]), 0));
    assert!(page.contains(".TH dataforge 1"), "{page}");
    let listed = stdout(&run(
        dataforge(dir.path()).args(["man", "--dir", "man1"]),
        0,
    ));
    assert!(listed.lines().count() > 20, "{listed}");
    let up = std::fs::read_to_string(dir.path().join("man1/dataforge-migrate-up.1")).unwrap();
    assert!(
        up.contains("dataforge\\-migrate\\-up \\- Apply pending migrations"),
        "{up}"
    );
    assert!(up.contains("\\-\\-lock\\-timeout"), "{up}");
}

/// With --json, a command that fails still prints JSON on stdout: `{"error": …}`, the same
/// one line stderr has (issue 15, §5).
#[test]
fn json_output_on_an_error_is_json_with_an_error_field() {
    let dir = shared_tempdir();
    for args in [
        vec!["backup", "--json"],
        vec!["migrate", "status", "--json", "--dir", "."],
        vec!["seed", "demo-firm", "--json"],
    ] {
        let out = run(
            dataforge(dir.path())
                .args(&args)
                .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"),
            2,
        );
        let v: serde_json::Value = serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", stdout(&out)));
        let error = v["error"].as_str().unwrap();
        assert!(
            error.starts_with("cannot connect to postgres://nobody@127.0.0.1:1/none"),
            "{error}"
        );
        assert!(
            stderr(&out).ends_with(&format!("dataforge: {error}\n")),
            "{}",
            stderr(&out)
        );
    }
}

/// Every `migrate` and `local` subcommand's help has examples, and resolve and baseline
/// list only the flags they use (issue 16, §6).
#[test]
fn every_migrate_and_local_subcommand_has_examples() {
    let dir = shared_tempdir();
    for sub in [
        "new", "up", "down", "status", "verify", "history", "lint", "approve", "plan", "deploy",
        "resolve", "baseline",
    ] {
        let help = stdout(&run(
            dataforge(dir.path()).args(["migrate", sub, "--help"]),
            0,
        ));
        assert!(help.contains("Examples:"), "migrate {sub}: {help}");
    }
    for sub in ["start", "stop", "status", "url", "destroy"] {
        let help = stdout(&run(
            dataforge(dir.path()).args(["local", sub, "--help"]),
            0,
        ));
        assert!(help.contains("Examples:"), "local {sub}: {help}");
    }
    for sub in ["resolve", "baseline"] {
        let help = stdout(&run(
            dataforge(dir.path()).args(["migrate", sub, "--help"]),
            0,
        ));
        for unused in ["--lock-timeout", "--retries", "--statement-timeout"] {
            assert!(!help.contains(unused), "migrate {sub} lists {unused}");
        }
    }
}
