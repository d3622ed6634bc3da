//! TLS on every connection, the way libpq does it, so a URL that works with `psql` works
//! with dataforge: `sslmode` (`disable`, `allow`, `prefer` — the default —, `require`,
//! `verify-ca`, `verify-full`), `sslrootcert`, `sslcert` and `sslkey`, from the connection
//! string (URL query or `key=value`) first, then `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`,
//! `PGSSLKEY`, then libpq's files under `~/.postgresql/`.
//!
//! The driver (tokio-postgres) knows only disable/prefer/require and rejects the other
//! keys, so [`split`] takes them off the string and [`connect`] builds the rustls
//! configuration each mode asks for. Child tools (pg_dump, pg_restore, psql) are libpq
//! programs: they read the same settings from the string and the environment they
//! inherit, so nothing needs translating for them.
//!
//! rustls rather than native-tls: no system OpenSSL to match at build or run time, and a
//! memory-safe stack for connections to production; `ring` is its crypto provider because
//! it builds with the C compiler alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio_postgres::config::{Host, SslMode as DriverMode};
use tokio_postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The TLS settings of one connection string, resolved against the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsParams {
    pub mode: SslMode,
    /// CA certificates the server's certificate must chain to (verify-ca, verify-full).
    pub root_cert: Option<PathBuf>,
    /// Client certificate and key, for servers that authenticate clients by certificate.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

const KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// Splits the TLS settings off `conn` (URL or `key=value`): the rest, which the driver
/// parses, and the settings, with the environment and libpq's default files filled in.
pub fn split(conn: &str) -> Result<(String, TlsParams), String> {
    split_with(conn, &|k| std::env::var(k).ok(), home_dir().as_deref())
}

fn split_with(
    conn: &str,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Result<(String, TlsParams), String> {
    let mut found: [Option<String>; 4] = Default::default();
    let mut take = |k: &str, v: String| -> bool {
        match KEYS.iter().position(|key| k.eq_ignore_ascii_case(key)) {
            Some(i) => {
                found[i] = Some(v);
                true
            }
            None => false,
        }
    };
    let rest = if let Some(q) = conn.find('?').filter(|_| conn.contains("://")) {
        let kept: Vec<&str> = conn[q + 1..]
            .split('&')
            .filter(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                !take(k, super::percent_decode(v))
            })
            .collect();
        if kept.is_empty() {
            conn[..q].to_string()
        } else {
            format!("{}?{}", &conn[..q], kept.join("&"))
        }
    } else if !conn.contains("://") && conn.contains('=') {
        super::conninfo_pairs(conn)
            .into_iter()
            .filter_map(|(k, v)| {
                (!take(&k, v.clone()))
                    .then(|| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
            })
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        conn.to_string()
    };
    let [mode, root, cert, key] = found;
    let pick =
        |given: Option<String>, var: &str| given.or_else(|| env(var)).filter(|v| !v.is_empty());
    let mode = match pick(mode, "PGSSLMODE") {
        Some(m) => SslMode::parse(&m).ok_or_else(|| {
            format!(
                "sslmode `{m}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
            )
        })?,
        None => SslMode::Prefer,
    };
    let default_file = |name: &str| {
        home.map(|h| h.join(".postgresql").join(name))
            .filter(|p| p.exists())
    };
    let root = pick(root, "PGSSLROOTCERT");
    if root.as_deref() == Some("system") {
        // libpq 16's "the system's CAs": refused rather than read as a file named `system`
        // (which would quietly verify nothing under prefer/require)
        return Err(
            "sslrootcert=system (the operating system's CAs) is not supported yet: \
                    give the CA file your server's certificate chains to, e.g. \
                    sslrootcert=/etc/ssl/certs/ca-certificates.crt"
                .into(),
        );
    }
    let root_cert = root.map(PathBuf::from).or_else(|| match mode {
        // libpq names the default file in its error when it is missing
        SslMode::VerifyCa | SslMode::VerifyFull => {
            home.map(|h| h.join(".postgresql").join("root.crt"))
        }
        _ => default_file("root.crt"),
    });
    let cert = pick(cert, "PGSSLCERT")
        .map(PathBuf::from)
        .or_else(|| default_file("postgresql.crt"));
    let key = pick(key, "PGSSLKEY")
        .map(PathBuf::from)
        .or_else(|| default_file("postgresql.key"));
    Ok((
        rest,
        TlsParams {
            mode,
            root_cert,
            cert,
            key,
        },
    ))
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// Why a connection could not be made: the driver's error, or a TLS setting that is wrong
/// before any byte went to the server (a missing CA file, an unreadable key).
pub enum ConnectError {
    Setup(String),
    Driver(tokio_postgres::Error),
}

/// Connects with the TLS the settings ask for, spawns the connection's driver task, and
/// returns the client.
pub async fn connect(config: &mut Config, tls: &TlsParams) -> Result<Client, ConnectError> {
    let socket_only = config
        .get_hosts()
        .iter()
        .all(|h| matches!(h, Host::Unix(_)))
        && !config.get_hosts().is_empty();
    // libpq ignores sslmode on a Unix socket: there is nothing to encrypt
    let mode = if socket_only {
        SslMode::Disable
    } else {
        tls.mode
    };
    match mode {
        SslMode::Disable => plain(config).await,
        SslMode::Allow => match plain(config).await {
            Err(ConnectError::Driver(e)) if refused_unencrypted(&e) => {
                encrypted(config, tls, DriverMode::Require).await
            }
            other => other,
        },
        SslMode::Prefer => encrypted(config, tls, DriverMode::Prefer).await,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            encrypted(config, tls, DriverMode::Require).await
        }
    }
}

async fn plain(config: &mut Config) -> Result<Client, ConnectError> {
    config.ssl_mode(DriverMode::Disable);
    let (client, connection) = config.connect(NoTls).await.map_err(ConnectError::Driver)?;
    tokio::spawn(async move {
        // errors surface on the client's next call
        let _ = connection.await;
    });
    Ok(client)
}

async fn encrypted(
    config: &mut Config,
    tls: &TlsParams,
    mode: DriverMode,
) -> Result<Client, ConnectError> {
    config.ssl_mode(mode);
    let connector = MakeRustlsConnect::new(client_config(tls).map_err(ConnectError::Setup)?);
    let (client, connection) = config
        .connect(connector)
        .await
        .map_err(ConnectError::Driver)?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Cancels the statement running on the connection `token` came from, over the same TLS
/// settings (the cancel request travels on a new connection).
pub async fn cancel(token: &tokio_postgres::CancelToken, tls: &TlsParams) {
    match client_config(tls) {
        Ok(c) if tls.mode != SslMode::Disable => {
            let _ = token.cancel_query(MakeRustlsConnect::new(c)).await;
        }
        _ => {
            let _ = token.cancel_query(NoTls).await;
        }
    }
}

/// The server said no to an unencrypted connection (pg_hba.conf has only `hostssl` lines).
fn refused_unencrypted(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|d| d.code().code() == "28000" && d.message().contains("no encryption"))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration for one set of settings.
fn client_config(tls: &TlsParams) -> Result<rustls::ClientConfig, String> {
    let provider = provider();
    // libpq: with a CA file present (sslrootcert, PGSSLROOTCERT or ~/.postgresql/root.crt),
    // every encrypted connection verifies the chain as verify-ca does — so dataforge and
    // its pg_dump child agree. (Where libpq's `prefer` then retries unencrypted, dataforge
    // stops with the certificate's problem.)
    let verify = match tls.mode {
        SslMode::VerifyFull => Some(true),
        SslMode::VerifyCa => Some(false),
        SslMode::Require | SslMode::Prefer | SslMode::Allow
            if tls.root_cert.as_ref().is_some_and(|p| p.exists()) =>
        {
            Some(false)
        }
        _ => None,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        None => Arc::new(NoVerification(provider.clone())),
        Some(check_name) => {
            let path = tls.root_cert.as_deref().ok_or_else(|| {
                format!(
                    "sslmode={} needs the CA certificate that signed the server's: set \
                     sslrootcert=FILE in the URL or PGSSLROOTCERT",
                    tls.mode.name()
                )
            })?;
            let roots = Arc::new(load_roots(path, tls.mode)?);
            if check_name {
                WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| {
                        format!("cannot use the CA certificates in {}: {e}", path.display())
                    })?
            } else {
                Arc::new(ChainOnly {
                    roots,
                    signatures: NoVerification(provider.clone()),
                })
            }
        }
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) if cert.exists() => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    format!("cannot read the client certificate {}: {e}", cert.display())
                })?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("cannot read the client key {}: {e}", key.display()))?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                format!(
                    "the client certificate {} and key {} do not go together: {e}",
                    cert.display(),
                    key.display()
                )
            })
        }
        (Some(cert), None) if cert.exists() => Err(format!(
            "client certificate {} given without its key: set sslkey=FILE (or PGSSLKEY)",
            cert.display()
        )),
        _ => Ok(builder.with_no_client_auth()),
    }
}

fn load_roots(path: &Path, mode: SslMode) -> Result<rustls::RootCertStore, String> {
    if !path.exists() {
        return Err(format!(
            "root certificate file {} does not exist: sslmode={} verifies the server against \
             it; give the CA file with sslrootcert=FILE, or use sslmode=require to encrypt \
             without verifying",
            path.display(),
            mode.name()
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read CA certificates from {}: {e}", path.display()))?;
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "{} holds no usable CA certificate (PEM `BEGIN CERTIFICATE` blocks expected)",
            path.display()
        ));
    }
    Ok(roots)
}

/// In words, why a TLS connection failed, or `None` when the failure was not about TLS.
pub fn explain(e: &tokio_postgres::Error, tls: &TlsParams, host: &str) -> Option<String> {
    if refused_unencrypted(e) {
        return Some(if tls.mode == SslMode::Disable {
            "the server accepts only encrypted connections from here, and sslmode=disable \
             turned TLS off; use sslmode=verify-full with sslrootcert=CA-FILE (or \
             sslmode=require)"
                .into()
        } else {
            "the server accepts only encrypted connections from here; use sslmode=require or \
             verify-full"
                .into()
        });
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = src {
        // rustls's error travels inside an io::Error, whose `source()` skips it
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|e| e.downcast_ref::<rustls::Error>());
        if let Some(r) = err.downcast_ref::<rustls::Error>().or(inner) {
            return Some(rustls_reason(r, tls, host));
        }
        let text = err.to_string();
        if text.contains("server does not support TLS") {
            return Some(format!(
                "the server does not support SSL, and sslmode={} requires it; use \
                 sslmode=prefer or disable for a server without TLS (only on a network you trust)",
                tls.mode.name()
            ));
        }
        src = err.source();
    }
    None
}

fn rustls_reason(r: &rustls::Error, tls: &TlsParams, host: &str) -> String {
    let ca = tls
        .root_cert
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "sslrootcert".into());
    match r {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                "untrusted certificate: the server's certificate is not signed by a CA in {ca}; \
                 point sslrootcert at the CA that signed it"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "host name mismatch: the server's certificate is not valid for `{host}`; \
                     connect by a name the certificate lists, or use sslmode=verify-ca to check \
                     the CA only"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired".into()
            }
            other => format!("the server's certificate was refused: {other:?}"),
        },
        rustls::Error::AlertReceived(a) => format!(
            "the server ended the TLS handshake ({a:?}); if it asks for a client certificate, \
             give one with sslcert=FILE and sslkey=FILE"
        ),
        other => format!("TLS handshake failed: {other}"),
    }
}

/// `sslmode=prefer`/`require` without a CA: encrypted, the server not authenticated — what
/// libpq does in those modes. The handshake's signatures are still checked.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the chain must lead to a trusted CA; the host name is not checked
/// (rustls's public chain check, without the name check that follows it in webpki).
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<rustls::RootCertStore>,
    /// The handshake's signatures are checked as for every mode.
    signatures: NoVerification,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.signatures.0.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn url_settings_are_taken_off_and_the_rest_kept() {
        let (rest, p) = split_with(
            "postgres://u:pw@db:5432/app?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
            &no_env,
            None,
        )
        .unwrap();
        assert_eq!(rest, "postgres://u:pw@db:5432/app?application_name=x");
        assert_eq!(p.mode, SslMode::VerifyFull);
        assert_eq!(p.root_cert.as_deref(), Some(Path::new("/etc/ca.pem")));
        let (rest, p) = split_with("postgres://db/app?sslmode=require", &no_env, None).unwrap();
        assert_eq!(
            (rest.as_str(), p.mode),
            ("postgres://db/app", SslMode::Require)
        );
    }

    #[test]
    fn key_value_settings_and_the_environment() {
        let env = |k: &str| match k {
            "PGSSLMODE" => Some("verify-ca".to_string()),
            "PGSSLROOTCERT" => Some("/env/ca.pem".to_string()),
            _ => None,
        };
        let (rest, p) = split_with("host=db sslcert='/a b/c.crt' dbname=app", &env, None).unwrap();
        assert_eq!(rest, "host='db' dbname='app'");
        assert_eq!(p.mode, SslMode::VerifyCa);
        assert_eq!(p.root_cert.as_deref(), Some(Path::new("/env/ca.pem")));
        assert_eq!(p.cert.as_deref(), Some(Path::new("/a b/c.crt")));
        // the string wins over the environment
        let (_, p) = split_with("postgres://db/app?sslmode=disable", &env, None).unwrap();
        assert_eq!(p.mode, SslMode::Disable);
    }

    #[test]
    fn prefer_is_the_default_and_a_wrong_mode_is_named() {
        let (_, p) = split_with("postgres://db/app", &no_env, None).unwrap();
        assert_eq!(p.mode, SslMode::Prefer);
        let e = split_with("postgres://db/app?sslmode=verify_full", &no_env, None).unwrap_err();
        assert!(
            e.contains("sslmode `verify_full` is not one of disable, allow"),
            "{e}"
        );
    }

    #[test]
    fn verify_modes_without_a_ca_file_say_what_to_give() {
        let (_, p) = split_with(
            "postgres://db/app?sslmode=verify-full",
            &no_env,
            Some(Path::new("/nonexistent-home")),
        )
        .unwrap();
        let e = client_config(&p).unwrap_err();
        assert!(
            e.contains("/nonexistent-home/.postgresql/root.crt does not exist")
                && e.contains("sslrootcert=FILE"),
            "{e}"
        );
    }
}
