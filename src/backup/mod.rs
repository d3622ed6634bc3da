//! Verified backups and safe restores.
//!
//! A backup is pg_dump's custom format, taken in the same snapshot as the row counts in its
//! manifest, with a blake3 checksum beside it; it is reported done only after
//! `pg_restore --list` reads it and the checksum of the file on disk matches. A restore
//! checks the checksum before touching anything, takes a backup of the target first,
//! restores into a new database, compares row counts with the manifest, and only then
//! swaps it in for the target: a failure anywhere leaves the target as it was.

pub mod encrypt;
pub mod production;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::pg::staging::Staging;
use crate::pg::{self, Masked, PgContext as _, PgError};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{tool} is not installed (looked in $DATAFORGE_PG_BIN, PATH and /usr/lib/postgresql/*/bin); install PostgreSQL's client tools, e.g. `apt-get install postgresql-client`")]
    NoTool { tool: &'static str },
    #[error("{tool} failed ({status}): {stderr}")]
    Tool {
        tool: &'static str,
        status: String,
        stderr: String,
    },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} does not match its checksum (blake3 {actual}, {recorded} recorded in {}): the file is corrupt or was changed; nothing was touched", .path.display(), .checksum_file.display())]
    Tampered {
        path: PathBuf,
        checksum_file: PathBuf,
        actual: String,
        recorded: String,
    },
    #[error("{}: {why}; nothing was touched", .path.display())]
    BadManifest { path: PathBuf, why: String },
    #[error("the restored copy does not match the manifest ({0}); the copy was dropped and the target left as it was")]
    CountMismatch(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Pg(#[from] PgError),
}

/// What a backup holds, written beside it as `<name>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub file: String,
    pub database: String,
    pub server_version: String,
    pub created_at: String,
    pub size_bytes: u64,
    pub blake3: String,
    /// Exact row count per table (`schema.table`), in the dump's snapshot.
    pub tables: BTreeMap<String, i64>,
    pub dataforge_version: String,
    /// Present when the file is encrypted: to whom, and the archive's own checksum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<encrypt::Encryption>,
}

/// A finished, verified backup.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    pub path: PathBuf,
    pub manifest_path: PathBuf,
    pub checksum_path: PathBuf,
    pub manifest: Manifest,
}

/// Finds a PostgreSQL client tool: `$DATAFORGE_PG_BIN`, PATH, then the newest
/// `/usr/lib/postgresql/<version>/bin`.
pub fn find_tool(tool: &'static str) -> Result<PathBuf, BackupError> {
    crate::pg::tools::find(tool).ok_or(BackupError::NoTool { tool })
}

/// A child tool's argv with the password taken out of its connection string (after
/// `--dbname`, `-d` or in `--dbname=…`), and that password, for its environment: `ps`
/// shows argv to every local user.
fn tool_argv(args: &[&std::ffi::OsStr]) -> (Vec<std::ffi::OsString>, Option<String>) {
    let mut password = None;
    let mut after_dbname = false;
    let argv = args
        .iter()
        .map(|a| {
            let s = a.to_string_lossy();
            let conn = if after_dbname {
                Some(("", s.as_ref()))
            } else {
                s.strip_prefix("--dbname=").map(|c| ("--dbname=", c))
            };
            after_dbname = s == "--dbname" || s == "-d";
            match conn {
                Some((flag, c)) => {
                    let (bare, pw) = pg::split_password(c);
                    password = password.take().or(pw);
                    format!("{flag}{bare}").into()
                }
                None => a.to_os_string(),
            }
        })
        .collect();
    (argv, password)
}

pub(crate) fn run_tool(
    tool: &'static str,
    args: &[&std::ffi::OsStr],
) -> Result<String, BackupError> {
    let (args, password) = tool_argv(args);
    let mut cmd = Command::new(find_tool(tool)?);
    cmd.args(&args);
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let out = crate::child::output(cmd).map_err(|source| BackupError::Io {
        path: PathBuf::from(tool),
        source,
    })?;
    if !out.status.success() {
        return Err(BackupError::Tool {
            tool,
            status: out.status.to_string(),
            stderr: pg::mask_url(String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// blake3 of a file, streamed.
pub fn file_blake3(path: &Path) -> Result<String, BackupError> {
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().to_hex().to_string())
}

/// Exact row counts of every ordinary and partitioned table outside the system schemas.
pub async fn row_counts(client: &Client) -> Result<BTreeMap<String, i64>, PgError> {
    let tables = client
        .query(
            "SELECT n.nspname, c.relname FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
             ORDER BY 1, 2",
            &[],
        )
        .await
        .pg(|| "listing tables".into())?;
    let mut out = BTreeMap::new();
    for t in tables {
        let (schema, name): (String, String) = (t.get(0), t.get(1));
        let n: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM ONLY {}.{}",
                    pg::quote_ident(&schema),
                    pg::quote_ident(&name)
                ),
                &[],
            )
            .await
            .pg(|| format!("counting {schema}.{name}"))?
            .get(0);
        out.insert(format!("{schema}.{name}"), n);
    }
    Ok(out)
}

/// Creates `dir` (and its parents) readable by its owner only: backups are production
/// data. An existing folder is narrowed to 0700 too.
fn private_dir(dir: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))
}

/// Writes `contents` to `path` readable by its owner only, on disk before it returns.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), BackupError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    f.write_all(contents).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Takes a verified backup of the database at `url` into `dir`.
/// Takes a backup of the database at `url` into `dir`; encrypted to `recipients` (age
/// public keys) when any are given.
pub async fn backup(url: &str, dir: &Path, recipients: &[String]) -> Result<Backup, BackupError> {
    encrypt::parse_recipients(recipients)?;
    private_dir(dir)?;
    let mut client = pg::connect(url).await?;
    // One snapshot for the row counts and the dump, so the manifest describes the dump.
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .pg(|| "starting the backup snapshot".into())?;
    let row = tx
        .query_one(
            "SELECT pg_export_snapshot(), current_database(), current_setting('server_version'),
                    to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDD-HH24MISS'),
                    to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
            &[],
        )
        .await
        .pg(|| "exporting the backup snapshot".into())?;
    let (snapshot, database, server_version, stamp, created_at): (
        String,
        String,
        String,
        String,
        String,
    ) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    let tables = row_counts(tx.client()).await?;
    // Never overwrite: two backups in one second (a restore's pre-restore backup of the
    // same database, say) get -2, -3, ….
    let ext = if recipients.is_empty() {
        "dump"
    } else {
        "dump.age"
    };
    let mut name = format!("backup-{database}-{stamp}.{ext}");
    let mut n = 1;
    while dir.join(&name).exists() || dir.join(format!("{name}.partial")).exists() {
        n += 1;
        name = format!("backup-{database}-{stamp}-{n}.{ext}");
    }
    let path = dir.join(&name);
    let partial = dir.join(format!("{name}.partial"));
    // held locked while pg_dump writes it: a `.partial` nobody holds is an earlier run's,
    // stopped midway (kill -9, a crash), and the sweep below removes it
    let _lock = {
        use std::os::unix::fs::OpenOptionsExt as _;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .map_err(io(&partial))?;
        f.lock().map_err(io(&partial))?;
        f
    };
    let _cleanup = crate::cleanup::file(partial.clone());
    sweep_partials(dir, &partial);
    let dump = {
        let (url, partial, snapshot) = (url.to_string(), partial.clone(), snapshot.clone());
        let recipients = recipients.to_vec();
        let out = _lock.try_clone().map_err(io(&partial))?;
        tokio::task::spawn_blocking(move || {
            if recipients.is_empty() {
                return run_tool(
                    "pg_dump",
                    &[
                        "--format=custom".as_ref(),
                        format!("--snapshot={snapshot}").as_ref(),
                        "--file".as_ref(),
                        partial.as_os_str(),
                        "--dbname".as_ref(),
                        url.as_ref(),
                    ],
                )
                .map(|_| None);
            }
            // encrypted as it streams: the archive is never on disk in the clear
            encrypt::dump_encrypted(&url, &snapshot, out, &partial, &recipients).map(Some)
        })
        .await
        .expect("pg_dump thread")
    };
    tx.commit()
        .await
        .pg(|| "ending the backup snapshot".into())?;
    let plaintext_blake3 = match dump {
        Ok(h) => h,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    let blake3 = file_blake3(&partial)?;
    let size_bytes = std::fs::metadata(&partial).map_err(io(&partial))?.len();
    let manifest = Manifest {
        file: name.clone(),
        database,
        server_version,
        created_at,
        size_bytes,
        blake3: blake3.clone(),
        tables,
        dataforge_version: env!("CARGO_PKG_VERSION").into(),
        encryption: plaintext_blake3.map(|h| encrypt::Encryption {
            format: "age".into(),
            recipients: recipients.to_vec(),
            plaintext_blake3: h,
        }),
    };
    // the dump is production data: its owner's only; and it takes its final name last,
    // once its checksum and manifest are on disk
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))
            .map_err(io(&partial))?;
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(io(&partial))?;
    }
    let checksum_path = dir.join(format!("{name}.blake3"));
    write_private(&checksum_path, format!("{blake3}  {name}\n").as_bytes())?;
    let manifest_path = dir.join(format!("{name}.json"));
    write_private(
        &manifest_path,
        (serde_json::to_string_pretty(&manifest).expect("manifest serializes") + "\n").as_bytes(),
    )?;
    std::fs::rename(&partial, &path).map_err(io(&path))?;
    // Done only once it reads back: checksum of the file on disk, and pg_restore's listing.
    verify(&path)?;
    // the backup is complete and verified: a log line that cannot be written is said,
    // not turned into a failure over a good backup
    if let Err(e) = audit(
        dir,
        serde_json::json!({
            "operation": "backup",
            "database": manifest.database,
            "file": path,
            "blake3": manifest.blake3,
            "url": pg::mask_url(url),
        }),
    ) {
        crate::cli::say(&format!(
            "the backup {} is complete and verified, but its line in audit.log was not \
             written: {e}",
            path.display()
        ));
    }
    Ok(Backup {
        path,
        manifest_path,
        checksum_path,
        manifest,
    })
}

/// Removes the `.partial` files of earlier runs that stopped midway (nobody holds their
/// lock), saying so.
fn sweep_partials(dir: &Path, own: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path == own || path.extension().is_none_or(|e| e != "partial") {
            continue;
        }
        let free = std::fs::File::open(&path).is_ok_and(|f| f.try_lock().is_ok());
        if free && std::fs::remove_file(&path).is_ok() {
            crate::cli::say(&format!(
                "removed {}, left unfinished by an earlier backup that was stopped",
                path.display()
            ));
        }
    }
}

/// Checks a backup without touching any database: its checksum file and manifest agree
/// with the file's bytes, and pg_restore can read its table of contents.
pub fn verify(path: &Path) -> Result<Manifest, BackupError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let checksum_path = path.with_file_name(format!("{name}.blake3"));
    let manifest_path = path.with_file_name(format!("{name}.json"));
    if !path.is_file() {
        return Err(BackupError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such backup"),
        });
    }
    let recorded = std::fs::read_to_string(&checksum_path)
        .map_err(|e| BackupError::BadManifest {
            path: checksum_path.clone(),
            why: format!("cannot read the checksum file beside the backup ({e})"),
        })?
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let manifest_text =
        std::fs::read_to_string(&manifest_path).map_err(|e| BackupError::BadManifest {
            path: manifest_path.clone(),
            why: format!("cannot read the manifest beside the backup ({e})"),
        })?;
    let manifest: Manifest =
        serde_json::from_str(&manifest_text).map_err(|e| BackupError::BadManifest {
            path: manifest_path.clone(),
            why: format!("line {} column {}: {e}", e.line(), e.column()),
        })?;
    let actual = file_blake3(path)?;
    if actual != recorded || actual != manifest.blake3 {
        return Err(BackupError::Tampered {
            path: path.to_path_buf(),
            checksum_file: if actual != recorded {
                checksum_path
            } else {
                manifest_path
            },
            actual,
            recorded: if recorded != manifest.blake3 {
                format!("{recorded} / {}", manifest.blake3)
            } else {
                recorded
            },
        });
    }
    if manifest.encryption.is_some() {
        // only an identity opens it: the archive inside is checked (its blake3, then
        // pg_restore --list) when a restore decrypts it
        if !encrypt::looks_encrypted(path)? {
            return Err(BackupError::BadManifest {
                path: path.to_path_buf(),
                why: "the manifest says it is encrypted, but it is not an age file".into(),
            });
        }
        return Ok(manifest);
    }
    list_archive(path)?;
    Ok(manifest)
}

/// pg_restore reads the archive's table of contents.
fn list_archive(path: &Path) -> Result<(), BackupError> {
    let listing = run_tool("pg_restore", &["--list".as_ref(), path.as_os_str()])?;
    // pg_restore fails on anything that is not an archive; an empty database's archive
    // still has its header.
    if !listing.contains("; Archive created at") {
        return Err(BackupError::BadManifest {
            path: path.to_path_buf(),
            why: "pg_restore --list shows no archive header".into(),
        });
    }
    Ok(())
}

/// Appends one JSON line to `audit.log` in `dir`.
pub fn audit(dir: &Path, mut event: serde_json::Value) -> Result<(), BackupError> {
    use std::io::Write as _;
    if !dir.exists() {
        private_dir(dir)?;
    }
    event["at"] = serde_json::Value::String(
        time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    );
    event["by"] = serde_json::Value::String(crate::migrate::history::os_user());
    let path = dir.join("audit.log");
    let mut f = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?
    };
    {
        use std::os::unix::fs::PermissionsExt as _;
        // a log made before this rule was 0644: narrowed too
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io(&path))?;
    }
    writeln!(f, "{event}").map_err(io(&path))
}

/// The keys backups are made and opened with: age recipients to encrypt to (empty: not
/// encrypted), and the identity file that opens an encrypted backup.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    pub recipients: Vec<String>,
    pub identity: Option<PathBuf>,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub database: String,
    pub from: PathBuf,
    /// The backup of the target taken just before.
    pub pre_restore_backup: PathBuf,
    pub tables: usize,
    pub rows: i64,
}

/// Restores `path` over the database at `url`. The checksum and manifest are checked
/// first; a backup of the target is taken; the dump is restored into a new database whose
/// row counts must equal the manifest's; only then is it renamed into place (the old
/// database is dropped, its backup kept). Production checks are the caller's.
pub async fn restore(
    path: &Path,
    url: &str,
    backup_dir: &Path,
    keys: &Keys,
    notify: fn(&str),
) -> Result<Restored, BackupError> {
    let manifest = verify(path)?;
    // an encrypted backup is decrypted (into a file with no name) and its archive checked
    // before anything is touched: a wrong identity leaves the target as it was
    private_dir(backup_dir)?;
    let (_decrypted, archive) = match &manifest.encryption {
        Some(enc) => {
            let (file, archive) =
                encrypt::decrypt(path, keys.identity.as_deref(), enc, backup_dir)?;
            list_archive(&archive)?;
            (Some(file), archive)
        }
        None => (None, path.to_path_buf()),
    };
    notify(&format!(
        "{} verified: blake3 matches, {}pg_restore reads it ({} tables)",
        path.display(),
        if manifest.encryption.is_some() {
            "decrypted, "
        } else {
            ""
        },
        manifest.tables.len()
    ));
    let client = pg::connect(url).await?;
    let target: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .pg(|| "reading the database name".into())?
        .get(0);
    let was_production = production::marked(&client).await?;
    drop(client);
    // the target's backup is encrypted as the backup being restored was, unless
    // dataforge.toml says to whom: production data never lands in the clear because the
    // recipients were given on a command line once
    let recipients = match (&manifest.encryption, keys.recipients.is_empty()) {
        (Some(enc), true) => enc.recipients.clone(),
        _ => keys.recipients.clone(),
    };
    let pre = backup(url, backup_dir, &recipients).await?;
    notify(&format!("backed up {target} first: {}", pre.path.display()));

    let admin_url = pg::with_database(url, "postgres");
    let admin = pg::connect(&admin_url).await?;
    let staging = Staging::create(
        &admin,
        &admin_url,
        &target,
        false,
        |staging| format!("creating {staging} to restore into (the role needs CREATEDB)"),
        &mut |m| notify(m),
    )
    .await?;
    let staging_url = pg::with_database(url, &staging.name);
    let restored = {
        let (p, u) = (archive.clone(), staging_url.clone());
        tokio::task::spawn_blocking(move || {
            run_tool(
                "pg_restore",
                &[
                    "--exit-on-error".as_ref(),
                    "--single-transaction".as_ref(),
                    "--no-owner".as_ref(),
                    "--dbname".as_ref(),
                    u.as_ref(),
                    p.as_os_str(),
                ],
            )
        })
        .await
        .expect("pg_restore thread")
    };
    if let Err(e) = restored {
        staging.drop_now(&admin).await;
        return Err(e);
    }
    let counts = match pg::connect(&staging_url).await {
        Ok(c) => match row_counts(&c).await {
            Ok(counts) => counts,
            Err(e) => {
                drop(c);
                staging.drop_now(&admin).await;
                return Err(e.into());
            }
        },
        Err(e) => {
            staging.drop_now(&admin).await;
            return Err(e.into());
        }
    };
    if counts != manifest.tables {
        let mut diffs = Vec::new();
        for (t, n) in &manifest.tables {
            let got = counts.get(t).copied();
            if got != Some(*n) {
                diffs.push(format!("{t}: {n} in the manifest, {got:?} restored"));
            }
        }
        for t in counts.keys().filter(|t| !manifest.tables.contains_key(*t)) {
            diffs.push(format!("{t}: restored but not in the manifest"));
        }
        staging.drop_now(&admin).await;
        return Err(BackupError::CountMismatch(diffs.join("; ")));
    }
    // Swap, in one transaction: the old database steps aside and the restored one takes
    // its name (and its production mark), so at every instant the name holds one of them;
    // the old one is marked for the next run to drop should this one stop before it does.
    // once the swap is sent, the server completes it whatever happens to this process: a
    // signal now waits for it (and the audit line), so what is said afterwards is true
    let _swapping = crate::cleanup::own_signals();
    let disconnect = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()";
    admin
        .execute(disconnect, &[&target])
        .await
        .pg(|| format!("disconnecting sessions from {target}"))?;
    let mark = if was_production {
        format!(
            "ALTER DATABASE {} SET dataforge.environment = 'production';",
            pg::quote_ident(&target)
        )
    } else {
        String::new()
    };
    match staging.swap_in(&admin, &mark, "the restored copy").await {
        Ok(()) => {}
        Err(pg::staging::SwapError::Swap(e)) => {
            staging.drop_now(&admin).await;
            return Err(e.into());
        }
        Err(pg::staging::SwapError::DropOld(e)) => return Err(e.into()),
    }
    let rows = counts.values().sum();
    audit(
        backup_dir,
        serde_json::json!({
            "operation": "restore",
            "database": target,
            "from": path,
            "blake3": manifest.blake3,
            "pre_restore_backup": pre.path,
            "tables": counts.len(),
            "rows": rows,
            "url": format!("{}", Masked(url)),
        }),
    )?;
    Ok(Restored {
        database: target,
        from: path.to_path_buf(),
        pre_restore_backup: pre.path,
        tables: counts.len(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    /// No password reaches a child's argv, in any spelling (issue 15, §2).
    #[test]
    fn passwords_leave_the_argv_for_the_environment() {
        for (args, want, pw) in [
            (
                vec![
                    "--dbname",
                    "postgresql://app:s%40cret@db:5432/prod?sslmode=require",
                ],
                vec!["--dbname", "postgresql://app@db:5432/prod?sslmode=require"],
                "s@cret",
            ),
            (
                vec!["--dbname=postgres://app@db/prod?password=pw&application_name=x"],
                vec!["--dbname=postgres://app@db/prod?application_name=x"],
                "pw",
            ),
            (
                vec!["-d", "host=db user=app password='se cret' dbname=prod"],
                vec!["-d", "host='db' user='app' dbname='prod'"],
                "se cret",
            ),
        ] {
            let os: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
            let (argv, password) = super::tool_argv(&os);
            let argv: Vec<String> = argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            assert_eq!(argv, want);
            assert_eq!(password.as_deref(), Some(pw));
        }
        let plain: Vec<&std::ffi::OsStr> = vec!["--format=custom".as_ref(), "x.dump".as_ref()];
        assert_eq!(super::tool_argv(&plain).1, None);
    }
}
