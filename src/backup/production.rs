//! Knowing a production database when we see one: a mark stored in the database itself
//! (`dataforge mark production` sets the per-database setting `dataforge.environment`), or
//! a URL pattern listed in `dataforge.toml`:
//!
//! ```toml
//! [production]
//! urls = ["*prod*", "*.db.example.com*"]
//! ```
//!
//! Destructive commands against it ask for the database name on a terminal, and refuse
//! elsewhere unless given `--yes --confirm-database NAME`.

use std::io::IsTerminal as _;
use std::path::Path;

use tokio_postgres::Client;

use super::BackupError;
use crate::pg::{self, PgContext as _, PgError};

/// The config file read from the working folder.
pub const CONFIG: &str = "dataforge.toml";

#[derive(Debug, Default, serde::Deserialize)]
struct Config {
    #[serde(default)]
    production: ProductionConfig,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ProductionConfig {
    #[serde(default)]
    urls: Vec<String>,
}

/// Whether the connected database carries the production mark.
pub async fn marked(client: &Client) -> Result<bool, PgError> {
    let row = client
        .query_one(
            "SELECT coalesce(bool_or(s = 'dataforge.environment=production'), false)
             FROM pg_db_role_setting d, unnest(d.setconfig) s
             WHERE d.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND d.setrole = 0",
            &[],
        )
        .await
        .pg(|| "reading the production mark".into())?;
    Ok(row.get(0))
}

/// Sets (or clears) the production mark of database `name`.
pub async fn mark_database(client: &Client, name: &str, production: bool) -> Result<(), PgError> {
    let sql = if production {
        format!(
            "ALTER DATABASE {} SET dataforge.environment = 'production'",
            pg::quote_ident(name)
        )
    } else {
        format!(
            "ALTER DATABASE {} RESET dataforge.environment",
            pg::quote_ident(name)
        )
    };
    client
        .batch_execute(&sql)
        .await
        .pg(|| format!("marking database {name}"))
}

/// `*` matches any run of characters; everything else literally.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// `dataforge.toml` in `config_dir` read as `T` (each reader takes the sections it knows),
/// or `None` when there is no such file; an error names the file and `line:col`.
pub fn read_config<T: serde::de::DeserializeOwned>(
    config_dir: &Path,
) -> Result<Option<(T, std::path::PathBuf)>, BackupError> {
    let path = config_dir.join(CONFIG);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(BackupError::Io { path, source }),
    };
    let config = toml::from_str(&text).map_err(|e| {
        let (line, col) = e
            .span()
            .map(|s| crate::migrate::lint::line_col(&text, s.start))
            .unwrap_or((1, 1));
        BackupError::BadManifest {
            path: path.clone(),
            why: format!("{line}:{col}: {}", e.message()),
        }
    })?;
    Ok(Some((config, path)))
}

/// The `dataforge.toml` pattern the URL matches, if any.
pub fn url_pattern_match(config_dir: &Path, url: &str) -> Result<Option<String>, BackupError> {
    let Some((config, _)) = read_config::<Config>(config_dir)? else {
        return Ok(None);
    };
    let masked = pg::mask_url(url);
    Ok(config
        .production
        .urls
        .into_iter()
        .find(|p| glob(p, url) || glob(p, &masked)))
}

/// Why the database at `url` counts as production, if it does.
pub async fn why_production(client: &Client, url: &str) -> Result<Option<String>, BackupError> {
    if marked(client).await? {
        return Ok(Some(
            "it is marked production (`dataforge mark production`)".into(),
        ));
    }
    let cwd = std::env::current_dir().map_err(|source| BackupError::Io {
        path: ".".into(),
        source,
    })?;
    Ok(url_pattern_match(&cwd, url)?
        .map(|p| format!("its URL matches the production pattern \"{p}\" in {CONFIG}")))
}

/// Lets a destructive `action` go ahead against a production database only when
/// confirmed: on a terminal by typing the database name, elsewhere by `--yes` and
/// `--confirm-database NAME`.
pub async fn confirm(
    client: &Client,
    url: &str,
    action: &str,
    yes: bool,
    confirm_database: &[String],
) -> Result<(), BackupError> {
    let Some(why) = why_production(client, url).await? else {
        return Ok(());
    };
    let name: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .pg(|| "reading the database name".into())?
        .get(0);
    // (repeatable: a command over several databases, `local destroy`, names each)
    if confirm_database.contains(&name) {
        if yes {
            return Ok(());
        }
    } else if !confirm_database.is_empty() {
        return Err(BackupError::Refused(format!(
            "--confirm-database {} is not {name}, the database this would {action}; \
             nothing was done",
            confirm_database.join(", --confirm-database ")
        )));
    }
    if !yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        eprint!(
            "dataforge: {name} is a production database: {why}.\n\
             dataforge: type its name to {action}: "
        );
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .map_err(|source| BackupError::Io {
                path: "stdin".into(),
                source,
            })?;
        if answer.trim() == name {
            return Ok(());
        }
        return Err(BackupError::Refused(format!(
            "the name typed was not {name}; nothing was done"
        )));
    }
    Err(BackupError::Refused(format!(
        "refusing to {action} {name}: {why}. Nothing was done. To go ahead, pass \
         --yes --confirm-database {name}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_a_shell() {
        assert!(glob("*prod*", "postgresql://u@prod-db:5432/app"));
        assert!(glob(
            "postgresql://*@db.example.com*",
            "postgresql://u:***@db.example.com:5432/x"
        ));
        assert!(!glob("*prod*", "postgresql://u@staging/app"));
        assert!(glob("exact", "exact") && !glob("exact", "exactly"));
    }

    #[test]
    fn config_patterns_are_read_and_bad_config_is_placed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG),
            "[production]\nurls = [\"*prod*\"]\n",
        )
        .unwrap();
        assert_eq!(
            url_pattern_match(dir.path(), "postgres://x@prod/db").unwrap(),
            Some("*prod*".into())
        );
        assert_eq!(
            url_pattern_match(dir.path(), "postgres://x@dev/db").unwrap(),
            None
        );
        std::fs::write(dir.path().join(CONFIG), "[production]\nurls = \"*prod*\"\n").unwrap();
        let err = url_pattern_match(dir.path(), "x").unwrap_err().to_string();
        assert!(err.contains("dataforge.toml: 2:8:"), "{err}");
    }
}
