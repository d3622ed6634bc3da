//! A PostgreSQL database as the sink. Everything loads into a new database beside the
//! target (schema, then data by COPY, then indexes and constraints, then sequences);
//! only when all of it has loaded is the target renamed away and the new database
//! renamed into its place. A failure at any point drops the new database and leaves the
//! target as it was.

use tokio_postgres::Client;

use crate::pg::{self, quote_ident, PgContext as _, PgError};

/// A statement of the source's SQL that the target server refused.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejected {
    /// Where it starts in the source (`file:line`, or `schema` for a live source).
    pub at: String,
    pub statement: String,
    pub message: String,
}

impl Rejected {
    /// Whether leaving this statement out loses nothing of the copy: a session setting
    /// the target server does not know (`SET transaction_timeout = 0` from a newer
    /// pg_dump) or a psql meta-command. Any other refusal means an object of the source
    /// is missing from the copy, and the run fails (issue 14).
    pub fn tolerated(&self) -> bool {
        // a statement of several lines (shown as `first …`) is never only a setting
        if self.statement.ends_with(" …") {
            return false;
        }
        let s = self.statement.trim_start();
        let upper: String = s.chars().take(40).collect::<String>().to_ascii_uppercase();
        s.starts_with('\\')
            || (upper.starts_with("SET ") && !upper.starts_with("SET CONSTRAINTS"))
            || upper.starts_with("SELECT PG_CATALOG.SET_CONFIG(")
    }
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}\n    {}", self.at, self.statement, self.message)
    }
}

/// The comment put before [`SEQUENCE_FIXUP`] in SQL files.
pub const SEQUENCE_FIXUP_NOTE: &[u8] =
    b"\n-- integer-id changed key values: sequences go above the new keys\n";

/// Raises every sequence owned by a column (serial or identity) to at least the column's
/// largest value, so inserts after a load that changed keys (`integer-id`) do not collide.
/// Only ever raises: a sequence already past its column is left alone.
pub const SEQUENCE_FIXUP: &str = "\
DO $dataforge$
DECLARE r record; m numeric; l numeric;
BEGIN
  FOR r IN
    SELECT s.oid::regclass AS seq, a.attname, t.oid::regclass AS tbl
    FROM pg_class s
    JOIN pg_sequence q ON q.seqrelid = s.oid AND q.seqincrement > 0
    JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    JOIN pg_class t ON t.oid = d.refobjid
    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
    WHERE s.relkind = 'S'
  LOOP
    EXECUTE format('SELECT max(%I)::numeric FROM %s', r.attname, r.tbl) INTO m;
    EXECUTE format('SELECT CASE WHEN is_called THEN last_value END FROM %s', r.seq) INTO l;
    IF m IS NOT NULL AND (l IS NULL OR m > l) THEN
      PERFORM pg_catalog.setval(r.seq, m::bigint, true);
    END IF;
  END LOOP;
END
$dataforge$;
";

/// The database being loaded, and the target it will replace.
pub struct Target {
    admin: Client,
    /// The target's database name.
    pub name: String,
    /// The new database, loaded first and renamed into place at the end.
    pub staging: String,
    pub staging_url: String,
    exists: bool,
}

/// Why the target cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error("{0}")]
    Refused(String),
}

fn database_name(url: &str) -> Result<String, PgError> {
    let config: tokio_postgres::Config =
        url.parse()
            .map_err(|e: tokio_postgres::Error| PgError::BadUrl {
                url: pg::mask_url(url),
                reason: pg::describe(&e),
            })?;
    config
        .get_dbname()
        .map(str::to_string)
        .ok_or_else(|| PgError::BadUrl {
            url: pg::mask_url(url),
            reason: "it names no database (add /dbname)".into(),
        })
}

impl Target {
    /// Checks the target (not production, empty unless `replace`) and creates the new
    /// database beside it.
    pub async fn prepare(url: &str, replace: bool) -> Result<Target, TargetError> {
        let name = database_name(url)?;
        let admin_url = pg::with_database(url, "postgres");
        let admin = match pg::connect(&admin_url).await {
            Ok(c) => c,
            Err(_) => pg::connect(&pg::with_database(url, "template1")).await?,
        };
        let exists: bool = admin
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
                &[&name],
            )
            .await
            .pg(|| format!("looking for database {name}"))?
            .get(0);
        if exists {
            let c = pg::connect(url).await?;
            if let Some(why) = crate::backup::production::why_production(&c, url)
                .await
                .map_err(|e| TargetError::Refused(e.to_string()))?
            {
                return Err(TargetError::Refused(format!(
                    "refusing to load anonymized data into {name}: {why}. Nothing was done."
                )));
            }
            let tables: i64 = c
                .query_one(
                    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema'
                       AND n.nspname NOT LIKE 'pg\\_%'",
                    &[],
                )
                .await
                .pg(|| format!("looking at the tables of {name}"))?
                .get(0);
            if tables > 0 && !replace {
                return Err(TargetError::Refused(format!(
                    "the target database {name} already holds {tables} table{}; nothing was \
                     done. Pass --replace to load into a new database and swap it in for {name} \
                     once everything has loaded ({name} stays as it is until then), or give \
                     an empty or new database",
                    if tables == 1 { "" } else { "s" }
                )));
            }
        }
        let tag = &blake3::hash(format!("{name}{:?}", std::time::SystemTime::now()).as_bytes())
            .to_hex()[..8];
        let mut base: String = name.chars().take(40).collect();
        while base.len() > 40 {
            base.pop();
        }
        let staging = format!("{base}_dataforge_{tag}");
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE template0",
                quote_ident(&staging)
            ))
            .await
            .pg(|| {
                format!(
                    "creating the database {staging} to load into (the target's role needs \
                     CREATEDB)"
                )
            })?;
        Ok(Target {
            admin,
            staging_url: pg::with_database(url, &staging),
            staging,
            name,
            exists,
        })
    }

    /// A connection to the new database.
    pub async fn connect(&self) -> Result<Client, PgError> {
        pg::connect(&self.staging_url).await
    }

    /// Renames the target away and the new database into its place, then drops the old
    /// one. Refused, with the target untouched, while others are connected to it.
    pub async fn swap(self) -> Result<(), TargetError> {
        let result = self.try_swap().await;
        if result.is_err() {
            self.abandon().await;
        }
        result
    }

    async fn try_swap(&self) -> Result<(), TargetError> {
        let (name, staging) = (quote_ident(&self.name), quote_ident(&self.staging));
        if !self.exists {
            self.admin
                .batch_execute(&format!("ALTER DATABASE {staging} RENAME TO {name}"))
                .await
                .pg(|| format!("renaming the loaded database to {}", self.name))?;
            return Ok(());
        }
        // a session that has just closed can linger for a moment: wait up to 3 s
        // (autovacuum workers are not counted: the server stops them for the rename)
        let mut waited = 0;
        let (n, who) = loop {
            let others = self
                .admin
                .query_one(
                    "SELECT count(*), coalesce(string_agg(DISTINCT coalesce(nullif(application_name, ''), 'pid ' || pid), ', '), '')
                     FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()
                       AND backend_type = 'client backend'",
                    &[&self.name],
                )
                .await
                .pg(|| format!("looking for sessions on {}", self.name))?;
            let (n, who): (i64, String) = (others.get(0), others.get(1));
            if n == 0 || waited >= 30 {
                break (n, who);
            }
            waited += 1;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        if n > 0 {
            return Err(TargetError::Refused(format!(
                "{n} other session{} connected to {} ({who}); a database cannot be \
                 replaced while in use. Close {} and run again; {} was left as it was",
                if n == 1 { " is" } else { "s are" },
                self.name,
                if n == 1 { "it" } else { "them" },
                self.name
            )));
        }
        let old = quote_ident(&format!("{}_old", self.staging));
        self.admin
            .batch_execute(&format!(
                "BEGIN; ALTER DATABASE {name} RENAME TO {old}; \
                 ALTER DATABASE {staging} RENAME TO {name}; COMMIT"
            ))
            .await
            .pg(|| format!("swapping the loaded database in for {}", self.name))?;
        self.admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {old}"))
            .await
            .pg(|| format!("dropping the replaced copy of {}", self.name))?;
        Ok(())
    }

    /// Drops the new database; the target was never touched.
    pub async fn abandon(&self) {
        // Sessions of this run may still be closing; FORCE ends them (PostgreSQL 13+).
        let staging = quote_ident(&self.staging);
        if self
            .admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {staging} WITH (FORCE)"))
            .await
            .is_err()
        {
            let _ = self
                .admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {staging}"))
                .await;
        }
    }
}

/// Runs the SQL of a dump (or of pg_dump's schema) one statement at a time. A statement
/// the server refuses (one a newer PostgreSQL wrote, say) is recorded with its place and
/// the server's message, and the rest goes on; psql meta-commands are skipped.
pub async fn run_sql(
    client: &Client,
    text: &str,
    source_name: &str,
    first_line: u64,
    rejected: &mut Vec<Rejected>,
) -> Result<(), PgError> {
    // pg_dump's `\restrict`/`\unrestrict` (and other psql meta-commands) are for psql
    let mut sql = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.starts_with('\\') {
            let cmd = line.split_whitespace().next().unwrap_or("");
            if !matches!(cmd, "\\restrict" | "\\unrestrict") {
                rejected.push(Rejected {
                    at: format!("{source_name}:{}", first_line + line_of(text, line)),
                    statement: line.trim_end().to_string(),
                    message: "a psql meta-command; skipped".into(),
                });
            }
            sql.push('\n');
        } else {
            sql.push_str(line);
        }
    }
    let statements = match pg_query::split_with_scanner(&sql) {
        Ok(s) => s,
        Err(_) => vec![sql.as_str()],
    };
    for stmt in statements {
        let body = strip_comments(stmt);
        if body.is_empty() {
            continue;
        }
        if let Err(e) = client.batch_execute(stmt).await {
            if e.as_db_error().is_none() {
                return Err(PgError::query("running the source's SQL", e));
            }
            let offset = stmt.as_ptr() as usize - sql.as_ptr() as usize;
            let lead = sql[offset..].len() - sql[offset..].trim_start().len();
            let line = sql[..offset + lead].matches('\n').count() as u64;
            let first = body.lines().next().unwrap_or("");
            rejected.push(Rejected {
                at: format!("{source_name}:{}", first_line + line),
                statement: if body.lines().nth(1).is_some() {
                    format!("{first} …")
                } else {
                    first.to_string()
                },
                message: pg::describe(&e),
            });
        }
    }
    Ok(())
}

fn line_of(text: &str, line: &str) -> u64 {
    let offset = line.as_ptr() as usize - text.as_ptr() as usize;
    text[..offset].matches('\n').count() as u64
}

/// The statement without leading blank lines and `--` comment lines.
fn strip_comments(stmt: &str) -> &str {
    let mut s = stmt.trim_start();
    while s.starts_with("--") {
        s = s.split_once('\n').map_or("", |(_, rest)| rest).trim_start();
    }
    s.trim_end()
}
