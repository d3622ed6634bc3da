//! The PostgreSQL cluster dataforge runs itself: `dataforge local …` for developers (under
//! `.dataforge/pg` in the current directory) and throwaway clusters for tests.
//!
//! It is made and run with the server binaries already installed (`initdb`, `pg_ctl`),
//! listens on 127.0.0.1 on a free port and on a Unix socket in its own folder, and trusts
//! local connections: it is for development data only. PostgreSQL refuses to run as root,
//! so when dataforge runs as root the server runs as the `postgres` OS account, as
//! Debian's own tools do.

use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A role that throwaway test clusters check by password (all others are trusted).
pub const AUTH_PROBE_ROLE: &str = "dataforge_auth_probe";

/// The database `dataforge local` creates and points its URL at.
pub const DEFAULT_DATABASE: &str = "dataforge";

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(
        "no PostgreSQL server binaries found (looked for initdb and pg_ctl in $DATAFORGE_PG_BIN, \
         on PATH and under /usr/lib/postgresql/*/bin). Install PostgreSQL (Debian/Ubuntu: \
         `apt-get install postgresql`; Fedora: `dnf install postgresql-server`; macOS: \
         `brew install postgresql`), set DATAFORGE_PG_BIN to the folder holding initdb, or \
         use an existing server with --database-url URL or DATABASE_URL"
    )]
    NoBinaries,
    #[error(
        "running as root, but there is no `postgres` OS account to run the server as \
         (PostgreSQL refuses to run as root). Create one (`useradd --system postgres`), \
         run dataforge as an ordinary user, or use --database-url URL / DATABASE_URL"
    )]
    NoPostgresUser,
    #[error(
        "the local cluster runs as the `postgres` OS account (PostgreSQL refuses root), and \
         that account cannot enter {} (mode {mode:o}), on the way to {}. Run dataforge from a \
         folder it can reach, let it through with `chmod o+x {}`, or use an existing server \
         with --database-url URL / DATABASE_URL",
        .blocked.display(), .root.display(), .blocked.display()
    )]
    Unreachable {
        root: PathBuf,
        blocked: PathBuf,
        mode: u32,
    },
    #[error("no local cluster in {0} (start one with `dataforge local start`)")]
    NotCreated(PathBuf),
    #[error("{what} failed ({status}): {output}{hint}")]
    Command {
        what: String,
        status: String,
        output: String,
        hint: String,
    },
    #[error("{what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> LocalError + 'a {
    move |source| LocalError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Where the server binaries live: `$DATAFORGE_PG_BIN`, then the folder of `initdb` on
/// PATH, then the newest `/usr/lib/postgresql/<version>/bin`.
pub fn find_bin_dir() -> Result<PathBuf, LocalError> {
    super::tools::find_dir(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
        .ok_or(LocalError::NoBinaries)
}

/// The OS account the server runs as: ourselves, or `postgres` when we are root.
#[derive(Debug, Clone)]
struct RunAs {
    ids: Option<(u32, u32, PathBuf)>,
}

impl RunAs {
    fn detect() -> Result<Self, LocalError> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(RunAs { ids: None });
        }
        let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
        let entry = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 7 && f[0] == "postgres")
            .ok_or(LocalError::NoPostgresUser)?;
        let uid = entry[2].parse().map_err(|_| LocalError::NoPostgresUser)?;
        let gid = entry[3].parse().map_err(|_| LocalError::NoPostgresUser)?;
        Ok(RunAs {
            ids: Some((uid, gid, PathBuf::from(entry[5]))),
        })
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        if let Some((uid, gid, home)) = &self.ids {
            c.uid(*uid).gid(*gid).env("HOME", home);
        }
        c.env_remove("PGDATA").env("LC_ALL", "C");
        c
    }

    /// Fails when the account the server runs as cannot reach `root`: the first folder
    /// on the way without the search (x) permission for it is named.
    fn check_reachable(&self, root: &Path) -> Result<(), LocalError> {
        use std::os::unix::fs::MetadataExt as _;
        let Some((uid, gid, _)) = &self.ids else {
            return Ok(());
        };
        let absolute = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        let mut ancestors: Vec<&Path> = absolute.ancestors().skip(1).collect();
        ancestors.reverse();
        for dir in ancestors {
            let Ok(meta) = fs::metadata(dir) else {
                break; // not made yet: it will be made reachable
            };
            let bit = if meta.uid() == *uid {
                0o100
            } else if meta.gid() == *gid {
                0o010
            } else {
                0o001
            };
            if meta.mode() & bit == 0 {
                return Err(LocalError::Unreachable {
                    root: absolute.clone(),
                    blocked: dir.to_path_buf(),
                    mode: meta.mode() & 0o7777,
                });
            }
        }
        Ok(())
    }

    fn own(&self, path: &Path) -> Result<(), LocalError> {
        if let Some((uid, gid, _)) = &self.ids {
            std::os::unix::fs::chown(path, Some(*uid), Some(*gid))
                .map_err(io_err("cannot hand to the postgres account", path))?;
        }
        Ok(())
    }
}

/// What a cluster folder holds right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    NotCreated,
    Stopped { port: u16 },
    Running { port: u16, pid: u32 },
}

/// How a cluster trades durability for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Normal settings: for `dataforge local`, whose data a developer keeps.
    Durable,
    /// fsync off and no WAL waits: for throwaway test clusters only.
    Throwaway,
}

/// A cluster in a folder: `data/` (PGDATA), the socket, `postgres.log`, `port`.
#[derive(Debug, Clone)]
pub struct Cluster {
    root: PathBuf,
    durability: Durability,
}

impl Cluster {
    /// The developer cluster for a working directory: `<dir>/.dataforge/pg`.
    pub fn for_project(dir: &Path) -> Self {
        Cluster {
            root: dir.join(".dataforge").join("pg"),
            durability: Durability::Durable,
        }
    }

    /// A cluster in an explicit folder.
    pub fn at(root: impl Into<PathBuf>, durability: Durability) -> Self {
        Cluster {
            root: root.into(),
            durability,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    fn port_file(&self) -> PathBuf {
        self.root.join("port")
    }

    fn recorded_port(&self) -> Option<u16> {
        fs::read_to_string(self.port_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// A connection URL for `db` that psql and every libpq client accept.
    pub fn url(&self, db: &str) -> Result<String, LocalError> {
        match self.status()? {
            Status::NotCreated => Err(LocalError::NotCreated(self.root.clone())),
            Status::Stopped { port } | Status::Running { port, .. } => {
                Ok(format!("postgresql://postgres@127.0.0.1:{port}/{db}"))
            }
        }
    }

    pub fn status(&self) -> Result<Status, LocalError> {
        if !self.data_dir().join("PG_VERSION").exists() {
            return Ok(Status::NotCreated);
        }
        let port = self.recorded_port().unwrap_or(5432);
        let pid_file = self.data_dir().join("postmaster.pid");
        let Ok(text) = fs::read_to_string(&pid_file) else {
            return Ok(Status::Stopped { port });
        };
        let mut lines = text.lines();
        let pid: u32 = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        let pid_port = lines
            .nth(2)
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(port);
        // SAFETY: kill with signal 0 only checks that the process exists.
        let alive = pid > 0 && unsafe { libc::kill(pid as i32, 0) } == 0;
        Ok(if alive {
            Status::Running {
                port: pid_port,
                pid,
            }
        } else {
            Status::Stopped { port }
        })
    }

    fn lock(&self) -> Result<File, LocalError> {
        let parent = self.root.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(io_err("cannot create", parent))?;
        let path = parent.join(format!(
            "{}.lock",
            self.root
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("pg")
        ));
        let f = File::create(&path).map_err(io_err("cannot create", &path))?;
        f.lock().map_err(io_err("cannot lock", &path))?;
        Ok(f)
    }

    /// Creates the cluster if needed and starts it. Returns the port and whether it was
    /// already running.
    pub fn start(&self) -> Result<(u16, bool), LocalError> {
        let run_as = RunAs::detect()?;
        // before anything is made in the folder
        run_as.check_reachable(&self.root)?;
        let _guard = self.lock()?;
        if let Status::Running { port, .. } = self.status()? {
            return Ok((port, true));
        }
        let bin = find_bin_dir()?;
        if self.status()? == Status::NotCreated {
            self.init(&bin, &run_as)?;
        }
        let port = match self.recorded_port() {
            Some(p) if port_is_free(p) => p,
            _ => {
                free_port().map_err(io_err("cannot find a free port on", Path::new("127.0.0.1")))?
            }
        };
        self.write_settings(port, &run_as)?;
        let out = run_as
            .command(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", "120", "start"])
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .output()
            .map_err(io_err("cannot run", &bin.join("pg_ctl")))?;
        if !out.status.success() {
            return Err(self.command_failed("pg_ctl start", &out));
        }
        Ok((port, false))
    }

    fn init(&self, bin: &Path, run_as: &RunAs) -> Result<(), LocalError> {
        fs::create_dir_all(&self.root).map_err(io_err("cannot create", &self.root))?;
        if let Some(parent) = self.root.parent() {
            // keep the cluster out of version control wherever it is made
            let ignore = parent.join(".gitignore");
            if !ignore.exists() {
                let _ = fs::write(&ignore, "*\n");
            }
        }
        fs::set_permissions(&self.root, fs::Permissions::from_mode(0o700))
            .map_err(io_err("cannot set permissions on", &self.root))?;
        run_as.own(&self.root)?;
        let mut cmd = run_as.command(&bin.join("initdb"));
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .current_dir(&self.root)
            .stdin(Stdio::null());
        if self.durability == Durability::Throwaway {
            cmd.arg("--no-sync");
        }
        let out = cmd
            .output()
            .map_err(io_err("cannot run", &bin.join("initdb")))?;
        if !out.status.success() {
            return Err(self.command_failed("initdb", &out));
        }
        if self.durability == Durability::Throwaway {
            // Throwaway clusters also check one password-protected role, so tests can
            // show what a failed login looks like; everyone else is trusted.
            let hba = self.data_dir().join("pg_hba.conf");
            let old = fs::read_to_string(&hba).map_err(io_err("cannot read", &hba))?;
            fs::write(
                &hba,
                format!("host all {AUTH_PROBE_ROLE} 127.0.0.1/32 scram-sha-256\n{old}"),
            )
            .map_err(io_err("cannot write", &hba))?;
        }
        let conf = self.data_dir().join("postgresql.conf");
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .map_err(io_err("cannot open", &conf))?;
        writeln!(
            f,
            "\n# written by dataforge\ninclude_if_exists = 'dataforge.conf'"
        )
        .map_err(io_err("cannot write", &conf))?;
        Ok(())
    }

    fn write_settings(&self, port: u16, run_as: &RunAs) -> Result<(), LocalError> {
        // A Unix socket path must fit in 107 bytes; past that, TCP only.
        let socket_dir = fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        let socket_ok = socket_dir.as_os_str().len() + 20 < 107;
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n",
            if socket_ok {
                socket_dir.to_string_lossy().replace('\'', "''")
            } else {
                String::new()
            }
        );
        if self.durability == Durability::Throwaway {
            conf.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let path = self.data_dir().join("dataforge.conf");
        fs::write(&path, conf).map_err(io_err("cannot write", &path))?;
        run_as.own(&path)?;
        fs::write(self.port_file(), format!("{port}\n"))
            .map_err(io_err("cannot write", &self.port_file()))?;
        Ok(())
    }

    /// Stops the server if it runs; returns whether it was running.
    pub fn stop(&self) -> Result<bool, LocalError> {
        let _guard = self.lock()?;
        if !matches!(self.status()?, Status::Running { .. }) {
            return Ok(false);
        }
        let bin = find_bin_dir()?;
        let out = RunAs::detect()?
            .command(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "-t", "120", "stop"])
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .output()
            .map_err(io_err("cannot run", &bin.join("pg_ctl")))?;
        if !out.status.success() {
            return Err(self.command_failed("pg_ctl stop", &out));
        }
        Ok(true)
    }

    /// Stops the server and removes the whole folder. Returns whether there was one.
    pub fn destroy(&self) -> Result<bool, LocalError> {
        if self.status()? == Status::NotCreated && !self.root.exists() {
            return Ok(false);
        }
        self.stop()?;
        fs::remove_dir_all(&self.root).map_err(io_err("cannot remove", &self.root))?;
        Ok(true)
    }

    fn command_failed(&self, what: &str, out: &Output) -> LocalError {
        let mut text = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if text.is_empty() {
            text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        let mut log_tail = String::new();
        if let Ok(mut f) = File::open(self.log_file()) {
            let mut s = String::new();
            let _ = f.read_to_string(&mut s);
            let lines: Vec<&str> = s.lines().rev().take(5).collect();
            log_tail = lines.into_iter().rev().collect::<Vec<_>>().join(" / ");
        }
        let mut hint = String::new();
        if !log_tail.is_empty() {
            hint.push_str(&format!(
                "; server log ({}): {log_tail}",
                self.log_file().display()
            ));
        }
        if text.contains("Permission denied") {
            hint.push_str(&format!(
                "; the postgres OS account must be able to reach {} (every parent folder \
                 needs the x permission for it)",
                self.root.display()
            ));
        }
        LocalError::Command {
            what: what.to_string(),
            status: out.status.to_string(),
            output: text.replace('\n', " / "),
            hint,
        }
    }
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// A cluster for one test process: made in the temp folder, started once, and stopped
/// and removed by a small watcher process when the test process exits, so nothing is
/// left running after `cargo test`.
pub fn throwaway_cluster() -> Result<Cluster, LocalError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let parent =
        std::env::temp_dir().join(format!("dataforge-test-{}-{nanos:x}", std::process::id()));
    fs::create_dir_all(&parent).map_err(io_err("cannot create", &parent))?;
    fs::set_permissions(&parent, fs::Permissions::from_mode(0o755))
        .map_err(io_err("cannot set permissions on", &parent))?;
    let cluster = Cluster::at(parent.join("pg"), Durability::Throwaway);
    let reaper = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
         pm=$(head -n 1 '{data}/postmaster.pid' 2>/dev/null); \
         if [ -n \"$pm\" ]; then kill -INT \"$pm\" 2>/dev/null; \
           i=0; while kill -0 \"$pm\" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; fi; \
         rm -rf '{parent}'",
        pid = std::process::id(),
        data = cluster.data_dir().display(),
        parent = parent.display(),
    );
    Command::new("sh")
        .args(["-c", &reaper])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(io_err("cannot start the cleanup watcher for", &parent))?;
    cluster.start()?;
    Ok(cluster)
}

/// Creates database `name` in the cluster if it does not exist yet.
pub async fn ensure_database(cluster: &Cluster, name: &str) -> Result<(), super::PgError> {
    let admin_url = cluster
        .url("postgres")
        .map_err(|e| super::PgError::Connect {
            url: cluster.root().display().to_string(),
            reason: e.to_string(),
        })?;
    super::ensure_database(&admin_url, name).await
}
