//! TLS as libpq does it (issue 15, §1), against a throwaway cluster made here with
//! `ssl = on`, a CA and a server certificate made by the test, and a `pg_hba.conf` that
//! accepts only `hostssl`: every command that connects works with
//! `sslmode=verify-full&sslrootcert=ca.pem`, and a wrong CA, a wrong host name and
//! `sslmode=disable` each fail with a message naming the problem. And while `anonymize`
//! reads a live source, no process on the machine shows the password in its command line.
//!
//! This server is always the test's own (never `TEST_DATABASE_URL`): its TLS set-up is the
//! point of the test.

mod common;

use std::os::unix::fs::{chown, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{dataforge, one, run, shared_tempdir, stderr, stdout};
use dataforge::pg::local::{self, Cluster};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

const PASSWORD: &str = "tls-test-Secret-7f3a";

struct TlsServer {
    port: u16,
    /// Holds the CA files; kept for the whole test process.
    dir: tempfile::TempDir,
    _cluster: Cluster,
}

impl TlsServer {
    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
    fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }
    /// A verify-full URL to database `db` on this server, by the name its certificate lists.
    fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@localhost:{}/{db}?sslmode=verify-full&sslrootcert={}",
            self.port,
            self.ca().display()
        )
    }
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

/// Writes `contents` into the server's data folder, owned by the account the server runs as.
fn server_file(data: &Path, name: &str, contents: &str) {
    let path = data.join(name);
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let owner = std::fs::metadata(data).unwrap();
    chown(&path, Some(owner.uid()), Some(owner.gid())).unwrap();
}

fn server() -> &'static TlsServer {
    static SERVER: OnceLock<TlsServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let cluster = local::throwaway_cluster().expect("a throwaway cluster starts");
        let plain_url = cluster.url("postgres").unwrap();
        let port: u16 = plain_url
            .rsplit_once(':')
            .and_then(|(_, rest)| rest.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap();
        let dir = shared_tempdir();

        let (ca_params, ca_key, ca_pem) = ca("dataforge test CA");
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
        let (_, _, other_pem) = ca("some other CA");
        std::fs::write(dir.path().join("other-ca.pem"), &other_pem).unwrap();
        // the certificate names `localhost` only, so 127.0.0.1 is a host name mismatch
        let server_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let server_pem = params
            .signed_by(&server_key, &Issuer::new(ca_params, ca_key))
            .unwrap()
            .pem();

        let data = cluster.data_dir();
        server_file(&data, "server.crt", &server_pem);
        server_file(&data, "server.key", &server_key.serialize_pem());
        server_file(
            &data,
            "pg_hba.conf",
            "hostssl all tls_pw 127.0.0.1/32 scram-sha-256\n\
             hostssl all tls_pw ::1/128 scram-sha-256\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostssl all all ::1/128 trust\n",
        );
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).unwrap();

        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            // the old rules still hold until the reload
            let c = dataforge::pg::connect(&format!("{plain_url}?sslmode=disable"))
                .await
                .unwrap();
            c.batch_execute(&format!(
                "CREATE ROLE tls_pw LOGIN SUPERUSER PASSWORD '{PASSWORD}'; SELECT pg_reload_conf()"
            ))
            .await
            .unwrap();
        });
        let server = TlsServer {
            port,
            dir,
            _cluster: cluster,
        };
        // the reload is asynchronous: wait until plain connections are refused
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let plain = rt.block_on(dataforge::pg::connect(&format!(
                "{plain_url}?sslmode=disable"
            )));
            if plain.is_err() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the server never took the hostssl rules"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        rt.block_on(async {
            let c = dataforge::pg::connect(&server.url("postgres"))
                .await
                .unwrap();
            for db in ["seeded", "copy", "migrated"] {
                c.batch_execute(&format!("CREATE DATABASE {db}"))
                    .await
                    .unwrap();
            }
        });
        server
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_works_over_verify_full() {
    let s = tokio::task::spawn_blocking(server).await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path();
    let seeded = s.url("seeded");

    // the connection is encrypted, as the server sees it
    let c = dataforge::pg::connect(&seeded).await.unwrap();
    let ssl: bool = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl, "pg_stat_ssl says the session is not encrypted");

    run(
        dataforge(dir).args(["seed", "demo-firm", "--database-url", &seeded]),
        0,
    );
    let clients = one::<i64>(&seeded, "SELECT count(*) FROM clients").await;
    assert!(clients > 0);

    common::write_migration(
        &dir.join("migrations"),
        "20240101000000_init",
        "CREATE TABLE t (id int PRIMARY KEY);",
    );
    run(
        dataforge(dir)
            .args(["migrate", "up", "--dir", "migrations"])
            .env("DATABASE_URL", s.url("migrated")),
        0,
    );
    assert_eq!(
        one::<i64>(
            &s.url("migrated"),
            "SELECT count(*) FROM _prisma_migrations"
        )
        .await,
        1
    );

    // backup and restore: pg_dump and pg_restore get the same settings (libpq reads them)
    let out = run(
        dataforge(dir)
            .args(["backup", "--dir", "b", "--json"])
            .env("DATABASE_URL", &seeded),
        0,
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let backup = v["path"].as_str().unwrap().to_string();
    c.batch_execute("DELETE FROM tasks").await.unwrap();
    run(
        dataforge(dir)
            .args(["restore", "--backup-dir", "b", &backup])
            .env("DATABASE_URL", &seeded),
        0,
    );
    drop(c);
    assert!(one::<i64>(&seeded, "SELECT count(*) FROM tasks").await > 0);

    // anonymize live → file and live → live, and verify both ways
    // init reads the live catalog over TLS; the copies use the repository's demo-firm
    // config (init cannot know that a case title embeds its client's name, which verify
    // rightly flags)
    let init = run(
        dataforge(dir)
            .env("DATAFORGE_KEY", "tls test key, not a secret")
            .args(["anonymize", "init", "--from", &seeded]),
        0,
    );
    assert!(
        stdout(&init).contains("[tables.clients]"),
        "{}",
        stdout(&init)
    );
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("anonymize.toml"),
        dir.join("anonymize.toml"),
    )
    .unwrap();
    for to in [dir.join("copy.sql").display().to_string(), s.url("copy")] {
        let out = run(
            dataforge(dir)
                .env("DATAFORGE_KEY", "tls test key, not a secret")
                .args(["anonymize", "--from", &seeded, "--to", &to]),
            0,
        );
        assert!(stderr(&out).contains("verify"), "{}", stderr(&out));
    }
    run(
        dataforge(dir)
            .env("DATAFORGE_KEY", "tls test key, not a secret")
            .args(["verify", "--from", &seeded, "--to", &s.url("copy")]),
        0,
    );
    assert_eq!(
        one::<i64>(&s.url("copy"), "SELECT count(*) FROM clients").await,
        clients
    );
}

/// Each wrong setting fails before anything is done, in words.
#[test]
fn a_wrong_ca_a_wrong_host_and_sslmode_disable_are_each_named() {
    let s = server();
    let tmp = shared_tempdir();
    std::fs::create_dir(tmp.path().join("m")).unwrap();
    let cases = [
        (
            format!(
                "postgres://postgres@localhost:{}/seeded?sslmode=verify-full&sslrootcert={}",
                s.port,
                s.other_ca().display()
            ),
            "untrusted certificate: the server's certificate is not signed by a CA in",
        ),
        (
            format!(
                "postgres://postgres@127.0.0.1:{}/seeded?sslmode=verify-full&sslrootcert={}",
                s.port,
                s.ca().display()
            ),
            "host name mismatch: the server's certificate is not valid for `127.0.0.1`",
        ),
        (
            format!(
                "postgres://postgres@localhost:{}/seeded?sslmode=disable",
                s.port
            ),
            "the server accepts only encrypted connections from here, and sslmode=disable",
        ),
        (
            format!(
                "postgres://postgres@localhost:{}/seeded?sslmode=verify-full&sslrootcert={}",
                s.port,
                tmp.path().join("missing.pem").display()
            ),
            "missing.pem does not exist: sslmode=verify-full verifies the server against it",
        ),
        // verify-ca checks the chain: a wrong CA fails there too
        (
            format!(
                "postgres://postgres@127.0.0.1:{}/seeded?sslmode=verify-ca&sslrootcert={}",
                s.port,
                s.other_ca().display()
            ),
            "untrusted certificate: the server's certificate is not signed by a CA in",
        ),
        (
            format!(
                "postgres://postgres@localhost:{}/seeded?sslmode=require&sslrootcert=system",
                s.port
            ),
            "sslrootcert=system (the operating system's CAs) is not supported yet",
        ),
    ];
    for (url, want) in cases {
        let out = run(
            dataforge(tmp.path())
                .args(["migrate", "status", "--dir", "m"])
                .env("DATABASE_URL", &url),
            2,
        );
        let err = stderr(&out);
        assert!(err.contains(want), "{url}\nwanted: {want}\ngot: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
    // a CA file in ~/.postgresql makes every encrypted connection check the chain, as
    // libpq does (so dataforge agrees with its pg_dump child): the default sslmode too
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".postgresql")).unwrap();
    std::fs::copy(s.other_ca(), home.join(".postgresql/root.crt")).unwrap();
    let default_mode = format!("postgres://postgres@localhost:{}/seeded", s.port);
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "status", "--dir", "m"])
            .env("HOME", &home)
            .env("DATABASE_URL", &default_mode),
        2,
    );
    assert!(
        stderr(&out).contains("untrusted certificate"),
        "{}",
        stderr(&out)
    );
    std::fs::copy(s.ca(), home.join(".postgresql/root.crt")).unwrap();
    run(
        dataforge(tmp.path())
            .args(["backup", "--dir", "b"])
            .env("HOME", &home)
            .env("DATABASE_URL", &default_mode),
        0,
    );
    // verify-ca checks the chain only: the IP address is fine there
    let ok = format!(
        "postgres://postgres@127.0.0.1:{}/seeded?sslmode=verify-ca&sslrootcert={}",
        s.port,
        s.ca().display()
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(dataforge::pg::connect(&ok)).unwrap();
    // and the environment is read as libpq reads it
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "status", "--dir", "m"])
            .env(
                "DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:{}/seeded", s.port),
            )
            .env("PGSSLMODE", "verify-full")
            .env("PGSSLROOTCERT", s.ca()),
        2,
    );
    assert!(
        stderr(&out).contains("host name mismatch"),
        "{}",
        stderr(&out)
    );
}

/// Fails the test when any process's command line holds the password, polling until
/// `child` ends; returns how many command lines naming `marker` were seen.
fn watch_command_lines(
    child: std::process::Child,
    marker: &str,
    tool: Option<&str>,
) -> std::process::Output {
    let mut child = child;
    let mut seen = 0;
    let mut tool_seen = 0;
    while child.try_wait().unwrap().is_none() {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            seen += usize::from(text.contains(marker));
            tool_seen +=
                usize::from(text.contains(marker) && tool.is_some_and(|t| text.contains(t)));
            assert!(
                !text.contains(PASSWORD),
                "the password is in a command line: {text}"
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(seen > 0, "no process of the run was seen");
    if let Some(t) = tool {
        assert!(
            tool_seen > 0,
            "{t} was never seen running: the check saw nothing of it"
        );
    }
    for text in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(text).contains(PASSWORD));
    }
    out
}

/// While `anonymize` reads a live source, and while `backup` runs pg_dump, no process
/// shows the password: dataforge takes it from `PGPASSWORD` (as libpq does) or from the
/// URL in `DATABASE_URL`, and hands it to its children in their environment.
#[test]
fn no_process_shows_the_password() {
    let s = server();
    let tmp = shared_tempdir();
    let dir = tmp.path();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = dataforge::pg::connect(&s.url("postgres")).await.unwrap();
        c.batch_execute("CREATE DATABASE pwsource").await.unwrap();
    });
    let tls = format!("sslmode=verify-full&sslrootcert={}", s.ca().display());
    let without = format!("postgres://tls_pw@localhost:{}/pwsource?{tls}", s.port);
    let with = format!(
        "postgres://tls_pw:{PASSWORD}@localhost:{}/pwsource?{tls}",
        s.port
    );
    // no password anywhere: the server's scram rule refuses, which shows the rule is live
    let refused = run(
        dataforge(dir).args(["seed", "demo-firm", "--database-url", &without]),
        2,
    );
    assert!(
        stderr(&refused)
            .contains("the server asks for a password and none was given: set PGPASSWORD"),
        "{}",
        stderr(&refused)
    );
    run(
        dataforge(dir)
            .args(["seed", "demo-firm", "--scale", "20"])
            .env("PGPASSWORD", PASSWORD)
            .env("DATABASE_URL", &without),
        0,
    );
    let init = run(
        dataforge(dir)
            .env("DATAFORGE_KEY", "tls test key, not a secret")
            .env("PGPASSWORD", PASSWORD)
            .args(["anonymize", "init", "--from", &without]),
        0,
    );
    std::fs::write(dir.join("anonymize.toml"), stdout(&init)).unwrap();
    let child = dataforge(dir)
        .env("DATAFORGE_KEY", "tls test key, not a secret")
        .env("PGPASSWORD", PASSWORD)
        .args([
            "anonymize",
            "--no-verify",
            "--from",
            &without,
            "--to",
            "out.sql",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    watch_command_lines(child, "pwsource", None);
    let copy = std::fs::read_to_string(dir.join("out.sql")).unwrap();
    assert!(
        copy.contains("COPY \"public\".\"clients\" ("),
        "{:?}",
        copy.lines()
            .filter(|l| l.starts_with("COPY"))
            .collect::<Vec<_>>()
    );

    // the password in the URL: pg_dump gets it in its environment, not its argv
    let child = dataforge(dir)
        .args(["backup", "--dir", "b"])
        .env("DATABASE_URL", &with)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = watch_command_lines(child, "pwsource", Some("pg_dump"));
    assert!(stdout(&out).contains(".dump"), "{}", stdout(&out));
}

/// A server without TLS and `sslmode=require`: named as such; `prefer` (the default) falls
/// back to a plain connection.
#[test]
fn a_server_without_tls_is_named_under_require_and_used_under_prefer() {
    if std::env::var("TEST_DATABASE_URL").is_ok() {
        eprintln!("skipped: TEST_DATABASE_URL's server may have TLS on");
        return;
    }
    let plain = dataforge::fixtures::server_url().unwrap();
    let tmp = shared_tempdir();
    std::fs::create_dir(tmp.path().join("m")).unwrap();
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "status", "--dir", "m"])
            .env("DATABASE_URL", format!("{plain}?sslmode=require")),
        2,
    );
    assert!(
        stderr(&out).contains("the server does not support SSL, and sslmode=require requires it"),
        "{}",
        stderr(&out)
    );
    run(
        dataforge(tmp.path())
            .args(["migrate", "status", "--dir", "m"])
            .env("DATABASE_URL", format!("{plain}?sslmode=prefer")),
        0,
    );
}
