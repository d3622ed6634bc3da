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

use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use super::deploy::DeployEvent;

/// Tries per event while a receiver answers.
pub const ATTEMPTS: u32 = 3;
/// How long one POST may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How long the end of a deploy waits for queued events.
pub const DRAIN: Duration = Duration::from_secs(10);

/// What a receiver is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// Every event, as JSON.
    Json,
    /// A short message per milestone (started, failed, rolled back, done), as Slack's and
    /// Teams' incoming webhooks take it: `{"text": "…"}`.
    Chat,
}

/// One `--notify` receiver.
#[derive(Debug, Clone)]
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
        if !matches!(scheme, "http" | "https") || rest.is_empty() {
            return Err(format!(
                "`{}` is not an http(s) URL: give `https://host/path`, or \
                 `slack:https://…` for a chat webhook",
                mask(spec)
            ));
        }
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

/// `scheme://host[:port]`, without credentials, of an http(s) URL.
fn authority(url: &str) -> String {
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
    senders: Vec<mpsc::Sender<Message>>,
    results: Mutex<mpsc::Receiver<(usize, Delivery)>>,
    hooks: Vec<Hook>,
}

impl Notifier {
    pub fn new(hooks: Vec<Hook>) -> Notifier {
        let (done, results) = mpsc::channel();
        let senders = hooks
            .iter()
            .enumerate()
            .map(|(i, hook)| {
                let (tx, rx) = mpsc::channel::<Message>();
                let hook = hook.clone();
                let done = done.clone();
                std::thread::spawn(move || {
                    let _ = done.send((i, deliver(&hook, rx)));
                });
                tx
            })
            .collect();
        Notifier {
            senders,
            results: Mutex::new(results),
            hooks,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Hands `m` to every receiver; returns at once.
    pub fn send(&self, m: Message) {
        for s in &self.senders {
            let _ = s.send(m.clone());
        }
    }

    /// Waits at most `within` for the queued events, and says how each receiver fared.
    /// A receiver still sending then is reported with what it had not delivered.
    pub fn finish(self, within: Duration) -> Vec<Delivery> {
        drop(self.senders);
        let deadline = Instant::now() + within;
        let mut got: Vec<Option<Delivery>> = vec![None; self.hooks.len()];
        let results = self.results.into_inner().unwrap_or_else(|p| p.into_inner());
        while got.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            match results.recv_timeout(left) {
                Ok((i, d)) => got[i] = Some(d),
                Err(_) => break,
            }
        }
        got.into_iter()
            .zip(&self.hooks)
            .map(|(d, h)| {
                d.unwrap_or_else(|| Delivery {
                    receiver: h.shown.clone(),
                    kind: kind_name(h.kind),
                    delivered: 0,
                    failed: vec![Missed {
                        event: "(the rest)".into(),
                        error: format!("still sending after {} s; given up", within.as_secs()),
                    }],
                })
            })
            .collect()
    }
}

fn kind_name(k: HookKind) -> &'static str {
    match k {
        HookKind::Json => "json",
        HookKind::Chat => "chat",
    }
}

/// The sender thread of one receiver: every event in order, until the deploy is done.
fn deliver(hook: &Hook, rx: mpsc::Receiver<Message>) -> Delivery {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let mut d = Delivery {
        receiver: hook.shown.clone(),
        kind: kind_name(hook.kind),
        delivered: 0,
        failed: Vec::new(),
    };
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
        if answering {
            d.delivered += 1;
        } else {
            d.failed.push(Missed {
                event: m.json["event"].as_str().unwrap_or("?").to_string(),
                error,
            });
        }
    }
    d
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
        Err(e) => Err(why(&e, &hook.url)),
    }
}

/// A deploy's alerts: its events with where and who, and a person's message for each
/// milestone.
pub struct DeployAlerts {
    notifier: Notifier,
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
            notifier: Notifier::new(hooks),
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
            self.notifier.send(m);
        }
    }

    fn database(&self) -> String {
        self.database.lock().map(|d| d.clone()).unwrap_or_default()
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
        self.notifier.send(m);
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
            self.notifier.send(m);
        }
    }

    /// One migration was applied.
    pub fn migration_finished(&self, name: &str, ms: u64) {
        if let Ok(mut a) = self.applied.lock() {
            a.push(name.to_string());
        }
        self.send(
            serde_json::json!({"event": "migration_finished", "migration": name, "ms": ms}),
            None,
        );
    }

    /// A step of the runbook; `json` is the event as `--json` prints it.
    pub fn deploy(&self, e: &DeployEvent, json: serde_json::Value) {
        let db = self.database();
        let text = match e {
            DeployEvent::StepFailed { step, error, .. } => {
                let error: String = error.chars().take(600).collect();
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
    pub fn finish(self) -> Vec<Delivery> {
        self.release();
        self.notifier.finish(DRAIN)
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
pub fn why(e: &ureq::Error, url: &str) -> String {
    let text = match e {
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
            std::io::ErrorKind::TimedOut => "timed out".to_string(),
            _ => io.to_string(),
        },
        ureq::Error::Timeout(_) => format!("no answer within {} s", TIMEOUT.as_secs()),
        ureq::Error::HostNotFound => "host not found".to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        other => other.to_string(),
    };
    text.replace(url, &mask(url))
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
    }
}
