//! Finding PostgreSQL's programs (pg_dump, pg_restore, psql, initdb, pg_ctl): one search,
//! used by backups, the local cluster and the tests.

use std::path::{Path, PathBuf};

/// The first folder holding what `has` looks for, in this order:
///
/// 1. `DATAFORGE_PG_BIN`, when set: it alone, with no silent fallback to another install
///    (a pinned version must be the one used);
/// 2. each folder on `PATH`;
/// 3. the newest `/usr/lib/postgresql/<major>/bin` (Debian and Ubuntu keep the server's
///    programs there, off `PATH`).
pub fn find_dir(has: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DATAFORGE_PG_BIN").filter(|d| !d.is_empty()) {
        let d = PathBuf::from(d);
        return has(&d).then_some(d);
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(d) = std::env::split_paths(&path).find(|d| has(d)) {
            return Some(d);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.split('.').next()?.parse().ok()?;
            let bin = e.path().join("bin");
            has(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d)
}

/// The program `tool` (`pg_dump`, `psql` …), found as [`find_dir`] says.
pub fn find(tool: &str) -> Option<PathBuf> {
    find_dir(|d| d.join(tool).is_file()).map(|d| d.join(tool))
}
