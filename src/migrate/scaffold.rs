//! `migrate new`: a timestamped migration folder with its two scripts.

use super::*;

/// Creates `DIR/<UTC timestamp>_<name>/` with `migration.sql` and a `down.sql` template
/// (and `migration_lock.toml` when the folder is new). Returns the new folder.
pub fn new_migration(dir: &std::path::Path, name: &str) -> Result<PathBuf, MigrateError> {
    let slug: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let slug = slug.trim_matches('_').to_string();
    if slug.is_empty() {
        return Err(MigrateError::BadName {
            name: name.to_string(),
        });
    }
    let now = time::OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let folder = dir.join(format!("{stamp}_{slug}"));
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| MigrateError::ReadFile { path, source }
    };
    std::fs::create_dir_all(&folder).map_err(io(&folder))?;
    let lock = dir.join("migration_lock.toml");
    if !lock.exists() {
        std::fs::write(
            &lock,
            "# Prisma reads this too; keep it in version control.\nprovider = \"postgresql\"\n",
        )
        .map_err(io(&lock))?;
    }
    let up = folder.join("migration.sql");
    if up.exists() {
        return Err(MigrateError::Exists { path: up });
    }
    std::fs::write(
        &up,
        format!("-- {slug}: the schema change, applied by `dataforge migrate up`.\n"),
    )
    .map_err(io(&up))?;
    std::fs::write(
        folder.join("down.sql"),
        format!("-- Undo {slug}: statements that reverse migration.sql, run by `dataforge migrate down`.\n"),
    )
    .map_err(io(&folder.join("down.sql")))?;
    Ok(folder)
}
