//! Deploy alerts: the deploy's events POSTed to webhooks as they happen.
//!
//! A receiver gets one JSON document per event, unless it is a chat webhook (Slack's
//! `hooks.slack.com`, a Teams `*.webhook.office.com` connector, or any URL given as
//! `slack:URL` or `teams:URL`), which gets a short message for a person instead: what
//! happened, where, who ran it, how long it took and what to do next.
//!
//! Delivery never holds up the deploy: each receiver has a sender thread of its own, and
//! the deploy only hands an event over. An event is tried [`ATTEMPTS`] times, briefly; a
//! receiver that missed one gets a single try for each later event. At the end the deploy
//! waits at most [`DRAIN`] for what is still queued, and the summary names every receiver
//! that missed an event. A receiver's URL is a secret (a Slack webhook's path is its
//! key): only [`Hook::shown`], scheme, host and port, is ever printed or logged.

use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::deploy::DeployEvent;

/// Tries per event while a receiver answers.
pub const ATTEMPTS: u32 = 3;
/// How long one POST may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How long the end of a deploy waits for queued events.
pub const DRAIN: Duration = Duration::from_secs(10);

/// What a receiver is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookKind {
    /// Every event, as JSON.
    Json,
    /// A short message per milestone (started, failed, rolled back, done), as Slack's and
    /// Teams' incoming webhooks take it: `{"text": "…"}`.
    Chat,
}

/// One `--notify` receiver. Its `Debug` shows [`Hook::shown`], never the URL.
#[derive(Clone)]
pub struct Hook {
    url: String,
    pub kind: HookKind,
    /// The URL with everything after the host masked: safe to print.
    pub shown: String,
}

impl Hook {
    /// `URL`, `slack:URL`, `teams:URL` or `json:URL`. A URL on Slack's or Teams' webhook
    /// hosts is a chat receiver without the prefix.
    pub fn parse(spec: &str) -> Result<Hook, String> {
        let spec = spec.trim();
        let (forced, url) = match spec.split_once(':') {
            Some(("slack" | "teams", rest)) => (Some(HookKind::Chat), rest),
            Some(("json", rest)) => (Some(HookKind::Json), rest),
            _ => (None, spec),
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(format!(
                "`{}` is not an http(s) URL: give `https://host/path`, or \
                 `slack:https://…` for a chat webhook",
                mask(spec)
            ));
        };
        if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") || rest.is_empty() {
            return Err(format!(
                "`{}` is not an http(s) URL: give `https://host/path`, or \
                 `slack:https://…` for a chat webhook",
                mask(spec)
            ));
        }
        check_url(url)
            .map_err(|why| format!("`{}` is not a URL dataforge can send to: {why}", mask(spec)))?;
        let host = host_of(url);
        let chat = host == "hooks.slack.com"
            || host.ends_with(".webhook.office.com")
            || host == "outlook.office.com";
        Ok(Hook {
            url: url.to_string(),
            kind: forced.unwrap_or(if chat { HookKind::Chat } else { HookKind::Json }),
            shown: mask(url),
        })
    }
}

/// What is wrong with an http(s) URL, in words that do not repeat it: a host, a port
/// that is a port, nothing a request line cannot carry.
pub fn check_url(url: &str) -> Result<(), String> {
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|_| "it does not parse (a space, a bracket left open?)".to_string())?;
    let Some(authority) = uri.authority() else {
        return Err("it names no host".into());
    };
    if uri.host().is_none_or(str::is_empty) {
        return Err("it names no host".into());
    }
    // the port as written (the parser drops one that is not a u16)
    let hostport = authority.as_str().rsplit('@').next().unwrap_or("");
    let port = match hostport.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, p)| p),
        None => hostport.split_once(':').map(|(_, p)| p),
    };
    match port {
        Some(p) if !p.parse::<u16>().is_ok_and(|n| n > 0) => {
            Err(format!("its port `{p}` is not a port (1-65535)"))
        }
        _ => Ok(()),
    }
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("kind", &self.kind)
            .field("shown", &self.shown)
            .finish()
    }
}

/// `text` with every http(s) URL in it shown as [`mask`] shows it.
pub fn mask_urls(text: &str) -> String {
    static URL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"(?i)https?://[^\s"'`]+"#).expect("a valid pattern")
    });
    URL.replace_all(text, |c: &regex::Captures| mask(&c[0]))
        .into_owned()
}

impl Hook {
    /// What makes two receivers one: the URL and what it is sent.
    pub fn key(&self) -> (String, HookKind) {
        // `http://h:1/x` and `http://h:1/x/` are one receiver
        (self.url.trim_end_matches('/').to_string(), self.kind)
    }
}

/// `scheme://host[:port]`, without credentials, of an http(s) URL.
pub(super) fn authority(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return String::new();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = &rest[..end];
    let auth = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    format!("{scheme}://{auth}")
}

fn host_of(url: &str) -> String {
    let a = authority(url);
    let hostport = a.split_once("://").map_or("", |(_, h)| h);
    let host = match hostport.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => hostport.split(':').next().unwrap_or(""),
    };
    host.to_ascii_lowercase()
}

/// A URL as it may be shown: scheme, host and port; a path, query or credentials become
/// `/…` (a webhook's path is its secret). Anything that is not a URL is shown as `…`.
pub fn mask(url: &str) -> String {
    let (prefix, url) = match url.split_once(':') {
        Some((p @ ("slack" | "teams" | "json"), rest)) => (format!("{p}:"), rest),
        _ => (String::new(), url),
    };
    let a = authority(url);
    if a.is_empty() {
        return "…".into();
    }
    let (_, rest) = url.split_once("://").unwrap_or(("", ""));
    let bare = rest.trim_end_matches('/');
    if bare.contains(['/', '?', '#', '@']) {
        format!("{prefix}{a}/…")
    } else {
        format!("{prefix}{a}")
    }
}

/// One event for the receivers: its JSON, and the chat message when it is a milestone.
#[derive(Debug, Clone)]
pub struct Message {
    pub json: serde_json::Value,
    pub text: Option<String>,
}

/// How delivery to one receiver went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Delivery {
    pub receiver: String,
    pub kind: &'static str,
    pub delivered: usize,
    /// The events it missed, each with why.
    pub failed: Vec<Missed>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Missed {
    pub event: String,
    pub error: String,
}

/// The receivers of one deploy, each fed by its own thread.
pub struct Notifier {
    receivers: Vec<Receiver>,
}

/// One receiver's queue, and how far its thread has got (read at the end, also when the
/// thread is still sending).
struct Receiver {
    hook: Hook,
    tx: mpsc::Sender<Message>,
    progress: Arc<Mutex<Delivery>>,
    /// The events queued for it, in order.
    queued: Mutex<Vec<String>>,
    done: Mutex<mpsc::Receiver<()>>,
}

impl Notifier {
    pub fn new(hooks: Vec<Hook>) -> Notifier {
        let receivers = hooks
            .into_iter()
            .map(|hook| {
                let (tx, rx) = mpsc::channel::<Message>();
                let (finished, done) = mpsc::channel();
                let progress = Arc::new(Mutex::new(Delivery {
                    receiver: hook.shown.clone(),
                    kind: kind_name(hook.kind),
                    delivered: 0,
                    failed: Vec::new(),
                }));
                let (h, p) = (hook.clone(), progress.clone());
                std::thread::spawn(move || {
                    deliver(&h, rx, &p);
                    let _ = finished.send(());
                });
                Receiver {
                    hook,
                    tx,
                    progress,
                    queued: Mutex::new(Vec::new()),
                    done: Mutex::new(done),
                }
            })
            .collect();
        Notifier { receivers }
    }

    pub fn is_empty(&self) -> bool {
        self.receivers.is_empty()
    }

    /// Hands `m` to every receiver that takes it; returns at once.
    pub fn send(&self, m: Message) {
        for r in &self.receivers {
            if r.hook.kind == HookKind::Chat && m.text.is_none() {
                continue;
            }
            if let Ok(mut q) = r.queued.lock() {
                q.push(m.json["event"].as_str().unwrap_or("?").to_string());
            }
            let _ = r.tx.send(m.clone());
        }
    }

    /// Waits at most `within` for the queued events, and says how each receiver fared:
    /// a receiver still sending then has the events it had not sent listed as missed.
    pub fn finish(self, within: Duration) -> Vec<Delivery> {
        let deadline = Instant::now() + within;
        // closing the queues ends each thread once its queue is empty
        let waiting: Vec<_> = self
            .receivers
            .into_iter()
            .map(|r| (r.progress, r.queued, r.done))
            .collect();
        let mut out = Vec::new();
        for (progress, queued, done) in waiting {
            let left = deadline.saturating_duration_since(Instant::now());
            let done = done.into_inner().unwrap_or_else(|p| p.into_inner());
            let finished = done.recv_timeout(left).is_ok();
            let mut d = progress
                .lock()
                .map(|d| d.clone())
                .unwrap_or_else(|p| p.into_inner().clone());
            if !finished {
                let queued = queued.into_inner().unwrap_or_else(|p| p.into_inner());
                let handled = d.delivered + d.failed.len();
                for event in queued.into_iter().skip(handled) {
                    d.failed.push(Missed {
                        event,
                        error: format!(
                            "not sent: the receiver was still busy when the deploy's {} s for alerts ran out",
                            within.as_secs()
                        ),
                    });
                }
            }
            out.push(d);
        }
        out
    }
}

fn kind_name(k: HookKind) -> &'static str {
    match k {
        HookKind::Json => "json",
        HookKind::Chat => "chat",
    }
}

/// The sender thread of one receiver: every event in order, until the deploy is done;
/// `progress` says how far it got after each.
fn deliver(hook: &Hook, rx: mpsc::Receiver<Message>, progress: &Mutex<Delivery>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let mut answering = true;
    for m in rx {
        let body = match (hook.kind, &m.text) {
            (HookKind::Json, _) => m.json.to_string(),
            (HookKind::Chat, Some(t)) => serde_json::json!({ "text": t }).to_string(),
            (HookKind::Chat, None) => continue,
        };
        let tries = if answering { ATTEMPTS } else { 1 };
        let mut error = String::new();
        for attempt in 0..tries {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(250 << attempt));
            }
            match post(&agent, hook, &body) {
                Ok(()) => {
                    error.clear();
                    break;
                }
                Err(e) => error = e,
            }
        }
        answering = error.is_empty();
        let Ok(mut d) = progress.lock() else { return };
        if answering {
            d.delivered += 1;
        } else {
            d.failed.push(Missed {
                event: m.json["event"].as_str().unwrap_or("?").to_string(),
                error,
            });
        }
    }
}

/// One POST; an error says why without the URL.
fn post(agent: &ureq::Agent, hook: &Hook, body: &str) -> Result<(), String> {
    let r = agent
        .post(&hook.url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("dataforge/", env!("CARGO_PKG_VERSION")),
        )
        .send(body);
    match r {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("answered HTTP {}", resp.status().as_u16())),
        Err(e) => Err(why(&e, &hook.url, TIMEOUT)),
    }
}

/// A deploy's alerts: its events with where and who, and a person's message for each
/// milestone.
pub struct DeployAlerts {
    /// Taken by [`DeployAlerts::finish`].
    notifier: Mutex<Option<Notifier>>,
    database: Mutex<String>,
    by: String,
    started: Instant,
    /// Events before the target is known, held so that `deploy_started` comes first.
    held: Mutex<Option<Vec<Message>>>,
    /// The migrations applied, for the closing message.
    applied: Mutex<Vec<String>>,
}

impl DeployAlerts {
    pub fn new(hooks: Vec<Hook>) -> DeployAlerts {
        DeployAlerts {
            notifier: Mutex::new(Some(Notifier::new(hooks))),
            database: Mutex::new(String::new()),
            by: super::history::os_user(),
            started: Instant::now(),
            held: Mutex::new(Some(Vec::new())),
            applied: Mutex::new(Vec::new()),
        }
    }

    /// Sends what was held (after `deploy_started`, or at the end when the target was
    /// never reached).
    fn release(&self) {
        let held = self.held.lock().ok().and_then(|mut h| h.take());
        for m in held.into_iter().flatten() {
            self.deliver(m);
        }
    }

    fn deliver(&self, m: Message) {
        if let Ok(n) = self.notifier.lock() {
            if let Some(n) = n.as_ref() {
                n.send(m);
            }
        }
    }

    fn database(&self) -> String {
        let d = self.database.lock().map(|d| d.clone()).unwrap_or_default();
        if d.is_empty() {
            "(a database not reached)".into()
        } else {
            d
        }
    }

    fn send(&self, mut json: serde_json::Value, text: Option<String>) {
        json["database"] = self.database().into();
        json["by"] = self.by.clone().into();
        json["at"] = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
            .into();
        let m = Message { json, text };
        if let Ok(mut held) = self.held.lock() {
            if let Some(h) = held.as_mut() {
                h.push(m);
                return;
            }
        }
        self.deliver(m);
    }

    /// The target is known: the deploy has started.
    pub fn started(&self, url: &str) {
        if let Ok(mut d) = self.database.lock() {
            *d = place(url);
        }
        let text = format!(
            "dataforge deploy started on {} (by {})",
            self.database(),
            self.by
        );
        let held = self.held.lock().ok().and_then(|mut h| h.take());
        self.send(serde_json::json!({"event": "deploy_started"}), Some(text));
        for mut m in held.into_iter().flatten() {
            m.json["database"] = self.database().into();
            self.deliver(m);
        }
    }

    /// One migration was applied.
    pub fn migration_finished(&self, name: &str, ms: u64) {
        if let Ok(mut a) = self.applied.lock() {
            a.push(name.to_string());
        }
        self.send(
            serde_json::json!({"event": "migration_finished", "name": name, "ms": ms}),
            None,
        );
    }

    /// A step of the runbook; `json` is the event as `--json` prints it.
    pub fn deploy(&self, e: &DeployEvent, json: serde_json::Value) {
        let db = self.database();
        let text = match e {
            DeployEvent::StepFailed { step, error, .. } => {
                // the headline only: a server's DETAIL lines may quote row values, which
                // have no place in a chat room
                let error: String = error
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(400)
                    .collect();
                Some(format!(
                    "dataforge deploy on {db} FAILED at {step}: {error}"
                ))
            }
            DeployEvent::RolledBack { how, migrations } => Some(format!(
                "dataforge deploy on {db} was rolled back, {}: {}",
                if *how == "down" {
                    "by each migration's down.sql"
                } else {
                    "by restoring the pre-deploy backup"
                },
                migrations.join(", ")
            )),
            DeployEvent::Done { state, next, ok } => {
                let took = self.started.elapsed().as_secs_f64();
                let mut t = if *ok {
                    format!("dataforge deploy on {db} done in {took:.1} s: {state}")
                } else {
                    format!("dataforge deploy on {db} FAILED after {took:.1} s: {state}")
                };
                let applied = self
                    .applied
                    .lock()
                    .map(|a| a.join(", "))
                    .unwrap_or_default();
                if *ok && !applied.is_empty() {
                    t.push_str(&format!(" (applied: {applied})"));
                }
                if !next.is_empty() {
                    t.push_str(&format!(". Next: {next}"));
                }
                t.push_str(&format!(" (by {})", self.by));
                Some(t)
            }
            DeployEvent::HealthAttempt(_) | DeployEvent::Running { .. } | DeployEvent::Stopped => {
                return
            }
            _ => None,
        };
        self.send(json, text);
    }

    /// Waits at most [`DRAIN`] for what is queued; how each receiver fared.
    pub fn finish(&self) -> Vec<Delivery> {
        self.release();
        let notifier = self.notifier.lock().ok().and_then(|mut n| n.take());
        notifier.map(|n| n.finish(DRAIN)).unwrap_or_default()
    }
}

/// `app at db.example.com:5432`: the database and its server, without credentials.
pub fn place(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(c) => {
            let host = match c.get_hosts().first() {
                Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
                Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
                None => "localhost".into(),
            };
            let port = c.get_ports().first().copied().unwrap_or(5432);
            format!(
                "{} at {host}:{port}",
                c.get_dbname().or(c.get_user()).unwrap_or("postgres")
            )
        }
        Err(_) => crate::pg::mask_url(url),
    }
}

/// An HTTP client error in words that do not repeat the URL (its secret).
pub fn why(e: &ureq::Error, url: &str, timeout: Duration) -> String {
    let text = match e {
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
            std::io::ErrorKind::TimedOut => "timed out".to_string(),
            _ => io.to_string(),
        },
        ureq::Error::Timeout(_) => format!("no answer within {:.1} s", timeout.as_secs_f64()),
        ureq::Error::HostNotFound => "host not found".to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        other => other.to_string(),
    };
    mask_urls(&text.replace(url, &mask(url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_secret_parts() {
        assert_eq!(
            mask("https://hooks.slack.com/services/T0/B0/s3cr3t"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            mask("https://user:pw@alerts.example.com:8443/x?token=abc"),
            "https://alerts.example.com:8443/…"
        );
        assert_eq!(mask("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(mask("http://127.0.0.1:9000/"), "http://127.0.0.1:9000");
        assert_eq!(
            mask("slack:https://chat.example.com/hook/abc"),
            "slack:https://chat.example.com/…"
        );
        assert_eq!(mask("not a url"), "…");
    }

    #[test]
    fn chat_receivers_are_known_by_host_or_prefix() {
        let k = |s: &str| Hook::parse(s).unwrap().kind;
        assert_eq!(k("https://hooks.slack.com/services/T/B/x"), HookKind::Chat);
        assert_eq!(
            k("https://contoso.webhook.office.com/webhookb2/abc"),
            HookKind::Chat
        );
        assert_eq!(k("slack:http://127.0.0.1:1/x"), HookKind::Chat);
        assert_eq!(k("teams:http://127.0.0.1:1/x"), HookKind::Chat);
        assert_eq!(k("https://alerts.example.com/deploy"), HookKind::Json);
        assert_eq!(k("json:https://hooks.slack.com/services/x"), HookKind::Json);
        let e = Hook::parse("ftp://x/secret").unwrap_err();
        assert!(
            e.contains("not an http(s) URL") && !e.contains("secret"),
            "{e}"
        );
        let e = Hook::parse("hooks.slack.com/services/x").unwrap_err();
        assert!(e.contains("not an http(s) URL"), "{e}");
        assert_eq!(k("HTTPS://alerts.example.com/deploy"), HookKind::Json);
        for (bad, why) in [
            ("http://exa mple.com/x", "does not parse"),
            ("http://127.0.0.1:99999/x", "port `99999` is not a port"),
            ("http://:5621/x", "names no host"),
            ("http://[::1/x", "does not parse"),
        ] {
            let e = Hook::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
