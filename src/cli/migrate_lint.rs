//! `dataforge migrate lint`: every file's findings, for dataforge's runner or another.

use std::path::PathBuf;
use std::process::ExitCode;

use super::migrate::{emit_json, DirArg};
use super::{emit, say, EXIT_FOUND};
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
        report.push(serde_json::json!({
            "file": file,
            "approved": approved,
            "risk": migrate::lint::overall_risk(&findings),
            "findings": findings,
        }));
    }
    if json {
        emit_json(serde_json::json!({ "files": report, "errors": broken }))?;
    } else {
        emit(&text)?;
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
        ExitCode::from(super::EXIT_ERROR)
    } else if worst == Some(migrate::lint::Risk::High) {
        ExitCode::from(EXIT_FOUND)
    } else {
        ExitCode::SUCCESS
    })
}
