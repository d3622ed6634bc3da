//! Backups encrypted at rest with age (<https://age-encryption.org/v1>): X25519 key
//! agreement and ChaCha20-Poly1305 with 256-bit keys — the strength asked of AES-256 at
//! rest, in an open, audited format that the stock `age` tool decrypts too
//! (`age -d -i key.txt backup.dump.age > backup.dump`).
//!
//! pg_dump's output is encrypted as it streams (no plaintext on disk); the checksum and
//! manifest cover the encrypted file, and the manifest names the recipients (public keys,
//! never identities) and the plaintext's blake3, checked after decryption. A restore
//! decrypts into a file with no name (unlinked from the start) before anything is touched,
//! so a wrong identity is refused with the target as it was.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use serde::{Deserialize, Serialize};

use std::process::Command;

use super::{find_tool, io, tool_argv, BackupError};
use crate::pg;

/// The age format's first line.
const MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// How a backup is encrypted, as its manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// Always `age`.
    pub format: String,
    /// The public keys (`age1…`) it is encrypted to.
    pub recipients: Vec<String>,
    /// blake3 of the pg_dump archive inside, checked after decryption.
    pub plaintext_blake3: String,
}

/// Checks and parses `age1…` recipients; an invalid one is named.
pub fn parse_recipients(recipients: &[String]) -> Result<Vec<age::x25519::Recipient>, BackupError> {
    recipients
        .iter()
        .map(|r| {
            age::x25519::Recipient::from_str(r.trim()).map_err(|e| {
                BackupError::Refused(format!(
                    "`{r}` is not an age recipient ({e}): give a public key as `age-keygen` \
                     prints it, age1… (an identity, AGE-SECRET-KEY-1…, is the private half and \
                     belongs only on the machine that restores)"
                ))
            })
        })
        .collect()
}

/// The recipients `[backup] recipients = [...]` in `dataforge.toml` in `dir` lists, if any.
pub fn configured_recipients(dir: &Path) -> Result<Vec<String>, BackupError> {
    #[derive(Deserialize, Default)]
    struct File {
        #[serde(default)]
        backup: Section,
    }
    #[derive(Deserialize, Default)]
    struct Section {
        #[serde(default)]
        recipients: Vec<String>,
    }
    let Some((file, path)) = super::production::read_config::<File>(dir)? else {
        return Ok(Vec::new());
    };
    parse_recipients(&file.backup.recipients).map_err(|e| BackupError::BadManifest {
        path: path.clone(),
        why: format!("[backup] recipients: {e}"),
    })?;
    Ok(file.backup.recipients)
}

/// Streams `plain` into `out` encrypted to `recipients`, and the plaintext into `tee` for
/// as long as it reads (a reader that stops early is let go); returns the plaintext's
/// blake3.
pub fn encrypt(
    plain: &mut impl Read,
    out: &mut impl Write,
    recipients: &[String],
    mut tee: Option<&mut dyn Write>,
) -> Result<String, std::io::Error> {
    let parsed = parse_recipients(recipients).map_err(std::io::Error::other)?;
    let encryptor =
        age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient))
            .map_err(std::io::Error::other)?;
    let mut w = encryptor.wrap_output(out)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = plain.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        w.write_all(&buf[..n])?;
        if let Some(t) = tee.as_mut() {
            if t.write_all(&buf[..n]).is_err() {
                tee = None;
            }
        }
    }
    w.finish()?.flush()?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// Whether `path` starts as an age file.
pub fn looks_encrypted(path: &Path) -> Result<bool, BackupError> {
    let mut head = [0u8; 22];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|source| BackupError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(&head[..n] == MAGIC)
}

/// Decrypts the backup at `path` with the identities in `identity` into a file with no
/// name in `dir`, checks the plaintext's blake3, and returns the open file and a path
/// pg_restore can read it by (`/proc/PID/fd/N`).
pub fn decrypt(
    path: &Path,
    identity: Option<&Path>,
    enc: &Encryption,
    dir: &Path,
) -> Result<(std::fs::File, PathBuf), BackupError> {
    use std::os::fd::AsRawFd as _;
    let refused = |why: String| BackupError::Refused(format!("{why}; nothing was touched"));
    let Some(identity) = identity else {
        return Err(refused(format!(
            "{} is encrypted (age, to {}): give the identity file that matches one of them \
             with --identity FILE or DATAFORGE_BACKUP_IDENTITY",
            path.display(),
            enc.recipients.join(", ")
        )));
    };
    let identities = age::IdentityFile::from_file(identity.to_string_lossy().into_owned())
        .map_err(|e| {
            refused(format!(
                "cannot read the identity file {}: {e}",
                identity.display()
            ))
        })?
        .into_identities()
        .map_err(|e| {
            refused(format!(
                "{} holds no usable age identity: {e}",
                identity.display()
            ))
        })?;
    let io = |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    };
    let input = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let decryptor = age::Decryptor::new(input).map_err(|e| {
        refused(format!(
            "{} is not a readable age file: {e}",
            path.display()
        ))
    })?;
    let mut reader = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => refused(format!(
                "the identity in {} does not match any recipient of {} ({})",
                identity.display(),
                path.display(),
                enc.recipients.join(", ")
            )),
            e => refused(format!("cannot decrypt {}: {e}", path.display())),
        })?;
    let mut out = tempfile::tempfile_in(dir).map_err(|source| BackupError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| refused(format!("{} is damaged: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io)?;
    }
    out.flush().map_err(io)?;
    let actual = hasher.finalize().to_hex().to_string();
    if actual != enc.plaintext_blake3 {
        return Err(refused(format!(
            "{} decrypts to an archive whose blake3 {actual} is not the manifest's {}",
            path.display(),
            enc.plaintext_blake3
        )));
    }
    let by_path = PathBuf::from(format!(
        "/proc/{}/fd/{}",
        std::process::id(),
        out.as_raw_fd()
    ));
    Ok((out, by_path))
}

/// pg_dump to stdout, encrypted into `out` (the partial file) as it streams; returns the
/// archive's blake3.
pub(super) fn dump_encrypted(
    url: &str,
    snapshot: &str,
    mut out: std::fs::File,
    partial: &Path,
    recipients: &[String],
) -> Result<String, BackupError> {
    use std::process::Stdio;
    let (args, password) = tool_argv(&[
        "--format=custom".as_ref(),
        format!("--snapshot={snapshot}").as_ref(),
        "--dbname".as_ref(),
        url.as_ref(),
    ]);
    let mut cmd = Command::new(find_tool("pg_dump")?);
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let mut child = crate::child::spawn(cmd).map_err(|source| BackupError::Io {
        path: PathBuf::from("pg_dump"),
        source,
    })?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // the archive is checked as it streams (pg_restore --list reads its table of
    // contents from a pipe): the encrypted file can only be checked with an identity
    let mut list = Command::new(find_tool("pg_restore")?);
    list.arg("--list")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut lister = crate::child::spawn(list).map_err(|source| BackupError::Io {
        path: PathBuf::from("pg_restore"),
        source,
    })?;
    let mut lister_in = lister.stdin.take().expect("stdin is piped");
    let lister_out = lister.stdout.take().expect("stdout is piped");
    let listing = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::BufReader::new(lister_out).read_to_string(&mut s);
        s
    });
    let written = encrypt(&mut stdout, &mut out, recipients, Some(&mut lister_in));
    drop(lister_in);
    drop(stdout);
    let listing = listing.join().unwrap_or_default();
    let _ = lister.wait();
    // a write that failed (a full disk) made pg_dump die of a broken pipe: say the cause
    let written = match written {
        Ok(h) => h,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io(partial)(e));
        }
    };
    let status = child.wait().map_err(|source| BackupError::Io {
        path: PathBuf::from("pg_dump"),
        source,
    })?;
    let errors = errors.join().unwrap_or_default();
    if !status.success() {
        return Err(BackupError::Tool {
            tool: "pg_dump",
            status: status.to_string(),
            stderr: pg::mask_url(errors.trim()),
        });
    }
    if !listing.contains("; Archive created at") {
        return Err(BackupError::BadManifest {
            path: partial.to_path_buf(),
            why: "pg_restore --list did not read the archive pg_dump wrote".into(),
        });
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret as _;

    #[test]
    fn encrypts_to_recipients_and_decrypts_with_a_matching_identity_only() {
        let dir = tempfile::tempdir().unwrap();
        let id = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let recipients = vec![id.to_public().to_string()];
        let file = dir.path().join("b.dump.age");
        let plain = b"PGDMP pretend archive".repeat(1000);
        let hash = encrypt(
            &mut &plain[..],
            &mut std::fs::File::create(&file).unwrap(),
            &recipients,
            None,
        )
        .unwrap();
        assert!(looks_encrypted(&file).unwrap());
        let enc = Encryption {
            format: "age".into(),
            recipients: recipients.clone(),
            plaintext_blake3: hash,
        };
        let key = dir.path().join("key.txt");
        std::fs::write(&key, format!("{}\n", id.to_string().expose_secret())).unwrap();
        let (mut f, _) = decrypt(&file, Some(&key), &enc, dir.path()).unwrap();
        use std::io::Seek as _;
        f.rewind().unwrap();
        let mut back = Vec::new();
        f.read_to_end(&mut back).unwrap();
        assert_eq!(back, plain);

        std::fs::write(&key, format!("{}\n", other.to_string().expose_secret())).unwrap();
        let e = decrypt(&file, Some(&key), &enc, dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("does not match any recipient") && e.ends_with("nothing was touched"),
            "{e}"
        );
        let e = decrypt(&file, None, &enc, dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("give the identity file"), "{e}");
        let e = parse_recipients(&["AGE-SECRET-KEY-1XYZ".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not an age recipient"), "{e}");
    }
}
