//! Child processes (pg_dump, pg_restore) that die with dataforge. Each is started with
//! the parent-death signal set to SIGKILL, so `kill -9` of dataforge does not leave a
//! pg_restore filling a staging database or a pg_dump finishing a `.partial` file that
//! nobody will clean.
//!
//! Linux delivers the parent-death signal when the *thread* that forked exits, not the
//! process: so every child is forked by one thread that lives as long as the process.

use std::io;
use std::process::{Child, Command, Output};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

type Request = (Command, mpsc::Sender<io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<Request>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("dataforge-spawner".into())
            .spawn(move || {
                // lives as long as the process: the sender is in a static
                for (mut cmd, reply) in rx {
                    let _ = reply.send(spawn_here(&mut cmd));
                }
            })
            .expect("the spawner thread starts");
        Mutex::new(tx)
    })
}

fn spawn_here(cmd: &mut Command) -> io::Result<Child> {
    use std::os::unix::process::CommandExt as _;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // dataforge died before the signal was set: go too
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Starts `cmd` as a child that dies with dataforge.
pub fn spawn(cmd: Command) -> io::Result<Child> {
    let (reply, answer) = mpsc::channel();
    spawner()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply))
        .map_err(|_| io::Error::other("the process spawner has stopped"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("the process spawner has stopped"))?
}

/// Runs `cmd` to the end, as [`Command::output`] does, as a child that dies with dataforge.
pub fn output(mut cmd: Command) -> io::Result<Output> {
    use std::process::Stdio;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    spawn(cmd)?.wait_with_output()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_child_runs_and_its_output_comes_back() {
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let out = super::output(cmd).unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }
}
