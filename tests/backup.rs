//! `dataforge backup`, `restore` and `mark`, against a real server through the binary.

mod common;

use std::collections::BTreeMap;
use std::fs;

use common::{dataforge, run, shared_tempdir, stderr, stdout};
use dataforge::fixtures::Fixture;

/// Row count and a content hash of every table, to compare databases.
async fn contents(url: &str) -> BTreeMap<String, (i64, String)> {
    let c = dataforge::pg::connect(url).await.unwrap();
    let tables: Vec<String> = c
        .query(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables \
             WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = BTreeMap::new();
    for t in tables {
        let row = c
            .query_one(
                &format!("SELECT count(*), coalesce(md5(string_agg(x::text, E'\\n' ORDER BY x::text)), '') FROM {t} x"),
                &[],
            )
            .await
            .unwrap();
        out.insert(t, (row.get(0), row.get(1)));
    }
    out
}

fn only_dump(dir: &std::path::Path) -> std::path::PathBuf {
    let dumps: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "dump"))
        .collect();
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    dumps[0].clone()
}

#[tokio::test]
async fn backup_then_damage_then_restore_gives_back_identical_data() {
    let db = Fixture::new("demo-firm").seed(1).create().await.unwrap();
    let tmp = shared_tempdir();
    let before = contents(db.url()).await;
    assert!(
        before.len() >= 6 && before.values().all(|(n, _)| *n > 0),
        "{before:?}"
    );

    let out = run(
        dataforge(tmp.path())
            .args(["backup", "--dir", "b", "--json"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let path = std::path::PathBuf::from(v["path"].as_str().unwrap());
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with(&format!("backup-{}-", db.name())) && name.ends_with(".dump"),
        "{name}"
    );
    // production data: the folder and every file its owner's only (issue 15, §2)
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: std::path::PathBuf| fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        let b = tmp.path().join("b");
        assert_eq!(mode(b.clone()), 0o700, "the backup folder");
        for f in [
            name.clone(),
            format!("{name}.json"),
            format!("{name}.blake3"),
            "audit.log".into(),
        ] {
            assert_eq!(mode(b.join(&f)), 0o600, "{f}");
        }
    }
    let manifest: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(tmp.path().join("b").join(format!("{name}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["tables"]["public.tasks"], before["public.tasks"].0);
    assert!(manifest["server_version"]
        .as_str()
        .unwrap()
        .chars()
        .next()
        .unwrap()
        .is_ascii_digit());
    let checksum = fs::read_to_string(tmp.path().join("b").join(format!("{name}.blake3"))).unwrap();
    assert_eq!(
        checksum,
        format!("{}  {name}\n", manifest["blake3"].as_str().unwrap())
    );

    // damage: a table dropped, rows deleted and changed
    let c = db.connect().await.unwrap();
    c.batch_execute("DROP TABLE tasks; DELETE FROM documents WHERE status = 'Draft'; UPDATE clients SET name = 'x'")
        .await
        .unwrap();
    drop(c);
    assert_ne!(contents(db.url()).await, before);

    let out = run(
        dataforge(tmp.path())
            .args(["restore", "--backup-dir", "b"])
            .arg(tmp.path().join("b").join(&name))
            .env("DATABASE_URL", db.url()),
        0,
    );
    assert!(
        stdout(&out).contains("matching the manifest"),
        "{}",
        stdout(&out)
    );
    assert_eq!(contents(db.url()).await, before);

    // the damaged state was backed up first, and both operations are in the audit log
    let dumps = fs::read_dir(tmp.path().join("b"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "dump"))
        .count();
    assert_eq!(dumps, 2);
    let audit = fs::read_to_string(tmp.path().join("b/audit.log")).unwrap();
    let ops: Vec<String> = audit
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["operation"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ops, ["backup", "backup", "restore"]);
}

#[tokio::test]
async fn a_tampered_or_corrupt_backup_is_refused_before_anything_is_touched() {
    let db = Fixture::new("demo-firm").seed(1).create().await.unwrap();
    let tmp = shared_tempdir();
    run(
        dataforge(tmp.path())
            .args(["backup", "--dir", "b"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    let dump = only_dump(&tmp.path().join("b"));
    let mut bytes = fs::read(&dump).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&dump, &bytes).unwrap();
    let c = db.connect().await.unwrap();
    c.batch_execute("DELETE FROM tasks").await.unwrap();
    let out = run(
        dataforge(tmp.path())
            .args(["restore", "--backup-dir", "b"])
            .arg(&dump)
            .env("DATABASE_URL", db.url()),
        2,
    );
    let err = stderr(&out);
    assert!(err.contains("does not match its checksum"), "{err}");
    assert!(err.contains("nothing was touched"), "{err}");
    // untouched: the deletion stands, no pre-restore backup was taken
    let n: i64 = c
        .query_one("SELECT count(*) FROM tasks", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    assert_eq!(
        fs::read_dir(tmp.path().join("b"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "dump"))
            .count(),
        1
    );

    // a backup whose manifest is missing is refused too
    fs::remove_file(dump.with_file_name(format!(
        "{}.json",
        dump.file_name().unwrap().to_str().unwrap()
    )))
    .unwrap();
    let err = stderr(&run(
        dataforge(tmp.path())
            .args(["restore"])
            .arg(&dump)
            .env("DATABASE_URL", db.url()),
        2,
    ));
    assert!(
        err.contains("cannot read the manifest beside the backup"),
        "{err}"
    );
}

#[tokio::test]
async fn restore_over_a_production_database_needs_yes_and_its_name() {
    let db = Fixture::new("demo-firm").seed(1).create().await.unwrap();
    let tmp = shared_tempdir();
    run(
        dataforge(tmp.path())
            .args(["backup", "--dir", "b"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    let dump = only_dump(&tmp.path().join("b"));
    let out = run(
        dataforge(tmp.path())
            .args(["mark", "production"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    assert_eq!(stdout(&out), format!("{} marked production\n", db.name()));
    let c = db.connect().await.unwrap();
    c.batch_execute("DELETE FROM tasks").await.unwrap();

    let restore = |extra: &[&str], code: i32| {
        stderr(&run(
            dataforge(tmp.path())
                .args(["restore", "--backup-dir", "b"])
                .arg(&dump)
                .args(extra)
                .env("DATABASE_URL", db.url()),
            code,
        ))
    };
    let err = restore(&[], 2);
    assert!(
        err.contains(&format!(
            "refusing to restore over {}: it is marked production (`dataforge mark production`). Nothing was done. To go ahead, pass --yes --confirm-database {}",
            db.name(),
            db.name()
        )),
        "{err}"
    );
    // a wrong name is said to be wrong (issue 15, §4)
    let err = restore(&["--yes", "--confirm-database", "other"], 2);
    assert!(
        err.contains(&format!(
            "--confirm-database other is not {}, the database this would restore over; nothing was done",
            db.name()
        )),
        "{err}"
    );
    let n: i64 = c
        .query_one("SELECT count(*) FROM tasks", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "a refused restore touched the database");
    drop(c);

    restore(&["--yes", "--confirm-database", db.name()], 0);
    let c = db.connect().await.unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM tasks", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 30);
    // the mark survives the restore
    assert!(dataforge::backup::production::marked(&c).await.unwrap());

    // a URL pattern in dataforge.toml counts as a mark too
    run(
        dataforge(tmp.path())
            .args(["mark", "none"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    fs::write(
        tmp.path().join("dataforge.toml"),
        format!("[production]\nurls = [\"*/{}*\"]\n", db.name()),
    )
    .unwrap();
    let err = restore(&[], 2);
    assert!(err.contains("matches the production pattern"), "{err}");
}

/// Seeding (demo data in production is never wanted; --prune deletes rows) and rolling
/// back migrations refuse a production database unless confirmed by name, and a wrong
/// name is said to be wrong (issue 15, §4).
#[tokio::test]
async fn seed_and_migrate_down_on_production_need_yes_and_its_name() {
    let db = Fixture::new("demo-firm").seed(1).create().await.unwrap();
    let tmp = shared_tempdir();
    run(
        dataforge(tmp.path())
            .args(["mark", "production"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    let seed = |extra: &[&str], code: i32| {
        stderr(&run(
            dataforge(tmp.path())
                .args(["seed", "demo-firm", "--prune"])
                .args(extra)
                .env("DATABASE_URL", db.url()),
            code,
        ))
    };
    let e = seed(&[], 2);
    assert!(
        e.contains(&format!(
            "refusing to seed demo data into {}: it is marked production (`dataforge mark production`). Nothing was done. To go ahead, pass --yes --confirm-database {}",
            db.name(),
            db.name()
        )),
        "{e}"
    );
    let e = seed(&["--yes", "--confirm-database", "prod"], 2);
    assert!(
        e.contains(&format!("--confirm-database prod is not {}", db.name())),
        "{e}"
    );
    seed(&["--yes", "--confirm-database", db.name()], 0);

    let migrations = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/demo-firm/migrations");
    let e = stderr(&run(
        dataforge(tmp.path())
            .args(["migrate", "down", "--dir", migrations])
            .env("DATABASE_URL", db.url()),
        2,
    ));
    assert!(
        e.contains(&format!(
            "refusing to roll back migrations of {}",
            db.name()
        )),
        "{e}"
    );
    for (args, action) in [
        (
            vec![
                "migrate",
                "resolve",
                "--rolled-back",
                "20250101000000_init",
                "--dir",
                migrations,
            ],
            "rewrite the migration history of",
        ),
        (
            vec!["migrate", "baseline", "--dir", migrations],
            "rewrite the migration history of",
        ),
        (
            vec!["backfill", "--table", "tasks", "--set", "title = title"],
            "rewrite rows of",
        ),
    ] {
        let e = stderr(&run(
            dataforge(tmp.path())
                .args(&args)
                .env("DATABASE_URL", db.url()),
            2,
        ));
        assert!(
            e.contains(&format!("refusing to {action} {}", db.name())),
            "{args:?}: {e}"
        );
    }
}

/// `backup --recipient` encrypts at rest with age (issue 15, §3): the file is no pg_dump
/// archive; restore refuses without an identity and with a wrong one, touching nothing,
/// and restores with the right one; the stock `age` tool decrypts it too; recipients in
/// dataforge.toml encrypt every backup.
#[tokio::test]
async fn encrypted_backups_restore_only_with_a_matching_identity() {
    use age::secrecy::ExposeSecret as _;
    let db = Fixture::new("demo-firm").seed(1).create().await.unwrap();
    let tmp = shared_tempdir();
    let dir = tmp.path();
    let before = contents(db.url()).await;
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    let secret = id.to_string().expose_secret().to_string();
    fs::write(dir.join("key.txt"), format!("# test key\n{secret}\n")).unwrap();
    fs::write(
        dir.join("wrong.txt"),
        format!(
            "{}\n",
            age::x25519::Identity::generate()
                .to_string()
                .expose_secret()
        ),
    )
    .unwrap();

    let out = run(
        dataforge(dir)
            .args(["backup", "--dir", "b", "--json", "--recipient", &recipient])
            .env("DATABASE_URL", db.url()),
        0,
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let path = dir.join(v["path"].as_str().unwrap());
    assert!(path.to_string_lossy().ends_with(".dump.age"), "{path:?}");
    let manifest = fs::read_to_string(format!("{}.json", path.display())).unwrap();
    let m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(m["encryption"]["format"], "age");
    assert_eq!(m["encryption"]["recipients"][0], recipient.as_str());
    assert!(!manifest.contains("AGE-SECRET-KEY"), "{manifest}");
    // not a pg_dump archive on disk
    let bytes = fs::read(&path).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    assert!(!bytes.windows(5).any(|w| w == b"PGDMP"));
    let pg_restore = dataforge::backup::find_tool("pg_restore").unwrap();
    let listed = std::process::Command::new(&pg_restore)
        .arg("--list")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        !listed.status.success(),
        "pg_restore read the encrypted file"
    );

    let c = dataforge::pg::connect(db.url()).await.unwrap();
    c.batch_execute("DELETE FROM tasks").await.unwrap();
    let damaged = contents(db.url()).await;
    let files = || fs::read_dir(dir.join("b")).unwrap().count();
    let files_before = files();
    for (identity, want) in [
        (None, "is encrypted (age, to "),
        (Some("wrong.txt"), "does not match any recipient of"),
    ] {
        let mut cmd = dataforge(dir);
        cmd.args(["restore", "--backup-dir", "b"])
            .arg(&path)
            .env("DATABASE_URL", db.url());
        if let Some(i) = identity {
            cmd.args(["--identity", i]);
        }
        let out = run(&mut cmd, 2);
        assert!(
            stderr(&out).contains(want) && stderr(&out).contains("nothing was touched"),
            "{}",
            stderr(&out)
        );
        assert_eq!(contents(db.url()).await, damaged, "the target was touched");
        assert_eq!(files(), files_before, "a pre-restore backup was taken");
    }
    let out = run(
        dataforge(dir)
            .args(["restore", "--backup-dir", "b"])
            .arg(&path)
            .env("DATABASE_URL", db.url())
            .env("DATAFORGE_BACKUP_IDENTITY", dir.join("key.txt")),
        0,
    );
    assert!(
        stderr(&out).contains("decrypted, pg_restore reads it"),
        "{}",
        stderr(&out)
    );
    assert_eq!(contents(db.url()).await, before);
    // the target's own backup, taken first, is encrypted as the restored one was
    let r: Vec<String> = fs::read_dir(dir.join("b"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dump") || n.ends_with(".dump.age"))
        .collect();
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(
        r.iter().all(|n| n.ends_with(".dump.age")),
        "a pre-restore backup in the clear: {r:?}"
    );

    // the stock age tool opens it too
    match std::process::Command::new("age").arg("--version").output() {
        Ok(_) => {
            let plain = dir.join("plain.dump");
            run(
                std::process::Command::new("age")
                    .args(["-d", "-i"])
                    .arg(dir.join("key.txt"))
                    .arg("-o")
                    .arg(&plain)
                    .arg(&path),
                0,
            );
            let listed = std::process::Command::new(&pg_restore)
                .arg("--list")
                .arg(&plain)
                .output()
                .unwrap();
            assert!(listed.status.success());
            assert_eq!(
                blake3::hash(&fs::read(&plain).unwrap()).to_hex().as_str(),
                m["encryption"]["plaintext_blake3"].as_str().unwrap()
            );
        }
        Err(_) => common::skip(
            "the `age` tool check: age is not installed (apt-get install age; .ci/run does)",
        ),
    }

    // recipients in dataforge.toml encrypt every backup; --encrypt without any is refused
    fs::write(
        dir.join("dataforge.toml"),
        format!("[backup]\nrecipients = [\"{recipient}\"]\n"),
    )
    .unwrap();
    let out = run(
        dataforge(dir)
            .args(["backup", "--dir", "b"])
            .env("DATABASE_URL", db.url()),
        0,
    );
    assert!(
        stdout(&out).trim().ends_with(".dump.age"),
        "{}",
        stdout(&out)
    );
    fs::write(
        dir.join("dataforge.toml"),
        "[backup]\nrecipients = [\"AGE-SECRET-KEY-1X\"]\n",
    )
    .unwrap();
    let out = run(
        dataforge(dir)
            .args(["backup", "--dir", "b"])
            .env("DATABASE_URL", db.url()),
        2,
    );
    assert!(
        stderr(&out).contains("is not an age recipient"),
        "{}",
        stderr(&out)
    );
    fs::remove_file(dir.join("dataforge.toml")).unwrap();
    let out = run(
        dataforge(dir)
            .args(["backup", "--dir", "b", "--encrypt"])
            .env("DATABASE_URL", db.url()),
        2,
    );
    assert!(
        stderr(&out).contains("--encrypt needs someone to encrypt to"),
        "{}",
        stderr(&out)
    );
}
