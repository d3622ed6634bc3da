//! Fresh databases for tests, each holding a seeded profile, in milliseconds.
//!
//! The seeded database is built once per (migrations checksum, profile, seed, scale,
//! anchor, dataforge version) as a template, and every test gets its own
//! `CREATE DATABASE … TEMPLATE …` copy. The copy is dropped when the test passes and kept,
//! its name and URL printed, when it fails (the test thread is panicking).
//!
//! The server is `TEST_DATABASE_URL` when set (a URL whose user may create databases),
//! else a throwaway cluster made from the installed server binaries, started once per
//! test process and stopped and removed when that process exits.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dataforge::fixtures::FixtureError> {
//! use dataforge::fixtures::Fixture;
//!
//! let db = Fixture::new("demo-firm").seed(1).create().await?;
//! let client = db.connect().await?;
//! let n: i64 = client.query_one("SELECT count(*) FROM cases", &[]).await.unwrap().get(0);
//! assert_eq!(n, 10);
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::pg::{self, local, quote_ident, PgContext as _, PgError};
use crate::seed::{self, profile, ApplyOptions, SeedOptions};

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("no test server: {0}")]
    Server(String),
    #[error(transparent)]
    Profile(#[from] seed::ProfileError),
    #[error(transparent)]
    Load(#[from] seed::LoadError),
    #[error(transparent)]
    Pg(#[from] PgError),
}

struct Server {
    /// URL of a maintenance database on the server (`postgres`).
    admin_url: String,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// Templates this process has already found or built: later clones skip the lock and
/// the look-up.
static BUILT: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn server() -> Result<&'static Server, FixtureError> {
    let s = SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
            if !url.trim().is_empty() {
                return Ok(Server { admin_url: url });
            }
        }
        let cluster = local::throwaway_cluster().map_err(|e| e.to_string())?;
        let admin_url = cluster.url("postgres").map_err(|e| e.to_string())?;
        Ok(Server { admin_url })
    });
    s.as_ref().map_err(|e| FixtureError::Server(e.clone()))
}

/// The admin URL of the test server (starting the throwaway cluster if needed), for
/// tests that need to make databases of their own.
pub fn server_url() -> Result<String, FixtureError> {
    Ok(server()?.admin_url.clone())
}

/// A seeded test database to be made: a profile at a seed, scale and anchor.
#[derive(Debug, Clone)]
pub struct Fixture {
    profile: String,
    seed: Option<u64>,
    scale: u32,
    now: Option<i64>,
}

impl Fixture {
    /// A fixture of `profile` (a built-in name, `profiles/NAME.toml`, or a path) at the
    /// profile's default seed, scale 1, the profile's anchor.
    pub fn new(profile: &str) -> Self {
        Fixture {
            profile: profile.to_string(),
            seed: None,
            scale: 1,
            now: None,
        }
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    pub fn scale(mut self, scale: u32) -> Self {
        self.scale = scale.max(1);
        self
    }

    /// Anchor date as days since 1970-01-01 (see [`profile::parse_date`]).
    pub fn anchor(mut self, days: i64) -> Self {
        self.now = Some(days);
        self
    }

    /// A fresh database holding the seeded profile, cloned from its template (built on
    /// first use).
    pub async fn create(&self) -> Result<TestDb, FixtureError> {
        let server = server()?;
        let profile = profile::resolve(&self.profile)?;
        let opts = SeedOptions {
            seed: self.seed.unwrap_or(profile.default_seed),
            scale: self.scale,
            anchor: self.now.unwrap_or(profile.anchor),
        };
        let template = template_name(&profile, &opts);
        let admin = pg::connect(&server.admin_url).await?;
        let known = BUILT.lock().map(|b| b.contains(&template)).unwrap_or(false);
        if !known {
            ensure_template(&admin, server, &template, &profile, &opts).await?;
            if let Ok(mut b) = BUILT.lock() {
                b.insert(template.clone());
            }
        }
        clone_database(&admin, server, Some(&template)).await
    }
}

/// A fresh empty database on the test server.
pub async fn empty_database() -> Result<TestDb, FixtureError> {
    let server = server()?;
    let admin = pg::connect(&server.admin_url).await?;
    clone_database(&admin, server, None).await
}

/// The template's name: a hash of everything that decides its content.
pub fn template_name(profile: &profile::Profile, opts: &SeedOptions) -> String {
    let mut h = blake3::Hasher::new();
    for m in &profile.migrations {
        h.update(m.name.as_bytes());
        h.update(m.checksum.as_bytes());
    }
    h.update(profile.source_text.as_bytes());
    h.update(&opts.seed.to_le_bytes());
    h.update(&opts.scale.to_le_bytes());
    h.update(&opts.anchor.to_le_bytes());
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    let hex = h.finalize().to_hex();
    format!("dataforge_tpl_{}", &hex[..20])
}

async fn ensure_template(
    admin: &Client,
    server: &Server,
    template: &str,
    profile: &profile::Profile,
    opts: &SeedOptions,
) -> Result<(), FixtureError> {
    // One builder per template across threads and processes.
    admin
        .execute("SELECT pg_advisory_lock(hashtext($1))", &[&template])
        .await
        .pg(|| "taking the fixture template lock".into())?;
    let result = build_template_locked(admin, server, template, profile, opts).await;
    let _ = admin
        .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&template])
        .await;
    result
}

async fn database_exists(admin: &Client, name: &str) -> Result<bool, PgError> {
    Ok(admin
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&name],
        )
        .await
        .pg(|| format!("looking for database {name}"))?
        .get(0))
}

async fn build_template_locked(
    admin: &Client,
    server: &Server,
    template: &str,
    profile: &profile::Profile,
    opts: &SeedOptions,
) -> Result<(), FixtureError> {
    if database_exists(admin, template).await? {
        return Ok(());
    }
    let building = format!("{template}_building");
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&building)
        ))
        .await
        .pg(|| format!("dropping a half-built template {building}"))?;
    admin
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&building)))
        .await
        .pg(|| format!("creating template database {building}"))?;
    {
        let mut client = pg::connect(&pg::with_database(&server.admin_url, &building)).await?;
        seed::apply(&mut client, profile, opts, ApplyOptions::default()).await?;
    }
    // The seeding connection closes asynchronously; retry while it lingers.
    retry_in_use(|| async {
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {} RENAME TO {}",
                quote_ident(&building),
                quote_ident(template)
            ))
            .await
    })
    .await
    .pg(|| format!("renaming the finished template to {template}"))?;
    Ok(())
}

async fn retry_in_use<F, Fut>(mut f: F) -> Result<(), tokio_postgres::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), tokio_postgres::Error>>,
{
    let mut tries = 0;
    loop {
        match f().await {
            Err(e) if e.code() == Some(&SqlState::OBJECT_IN_USE) && tries < 250 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

async fn clone_database(
    admin: &Client,
    server: &Server,
    template: Option<&str>,
) -> Result<TestDb, FixtureError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(
        "dataforge_test_{}_{}_{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    );
    let stmt = match template {
        Some(t) => format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(&name),
            quote_ident(t)
        ),
        None => format!("CREATE DATABASE {}", quote_ident(&name)),
    };
    retry_in_use(|| async { admin.batch_execute(&stmt).await })
        .await
        .pg(|| format!("creating test database {name}"))?;
    Ok(TestDb {
        url: pg::with_database(&server.admin_url, &name),
        admin_url: server.admin_url.clone(),
        name,
    })
}

/// A database of one test's own. Dropped when the test passes; kept, with its URL
/// printed, when the test fails.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDb {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection with dataforge's session settings.
    pub async fn connect(&self) -> Result<Client, PgError> {
        pg::connect(&self.url).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "dataforge: the test failed; kept its database {} for a look: psql {}",
                self.name,
                pg::mask_url(&self.url)
            );
            return;
        }
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside or outside a runtime; a thread of its own works in both.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = pg::connect(&admin_url).await.ok()?;
                admin
                    .batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        quote_ident(&name)
                    ))
                    .await
                    .ok()
            })
        })
        .join()
        .ok()
        .flatten();
        if dropped.is_none() {
            eprintln!("dataforge: could not drop test database {}", self.name);
        }
    }
}
