//! What the benches share: one child process measured from the kernel's own accounting.
//! Each bench includes this file and uses part of it.
#![allow(dead_code)]

use std::process::{Command, Stdio};

/// The config of the shared people table (`../shared/bench/people.sql`): its 7
/// personal columns anonymized.
pub const PEOPLE_CONFIG: &str = r#"
[tables.people]
columns.id = "keep"
columns.first_name = "first-name"
columns.last_name = "last-name"
columns.email = "email"
columns.phone = "phone"
columns.street = "street"
columns.city = "city"
columns.birth = "date-shift"
columns.created_at = "keep"
columns.notes = "keep"
columns.status = "keep"
columns.score = "keep"

# The table's names, streets and cities ("First123", "7 Strada Lunga", "City42") are
# not shaped like the generators' real ones, so their lengths differ by design.
[verify.columns."people.first_name"]
length_tvd = 1.0
[verify.columns."people.last_name"]
length_tvd = 1.0
[verify.columns."people.street"]
length_tvd = 1.0
[verify.columns."people.city"]
length_tvd = 1.0
"#;

use std::time::{Duration, Instant};

/// The middle of `v` (the upper middle for an even count).
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs `cmd` to its end, which must exit with one of `ok`; how long it took. Fails with
/// its output otherwise.
pub fn run_ok(cmd: &mut Command, ok: &[i32]) -> Duration {
    let t = Instant::now();
    let out = cmd.output().expect("command runs");
    let took = t.elapsed();
    assert!(
        out.status.code().is_some_and(|c| ok.contains(&c)),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// What one process took: wall seconds, CPU seconds (user + system) and peak resident
/// memory, from wait4's own accounting of that child.
pub struct Measured {
    pub wall: f64,
    pub cpu: f64,
    pub peak_mb: f64,
}

/// This process's own peak resident memory (VmHWM), in MB.
///
/// A child's peak as wait4 reports it is never below the parent's own peak at the
/// moment of the spawn: the kernel records the old address space's high-water mark at
/// exec, and a vfork-style spawn shares the parent's. A bench therefore measures memory
/// before it holds much itself, and [`measure_allowing`] says when a figure is only
/// that floor.
pub fn own_peak_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// One run of `cmd`, which must exit 0.
pub fn measure(cmd: &mut Command) -> Measured {
    measure_allowing(cmd, &[0])
}

/// [`measure`], accepting any of the exit codes `ok` (a linter exits 1 when it finds
/// something).
// reaped by wait4, which std's wait() would not report the rusage of
#[allow(clippy::zombie_processes)]
pub fn measure_allowing(cmd: &mut Command, ok: &[i32]) -> Measured {
    use std::io::Read as _;
    let t = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let mut status = 0;
    // SAFETY: rusage is a plain C struct of integers; all-zero is a valid value
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child and fills the status and rusage it is given
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut u) };
    let wall = t.elapsed().as_secs_f64();
    assert!(
        pid > 0 && libc::WIFEXITED(status) && ok.contains(&libc::WEXITSTATUS(status)),
        "{cmd:?}: {err}"
    );
    let tv = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    let floor = own_peak_mb();
    let peak = u.ru_maxrss as f64 / 1024.0;
    if peak <= floor + 0.5 {
        eprintln!(
            "note: {cmd:?} peaked at {peak:.1} MB, which is this bench's own peak: the \
             child's real peak is at most that"
        );
    }
    Measured {
        wall,
        cpu: tv(u.ru_utime) + tv(u.ru_stime),
        peak_mb: u.ru_maxrss as f64 / 1024.0,
    }
}

/// The best (by wall time) of `n` runs.
pub fn best_of(n: usize, mut f: impl FnMut() -> Measured) -> Measured {
    (0..n)
        .map(|_| f())
        .min_by(|a, b| a.wall.total_cmp(&b.wall))
        .unwrap()
}
