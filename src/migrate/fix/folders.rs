//! The rewrite on disk: its folders, written whole or not at all, and the marker that
//! names the migration each one rewrites.

use std::path::{Path, PathBuf};

use super::Rewrite;

/// The file in a rewritten folder that names the migration it replaces.
pub const MARKER: &str = "rewrite.toml";

/// Writes the rewrite's folders into `dir`; refuses to overwrite a folder that exists.
pub fn write(dir: &Path, r: &Rewrite) -> std::io::Result<Vec<PathBuf>> {
    for step in &r.steps {
        let folder = dir.join(&step.name);
        if folder.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists already: a rewrite was written before; delete its folders to \
                     write it again",
                    folder.display()
                ),
            ));
        }
    }
    let mut written = Vec::new();
    for step in &r.steps {
        let folder = dir.join(&step.name);
        // Written under a temporary name and renamed, so an interrupted run leaves no
        // half-written migration that `up` would pick up.
        let tmp = dir.join(format!(".{}.partial", step.name));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        std::fs::write(tmp.join("migration.sql"), &step.sql)?;
        let mut marker = toml::Table::new();
        marker.insert("original".into(), toml::Value::String(r.original.clone()));
        std::fs::write(
            tmp.join(MARKER),
            format!(
                "# Written by `dataforge migrate lint --fix`. `up` and `deploy` refuse to run\n\
                 # this folder while the original below is still in the migrations folder,\n\
                 # and the original where this has been applied.\n{}",
                toml::to_string(&marker).map_err(std::io::Error::other)?
            ),
        )?;
        std::fs::rename(&tmp, &folder)?;
        written.push(folder);
    }
    Ok(written)
}

/// The original a rewritten folder replaces (`None` for ordinary migrations). A marker
/// that cannot be read is an error, never a silent `None`: it is what keeps the rewrite
/// and its original from both applying.
pub fn original_of(folder: &Path) -> Result<Option<String>, String> {
    let path = folder.join(MARKER);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let v: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    match v.get("original").and_then(toml::Value::as_str) {
        Some(o) => Ok(Some(o.to_string())),
        None => Err(format!(
            "{}: no `original = \"NAME\"` (the migration this folder rewrites)",
            path.display()
        )),
    }
}
