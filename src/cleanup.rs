//! What a run leaves behind when it stops midway, and taking it away.
//!
//! Staging databases (`<target>_dataforge_<tag>`, a copy being loaded beside its target)
//! and partial files are registered while they exist. On Ctrl-C, SIGTERM or a panic the
//! binary drops and removes what is registered before it exits ([`abort`]). What no
//! handler can clean — `kill -9`, a crash, a power cut — is found by the next run on the
//! same target ([`leftovers`]): each staging database carries a comment naming its target
//! and the process making it, and the run holds an advisory lock named after it for as
//! long as it runs, so a copy whose lock is free is dropped, and one still being made by a
//! live run (on any host) is left alone.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use tokio_postgres::Client;

use crate::pg::{self, quote_ident, PgContext as _, PgError};

enum Item {
    Database {
        admin_url: String,
        name: String,
        target: String,
    },
    File(PathBuf),
}

static ITEMS: Mutex<Vec<(u64, Item)>> = Mutex::new(Vec::new());
static NEXT: AtomicU64 = AtomicU64::new(1);
static OWN_SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// Something registered for cleanup; dropping it (when the run finished with it, either
/// way) takes it off the list.
#[must_use = "the entry is removed from the list when this is dropped"]
pub struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        // unwinding from a panic: the entry stays for the binary's clean-up to act on
        if std::thread::panicking() {
            return;
        }
        let mut items = ITEMS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = items.iter().position(|(id, _)| *id == self.0) {
            // a partial file goes with its guard: on success it was renamed away already,
            // on an error it must not stay
            if let (_, Item::File(path)) = items.remove(at) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

fn register(item: Item) -> Registered {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    ITEMS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((id, item));
    Registered(id)
}

/// A staging database `name` made beside `target` through the server at `admin_url`.
pub fn staging_database(admin_url: &str, name: &str, target: &str) -> Registered {
    register(Item::Database {
        admin_url: admin_url.to_string(),
        name: name.to_string(),
        target: target.to_string(),
    })
}

/// A file that must not outlive the run unless renamed into place (a `.partial` dump,
/// say): removed when the guard drops, and on Ctrl-C or a panic.
pub fn file(path: PathBuf) -> Registered {
    register(Item::File(path))
}

/// A partial file beside `final_path`, created 0600 and held under an exclusive lock for
/// as long as the returned handle lives, with its clean-up guard; partial files of the
/// same final name that nobody holds (left by a run that was killed) are removed first,
/// each named through `say`.
pub fn partial_file(
    final_path: &std::path::Path,
    say: &mut dyn FnMut(&str),
) -> std::io::Result<(std::fs::File, PathBuf, Registered)> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = final_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    if let Ok(entries) = std::fs::read_dir(dir) {
        for path in entries.flatten().map(|e| e.path()) {
            let n = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if n.starts_with(&prefix) && n.ends_with(".partial") {
                let free = std::fs::File::open(&path).is_ok_and(|f| f.try_lock().is_ok());
                if free && std::fs::remove_file(&path).is_ok() {
                    say(&format!(
                        "removed {}, left unfinished by an earlier run that was stopped",
                        path.display()
                    ));
                }
            }
        }
    }
    let path = dir.join(format!("{prefix}{}.partial", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    f.lock()?;
    let guard = file(path.clone());
    Ok((f, path, guard))
}

/// While this lives, the binary does not stop the running command on Ctrl-C or SIGTERM:
/// either the command handles the signal itself (it cancels its statement and says how
/// to go on), or it is in a step that must finish once begun (the swap of a loaded copy
/// into its target, a few milliseconds). Dropped, the binary's own handling (drop what is
/// registered, exit 130/143) is back.
#[must_use = "the command handles signals only while this lives"]
pub struct OwnSignals(());

impl Drop for OwnSignals {
    fn drop(&mut self) {
        OWN_SIGNALS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Guards nest: the binary's handling is back when the last one is dropped.
pub fn own_signals() -> OwnSignals {
    OWN_SIGNALS.fetch_add(1, Ordering::SeqCst);
    OwnSignals(())
}

pub fn handles_signals() -> bool {
    OWN_SIGNALS.load(Ordering::SeqCst) > 0
}

/// The first of Ctrl-C (SIGINT) and SIGTERM: its name and the exit code it calls for.
pub async fn interrupted() -> (&'static str, u8) {
    use tokio::signal::unix::{signal, SignalKind};
    let got = match signal(SignalKind::terminate()) {
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            ("Ctrl-C", 130)
        }
        Ok(mut term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => ("Ctrl-C", 130),
            _ = term.recv() => ("SIGTERM", 143),
        },
    };
    LAST_SIGNAL.store(got.1, Ordering::SeqCst);
    got
}

/// The exit code of the last signal [`interrupted`] saw.
static LAST_SIGNAL: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(130);

/// A command stopped by Ctrl-C or SIGTERM after handling it itself (the message says what
/// is true now): the binary exits with the signal's code, 130 or 143, as for any other
/// interrupted command.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Interrupted {
    pub message: String,
    pub code: u8,
}

impl Interrupted {
    pub fn new(message: impl Into<String>) -> Interrupted {
        Interrupted {
            message: message.into(),
            code: LAST_SIGNAL.load(Ordering::SeqCst),
        }
    }
}

/// What is registered now, taken off the list: taken before the command's task is
/// cancelled, whose dropping would otherwise take its entries off first.
pub struct Pending(Vec<Item>);

pub fn take() -> Pending {
    Pending(
        std::mem::take(&mut *ITEMS.lock().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .map(|(_, i)| i)
            .collect(),
    )
}

/// Drops every database and removes every file in `pending`; returns one phrase per item
/// saying what happened to it.
pub async fn abort(pending: Pending) -> Vec<String> {
    let items = pending.0;
    let mut said = Vec::new();
    for item in items {
        match item {
            Item::Database {
                admin_url,
                name,
                target,
            } => {
                let client = pg::connect(&admin_url).await.ok();
                // swapped in already (the commit came before the signal): not a copy any more
                if let Some(c) = &client {
                    let exists = c
                        .query_one(
                            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
                            &[&name],
                        )
                        .await
                        .map(|r| r.get::<_, bool>(0))
                        .unwrap_or(true);
                    if !exists {
                        continue;
                    }
                }
                let dropped = match client {
                    Some(c) => c
                        .batch_execute(&format!(
                            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                            quote_ident(&name)
                        ))
                        .await
                        .is_ok(),
                    None => false,
                };
                said.push(if dropped {
                    format!("dropped the unfinished copy {name}; {target} is as it was")
                } else {
                    format!(
                        "could not drop the unfinished copy {name} (the next run on {target} \
                         will); {target} is as it was"
                    )
                });
            }
            Item::File(path) => {
                if std::fs::remove_file(&path).is_ok() {
                    said.push(format!("removed the unfinished {}", path.display()));
                }
            }
        }
    }
    said
}

/// The prefix of every staging database made for `target`: the target's name cut to 40
/// bytes, then `_dataforge_` (a name may hold 63 bytes: 40 + 11 + an 8-character tag +
/// `_old`).
pub fn staging_prefix(target: &str) -> String {
    let mut base: String = target.chars().take(40).collect();
    while base.len() > 40 {
        base.pop();
    }
    format!("{base}_dataforge_")
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it
    // or truncates, and we stop at the first NUL.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    if !ok {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn staging_comment(target: &str) -> String {
    format!(
        "dataforge staging for \"{target}\": pid {} on host {}",
        std::process::id(),
        hostname()
    )
}

/// Marks `staging` (just created) as this process's copy of `target`.
pub async fn mark_staging(admin: &Client, staging: &str, target: &str) -> Result<(), PgError> {
    admin
        .batch_execute(&format!(
            "COMMENT ON DATABASE {} IS {}",
            quote_ident(staging),
            pg::quote_literal(&staging_comment(target))
        ))
        .await
        .pg(|| format!("marking {staging} as dataforge's"))
}

/// The SQL, run inside a swap's transaction, that marks the database moved aside as a
/// replaced copy to drop and clears the staging mark from the one taking the name.
pub fn swap_comments(old: &str, target: &str) -> String {
    format!(
        "COMMENT ON DATABASE {} IS {}; COMMENT ON DATABASE {} IS NULL;",
        quote_ident(old),
        pg::quote_literal(&format!("dataforge replaced copy of \"{target}\": drop it")),
        quote_ident(target)
    )
}

#[derive(Debug, PartialEq, Eq)]
enum Mark {
    Staging {
        target: String,
        pid: i32,
        host: String,
    },
    Replaced {
        target: String,
    },
    None,
}

fn parse_mark(comment: Option<&str>) -> Mark {
    let Some(c) = comment else { return Mark::None };
    if let Some(rest) = c.strip_prefix("dataforge replaced copy of \"") {
        if let Some((target, _)) = rest.rsplit_once("\": ") {
            return Mark::Replaced {
                target: target.to_string(),
            };
        }
    }
    if let Some(rest) = c.strip_prefix("dataforge staging for \"") {
        if let Some((target, rest)) = rest.rsplit_once("\": pid ") {
            if let Some((pid, host)) = rest.split_once(" on host ") {
                if let Ok(pid) = pid.parse() {
                    return Mark::Staging {
                        target: target.to_string(),
                        pid,
                        host: host.to_string(),
                    };
                }
            }
        }
    }
    Mark::None
}

/// Finds what earlier runs on `target` left on its server: drops dataforge's own copies
/// whose run is gone, names the rest. `say` gets one line per database found.
pub async fn leftovers(
    admin: &Client,
    target: &str,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<(), PgError> {
    let prefix = staging_prefix(target);
    let legacy = [format!("{target}_restore_"), format!("{target}_replaced_")];
    let rows = admin
        .query(
            "SELECT d.datname::text, shobj_description(d.oid, 'pg_database')
             FROM pg_database d
             WHERE starts_with(d.datname, $1) OR starts_with(d.datname, $2)
                OR starts_with(d.datname, $3)
             ORDER BY 1",
            &[&prefix, &legacy[0], &legacy[1]],
        )
        .await
        .pg(|| format!("looking for copies earlier runs left beside {target}"))?;
    for row in rows {
        let (name, comment): (String, Option<String>) = (row.get(0), row.get(1));
        let Some(rest) = name.strip_prefix(&prefix) else {
            say(&format!(
                "found {name}, which looks like a copy an earlier dataforge version left \
                 beside {target}; if nobody needs it: DROP DATABASE {}",
                quote_ident(&name)
            ));
            continue;
        };
        // `<prefix><8 hex>` or `<prefix><8 hex>_old`, nothing else
        let tag = rest.strip_suffix("_old").unwrap_or(rest);
        if tag.len() != 8 || !tag.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let who = match parse_mark(comment.as_deref()) {
            Mark::Replaced { target: t } if t == target => {
                "a swap that did not finish its clean-up".to_string()
            }
            Mark::Staging {
                target: t,
                pid,
                host,
            } if t == target => format!("pid {pid} on host {host}"),
            // killed between CREATE DATABASE and its mark
            Mark::None if comment.is_none() => "a run stopped before it marked it".to_string(),
            _ => continue,
        };
        // the run making it holds its lock for as long as it runs, whatever host or
        // container it is on; a lock we can take belongs to a run that is gone
        let key = run_lock_key(&format!("{prefix}{tag}"));
        let free: bool = admin
            .query_one(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                &[&key],
            )
            .await
            .pg(|| format!("asking whether a run still makes {name}"))?
            .get(0);
        if !free {
            say(&format!(
                "found {name}: a copy of {target} that a run still going ({who}) is making; left alone"
            ));
            continue;
        }
        let dropped = admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&name)
            ))
            .await
            .pg(|| format!("dropping {name}, left by an earlier run"));
        let _ = admin
            .query_one(
                "SELECT pg_advisory_unlock(hashtextextended($1, 0))",
                &[&key],
            )
            .await;
        dropped?;
        say(&format!(
            "dropped {name}, an unfinished copy of {target} left by an earlier run that was stopped ({who})"
        ));
    }
    Ok(())
}

fn run_lock_key(staging: &str) -> String {
    format!("dataforge staging {staging}")
}

/// Taken on the admin connection before the staging database `staging` is created, and
/// held (a session lock) until the run ends: [`leftovers`] leaves alone a copy whose lock
/// is held.
pub async fn claim(admin: &Client, staging: &str) -> Result<(), PgError> {
    admin
        .query_one(
            "SELECT pg_advisory_lock(hashtextextended($1, 0))",
            &[&run_lock_key(staging)],
        )
        .await
        .pg(|| format!("locking {staging} for this run"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_read_back() {
        let c = "dataforge staging for \"a\": b\": pid 42 on host h-1".to_string();
        assert_eq!(
            parse_mark(Some(&c)),
            Mark::Staging {
                target: "a\": b".into(),
                pid: 42,
                host: "h-1".into()
            }
        );
        assert_eq!(
            parse_mark(Some("dataforge replaced copy of \"app\": drop it")),
            Mark::Replaced {
                target: "app".into()
            }
        );
        assert_eq!(parse_mark(Some("someone's comment")), Mark::None);
        assert_eq!(parse_mark(None), Mark::None);
    }

    #[test]
    fn the_prefix_leaves_room_for_the_tag() {
        let long = "é".repeat(40);
        let p = staging_prefix(&long);
        assert!(p.len() + 8 + 4 <= 63, "{}", p.len());
        assert_eq!(staging_prefix("app"), "app_dataforge_");
    }
}
