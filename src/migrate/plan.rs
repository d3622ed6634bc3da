//! `migrate plan`: the impact report a reviewer reads before a deploy. Per pending
//! migration: its statements, the lock each takes and on what, the live size and row count
//! of every table touched, the lint findings, and the overall risk.

use std::collections::BTreeMap;

use pg_query::protobuf::{AlterTableType, ObjectType};
use pg_query::{NodeEnum, NodeRef};
use serde::Serialize;
use tokio_postgres::GenericClient;

use super::lint::{self, Finding, Risk};
use super::{MigrateError, Migration};
use crate::pg::PgContext as _;

/// One statement of a pending migration.
#[derive(Debug, Clone, Serialize)]
pub struct StatementPlan {
    pub line: usize,
    pub column: usize,
    /// The statement, on one line, shortened.
    pub sql: String,
    /// The strongest table lock it takes (`None` for statements that lock no table).
    pub lock: Option<&'static str>,
    /// What that lock blocks while it is held.
    pub blocks: Option<&'static str>,
    pub tables: Vec<String>,
}

/// A table a migration touches, as it is now in the database.
#[derive(Debug, Clone, Serialize)]
pub struct TableFacts {
    pub exists: bool,
    pub size_bytes: Option<i64>,
    pub rows: Option<i64>,
    /// Whether `rows` is the planner's estimate (tables over 80 MB are not counted).
    pub rows_estimated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct MigrationPlan {
    pub name: String,
    pub file: String,
    /// Runs statement by statement outside a transaction, and why.
    pub outside_transaction: Option<String>,
    pub statements: Vec<StatementPlan>,
    pub findings: Vec<Finding>,
    pub risk: Option<Risk>,
    /// High-risk findings are approved for the file as it is.
    pub approved: bool,
    pub tables: BTreeMap<String, TableFacts>,
}

impl MigrationPlan {
    /// Whether `up` would refuse it.
    pub fn blocked(&self) -> bool {
        !self.approved && lint::blocking(&self.findings).next().is_some()
    }
}

/// The strongest lock `node` takes on an existing table, PostgreSQL's names.
pub fn lock_taken(node: &NodeEnum) -> Option<&'static str> {
    Some(match node {
        NodeEnum::AlterTableStmt(a) => {
            let mut strongest = 0;
            for c in &a.cmds {
                let Some(NodeEnum::AlterTableCmd(cmd)) = c.node.as_ref() else {
                    continue;
                };
                let level = match cmd.subtype() {
                    AlterTableType::AtValidateConstraint
                    | AlterTableType::AtSetStatistics
                    | AlterTableType::AtClusterOn
                    | AlterTableType::AtDropCluster
                    | AlterTableType::AtSetRelOptions
                    | AlterTableType::AtResetRelOptions
                    | AlterTableType::AtAttachPartition => 1,
                    AlterTableType::AtEnableTrig
                    | AlterTableType::AtDisableTrig
                    | AlterTableType::AtEnableTrigAll
                    | AlterTableType::AtDisableTrigAll
                    | AlterTableType::AtEnableTrigUser
                    | AlterTableType::AtDisableTrigUser => 2,
                    AlterTableType::AtAddConstraint => {
                        match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
                            Some(NodeEnum::Constraint(c))
                                if c.contype() == pg_query::protobuf::ConstrType::ConstrForeign =>
                            {
                                2
                            }
                            _ => 3,
                        }
                    }
                    _ => 3,
                };
                strongest = strongest.max(level);
            }
            [
                "SHARE UPDATE EXCLUSIVE",
                "SHARE UPDATE EXCLUSIVE",
                "SHARE ROW EXCLUSIVE",
                "ACCESS EXCLUSIVE",
            ][strongest]
        }
        NodeEnum::IndexStmt(i) if i.concurrent => "SHARE UPDATE EXCLUSIVE",
        NodeEnum::IndexStmt(_) => "SHARE",
        NodeEnum::DropStmt(d)
            if matches!(
                d.remove_type(),
                ObjectType::ObjectTable
                    | ObjectType::ObjectIndex
                    | ObjectType::ObjectView
                    | ObjectType::ObjectMatview
            ) =>
        {
            if d.concurrent {
                "SHARE UPDATE EXCLUSIVE"
            } else {
                "ACCESS EXCLUSIVE"
            }
        }
        NodeEnum::RenameStmt(_) | NodeEnum::TruncateStmt(_) => "ACCESS EXCLUSIVE",
        NodeEnum::VacuumStmt(v) => {
            let full = v.options.iter().any(
                |o| matches!(o.node.as_ref(), Some(NodeEnum::DefElem(d)) if d.defname == "full"),
            );
            if full {
                "ACCESS EXCLUSIVE"
            } else {
                "SHARE UPDATE EXCLUSIVE"
            }
        }
        NodeEnum::RefreshMatViewStmt(r) if r.concurrent => "EXCLUSIVE",
        NodeEnum::RefreshMatViewStmt(_) => "ACCESS EXCLUSIVE",
        NodeEnum::CreateTrigStmt(_) => "SHARE ROW EXCLUSIVE",
        NodeEnum::InsertStmt(_) | NodeEnum::UpdateStmt(_) | NodeEnum::DeleteStmt(_) => {
            "ROW EXCLUSIVE"
        }
        NodeEnum::CopyStmt(c) if c.is_from => "ROW EXCLUSIVE",
        NodeEnum::SelectStmt(_) => "ACCESS SHARE",
        _ => return None,
    })
}

/// What a lock blocks while held.
pub fn lock_blocks(lock: &str) -> &'static str {
    match lock {
        "ACCESS EXCLUSIVE" => "all reads and writes",
        "EXCLUSIVE" => "writes (reads go on)",
        "SHARE ROW EXCLUSIVE" | "SHARE" => "writes (reads go on)",
        "SHARE UPDATE EXCLUSIVE" => "other schema changes and VACUUM (reads and writes go on)",
        "ROW EXCLUSIVE" => "only schema changes (ordinary writes)",
        _ => "only schema changes",
    }
}

/// Every table named in the statement, in order, once.
fn tables_in(node: &NodeEnum) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |name: String| {
        if !out.contains(&name) {
            out.push(name);
        }
    };
    if let NodeEnum::DropStmt(d) = node {
        if d.remove_type() == ObjectType::ObjectTable {
            for o in &d.objects {
                if let Some(NodeEnum::List(l)) = o.node.as_ref() {
                    let parts: Vec<&str> = l
                        .items
                        .iter()
                        .filter_map(|i| match i.node.as_ref() {
                            Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
                            _ => None,
                        })
                        .collect();
                    push(sql_name(&parts));
                }
            }
        }
    }
    for (n, ..) in node.nodes() {
        if let NodeRef::RangeVar(rv) = n {
            let parts: Vec<&str> = [rv.schemaname.as_str(), rv.relname.as_str()]
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect();
            push(sql_name(&parts));
        }
    }
    out
}

/// A name as SQL writes it: each part quoted when it needs to be (`"Customer"`,
/// `"order items"`, `"a.b"`), so it reads back as the same table (`to_regclass`) and shows
/// as the reader would write it.
/// Whether `word` is one of PostgreSQL's keywords, by its own scanner.
fn is_keyword(word: &str) -> bool {
    pg_query::scan(word).is_ok_and(|s| {
        s.tokens.len() == 1
            && s.tokens[0].keyword_kind() != pg_query::protobuf::KeywordKind::NoKeyword
    })
}

pub(crate) fn sql_name(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| {
            let plain = p
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
            // a keyword (`order`, `user`) is quoted too: unquoted it is not a name
            if plain && !is_keyword(p) {
                p.to_string()
            } else {
                crate::pg::quote_ident(p)
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn one_line(sql: &str, max: usize) -> String {
    let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max - 1).collect::<String>())
    } else {
        flat
    }
}

/// Plans one migration without a database (statements, locks, findings).
pub fn plan_migration(m: &Migration, server_version: i32) -> Result<MigrationPlan, MigrateError> {
    let super::Linted {
        statements,
        findings,
    } = m.lint()?;
    let mut tables = BTreeMap::new();
    let mut plans = Vec::new();
    for st in &statements {
        let node = match &st.node {
            Some(n) => Some(n.clone()),
            None => lint::statements::parse_node(&st.text),
        };
        let (line, column) = (st.line, st.column);
        let lock = node.as_ref().and_then(lock_taken);
        let touched = node.as_ref().map(tables_in).unwrap_or_default();
        for t in &touched {
            tables.entry(t.clone()).or_insert(TableFacts {
                exists: false,
                size_bytes: None,
                rows: None,
                rows_estimated: false,
            });
        }
        plans.push(StatementPlan {
            line,
            column,
            sql: one_line(&st.text, 100),
            lock,
            blocks: lock.map(lock_blocks),
            tables: touched,
        });
    }
    Ok(MigrationPlan {
        name: m.name.clone(),
        file: m.file().display().to_string(),
        outside_transaction: super::outside_transaction(&statements, server_version),
        risk: lint::overall_risk(&findings),
        approved: m.approval_valid(),
        findings,
        statements: plans,
        tables,
    })
}

/// Plans every pending migration (up to `to`), measuring the tables they touch.
pub async fn plan(
    client: &tokio_postgres::Client,
    migrations: &[Migration],
    to: Option<&str>,
) -> Result<Vec<MigrationPlan>, MigrateError> {
    let entries = super::status(client, migrations).await?;
    let todo = super::pending(migrations, &entries)?;
    let server_version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .pg(|| "asking for the server version".into())?
        .get(0);
    let mut out = Vec::new();
    for m in todo
        .into_iter()
        .take_while(|m| to.is_none_or(|t| m.name.as_str() <= t))
    {
        let mut p = plan_migration(m, server_version)?;
        measure(client, &mut p).await?;
        out.push(p);
    }
    Ok(out)
}

/// Fills in each touched table's live size and row count. Tables up to 80 MB are counted
/// exactly; bigger ones get the planner's estimate, so a plan stays quick on production.
pub async fn measure(
    client: &impl GenericClient,
    plan: &mut MigrationPlan,
) -> Result<(), MigrateError> {
    for (name, facts) in plan.tables.iter_mut() {
        let row = client
            .query_opt(
                "SELECT c.oid::regclass::text, pg_total_relation_size(c.oid), c.relpages::bigint,
                        greatest(c.reltuples, 0)::bigint
                 FROM pg_class c WHERE c.oid = to_regclass($1)",
                &[&name],
            )
            .await
            .pg(|| format!("measuring {name}"))?;
        let Some(row) = row else { continue };
        facts.exists = true;
        facts.size_bytes = Some(row.get(1));
        let pages: i64 = row.get(2);
        if pages <= 10_000 {
            // the server's own rendering of the table's name: quoted as SQL needs it
            let table: String = row.get(0);
            let n: i64 = client
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .pg(|| format!("counting the rows of {name}"))?
                .get(0);
            facts.rows = Some(n);
        } else {
            facts.rows = Some(row.get(3));
            facts.rows_estimated = true;
        }
    }
    Ok(())
}

/// `12.3 MB`-style sizes.
pub fn human_bytes(n: i64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

fn table_line(name: &str, f: &TableFacts) -> String {
    if !f.exists {
        return format!("{name}: not in the database yet");
    }
    format!(
        "{name}: {} rows{}, {}",
        f.rows.unwrap_or(0),
        if f.rows_estimated { " (estimate)" } else { "" },
        human_bytes(f.size_bytes.unwrap_or(0))
    )
}

/// The plan as a terminal reads it.
pub fn render_text(plans: &[MigrationPlan]) -> String {
    let mut s = String::new();
    for p in plans {
        s.push_str(&format!(
            "{}  risk: {}{}\n",
            p.name,
            p.risk.map_or("none", |r| r.as_str()),
            if p.blocked() {
                "  (BLOCKED: needs approval)"
            } else if p.approved {
                "  (approved)"
            } else {
                ""
            }
        ));
        if let Some(why) = &p.outside_transaction {
            s.push_str(&format!("  runs outside a transaction ({why})\n"));
        }
        for st in &p.statements {
            s.push_str(&format!("  {}:{}  {}\n", st.line, st.column, st.sql));
            if let Some(lock) = st.lock {
                s.push_str(&format!(
                    "      lock: {lock} on {} (blocks {})\n",
                    if st.tables.is_empty() {
                        "-".to_string()
                    } else {
                        st.tables.join(", ")
                    },
                    st.blocks.unwrap_or("")
                ));
            }
        }
        for (name, f) in &p.tables {
            s.push_str(&format!("  table {}\n", table_line(name, f)));
        }
        for f in &p.findings {
            s.push_str(&format!(
                "  {} risk: {}:{}: {} [{}]\n      fix: {}\n",
                f.risk, f.line, f.column, f.message, f.rule, f.advice
            ));
        }
        s.push('\n');
    }
    s
}

/// The plan as the runbook page for the change.
pub fn render_markdown(plans: &[MigrationPlan], database: &str) -> String {
    let overall = plans.iter().filter_map(|p| p.risk).max();
    let mut s = format!(
        "# Migration plan for `{database}`\n\n\
         {} pending migration(s); overall risk: **{}**.\n\n\
         ## Runbook\n\n\
         1. `dataforge migrate verify` — history and files agree.\n\
         2. `dataforge backup` — a verified backup to restore from.\n\
         3. `dataforge migrate deploy` — verify, backup, up, verify, each step reported.\n\
         4. If it fails: the output says what state it left and what to do; \
         `dataforge restore FILE` restores the backup.\n\n",
        plans.len(),
        overall.map_or("none", |r| r.as_str())
    );
    for p in plans {
        s.push_str(&format!(
            "## {}\n\nRisk: **{}**{}. File: `{}`.\n\n",
            p.name,
            p.risk.map_or("none", |r| r.as_str()),
            if p.blocked() {
                " — blocked until approved (`dataforge migrate approve`)"
            } else if p.approved {
                " — approved"
            } else {
                ""
            },
            p.file
        ));
        if let Some(why) = &p.outside_transaction {
            s.push_str(&format!(
                "Runs statement by statement outside a transaction ({why}): a failure \
                 leaves the statements before it applied.\n\n"
            ));
        }
        s.push_str("| Line | Statement | Lock | Blocks |\n|---|---|---|---|\n");
        for st in &p.statements {
            s.push_str(&format!(
                "| {} | `{}` | {} | {} |\n",
                st.line,
                st.sql.replace('|', "\\|").replace('`', "'"),
                st.lock
                    .map(|l| format!("{l} on {}", st.tables.join(", ")))
                    .unwrap_or_else(|| "—".into()),
                st.blocks.unwrap_or("—")
            ));
        }
        if !p.tables.is_empty() {
            s.push_str("\n| Table | Rows | Size |\n|---|---|---|\n");
            for (name, f) in &p.tables {
                if f.exists {
                    s.push_str(&format!(
                        "| `{name}` | {}{} | {} |\n",
                        f.rows.unwrap_or(0),
                        if f.rows_estimated { " (est.)" } else { "" },
                        human_bytes(f.size_bytes.unwrap_or(0))
                    ));
                } else {
                    s.push_str(&format!("| `{name}` | new | — |\n"));
                }
            }
        }
        if !p.findings.is_empty() {
            s.push_str("\nFindings:\n\n");
            for f in &p.findings {
                s.push_str(&format!(
                    "- **{}** `{}` (line {}): {}. Instead: {}.\n",
                    f.risk, f.rule, f.line, f.message, f.advice
                ));
            }
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock_of(sql: &str) -> Option<&'static str> {
        lock_taken(&lint::statements::parse_node(sql).unwrap())
    }

    #[test]
    fn locks_follow_postgresql_documentation() {
        assert_eq!(
            lock_of("ALTER TABLE t ADD COLUMN c int"),
            Some("ACCESS EXCLUSIVE")
        );
        assert_eq!(
            lock_of("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id) NOT VALID"),
            Some("SHARE ROW EXCLUSIVE")
        );
        assert_eq!(
            lock_of("ALTER TABLE t VALIDATE CONSTRAINT f"),
            Some("SHARE UPDATE EXCLUSIVE")
        );
        assert_eq!(lock_of("CREATE INDEX i ON t (a)"), Some("SHARE"));
        assert_eq!(
            lock_of("CREATE INDEX CONCURRENTLY i ON t (a)"),
            Some("SHARE UPDATE EXCLUSIVE")
        );
        assert_eq!(lock_of("VACUUM FULL t"), Some("ACCESS EXCLUSIVE"));
        assert_eq!(lock_of("UPDATE t SET a = 1"), Some("ROW EXCLUSIVE"));
        assert_eq!(lock_of("CREATE TABLE n (id int)"), None);
    }

    #[test]
    fn a_plan_lists_statements_tables_and_findings() {
        let m = Migration::new(
            "1_x",
            "CREATE TABLE n (id int);\nALTER TABLE users DROP COLUMN legacy;\nINSERT INTO audit (what) VALUES ('x');",
            None,
        );
        let p = plan_migration(&m, 150000).unwrap();
        assert_eq!(p.statements.len(), 3);
        assert_eq!(p.statements[1].tables, ["users"]);
        assert_eq!(p.statements[2].lock, Some("ROW EXCLUSIVE"));
        assert_eq!(p.tables.keys().collect::<Vec<_>>(), ["audit", "n", "users"]);
        assert_eq!(p.risk, Some(Risk::High));
        assert!(p.blocked());
    }
}
