//! `dataforge backup`, `dataforge restore` and `dataforge mark`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::{emit, say, Target};
use crate::backup::{self, production};
use crate::pg::{self, Masked};

/// Where backups (and the audit log) go unless --dir is given: inside the git-ignored
/// `.dataforge` folder.
pub const DEFAULT_DIR: &str = ".dataforge/backups";

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dataforge backup                                  into .dataforge/backups
  dataforge backup --dir /srv/backups --json        for scripts
  dataforge backup --recipient age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
                                                    encrypted at rest (age)

Writes backup-<database>-<YYYYMMDD-HHMMSS>.dump (pg_dump custom format), a .blake3
checksum and a .json manifest (server version, exact row count per table in the dump's
snapshot, size) beside it, and reports the backup only after pg_restore --list reads it
and the file's checksum matches. Each backup is appended to audit.log in the folder.

Encrypted (--recipient, or `[backup] recipients = [\"age1…\"]` in dataforge.toml, which
encrypts every backup dataforge makes: backup, restore's pre-restore backup, deploy):
the file is backup-….dump.age, encrypted with age (X25519 + ChaCha20-Poly1305, 256-bit
keys) as pg_dump streams, never on disk in the clear. The checksum and manifest cover the
encrypted file; the manifest names the recipients. `dataforge restore --identity KEY`
opens it, and so does the stock tool: age -d -i KEY backup-….dump.age > backup.dump")]
pub struct BackupArgs {
    /// Folder for the backup files
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
    pub dir: PathBuf,
    /// Print the manifest as JSON
    #[arg(long)]
    pub json: bool,
    /// Encrypt the backup (to --recipient, or to [backup] recipients in dataforge.toml)
    #[arg(long)]
    pub encrypt: bool,
    /// An age public key (age1…) to encrypt to; repeatable; implies --encrypt
    #[arg(long, value_name = "AGE1…")]
    pub recipient: Vec<String>,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dataforge restore .dataforge/backups/backup-app-20261121-101500.dump
  dataforge restore FILE --database-url postgresql://…/app --yes --confirm-database app

Order of work: the checksum and manifest are checked (a corrupt or changed file is refused
before anything is touched); a production database needs confirmation; the target is
backed up; the dump is restored into a new database and its row counts compared with the
manifest; only then does it replace the target. A failure leaves the target as it was.")]
pub struct RestoreArgs {
    /// The .dump file written by `dataforge backup` (its .blake3 and .json beside it)
    pub file: PathBuf,
    /// Folder for the pre-restore backup and the audit log
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
    pub backup_dir: PathBuf,
    /// Go ahead on a production database (with --confirm-database)
    #[arg(long)]
    pub yes: bool,
    /// The target database's name, to confirm a restore over production
    #[arg(long, value_name = "NAME")]
    pub confirm_database: Option<String>,
    /// Print what was done as JSON
    #[arg(long)]
    pub json: bool,
    /// The age identity file (AGE-SECRET-KEY-1…) that opens an encrypted backup
    #[arg(long, value_name = "FILE", env = "DATAFORGE_BACKUP_IDENTITY")]
    pub identity: Option<PathBuf>,
    #[command(flatten)]
    pub target: Target,
}

/// The recipients backups are encrypted to: those given, else dataforge.toml's.
pub fn recipients(given: &[String], encrypt: bool) -> anyhow::Result<Vec<String>> {
    let configured = backup::encrypt::configured_recipients(&std::env::current_dir()?)?;
    let recipients = if given.is_empty() {
        configured
    } else {
        given.to_vec()
    };
    if encrypt && recipients.is_empty() {
        anyhow::bail!(
            "--encrypt needs someone to encrypt to: --recipient age1… (repeatable), or \
             [backup] recipients = [\"age1…\"] in dataforge.toml; `age-keygen -o key.txt` \
             makes a key pair and prints its public key"
        );
    }
    Ok(recipients)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    /// Destructive commands ask for confirmation, or need --yes --confirm-database
    Production,
    /// Remove the production mark
    None,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dataforge mark production --database-url postgresql://…/app
  dataforge mark none                               remove the mark

The mark is stored in the database (the per-database setting dataforge.environment), so
every machine sees it. URL patterns in dataforge.toml mark databases too:
  [production]
  urls = [\"*prod*\"]")]
pub struct MarkArgs {
    pub environment: Environment,
    #[command(flatten)]
    pub target: Target,
}

pub async fn run_backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    // whom to encrypt to is settled before anything starts
    let recipients = recipients(&args.recipient, args.encrypt)?;
    let url = args.target.resolve().await?;
    say(&format!("backing up {}", Masked(&url)));
    let b = backup::backup(&url, &args.dir, &recipients).await?;
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&b)?))?;
    } else {
        emit(&format!("{}\n", b.path.display()))?;
        say(&format!(
            "verified: {} tables, {} rows, {} bytes, blake3 {}…",
            b.manifest.tables.len(),
            b.manifest.tables.values().sum::<i64>(),
            b.manifest.size_bytes,
            &b.manifest.blake3[..16]
        ));
        if let Some(enc) = &b.manifest.encryption {
            say(&format!(
                "encrypted (age) to {}; restore with --identity FILE",
                enc.recipients.join(", ")
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    // The file is checked before connecting to anything.
    backup::verify(&args.file)?;
    let url = args.target.resolve().await?;
    let client = pg::connect(&url).await?;
    production::confirm(
        &client,
        &url,
        "restore over",
        args.yes,
        args.confirm_database.as_slice(),
    )
    .await?;
    drop(client);
    let keys = backup::Keys {
        recipients: recipients(&[], false)?,
        identity: args.identity.clone(),
    };
    let r = backup::restore(&args.file, &url, &args.backup_dir, &keys, say).await?;
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&r)?))?;
    } else {
        emit(&format!(
            "restored {} from {}: {} tables, {} rows, matching the manifest\n",
            r.database,
            r.from.display(),
            r.tables,
            r.rows
        ))?;
        say(&format!(
            "the database as it was before is in {}",
            r.pre_restore_backup.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_mark(args: MarkArgs) -> anyhow::Result<ExitCode> {
    let url = args.target.resolve().await?;
    let client = pg::connect(&url).await?;
    let name: String = client
        .query_one("SELECT current_database()", &[])
        .await?
        .get(0);
    let on = args.environment == Environment::Production;
    production::mark_database(&client, &name, on).await?;
    emit(&format!(
        "{name} {}\n",
        if on {
            "marked production"
        } else {
            "no longer marked production"
        }
    ))?;
    Ok(ExitCode::SUCCESS)
}
