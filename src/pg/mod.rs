//! Everything that talks to PostgreSQL: connecting with the session settings dataforge
//! relies on, turning server errors into messages that show PostgreSQL's own diagnostics,
//! the COPY text codec, and the local cluster dataforge manages.
//!
//! Connection URLs are never printed as given: [`mask_url`] hides the password first.

pub mod copy;
pub mod local;
pub mod staging;
pub mod tls;
pub mod tools;

use std::fmt;

use tokio_postgres::Client;

/// Session settings pinned on every connection, as pg_dump does, so text renderings of
/// dates, intervals and floats are the same whatever the server's defaults are.
const SESSION_SETUP: &str = "SET client_encoding = 'UTF8'; SET DateStyle = 'ISO, YMD'; \
     SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; SET TimeZone = 'UTC'";

/// A failure talking to PostgreSQL, carrying what we were doing and where.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{what}: {}", describe(.source))]
    Query {
        what: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("invalid database URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
}

impl PgError {
    /// Wraps a driver error with a description of what was being done.
    pub fn query(what: impl Into<String>, source: tokio_postgres::Error) -> Self {
        PgError::Query {
            what: what.into(),
            source,
        }
    }

    /// The SQLSTATE of the server error behind this one, if the server said something.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            PgError::Query { source, .. } => source.as_db_error().map(|e| e.code().code()),
            _ => None,
        }
    }
}

/// Shorthand used throughout the crate: attach a description to a driver error.
pub trait PgContext<T> {
    fn pg(self, what: impl FnOnce() -> String) -> Result<T, PgError>;
}

impl<T> PgContext<T> for Result<T, tokio_postgres::Error> {
    fn pg(self, what: impl FnOnce() -> String) -> Result<T, PgError> {
        self.map_err(|e| PgError::query(what(), e))
    }
}

/// Renders a driver error the way a person needs it: the server's message with its
/// SQLSTATE, the table, column and constraint it names, detail, hint and COPY context.
/// For non-server errors, the driver's own message and its cause.
pub fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        let mut at = Vec::new();
        if let Some(t) = db.table() {
            match db.column() {
                Some(c) => at.push(format!("column {t}.{c}")),
                None => at.push(format!("table {t}")),
            }
        } else if let Some(c) = db.column() {
            at.push(format!("column {c}"));
        }
        if let Some(c) = db.constraint() {
            at.push(format!("constraint {c}"));
        }
        if !at.is_empty() {
            s.push_str(&format!(" [{}]", at.join(", ")));
        }
        if let Some(d) = db.detail() {
            s.push_str(&format!("; DETAIL: {d}"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!("; HINT: {h}"));
        }
        if let Some(w) = db.where_() {
            s.push_str(&format!("; CONTEXT: {}", w.replace('\n', " / ")));
        }
        return s;
    }
    let mut s = err.to_string();
    let mut src = std::error::Error::source(err);
    while let Some(e) = src {
        s.push_str(": ");
        s.push_str(&e.to_string());
        src = e.source();
    }
    s
}

/// Returns `url` with any password replaced by `***`, for every message that shows a URL.
/// Works on `postgres://user:pw@host/db` URLs and on `key=value` strings (`password=…`).
/// The `key = value` pairs of a libpq conninfo string (`host=db password='se cret'`), a
/// value quoted with `'…'` (backslash escapes) kept whole.
fn conninfo_pairs(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            return out;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == '=') {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
}

/// `%41` → `A`, as libpq decodes a URL's parts.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The connection string without its password, and the password: what a child tool
/// (pg_dump, pg_restore, psql) gets as argv and as `PGPASSWORD`, so no password is ever
/// in a process list. Both forms: a URL (`user:pw@host`, `?password=`) and key=value.
/// Whether `s` is a libpq `key=value` connection string: every word a `key=value` pair
/// (quoted values allowed) and at least one key naming where to connect.
pub fn is_conninfo(s: &str) -> bool {
    const KEYS: [&str; 6] = ["host", "hostaddr", "port", "dbname", "user", "service"];
    if s.contains("://") || !s.contains('=') {
        return false;
    }
    let pairs = conninfo_pairs(s);
    !pairs.is_empty()
        && pairs
            .iter()
            .all(|(k, _)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        && pairs.iter().any(|(k, _)| KEYS.contains(&k.as_str()))
}

pub fn split_password(conn: &str) -> (String, Option<String>) {
    if let Some(scheme_end) = conn.find("://") {
        let rest = &conn[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let mut password = None;
        let authority = match authority.rfind('@') {
            Some(at) => match authority[..at].split_once(':') {
                Some((user, pw)) => {
                    password = Some(percent_decode(pw));
                    format!("{user}{}", &authority[at..])
                }
                None => authority.to_string(),
            },
            None => authority.to_string(),
        };
        let mut tail = rest[authority_end..].to_string();
        if let Some(q) = tail.find('?') {
            let (path, query) = tail.split_at(q);
            let kept: Vec<&str> = query[1..]
                .split('&')
                .filter(|kv| match kv.split_once('=') {
                    Some((k, v)) if k.eq_ignore_ascii_case("password") => {
                        password = Some(percent_decode(v));
                        false
                    }
                    _ => true,
                })
                .collect();
            tail = if kept.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{}", kept.join("&"))
            };
        }
        return (
            format!("{}{authority}{tail}", &conn[..scheme_end + 3]),
            password,
        );
    }
    let mut password = None;
    let kept: Vec<String> = conninfo_pairs(conn)
        .into_iter()
        .filter_map(|(k, v)| {
            if k.eq_ignore_ascii_case("password") {
                password = Some(v);
                None
            } else {
                Some(format!(
                    "{k}='{}'",
                    v.replace('\\', "\\\\").replace('\'', "\\'")
                ))
            }
        })
        .collect();
    (kept.join(" "), password)
}

pub fn mask_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let masked_authority = match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => format!("{}:***{}", &userinfo[..colon], &authority[at..]),
                    None => authority.to_string(),
                }
            }
            None => authority.to_string(),
        };
        let mut tail = rest[authority_end..].to_string();
        // password may also travel as a query parameter
        if let Some(q) = tail.find('?') {
            let (path, query) = tail.split_at(q + 1);
            let masked: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            tail = format!("{path}{}", masked.join("&"));
        }
        return format!("{}{}{}", &url[..scheme_end + 3], masked_authority, tail);
    }
    // key=value: a quoted password (`password='se cret'`) is masked whole
    if !url.contains('=') {
        return url.to_string();
    }
    conninfo_pairs(url)
        .into_iter()
        .map(|(k, v)| {
            if k.eq_ignore_ascii_case("password") {
                format!("{k}=***")
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What is wrong with a connection string in words the user can act on, before the
/// parser's own (`unexpected EOF` for `mysql://…`).
fn url_problem(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "postgres" | "postgresql") {
        return Some(format!(
            "`{scheme}://` is not a PostgreSQL URL; expected postgres://USER:PASSWORD@HOST:PORT/DATABASE \
             (or postgresql://…)"
        ));
    }
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    if authority.matches('@').count() > 1 {
        return Some(
            "the user or password holds a raw `@`; percent-encode it as %40 \
             (e.g. postgres://app:p%40ss@db/prod)"
                .into(),
        );
    }
    None
}

/// The driver's view of a connection string, and its TLS settings (which the driver does
/// not parse): the one place a URL or `key=value` string is read.
pub fn parse(url: &str) -> Result<(tokio_postgres::Config, tls::TlsParams), PgError> {
    if let Some(reason) = url_problem(url) {
        return Err(PgError::BadUrl {
            url: mask_url(url),
            reason,
        });
    }
    let (rest, tls) = tls::split(url).map_err(|reason| PgError::BadUrl {
        url: mask_url(url),
        reason,
    })?;
    let rest = query_host_overrides(&rest);
    let config = rest
        .parse()
        .map_err(|e: tokio_postgres::Error| PgError::BadUrl {
            url: mask_url(url),
            reason: describe(&e),
        })?;
    Ok((config, tls))
}

/// A URL's `?host=` replaces the host written before the path, as libpq reads it
/// (`postgresql://user@localhost/db?host=/run/postgresql` connects to the socket only);
/// the driver would add it as a second host instead, and try TLS to a socket path. The
/// authority's port moves into the query when the query gives none.
fn query_host_overrides(url: &str) -> String {
    let Some((scheme, after)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((before_query, query)) = after.split_once('?') else {
        return url.to_string();
    };
    let has = |key: &str| query.split('&').any(|kv| kv.split('=').next() == Some(key));
    if !has("host") {
        return url.to_string();
    }
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, ""),
    };
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if hostport.is_empty() {
        return url.to_string();
    }
    // a port after the last ':' that is not inside an [IPv6] literal
    let port = hostport
        .rsplit_once(':')
        .filter(|(h, p)| !p.is_empty() && !p.contains(']') && !h.ends_with('['))
        .map(|(_, p)| p);
    let mut query = query.to_string();
    if let Some(p) = port.filter(|_| !has("port")) {
        query.push_str(&format!("&port={p}"));
    }
    format!(
        "{scheme}://{}{path}?{query}",
        user.map(|u| format!("{u}@")).unwrap_or_default()
    )
}

/// Opens a connection with the TLS its settings ask for ([`tls`]), spawns its driver task
/// on the current runtime and pins the session settings. Errors name the URL with its
/// password masked.
pub async fn connect(url: &str) -> Result<Client, PgError> {
    let (mut config, tls) = parse(url)?;
    if config.get_password().is_none() {
        if let Some(pw) = password_from_environment(&config) {
            config.password(pw);
        }
    }
    let client = tls::connect(&mut config, &tls).await.map_err(|e| {
        let reason = match e {
            tls::ConnectError::Setup(reason) => reason,
            tls::ConnectError::Driver(e) => {
                let host = config
                    .get_hosts()
                    .iter()
                    .find_map(|h| match h {
                        tokio_postgres::config::Host::Tcp(h) => Some(h.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                tls::explain(&e, &tls, &host).unwrap_or_else(|| connect_reason(&e))
            }
        };
        PgError::Connect {
            url: mask_url(url),
            reason,
        }
    })?;
    client
        .batch_execute(SESSION_SETUP)
        .await
        .pg(|| "setting session parameters".into())?;
    Ok(client)
}

/// The password libpq would use when the connection string has none: `PGPASSWORD`, else
/// the first matching line of the password file (`PGPASSFILE`, default `~/.pgpass`;
/// `host:port:database:user:password`, `*` matching anything, `\:` a colon). So a
/// password can stay out of every command line, dataforge's own included.
fn password_from_environment(config: &tokio_postgres::Config) -> Option<Vec<u8>> {
    if let Some(pw) = std::env::var_os("PGPASSWORD").filter(|p| !p.is_empty()) {
        return Some(pw.into_encoded_bytes());
    }
    let file = std::env::var_os("PGPASSFILE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".pgpass")))?;
    {
        // libpq ignores a password file others can read
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            crate::cli::say(&format!(
                "the password file {} is ignored: others can read it (chmod 600 {0})",
                file.display()
            ));
            return None;
        }
    }
    let text = std::fs::read_to_string(&file).ok()?;
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or_default();
    let db = config.get_dbname().unwrap_or(user);
    pgpass_lookup(&text, [&host, &port, db, user])
}

fn pgpass_lookup(text: &str, want: [&str; 4]) -> Option<Vec<u8>> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => cur.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        fields.push(cur);
        if fields.len() == 5
            && fields[..4]
                .iter()
                .zip(want)
                .all(|(f, w)| f == "*" || f == w)
        {
            return Some(fields.pop()?.into_bytes());
        }
    }
    None
}

fn connect_reason(e: &tokio_postgres::Error) -> String {
    let base = describe(e);
    let lower = base.to_lowercase();
    if lower.contains("connection refused") {
        format!(
            "{base} (is the server running and listening there? `dataforge local start` runs one)"
        )
    } else if lower.contains("password missing") {
        "the server asks for a password and none was given: set PGPASSWORD, or put it in \
         ~/.pgpass (PGPASSFILE), or in the URL (postgres://USER:PASSWORD@HOST/DB)"
            .into()
    } else if lower.contains("password authentication failed") || lower.contains("28p01") {
        format!(
            "{base} (check the user name, and the password in the URL, PGPASSWORD or \
             ~/.pgpass)"
        )
    } else if lower.contains("does not exist") && lower.contains("database") {
        format!("{base} (create it with `createdb`, or point the URL at an existing database)")
    } else {
        base
    }
}

/// Cancels the statement running on the connection `token` belongs to, over the TLS
/// settings of `url` (a cancel request travels on a connection of its own).
pub async fn cancel(url: &str, token: &tokio_postgres::CancelToken) {
    if let Ok((_, tls)) = tls::split(url) {
        tls::cancel(token, &tls).await;
    }
}

/// Creates database `name` through the server at `admin_url` unless it exists.
pub async fn ensure_database(admin_url: &str, name: &str) -> Result<(), PgError> {
    let client = connect(admin_url).await?;
    let exists: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&name],
        )
        .await
        .pg(|| format!("looking for database {name}"))?
        .get(0);
    if !exists {
        match client
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(name)))
            .await
        {
            // another process created it in the meantime
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {}
            other => other.pg(|| format!("creating database {name}"))?,
        }
    }
    Ok(())
}

/// Quotes an identifier for SQL, doubling embedded quotes.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a table's `schema.table` name as dataforge keeps it (unquoted parts joined at the
/// first dot): `public.we"ird` → `"public"."we""ird"`. Never re-read it as SQL: a quote or
/// a dot in a name would change it.
pub fn quote_qualified(name: &str) -> String {
    match name.split_once('.') {
        Some((schema, table)) => format!("{}.{}", quote_ident(schema), quote_ident(table)),
        None => quote_ident(name),
    }
}

/// Quotes a string as an SQL literal, as PostgreSQL's `quote_literal` does: quotes
/// doubled, and backslashes doubled in an `E''` literal so the text reads the same
/// whatever `standard_conforming_strings` says.
pub fn quote_literal(value: &str) -> String {
    let quoted = value.replace('\'', "''");
    if value.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

/// A URL with its database name replaced, keeping host, port, user and options.
pub fn with_database(url: &str, db: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let path_start = rest.find('/').map(|p| p + scheme_end + 3);
        let query_start = url.find('?');
        let (base, query) = match query_start {
            Some(q) => (&url[..q], &url[q..]),
            None => (url, ""),
        };
        let base = match path_start {
            Some(p) if query_start.map(|q| p < q).unwrap_or(true) => &base[..p],
            _ => base,
        };
        return format!("{base}/{db}{query}");
    }
    let kept: Vec<&str> = url
        .split_whitespace()
        .filter(|kv| !kv.starts_with("dbname="))
        .collect();
    format!("{} dbname={db}", kept.join(" "))
}

/// A URL safe to print: wraps [`mask_url`] for use in `format!`.
pub struct Masked<'a>(pub &'a str);

impl fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_url(self.0))
    }
}

#[cfg(test)]
mod tests {
    /// Another database's URL, or a raw `@` in the password, is named as such.
    #[test]
    fn urls_that_are_not_postgres_or_not_encoded_say_so() {
        let e = super::url_problem("mysql://root:pw@db/app").unwrap();
        assert!(
            e.starts_with("`mysql://` is not a PostgreSQL URL; expected postgres://"),
            "{e}"
        );
        let e = super::url_problem("postgres://app:p@ss@db/prod").unwrap();
        assert!(e.contains("percent-encode it as %40"), "{e}");
        assert_eq!(super::url_problem("postgres://app:p%40ss@db/prod"), None);
        assert_eq!(super::url_problem("host=db dbname=prod"), None);
    }

    /// A quoted key=value password is masked whole, not up to its space (issue 15, §2).
    #[test]
    fn a_quoted_password_is_masked_whole() {
        let m = super::mask_url("host=db password='se cret' dbname=prod");
        assert!(!m.contains("se") && !m.contains("cret"), "{m}");
        assert_eq!(m, "host=db password=*** dbname=prod");
    }

    use super::*;

    #[test]
    fn key_value_connection_strings_are_told_from_file_names() {
        assert!(is_conninfo(
            "host=localhost port=5432 dbname=app user=u password='a b'"
        ));
        assert!(is_conninfo("dbname=app"));
        assert!(!is_conninfo("dev.sql"));
        assert!(!is_conninfo("out=put.sql"));
        assert!(!is_conninfo("postgres://h/db?sslmode=require"));
        assert!(!is_conninfo("my file.sql"));
    }

    #[test]
    fn the_password_file_is_read_as_libpq_reads_it() {
        let text =
            "# comment\nother:5432:*:*:no\nlocalhost:*:app:me:p\\:w\\\\d\n*:*:*:*:fallback\n";
        assert_eq!(
            pgpass_lookup(text, ["localhost", "5433", "app", "me"]).as_deref(),
            Some(&b"p:w\\d"[..])
        );
        assert_eq!(
            pgpass_lookup(text, ["db", "5432", "x", "y"]).as_deref(),
            Some(&b"fallback"[..])
        );
        assert_eq!(pgpass_lookup("other:1:a:b:c", ["db", "1", "a", "b"]), None);
    }

    #[test]
    fn masks_password_in_url_forms() {
        assert_eq!(
            mask_url("postgres://app:s3cret@db.internal:5432/prod"),
            "postgres://app:***@db.internal:5432/prod"
        );
        assert_eq!(
            mask_url("postgresql://app@localhost/x?password=s3cret&sslmode=disable"),
            "postgresql://app@localhost/x?password=***&sslmode=disable"
        );
        assert_eq!(
            mask_url("host=localhost user=app password=s3cret dbname=x"),
            "host=localhost user=app password=*** dbname=x"
        );
        assert_eq!(
            mask_url("postgresql://127.0.0.1:5/db"),
            "postgresql://127.0.0.1:5/db"
        );
    }

    #[test]
    fn replaces_database_name() {
        assert_eq!(
            with_database("postgresql://u@h:1/a?sslmode=disable", "b"),
            "postgresql://u@h:1/b?sslmode=disable"
        );
        assert_eq!(
            with_database("postgresql://u@h:1", "b"),
            "postgresql://u@h:1/b"
        );
        assert_eq!(
            with_database("host=h dbname=a user=u", "b"),
            "host=h user=u dbname=b"
        );
    }

    #[test]
    fn a_query_host_replaces_the_authority_host_as_libpq_reads_it() {
        use tokio_postgres::config::Host;
        let (c, _) = parse("postgresql://postgres@localhost/t1?host=/tmp/s&port=55438").unwrap();
        assert_eq!(c.get_hosts(), &[Host::Unix("/tmp/s".into())]);
        assert_eq!(c.get_ports(), &[55438]);
        assert_eq!(c.get_user(), Some("postgres"));
        let (c, _) = parse("postgresql://u@db.example:6543/app?host=/run/pg").unwrap();
        assert_eq!(c.get_hosts(), &[Host::Unix("/run/pg".into())]);
        assert_eq!(c.get_ports(), &[6543]);
        // without ?host= nothing changes
        let (c, _) = parse("postgresql://u@db.example:6543/app?sslmode=disable").unwrap();
        assert_eq!(c.get_hosts(), &[Host::Tcp("db.example".into())]);
    }
}
