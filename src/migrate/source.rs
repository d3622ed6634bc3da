//! Reading migrations in Prisma's layout: `DIR/<timestamp>_<name>/migration.sql`, an
//! optional `down.sql` beside it, and `migration_lock.toml` at the top. Folders sort by
//! name, which starts with the timestamp, so that is the order they apply in.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::MigrateError;

/// One migration as found on disk (or embedded in the binary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The folder name, e.g. `20250101000000_init`: Prisma's `migration_name`.
    pub name: String,
    pub sql: String,
    /// Lowercase hex SHA-256 of `migration.sql`, as Prisma records it.
    pub checksum: String,
    pub down: Option<String>,
    /// The folder it was read from (`None` when built in memory).
    pub dir: Option<PathBuf>,
    /// `approval.toml` beside it, if any (see [`super::approval`]).
    pub approval: Option<super::approval::Approval>,
    /// The migration this one rewrites (`migrate lint --fix`'s `rewrite.toml`), if any.
    pub rewrite_of: Option<String>,
}

impl Migration {
    pub fn new(name: impl Into<String>, sql: impl Into<String>, down: Option<String>) -> Self {
        let sql = sql.into();
        Migration {
            name: name.into(),
            checksum: checksum(&sql),
            sql,
            down,
            dir: None,
            approval: None,
            rewrite_of: None,
        }
    }

    /// The migration's folder (its name alone when built in memory).
    pub fn folder(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(&self.name))
    }

    /// Its `migration.sql`, for messages.
    pub fn file(&self) -> PathBuf {
        self.folder().join("migration.sql")
    }
}

/// Prisma's migration checksum: lowercase hex SHA-256 of the file's bytes.
pub fn checksum(sql: &str) -> String {
    let digest = Sha256::digest(sql.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Migration {
    /// Whether a recorded checksum is this file's, ignoring line endings as Prisma does:
    /// a file checked out with CRLF (or LF) still matches a checksum taken of the other.
    pub fn matches_checksum(&self, recorded: &str) -> bool {
        if recorded == self.checksum {
            return true;
        }
        let lf = self.sql.replace("\r\n", "\n");
        recorded == checksum(&lf) || recorded == checksum(&lf.replace('\n', "\r\n"))
    }
}

/// The folder `migrate` uses when `--dir` is not given: `prisma/migrations` if it exists,
/// else `migrations`.
pub fn default_dir() -> PathBuf {
    let prisma = PathBuf::from("prisma/migrations");
    if prisma.is_dir() {
        prisma
    } else {
        PathBuf::from("migrations")
    }
}

/// Reads every `<name>/migration.sql` under `dir`, sorted by folder name.
pub fn load_dir(dir: &Path) -> Result<Vec<Migration>, MigrateError> {
    let entries = fs::read_dir(dir).map_err(|source| MigrateError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| MigrateError::ReadDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        // hidden folders (.git, dataforge's own .dataforge) are not migrations
        if name.starts_with('.') {
            continue;
        }
        let file = path.join("migration.sql");
        if !file.exists() {
            return Err(MigrateError::MissingScript { path: file });
        }
        let sql = fs::read_to_string(&file).map_err(|source| MigrateError::ReadFile {
            path: file.clone(),
            source,
        })?;
        let down_path = path.join("down.sql");
        let down = if down_path.exists() {
            Some(
                fs::read_to_string(&down_path).map_err(|source| MigrateError::ReadFile {
                    path: down_path.clone(),
                    source,
                })?,
            )
        } else {
            None
        };
        let mut m = Migration::new(name, sql, down);
        m.approval = super::approval::read(&path)?;
        m.rewrite_of =
            super::fix::original_of(&path).map_err(|why| MigrateError::BadRewriteMarker { why })?;
        m.dir = Some(path);
        out.push(m);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    // approvals given for a whole history at once (`approve --through`), for the
    // migrations without one of their own
    let shared = super::approval::read_shared(dir)?;
    for m in out.iter_mut().filter(|m| m.approval.is_none()) {
        m.approval = shared.get(&m.name).cloned();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_lowercase_hex_sha256() {
        // sha256("") is a well-known constant
        assert_eq!(
            checksum(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn checksums_match_across_line_endings() {
        let lf = Migration::new("1_a", "CREATE TABLE a (id int);\nSELECT 1;\n", None);
        let crlf = Migration::new("1_a", "CREATE TABLE a (id int);\r\nSELECT 1;\r\n", None);
        assert!(crlf.matches_checksum(&lf.checksum));
        assert!(lf.matches_checksum(&crlf.checksum));
        assert!(!lf.matches_checksum(&checksum("CREATE TABLE b (id int);\n")));
    }

    #[test]
    fn loads_folders_in_name_order_with_down_scripts() {
        let dir = tempfile::tempdir().unwrap();
        for (name, sql) in [("20250102_b", "SELECT 2;"), ("20250101_a", "SELECT 1;")] {
            fs::create_dir(dir.path().join(name)).unwrap();
            fs::write(dir.path().join(name).join("migration.sql"), sql).unwrap();
        }
        fs::write(dir.path().join("20250101_a/down.sql"), "SELECT 0;").unwrap();
        fs::write(
            dir.path().join("migration_lock.toml"),
            "provider = \"postgresql\"",
        )
        .unwrap();
        let m = load_dir(dir.path()).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].name, "20250101_a");
        assert_eq!(m[0].down.as_deref(), Some("SELECT 0;"));
        assert_eq!(m[1].down, None);
        assert_eq!(m[1].checksum, checksum("SELECT 2;"));
    }

    #[test]
    fn folder_without_script_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("20250101_a")).unwrap();
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("20250101_a/migration.sql"), "{err}");
    }
}
