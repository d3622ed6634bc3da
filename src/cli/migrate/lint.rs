//! `dataforge migrate lint`: every file's findings, for dataforge's runner or another.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{emit_json, DirArg};
use crate::cli::{emit, say, EXIT_FOUND};
use crate::migrate::{self, Migration};

/// Who applies the migrations being linted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Runner {
    /// `dataforge migrate up`/`deploy`, which set lock_timeout for every migration
    Dataforge,
    /// psql or another runner that sets nothing
    Psql,
    /// `prisma migrate deploy`, which sets no lock_timeout
    Prisma,
}

pub fn lint(
    paths: Vec<PathBuf>,
    dir: &DirArg,
    json: bool,
    runner: Runner,
) -> anyhow::Result<ExitCode> {
    let files: Vec<PathBuf> = if paths.is_empty() {
        migrate::load_dir(&dir.path())?
            .iter()
            .map(Migration::file)
            .collect()
    } else {
        paths
            .into_iter()
            .map(|p| {
                if p.is_dir() {
                    p.join("migration.sql")
                } else {
                    p
                }
            })
            .collect()
    };
    let mut report = Vec::new();
    let mut text = String::new();
    let mut worst = None;
    // one broken file is reported, and the others are still linted
    let mut broken = Vec::new();
    for file in &files {
        let sql = match std::fs::read_to_string(file) {
            Ok(s) => s,
            Err(e) => {
                broken.push(format!("cannot read {}: {e}", file.display()));
                continue;
            }
        };
        let mut findings = match migrate::lint::lint_sql(&sql) {
            Ok(f) => f,
            Err(e) => {
                broken.push(migrate::MigrateError::syntax(file.clone(), e).to_string());
                continue;
            }
        };
        if runner == Runner::Dataforge {
            findings.retain(|f| f.rule != "missing-lock-timeout");
        }
        let approved = file
            .parent()
            .map(|folder| -> anyhow::Result<bool> {
                let own = migrate::approval::read(folder)?;
                let name = folder
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let shared = match folder.parent() {
                    Some(parent) => migrate::approval::read_shared(parent)?.remove(&name),
                    None => None,
                };
                Ok(own.or(shared).is_some_and(|a| {
                    Migration::new("", sql.as_str(), None).matches_checksum(&a.checksum)
                }))
            })
            .transpose()?
            .unwrap_or(false);
        for f in &findings {
            text.push_str(&format!(
                "{}:{}:{}: {} risk: {} [{}]{}\n  fix: {}\n",
                file.display(),
                f.line,
                f.column,
                f.risk,
                f.message,
                f.rule,
                if approved && f.risk == migrate::lint::Risk::High {
                    " (approved)"
                } else {
                    ""
                },
                f.advice
            ));
            if !(approved && f.risk == migrate::lint::Risk::High) {
                worst = worst.max(Some(f.risk));
            }
        }
        if json {
            report.push(serde_json::json!({
                "file": file,
                "approved": approved,
                "risk": migrate::lint::overall_risk(&findings),
                "findings": findings,
            }));
        } else {
            // written file by file: a long history's findings are never all held at once
            if !text.is_empty() {
                emit(&text)?;
                text.clear();
            }
        }
    }
    if json {
        emit_json(serde_json::json!({ "files": report, "errors": broken }))?;
    } else {
        for b in &broken {
            say(b);
        }
        say(&format!(
            "{} file(s) checked, {}",
            files.len(),
            match worst {
                None => "no findings that need attention".to_string(),
                Some(r) => format!("highest unapproved risk: {r}"),
            }
        ));
    }
    // A file that cannot be linted is an error; high-risk findings that are not approved
    // need attention; medium and low inform.
    Ok(if !broken.is_empty() {
        ExitCode::from(crate::cli::EXIT_ERROR)
    } else if worst == Some(migrate::lint::Risk::High) {
        ExitCode::from(EXIT_FOUND)
    } else {
        ExitCode::SUCCESS
    })
}

/// `migrate lint --fix`: writes (or with `dry_run` prints) the safe rewrite of each
/// migration folder in `paths`, or of the newest migration in `dir`.
pub fn fix(paths: Vec<PathBuf>, dir: &DirArg, dry_run: bool) -> anyhow::Result<ExitCode> {
    let folders: Vec<PathBuf> = if paths.is_empty() {
        let all = migrate::load_dir(&dir.path())?;
        let Some(newest) = all.last() else {
            say(&format!(
                "no migrations in {}: nothing to fix",
                dir.path().display()
            ));
            return Ok(ExitCode::SUCCESS);
        };
        say(&format!(
            "rewriting the newest migration, {} (name others to rewrite them); a rewrite is \
             for migrations no database has applied yet",
            newest.name
        ));
        vec![newest.folder()]
    } else {
        paths
            .into_iter()
            .map(|p| match p.file_name() {
                Some(f) if f == "migration.sql" => p.parent().map(PathBuf::from).unwrap_or(p),
                _ => p,
            })
            .collect()
    };
    let mut failed = false;
    for folder in &folders {
        let file = folder.join("migration.sql");
        let sql = match std::fs::read_to_string(&file) {
            Ok(s) => s,
            Err(e) => {
                say(&format!(
                    "cannot read {}: {e} (--fix takes migration folders)",
                    file.display()
                ));
                failed = true;
                continue;
            }
        };
        let name = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match migrate::fix::original_of(folder) {
            Ok(Some(original)) => {
                say(&format!(
                    "{name} is itself a rewrite of {original}: left as it is"
                ));
                continue;
            }
            Ok(None) => {}
            Err(why) => {
                say(&why);
                failed = true;
                continue;
            }
        }
        let rewrite = match migrate::fix::rewrite(&name, &sql) {
            Ok(Some(r)) => r,
            Ok(None) => {
                say(&format!("{name}: no finding with a mechanical rewrite"));
                continue;
            }
            Err(e) => {
                say(&migrate::MigrateError::syntax(file.clone(), e).to_string());
                failed = true;
                continue;
            }
        };
        let parent = folder.parent().unwrap_or(std::path::Path::new("."));
        let mut out = String::new();
        for change in &rewrite.changes {
            out.push_str(&format!("{}:{change}\n", file.display()));
        }
        // every finding the rewrite does not take away is named, never passed over
        for f in left_as_written(&sql, &rewrite) {
            out.push_str(&format!(
                "{}:{}:{} {}: left as written, no mechanical rewrite: {}\n",
                file.display(),
                f.line,
                f.column,
                f.rule,
                f.message
            ));
        }
        if rewrite.steps.is_empty() {
            emit(&out)?;
            say(&format!(
                "{name}: nothing written: no finding could be rewritten without changing what \
                 the migration does (see above)"
            ));
            continue;
        }
        if dry_run {
            if let Some(s) = rewrite.steps.iter().find(|s| parent.join(&s.name).exists()) {
                say(&format!(
                    "{} exists already: --fix would refuse to write this rewrite (delete its \
                     folders to write it again)",
                    parent.join(&s.name).display()
                ));
                failed = true;
            }
            for step in &rewrite.steps {
                let path = parent.join(&step.name).join("migration.sql");
                let lines: Vec<&str> = step.sql.lines().collect();
                out.push_str(&format!(
                    "--- /dev/null\n+++ {}\n@@ -0,0 +1,{} @@\n",
                    path.display(),
                    lines.len()
                ));
                for l in lines {
                    out.push_str(&format!("+{l}\n"));
                }
            }
            emit(&out)?;
            continue;
        }
        match migrate::fix::write(parent, &rewrite) {
            Ok(written) => {
                for w in written {
                    out.push_str(&format!("wrote {}\n", w.join("migration.sql").display()));
                }
                emit(&out)?;
                say(&format!(
                    "{} left untouched: review the new folders, then delete {} (up refuses \
                     to run a rewrite while its original is there)",
                    folder.display(),
                    folder.display()
                ));
            }
            Err(e) => {
                say(&format!("{name}: {e}"));
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(crate::cli::EXIT_ERROR)
    } else {
        ExitCode::SUCCESS
    })
}

/// The findings of `sql` that are still there after `rewrite` (in a step other than the
/// contract, where the drops it moves are expected to stay).
fn left_as_written(sql: &str, rewrite: &migrate::fix::Rewrite) -> Vec<migrate::lint::Finding> {
    let findings = |sql: &str| -> Vec<migrate::lint::Finding> {
        migrate::lint::lint_sql(sql)
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f.rule != "missing-lock-timeout")
            .collect()
    };
    let remaining: Vec<(&str, String)> = rewrite
        .steps
        .iter()
        .filter(|s| !s.name.ends_with("_contract"))
        .flat_map(|s| findings(&s.sql))
        .map(|f| (f.rule, f.message))
        .collect();
    findings(sql)
        .into_iter()
        .filter(|f| {
            rewrite.steps.is_empty()
                || remaining
                    .iter()
                    .any(|(rule, message)| *rule == f.rule && *message == f.message)
        })
        .collect()
}
