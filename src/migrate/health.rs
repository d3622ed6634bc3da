//! Deploy health checks: after `up`, each service must answer before the deploy is done.
//!
//! A check is an http(s) URL, which passes on a 2xx answer to a GET, or a shell command,
//! which passes when it exits 0. The checks run side by side, each retried every
//! `every` until it passes or `timeout` has gone by; every attempt is reported as it
//! ends, so a person watching sees each answer live.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// One `--health-check`.
#[derive(Debug, Clone)]
pub enum Check {
    Http { url: String },
    Command { command: String },
}

impl Check {
    /// An http(s) URL is fetched; anything else runs as `sh -c CHECK`.
    pub fn parse(spec: &str) -> Result<Check, String> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err("an empty health check: give a URL or a command".into());
        }
        let lower = spec.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            super::alert::check_url(spec).map_err(|why| {
                format!(
                    "`{}` is not a URL dataforge can check: {why}",
                    shown_url(spec)
                )
            })?;
            Ok(Check::Http { url: spec.into() })
        } else {
            Ok(Check::Command {
                command: spec.into(),
            })
        }
    }

    /// The check as it may be printed: a URL without its path or credentials, a command
    /// with the passwords of URLs in it masked.
    pub fn shown(&self) -> String {
        match self {
            Check::Http { url } => shown_url(url),
            Check::Command { command } => mask_command(command),
        }
    }
}

/// A health URL as it may be shown: its path stays (it says which service), credentials
/// and the query's values do not.
fn shown_url(url: &str) -> String {
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let path = rest.find(['/', '?', '#']).map_or("", |i| &rest[i..]);
    let path = match path.split_once('?') {
        Some((p, _)) => format!("{p}?…"),
        None => path.to_string(),
    };
    format!("{}{path}", super::alert::authority(url))
}

/// `scheme://user:password@`: the password (up to the last `@`, which may be in it).
static PASSWORD_IN_URL: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r#"(://[^:/@\s'"]+:)[^\s'"]*@"#).expect("a valid pattern"));
/// A URL's query: its values may be tokens.
static QUERY: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r#"(://[^\s'"?]*\?)[^\s'"]+"#).expect("a valid pattern"));
/// `password=…`, `PGPASSWORD=…`, `token=…`, `api_key: …`, quoted or not.
static SECRET_SETTING: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r#"(?i)\b([a-z_]*(?:password|passwd|pwd|token|secret|api[_-]?key|apikey)[a-z_]*\s*[=:]\s*)('[^']*'|"[^"]*"|[^\s'"]+)"#,
    )
    .expect("a valid pattern")
});
/// `Authorization: Bearer …` (`Basic`, `token`), `Cookie: …`, and `-u user:password`,
/// `--user`, `--password`, `-p` (sshpass) arguments.
static CREDENTIAL: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r#"(?i)(\b(?:bearer|basic|token)\s+|\bcookie:\s*|(?:^|\s)(?:(?-i:-u|-p)|--user|--password)[\s=]*)('[^']*'|"[^"]*"|[^\s'"]+)"#,
    )
    .expect("a valid pattern")
});

/// A command or its output as it may be shown: passwords in URLs, query strings,
/// `password=`/`token=`-like settings and credentials after `Bearer`, `Basic`, `-u`
/// become `***`.
pub fn mask_command(c: &str) -> String {
    let c = PASSWORD_IN_URL.replace_all(c, "${1}***@");
    let c = QUERY.replace_all(&c, "${1}***");
    let c = SECRET_SETTING.replace_all(&c, "${1}***");
    CREDENTIAL.replace_all(&c, "${1}***").into_owned()
}

/// One attempt of one check, as it ends.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attempt {
    pub check: String,
    pub attempt: u32,
    pub passed: bool,
    /// `HTTP 200`, `exit 0`, `HTTP 500`, `connection refused`, `exit 1: <last line>` …
    pub result: String,
    /// Since the checks started.
    pub ms: u64,
}

/// How one check came out.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub check: String,
    pub passed: bool,
    pub attempts: u32,
    /// The last attempt's result.
    pub result: String,
    pub ms: u64,
}

/// Runs every check until each passed or `timeout` went by; `on` hears each attempt.
pub fn run_all(
    checks: &[Check],
    timeout: Duration,
    every: Duration,
    stop: &AtomicBool,
    on: &(dyn Fn(&Attempt) + Sync),
) -> Vec<Outcome> {
    let start = Instant::now();
    let deadline = start + timeout;
    std::thread::scope(|s| {
        let running: Vec<_> = checks
            .iter()
            .map(|c| s.spawn(move || run_one(c, start, deadline, every, stop, on)))
            .collect();
        running
            .into_iter()
            .zip(checks)
            .map(|(h, c)| {
                h.join().unwrap_or_else(|_| Outcome {
                    check: c.shown(),
                    passed: false,
                    attempts: 0,
                    result: "the check's thread failed".into(),
                    ms: start.elapsed().as_millis() as u64,
                })
            })
            .collect()
    })
}

fn run_one(
    check: &Check,
    start: Instant,
    deadline: Instant,
    every: Duration,
    stop: &AtomicBool,
    on: &(dyn Fn(&Attempt) + Sync),
) -> Outcome {
    let shown = check.shown();
    let mut n = 0;
    loop {
        n += 1;
        let began = Instant::now();
        // an attempt gets what is left of the timeout (the first, a second at least)
        let left = deadline.saturating_duration_since(began);
        let left = if n == 1 {
            left.max(Duration::from_secs(1))
        } else {
            left
        };
        let (passed, result) = match check {
            Check::Http { url } => http(url, left),
            Check::Command { command } => command_check(command, left, stop),
        };
        let ms = start.elapsed().as_millis() as u64;
        on(&Attempt {
            check: shown.clone(),
            attempt: n,
            passed,
            result: result.clone(),
            ms,
        });
        // the next attempt: `every` after this one began, or now if this one took longer
        let next = (began + every).max(Instant::now());
        // no attempt starts in the last tenth of a second: it would have no time to answer
        if passed || next + Duration::from_millis(100) >= deadline || stop.load(Ordering::SeqCst) {
            return Outcome {
                check: shown,
                passed,
                attempts: n,
                result,
                ms,
            };
        }
        // the wait for the next attempt ends early when the deploy is interrupted
        while Instant::now() < next && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50).min(next - Instant::now()));
        }
    }
}

fn http(url: &str, within: Duration) -> (bool, String) {
    let within = within.min(Duration::from_secs(10));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(within))
        .http_status_as_error(false)
        .build()
        .into();
    match agent
        .get(url)
        .header(
            "user-agent",
            concat!("dataforge/", env!("CARGO_PKG_VERSION")),
        )
        .call()
    {
        Ok(r) => (
            r.status().is_success(),
            format!("HTTP {}", r.status().as_u16()),
        ),
        Err(e) => (false, super::alert::why(&e, url, within)),
    }
}

fn command_check(command: &str, within: Duration, stop: &AtomicBool) -> (bool, String) {
    use std::os::unix::process::CommandExt as _;
    // a group of its own: at the timeout the whole group goes, the programs the shell
    // started too (they hold the output pipes open)
    let mut sh = Command::new("sh");
    sh.args(["-c", command])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // the shell dies with dataforge, also on kill -9 (what it started in the background
    // may outlive it then)
    let child = crate::child::spawn(sh);
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (false, format!("could not start `sh`: {e}")),
    };
    // the pipes are drained while it runs, so a talkative check cannot block on them
    let drain = |p: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut out);
            }
            out
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + within;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline || stop.load(Ordering::SeqCst) => {
                // SAFETY: kill takes plain integers; the group is the child's own
                // (process_group(0) above), so this signals nothing else
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => break None,
        }
    };
    // what the check left running in the background goes too: it would hold the pipes
    // open, and the check would never end
    // SAFETY: as above; the group may be gone already, which kill reports and we ignore
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let text = [out.join(), err.join()]
        .into_iter()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| mask_command(l.trim()))
        .unwrap_or_default();
    let last: String = last.chars().take(200).collect();
    match status {
        None => (
            false,
            format!(
                "still running when its time ran out ({:.1} s into the attempt); stopped",
                within.as_secs_f64()
            ),
        ),
        Some(s) if s.success() => (true, "exit 0".into()),
        Some(s) => {
            let code = s
                .code()
                .map_or_else(|| "killed by a signal".to_string(), |c| format!("exit {c}"));
            if last.is_empty() {
                (false, code)
            } else {
                (false, format!("{code}: {last}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_urls_keep_their_path_and_lose_credentials_and_query() {
        assert_eq!(
            shown_url("https://u:p@api.example.com/health?token=abc"),
            "https://api.example.com/health?…"
        );
        assert_eq!(
            shown_url("http://127.0.0.1:80/ready"),
            "http://127.0.0.1:80/ready"
        );
        assert_eq!(shown_url("http://u:p@host:1"), "http://host:1");
    }

    #[test]
    fn passwords_in_commands_are_masked() {
        assert_eq!(
            mask_command("psql postgresql://app:s3cret@db:5432/app -c 'select 1'"),
            "psql postgresql://app:***@db:5432/app -c 'select 1'"
        );
        assert_eq!(
            mask_command("PGPASSWORD=s3cret psql -h db -c 'select 1'"),
            "PGPASSWORD=*** psql -h db -c 'select 1'"
        );
        assert_eq!(
            mask_command("psql \"host=db password='a b'\""),
            "psql \"host=db password=***\""
        );
    }

    #[test]
    fn a_user_name_and_a_port_stay_readable() {
        assert_eq!(
            mask_command("psql -h db -p 5432 -U app -c 'select 1'"),
            "psql -h db -p *** -U app -c 'select 1'"
        );
    }

    #[test]
    fn tokens_headers_and_user_passwords_are_masked_too() {
        assert_eq!(
            mask_command("psql 'host=db password=\"a b\"'"),
            "psql 'host=db password=***'"
        );
        assert_eq!(
            mask_command(
                "curl -sf 'http://h:1/health?token=T0K' -u admin:CURLPASS -H 'Authorization: Bearer B3AR'"
            ),
            "curl -sf 'http://h:1/health?***' -u *** -H 'Authorization: Bearer ***'"
        );
        assert_eq!(
            mask_command("ready; token=OUT api_key: K3Y"),
            "ready; token=*** api_key: ***"
        );
        assert_eq!(
            mask_command(
                "x --password PW -H 'Authorization: token GH' -H 'Cookie: s=X' sshpass -p P2 postgres://u:p@SS7@h/db"
            ),
            "x --password *** -H 'Authorization: token ***' -H 'Cookie: ***' sshpass -p *** postgres://u:***@h/db"
        );
    }

    #[test]
    fn a_command_check_passes_on_exit_0_and_says_why_it_failed() {
        assert_eq!(
            command_check("true", Duration::from_secs(5), &AtomicBool::new(false)),
            (true, "exit 0".into())
        );
        let (ok, why) = command_check(
            "echo starting; echo 'not ready' >&2; exit 3",
            Duration::from_secs(5),
            &AtomicBool::new(false),
        );
        assert!(!ok);
        assert_eq!(why, "exit 3: not ready");
        // the programs the shell started go too: the check ends at its timeout
        let t = Instant::now();
        let (ok, why) = command_check(
            "sleep 5; echo done",
            Duration::from_millis(300),
            &AtomicBool::new(false),
        );
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(
            !ok && why.starts_with("still running when its time ran out (0.3 s into the attempt)"),
            "{why}"
        );
        // a check that passes but leaves a program behind holding its output ends too
        let t = Instant::now();
        let (ok, _) = command_check(
            "(sleep 30 &); exit 0",
            Duration::from_secs(5),
            &AtomicBool::new(false),
        );
        assert!(
            ok && t.elapsed() < Duration::from_secs(2),
            "{:?}",
            t.elapsed()
        );
        // an interrupted deploy stops a running check at once
        let t = Instant::now();
        let (ok, _) = command_check("sleep 30", Duration::from_secs(60), &AtomicBool::new(true));
        assert!(
            !ok && t.elapsed() < Duration::from_secs(2),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn a_failing_check_is_retried_until_the_timeout() {
        let seen = std::sync::Mutex::new(Vec::new());
        let out = run_all(
            &[Check::parse("false").unwrap()],
            Duration::from_millis(700),
            Duration::from_millis(200),
            &AtomicBool::new(false),
            &|a| seen.lock().unwrap().push(a.attempt),
        );
        assert!(!out[0].passed);
        let n = seen.lock().unwrap().len();
        assert!((3..=5).contains(&n), "{n} attempts");
        assert_eq!(out[0].attempts as usize, n);
    }
}
