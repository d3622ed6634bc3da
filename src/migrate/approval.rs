//! Approvals of destructive migrations: `approval.toml` beside `migration.sql`, committed
//! with it, bound to the file's checksum, so editing the migration voids the approval.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::lint::{self, Finding};
use super::{Linted, MigrateError, Migration};

/// The file name, beside `migration.sql`.
pub const FILE: &str = "approval.toml";

/// The file of approvals given for many migrations at once (`approve --through`), in the
/// migrations folder: one entry per migration, each bound to its own checksum.
pub const SHARED_FILE: &str = "approvals.toml";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Shared {
    #[serde(default, rename = "migration")]
    migrations: Vec<SharedEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SharedEntry {
    name: String,
    #[serde(flatten)]
    approval: Approval,
}

fn parse_toml<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, MigrateError> {
    toml::from_str(text).map_err(|e| {
        let (line, col) = e
            .span()
            .map(|s| lint::line_col(text, s.start))
            .unwrap_or((1, 1));
        MigrateError::BadApproval {
            path: path.to_path_buf(),
            line,
            col,
            why: e.message().to_string(),
        }
    })
}

/// The approvals in `dir/approvals.toml`, by migration name.
pub fn read_shared(
    dir: &Path,
) -> Result<std::collections::BTreeMap<String, Approval>, MigrateError> {
    let path = dir.join(SHARED_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(source) => return Err(MigrateError::ReadFile { path, source }),
    };
    let shared: Shared = parse_toml(&path, &text)?;
    Ok(shared
        .migrations
        .into_iter()
        .map(|e| (e.name, e.approval))
        .collect())
}

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
    parse_toml(&path, &text).map(Some)
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

/// Renders refusals for the error message: one line per migration (its rules, counted,
/// and where the first finding is), at most 20 listed, then the one command that approves
/// them all, or the single one. `dataforge migrate lint` shows every finding with its fix.
pub fn refusal_text(refused: &[Refusal]) -> String {
    const LISTED: usize = 20;
    let mut s = String::new();
    for r in refused.iter().take(LISTED) {
        let mut rules: Vec<(&str, usize)> = Vec::new();
        for f in &r.findings {
            match rules.iter_mut().find(|(name, _)| *name == f.rule) {
                Some((_, n)) => *n += 1,
                None => rules.push((f.rule, 1)),
            }
        }
        let rules: Vec<String> = rules
            .iter()
            .map(|(name, n)| {
                if *n > 1 {
                    format!("{name} ×{n}")
                } else {
                    name.to_string()
                }
            })
            .collect();
        let first = &r.findings[0];
        s.push_str(&format!(
            "\n  {}: {} (first at {}:{}:{}: {}){}",
            r.name,
            rules.join(", "),
            r.file.display(),
            first.line,
            first.column,
            first.message,
            if r.stale_approval {
                "; its approval was given for different contents: the file changed since"
            } else {
                ""
            }
        ));
    }
    if refused.len() > LISTED {
        s.push_str(&format!(
            "\n  … and {} more (`dataforge migrate lint` lists every finding with its fix)",
            refused.len() - LISTED
        ));
    }
    let last = &refused[refused.len() - 1].name;
    if refused.len() == 1 {
        s.push_str(&format!(
            "\n  Rewrite it as `dataforge migrate lint` advises, or, if the change is intended, \
             approve it with `dataforge migrate approve {last} --reason \"…\"` (and commit \
             approval.toml), or allow it for this run only with --allow-destructive {last}"
        ));
    } else {
        s.push_str(&format!(
            "\n  If these changes are intended (adopting an existing history), approve them all \
             at once: `dataforge migrate approve --through {last} --reason \"…\"` (and commit \
             {SHARED_FILE}); `dataforge migrate lint` shows each finding with its fix"
        ));
    }
    s
}

/// Approves, in `dir/approvals.toml`, every migration up to and including `through` that
/// has high-risk findings and no valid approval; returns the file and the names approved.
pub fn approve_through(
    dir: &Path,
    migrations: &[Migration],
    through: &str,
    reason: &str,
) -> Result<(PathBuf, Vec<String>), MigrateError> {
    if reason.trim().is_empty() {
        return Err(MigrateError::NothingToApprove {
            name: format!("--through {through} (an approval needs a --reason)"),
        });
    }
    let path = dir.join(SHARED_FILE);
    let mut shared: Shared = match std::fs::read_to_string(&path) {
        Ok(t) => parse_toml(&path, &t)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Shared::default(),
        Err(source) => return Err(MigrateError::ReadFile { path, source }),
    };
    let at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let by = super::history::os_user();
    let mut approved = Vec::new();
    for m in migrations.iter().filter(|m| m.name.as_str() <= through) {
        if m.approval_valid() {
            continue;
        }
        let findings = m.lint()?.findings;
        let mut rules: Vec<String> = lint::blocking(&findings)
            .map(|f| f.rule.to_string())
            .collect();
        rules.sort();
        rules.dedup();
        if rules.is_empty() {
            continue;
        }
        shared.migrations.retain(|e| e.name != m.name);
        shared.migrations.push(SharedEntry {
            name: m.name.clone(),
            approval: Approval {
                checksum: m.checksum.clone(),
                reason: reason.trim().to_string(),
                approved_by: by.clone(),
                approved_at: at.clone(),
                rules,
            },
        });
        approved.push(m.name.clone());
    }
    if approved.is_empty() {
        return Err(MigrateError::NothingToApprove {
            name: format!(
                "the migrations up to {through} (none has unapproved high-risk findings)"
            ),
        });
    }
    shared.migrations.sort_by(|a, b| a.name.cmp(&b.name));
    let text = format!(
        "# Approvals of destructive changes, one per migration, each bound to the checksum of\n\
         # its migration.sql: editing a migration voids its approval alone.\n\
         # Written by `dataforge migrate approve --through`; commit it with the migrations.\n{}",
        toml::to_string(&shared).map_err(|e| MigrateError::NothingToApprove {
            name: format!("--through {through}: {e}")
        })?
    );
    std::fs::write(&path, text).map_err(|source| MigrateError::ReadFile {
        path: path.clone(),
        source,
    })?;
    Ok((path, approved))
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
