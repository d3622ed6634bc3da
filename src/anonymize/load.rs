//! A PostgreSQL database as the sink. Everything loads into a new database beside the
//! target (schema, then data by COPY, then indexes and constraints, then sequences);
//! only when all of it has loaded is the target renamed away and the new database
//! renamed into its place. A failure at any point drops the new database and leaves the
//! target as it was, and so does a copy that is not whole ([`check_copy`]: every row,
//! statement and schema object of the source; materialized views refreshed).

use tokio_postgres::Client;

use super::large_objects::LoAction;
use crate::pg::staging::{Staging, SwapError};
use crate::pg::{self, quote_ident, PgContext as _, PgError};
use crate::source::live::Live;

/// A statement of the source's SQL that the target server refused.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejected {
    /// Where it starts in the source (`file:line`, or `schema` for a live source).
    pub at: String,
    pub statement: String,
    pub message: String,
    /// The server's SQLSTATE, when it refused the statement.
    pub code: Option<String>,
}

impl Rejected {
    /// Whether leaving this statement out loses nothing of the copy: a session setting
    /// the target server does not know (`SET transaction_timeout = 0` from a newer
    /// pg_dump) or a psql meta-command. Any other refusal means an object of the source
    /// is missing from the copy, and the run fails (issue 14). An owner or a grant naming
    /// a role the target does not have (SQLSTATE 42704) is production's access control,
    /// not part of the copy: left out too, and reported.
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
            || (self.is_access() && self.code.as_deref() == Some("42704"))
    }
}

impl Rejected {
    /// Whether the statement is access control: a grant, a revoke, default privileges
    /// or an owner.
    fn is_access(&self) -> bool {
        let upper = self.statement.trim_start().to_ascii_uppercase();
        upper.starts_with("GRANT ")
            || upper.starts_with("REVOKE ")
            || upper.starts_with("ALTER DEFAULT PRIVILEGES ")
            || (upper.starts_with("ALTER ") && upper.contains(" OWNER TO "))
    }

    /// Why a [`tolerated`](Self::tolerated) refusal loses nothing, for the notes.
    pub fn why_tolerated(&self) -> &'static str {
        if self.is_access() {
            "the target does not have a role the source's owners or grants name"
        } else {
            "the target does not know a session setting of the source"
        }
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
    /// The new database, loaded first and renamed into place at the end (on the list
    /// [`crate::cleanup::abort`] drops on Ctrl-C or a panic, until swapped in or
    /// abandoned).
    pub staging: Staging,
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
    let (config, _) = pg::parse(url)?;
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
        // copies earlier runs on this target left (kill -9, a crash): dropped when theirs
        // is gone, named when a run is still making one
        let staging = Staging::create(
            &admin,
            &admin_url,
            &name,
            true,
            |staging| {
                format!(
                    "creating the database {staging} to load into (the target's role needs \
                     CREATEDB)"
                )
            },
            &mut |m| crate::cli::say(m),
        )
        .await?;
        Ok(Target {
            admin,
            staging_url: pg::with_database(url, &staging.name),
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
            // a failed statement of the swap's transaction leaves it aborted: end it, or
            // the DROP in abandon fails too (25P02) and the copy stays
            let _ = self.admin.batch_execute("ROLLBACK").await;
            self.abandon().await;
        }
        result
    }

    async fn try_swap(&self) -> Result<(), TargetError> {
        // once the swap is sent, the server completes it whatever happens to this process:
        // a signal now waits for it, so what is said afterwards is true
        let _swapping = crate::cleanup::own_signals();
        let (name, staging) = (quote_ident(&self.name), quote_ident(&self.staging.name));
        if !self.exists {
            self.admin
                .batch_execute(&format!(
                    "BEGIN; ALTER DATABASE {staging} RENAME TO {name}; \
                     COMMENT ON DATABASE {name} IS NULL; COMMIT"
                ))
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
        // one transaction: at every instant the target's name holds the old database or
        // the new one, and the old one is marked for the next run to drop should this one
        // stop before it does
        match self
            .staging
            .swap_in(&self.admin, "", "the loaded database")
            .await
        {
            Ok(()) => Ok(()),
            // the caller rolls back and drops the staging copy (see `swap`)
            Err(SwapError::Swap(e)) => Err(e.into()),
            Err(SwapError::DropOld(e)) => Err(e.into()),
        }
    }

    /// Drops the new database; the target was never touched.
    pub async fn abandon(&self) {
        self.staging.drop_now(&self.admin).await;
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
                    code: None,
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
                code: e.code().map(|c| c.code().to_string()),
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

#[derive(Debug, Clone, serde::Serialize)]
/// One check on a loaded copy: what, whether it held, and what was found.
pub struct Check {
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

/// The schema objects a copy must have, one line each: `kind table name: definition`, so
/// that an object missing from the copy, or rebuilt differently, shows as a difference.
/// Objects of extensions are left to the extension.
const OBJECTS: &str = "
SELECT 'constraint', n.nspname || '.' || c.relname, o.conname || ': ' || pg_get_constraintdef(o.oid)
FROM pg_constraint o JOIN pg_class c ON c.oid = o.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
UNION ALL
SELECT 'index', schemaname || '.' || tablename, indexname || ': ' || indexdef FROM pg_indexes
WHERE schemaname <> 'information_schema' AND schemaname NOT LIKE 'pg\\_%'
UNION ALL
SELECT 'trigger', n.nspname || '.' || c.relname, t.tgname || ': ' || pg_get_triggerdef(t.oid)
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal
UNION ALL
SELECT 'view', schemaname || '.' || viewname, md5(definition) FROM pg_views
WHERE schemaname <> 'information_schema' AND schemaname NOT LIKE 'pg\\_%'
UNION ALL
SELECT 'materialized view', schemaname || '.' || matviewname,
       CASE WHEN ispopulated THEN 'populated' ELSE 'not populated' END FROM pg_matviews
UNION ALL
SELECT 'policy', schemaname || '.' || tablename, policyname || ': ' || cmd || ' ' ||
       coalesce(qual, '') || ' ' || coalesce(with_check, '') FROM pg_policies
UNION ALL
SELECT 'sequence', coalesce(t.owner, s.schemaname || '.' || s.sequencename),
       CASE WHEN t.owner IS NULL THEN '' ELSE s.sequencename || ': identity' END
FROM pg_sequences s
LEFT JOIN LATERAL (
    -- an identity column's sequence belongs to its table (and is skipped with it)
    SELECT tn.nspname || '.' || c.relname AS owner
    FROM pg_depend d JOIN pg_class c ON c.oid = d.refobjid
    JOIN pg_namespace tn ON tn.oid = c.relnamespace
    WHERE d.classid = 'pg_class'::regclass
      AND d.objid = format('%I.%I', s.schemaname, s.sequencename)::regclass
      AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'i'
    LIMIT 1) t ON true
WHERE s.schemaname <> 'information_schema'
ORDER BY 1, 2, 3";

/// The checks on a loaded copy, before it is swapped in: row counts (`tables`: each
/// table and the rows read for it), every statement of the source's schema run (session
/// settings a server does not know aside), and for a live source every constraint,
/// index, trigger, view, materialized view, policy and sequence present with the same
/// definition. Whether each held is in the result; an error is one of reading them.
pub async fn check_copy(
    live: Option<&Live>,
    target: &Target,
    tables: &[(String, u64)],
    rejected: &[Rejected],
    (objects, action): (u64, LoAction),
    refresh_matviews: bool,
) -> Result<Vec<Check>, PgError> {
    let client = target.connect().await?;
    let mut checks = Vec::new();
    let mut wrong = Vec::new();
    for (table, rows) in tables {
        let n: i64 = client
            .query_one(
                // ONLY: a table's inheritance children hold rows of their own
                &format!("SELECT count(*) FROM ONLY {}", pg::quote_qualified(table)),
                &[],
            )
            .await
            .pg(|| format!("counting the rows of {table}"))?
            .get(0);
        if n as u64 != *rows {
            wrong.push(format!("{table}: {n} rows loaded, {rows} read"));
        }
    }
    checks.push(Check {
        check: "row counts".into(),
        ok: wrong.is_empty(),
        detail: if wrong.is_empty() {
            format!("{} tables hold every row read", tables.len())
        } else {
            wrong.join("; ")
        },
    });
    if let Some(live) = live {
        type Object = (String, String, String);
        let objects = |rows: Vec<tokio_postgres::Row>| -> std::collections::BTreeSet<Object> {
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect()
        };
        let reader = live.reader().await?;
        let skipped: Vec<String> = live
            .tables
            .iter()
            .map(|t| t.table.name.clone())
            .filter(|n| !tables.iter().any(|(t, _)| t == n))
            .collect();
        // definitions name schemas off the search path only: the same path on both sides
        for c in [&reader, &client] {
            c.batch_execute("SET search_path = pg_catalog")
                .await
                .pg(|| "setting the search path for the schema comparison".into())?;
        }
        let mut want = objects(
            reader
                .query(OBJECTS, &[])
                .await
                .pg(|| "listing the source's schema objects".into())?,
        );
        if !refresh_matviews {
            // `[materialized_views] refresh = false`: every one is left unpopulated
            want = want
                .into_iter()
                .map(|(kind, table, state)| match kind.as_str() {
                    "materialized view" => (kind, table, "not populated".to_string()),
                    _ => (kind, table, state),
                })
                .collect();
        }
        let have = objects(
            client
                .query(OBJECTS, &[])
                .await
                .pg(|| "listing the copy's schema objects".into())?,
        );
        let missing: Vec<String> = want
            .difference(&have)
            .filter(|(_, table, _)| !skipped.contains(table))
            .map(|(kind, table, what)| match what.split_once(": ") {
                Some((name, def)) => format!("{kind} {name} on {table} ({def})"),
                None if what.is_empty() => format!("{kind} {table}"),
                None => format!("{kind} {table} ({what})"),
            })
            .collect();
        checks.push(Check {
            check: "schema objects".into(),
            ok: missing.is_empty(),
            detail: if missing.is_empty() {
                format!(
                    "all {} of the source's constraints, indexes, triggers, views, materialized \
                     views, policies and sequences are in the copy, with the same definitions",
                    want.len()
                )
            } else {
                format!("missing or different in the copy: {}", missing.join("; "))
            },
        });
    }
    if objects > 0 {
        let want = action.expected(objects);
        let row = client
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE length(pg_catalog.lo_get(oid)) > 0)
                 FROM pg_catalog.pg_largeobject_metadata",
                &[],
            )
            .await
            .pg(|| "counting the copy's large objects".into())?;
        let (have, with_content): (i64, i64) = (row.get(0), row.get(1));
        let ok = have as u64 == want && (action != LoAction::Empty || with_content == 0);
        checks.push(Check {
            check: "large objects".into(),
            ok,
            detail: format!(
                "{have} in the copy ({with_content} with content) for {objects} in the source; \
                 [large_objects] action = \"{}\" wants {want}{}",
                action.name(),
                if action == LoAction::Empty {
                    ", all empty"
                } else {
                    ""
                }
            ),
        });
    }
    let refused: Vec<&Rejected> = rejected.iter().filter(|r| !r.tolerated()).collect();
    checks.push(Check {
        check: "statements".into(),
        ok: refused.is_empty(),
        detail: if refused.is_empty() {
            let notes = rejected.len();
            if notes == 0 {
                "the target ran every statement of the source's schema".into()
            } else {
                format!(
                    "the target ran every statement of the source's schema but {notes}, whose \
                     absence loses nothing of the copy (session settings it does not know, \
                     owners and grants naming roles it does not have)"
                )
            }
        } else {
            refused
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        },
    });
    Ok(checks)
}

/// pg_dump's schema-only output makes materialized views unpopulated: those the source
/// has populated are refreshed over the anonymized rows. One may read another, so each
/// round refreshes what it can until all are done; a round with no progress fails with
/// the server's message.
pub async fn refresh_materialized_views(live: &Live, client: &Client) -> Result<(), PgError> {
    let mut todo = live.matviews.clone();
    while !todo.is_empty() {
        let before = todo.len();
        let mut left = Vec::new();
        let mut last = None;
        for view in todo {
            if let Err(e) = client
                .batch_execute(&format!("REFRESH MATERIALIZED VIEW {view}"))
                .await
            {
                last = Some((view.clone(), e));
                left.push(view);
            }
        }
        if left.len() == before {
            let (view, e) = last.expect("a failed refresh was kept");
            return Err(PgError::query(
                format!("refreshing the materialized view {view} over the anonymized rows"),
                e,
            ));
        }
        todo = left;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Rejected;

    fn refused(statement: &str, code: &str) -> Rejected {
        Rejected {
            at: "dump.sql:1".into(),
            statement: statement.into(),
            message: "refused".into(),
            code: Some(code.into()),
        }
    }

    /// Access control naming a role the target lacks is left out; anything else refused
    /// fails the copy.
    #[test]
    fn only_settings_and_access_to_missing_roles_are_tolerated() {
        for access in [
            "GRANT SELECT ON TABLE public.t TO reader;",
            "REVOKE ALL ON SCHEMA public FROM PUBLIC;",
            "ALTER TABLE public.t OWNER TO app;",
            "ALTER DEFAULT PRIVILEGES FOR ROLE prod IN SCHEMA public GRANT SELECT ON TABLES TO reader;",
        ] {
            let r = refused(access, "42704");
            assert!(r.tolerated(), "{access}");
            assert!(r.why_tolerated().contains("role"), "{access}");
            assert!(!refused(access, "42P01").tolerated(), "{access}: another error");
        }
        assert!(!refused("CREATE TABLE t (a public.missing_type);", "42704").tolerated());
        let set = refused("SET transaction_timeout = 0;", "42704");
        assert!(set.tolerated() && set.why_tolerated().contains("session setting"));
    }
}
