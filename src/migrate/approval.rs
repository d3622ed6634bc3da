//! Approvals of destructive migrations: `approval.toml` beside `migration.sql`, committed
//! with it, bound to the file's checksum, so editing the migration voids the approval.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::lint::{self, Finding};
use super::{Linted, MigrateError, Migration};

/// The file name, beside `migration.sql`.
pub const FILE: &str = "approval.toml";

/// One recorded approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// SHA-256 of `migration.sql` when it was approved (Prisma's checksum).
    pub checksum: String,
    /// Why the change is acceptable.
    pub reason: String,
    pub approved_by: String,
    pub approved_at: String,
    /// The rules whose findings were approved.
    pub rules: Vec<String>,
}

/// Reads `approval.toml` in `folder`, if there is one. A malformed file is an error naming
/// it with line and column: a broken approval must not silently count as none.
pub fn read(folder: &Path) -> Result<Option<Approval>, MigrateError> {
    let path = folder.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(MigrateError::ReadFile { path, source }),
    };
    toml::from_str(&text).map(Some).map_err(|e| {
        let (line, col) = e
            .span()
            .map(|s| lint::line_col(&text, s.start))
            .unwrap_or((1, 1));
        MigrateError::BadApproval {
            path: path.clone(),
            line,
            col,
            why: e.message().to_string(),
        }
    })
}

impl Migration {
    /// Whether this migration carries an approval that still matches its file.
    pub fn approval_valid(&self) -> bool {
        self.approval
            .as_ref()
            .is_some_and(|a| self.matches_checksum(&a.checksum))
    }
}

/// Why a migration may not run: its blocking findings and what to do.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub name: String,
    pub file: PathBuf,
    pub findings: Vec<Finding>,
    /// An approval exists but was given for other contents of the file.
    pub stale_approval: bool,
}

/// The gate `up` and `deploy` apply: every migration to run must parse, and one with
/// high-risk findings must be approved (for its current contents) or named in `allowed`.
pub fn gate(to_run: &[(&Migration, &Linted)], allowed: &[String]) -> Result<(), MigrateError> {
    let mut refused = Vec::new();
    for (m, linted) in to_run {
        let file = m.file();
        let blocking: Vec<Finding> = lint::blocking(&linted.findings).cloned().collect();
        if blocking.is_empty() || m.approval_valid() || allowed.contains(&m.name) {
            continue;
        }
        refused.push(Refusal {
            name: m.name.clone(),
            file,
            stale_approval: m.approval.is_some(),
            findings: blocking,
        });
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(MigrateError::Unapproved(refused))
    }
}

/// Renders refusals for the error message.
pub fn refusal_text(refused: &[Refusal]) -> String {
    let mut s = String::new();
    for r in refused {
        s.push_str(&format!(
            "\n  {} has destructive changes{}:",
            r.name,
            if r.stale_approval {
                " (its approval.toml was given for different contents: the file changed since)"
            } else {
                ""
            }
        ));
        for f in &r.findings {
            s.push_str(&format!(
                "\n    {}:{}:{}: {} [{}]\n      fix: {}",
                r.file.display(),
                f.line,
                f.column,
                f.message,
                f.rule,
                f.advice
            ));
        }
    }
    let names: Vec<&str> = refused.iter().map(|r| r.name.as_str()).collect();
    s.push_str(&format!(
        "\n  Rewrite it as the fix says, or, if the change is intended, approve it with \
         `dataforge migrate approve {} --reason \"…\"` (and commit approval.toml), or allow it \
         for this run only with --allow-destructive {}",
        names[0], names[0]
    ));
    s
}

/// Writes `approval.toml` for `m`, which must have findings to approve.
pub fn approve(m: &Migration, reason: &str) -> Result<(PathBuf, Approval), MigrateError> {
    let findings = m.lint()?.findings;
    let mut rules: Vec<String> = lint::blocking(&findings)
        .map(|f| f.rule.to_string())
        .collect();
    rules.dedup();
    if rules.is_empty() {
        return Err(MigrateError::NothingToApprove {
            name: m.name.clone(),
        });
    }
    if reason.trim().is_empty() {
        return Err(MigrateError::NothingToApprove {
            name: format!("{} (an approval needs a --reason)", m.name),
        });
    }
    let approval = Approval {
        checksum: m.checksum.clone(),
        reason: reason.trim().to_string(),
        approved_by: super::history::os_user(),
        approved_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        rules,
    };
    let folder = m.folder();
    let path = folder.join(FILE);
    let text = format!(
        "# Approval of the destructive changes in migration.sql, bound to its checksum:\n\
         # editing migration.sql voids it. Written by `dataforge migrate approve`.\n{}",
        toml::to_string(&approval).map_err(|e| MigrateError::NothingToApprove {
            name: format!("{}: {e}", m.name)
        })?
    );
    std::fs::write(&path, text).map_err(|source| MigrateError::ReadFile {
        path: path.clone(),
        source,
    })?;
    Ok((path, approval))
}
