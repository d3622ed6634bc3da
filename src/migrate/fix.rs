//! `migrate lint --fix`: the safe version of a migration, written for review.
//!
//! Each finding with a mechanical rewrite is split into steps that take weaker locks or
//! hold strong ones only briefly, as PostgreSQL's documentation recommends:
//!
//! | finding | rewrite |
//! |---|---|
//! | `index-without-concurrently` | `CREATE INDEX CONCURRENTLY`, in a migration of its own (it cannot run in a transaction) |
//! | `foreign-key-without-not-valid`, `check-without-not-valid` | the constraint `NOT VALID` now, `VALIDATE CONSTRAINT` in a later migration |
//! | `set-not-null` | `CHECK (col IS NOT NULL) NOT VALID` now; later `VALIDATE`, `SET NOT NULL` (proved from the check, no scan) and the check dropped |
//! | `volatile-default` | the column added without a default, the default set for new rows, old rows backfilled (`dataforge backfill`), then `NOT NULL` as above if it was asked for |
//! | `drop-column` | expand–contract: the drop moves to a last migration, with the note on when to deploy it |
//!
//! The original folder is left untouched. The new folders are named after it
//! (`<name>_1_expand`, `<name>_2_concurrent_index`, …) so they sort right after it, and
//! each holds a `rewrite.toml` naming the original: `up` and `deploy` refuse to run a
//! rewrite while its original folder is still there, so the two never both apply.

use std::path::{Path, PathBuf};

use pg_query::protobuf::{self, AlterTableCmd, AlterTableType, ConstrType};
use pg_query::NodeEnum;

use super::lint::{self, Statement};
use super::plan::sql_name;

/// The file in a rewritten folder that names the migration it replaces.
pub const MARKER: &str = "rewrite.toml";

/// One new migration folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Folder name.
    pub name: String,
    pub sql: String,
}

/// The rewrite of one migration.
#[derive(Debug, Clone)]
pub struct Rewrite {
    pub original: String,
    pub steps: Vec<Step>,
    /// What was rewritten, one line each (`line:col rule: what`).
    pub changes: Vec<String>,
}

/// Where a rewritten piece goes.
#[derive(Default)]
struct Pieces {
    /// The first migration: everything that stays as it was, and the cheap first halves.
    now: Vec<String>,
    /// One migration each, outside a transaction.
    concurrent: Vec<String>,
    /// A later migration: validations, backfill notes, NOT NULL.
    later: Vec<String>,
    /// The last migration, deployed once no code uses what it drops.
    contract: Vec<String>,
    changes: Vec<String>,
}

/// The safe rewrite of the migration `name` (its SQL `sql`), or `None` when no finding
/// has a mechanical rewrite.
pub fn rewrite(name: &str, sql: &str) -> Result<Option<Rewrite>, lint::SyntaxError> {
    let statements = lint::split(sql)?;
    let mut created = std::collections::HashSet::new();
    let mut p = Pieces::default();
    for st in &statements {
        let handled = match st.node.as_ref() {
            Some(NodeEnum::IndexStmt(i))
                if !i.concurrent
                    && !i
                        .relation
                        .as_ref()
                        .is_some_and(|rv| created.contains(&rv.relname.to_lowercase())) =>
            {
                p.concurrent.push(concurrently(&st.text));
                p.changes.push(format!(
                    "{}:{} index-without-concurrently: CREATE INDEX CONCURRENTLY, in its own migration",
                    st.line, st.column
                ));
                true
            }
            Some(NodeEnum::AlterTableStmt(a))
                if a.objtype() == protobuf::ObjectType::ObjectTable
                    && !a
                        .relation
                        .as_ref()
                        .is_some_and(|rv| created.contains(&rv.relname.to_lowercase())) =>
            {
                alter_table(st, a, &mut p)
            }
            _ => false,
        };
        if !handled {
            p.now.push(st.text.clone());
        }
        match st.node.as_ref() {
            Some(NodeEnum::CreateStmt(c)) => {
                if let Some(rv) = &c.relation {
                    created.insert(rv.relname.to_lowercase());
                }
            }
            Some(NodeEnum::CreateTableAsStmt(c)) => {
                if let Some(rv) = c.into.as_ref().and_then(|i| i.rel.as_ref()) {
                    created.insert(rv.relname.to_lowercase());
                }
            }
            _ => {}
        }
    }
    if p.changes.is_empty() {
        return Ok(None);
    }
    let header = |what: &str| {
        format!(
            "-- Rewritten from {name} by `dataforge migrate lint --fix`: {what}\n\
             -- Review it; then delete migrations/{name} (it must not run as well).\n"
        )
    };
    let mut steps = Vec::new();
    let mut push = |suffix: &str, body: String| {
        let n = steps.len() + 1;
        steps.push(Step {
            name: format!("{name}_{n}_{suffix}"),
            sql: body,
        });
    };
    let only_control = p.now.iter().all(|s| is_transaction_control(s));
    if !p.now.is_empty() && !only_control {
        push(
            "expand",
            format!(
                "{}\n{}\n",
                header("what can run at once, with brief locks."),
                join(&p.now)
            ),
        );
    }
    for index in &p.concurrent {
        push(
            "concurrent_index",
            format!(
                "{}-- CONCURRENTLY cannot run in a transaction: dataforge runs this file \
                 outside one, and drops\n-- the INVALID index a failed build leaves before \
                 retrying. Reads and writes go on.\n\n{index};\n",
                header("the index, built without blocking writes.")
            ),
        );
    }
    if !p.later.is_empty() {
        push(
            "validate",
            format!(
                "{}-- VALIDATE scans under SHARE UPDATE EXCLUSIVE: reads and writes go on.\n\n{}\n",
                header("the checks, validated without blocking writes."),
                join(&p.later)
            ),
        );
    }
    if !p.contract.is_empty() {
        push(
            "contract",
            format!(
                "{}-- Expand-contract: deploy this only once the code that runs in production \
                 no longer reads\n-- or writes what it drops (Prisma: remove the field from \
                 the schema, or mark it @ignore,\n-- and release that first). It drops data: \
                 approve it with `dataforge migrate approve`.\n\n{}\n",
                header("the drop, split off to a later release."),
                join(&p.contract)
            ),
        );
    }
    Ok(Some(Rewrite {
        original: name.to_string(),
        steps,
        changes: p.changes,
    }))
}

fn join(statements: &[String]) -> String {
    statements
        .iter()
        .map(|s| {
            if s.lines().all(|l| l.trim_start().starts_with("--")) {
                s.clone()
            } else {
                format!("{s};")
            }
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn is_transaction_control(sql: &str) -> bool {
    let w = sql
        .split_ascii_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    matches!(
        w.as_str(),
        "BEGIN" | "COMMIT" | "END" | "START" | "ROLLBACK" | "SET"
    )
}

/// `CREATE [UNIQUE] INDEX …` with `CONCURRENTLY` after `INDEX`, the rest as written.
fn concurrently(text: &str) -> String {
    let tokens = pg_query::scan_tokens(text).unwrap_or_default();
    match tokens
        .iter()
        .find(|t| text[t.start as usize..t.end as usize].eq_ignore_ascii_case("INDEX"))
    {
        Some(t) => format!(
            "{} CONCURRENTLY{}",
            &text[..t.end as usize],
            &text[t.end as usize..]
        ),
        None => text.to_string(),
    }
}

/// Rewrites what can be rewritten in an `ALTER TABLE` on an existing table; `false` when
/// nothing was (the statement then stays as written).
fn alter_table(st: &Statement, a: &protobuf::AlterTableStmt, p: &mut Pieces) -> bool {
    let Some(rv) = a.relation.as_ref() else {
        return false;
    };
    let parts: Vec<&str> = [rv.schemaname.as_str(), rv.relname.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let table = sql_name(&parts);
    let at = format!("{}:{}", st.line, st.column);
    let mut kept: Vec<protobuf::Node> = Vec::new();
    let mut extra_now: Vec<String> = Vec::new();
    let mut changed = false;
    for node in &a.cmds {
        let Some(NodeEnum::AlterTableCmd(cmd)) = node.node.as_ref() else {
            kept.push(node.clone());
            continue;
        };
        match cmd.subtype() {
            AlterTableType::AtAddConstraint => {
                let Some(NodeEnum::Constraint(con)) =
                    cmd.def.as_deref().and_then(|d| d.node.as_ref())
                else {
                    kept.push(node.clone());
                    continue;
                };
                let kind = con.contype();
                if !matches!(kind, ConstrType::ConstrForeign | ConstrType::ConstrCheck)
                    || con.skip_validation
                {
                    kept.push(node.clone());
                    continue;
                }
                let mut con = con.clone();
                con.skip_validation = true;
                con.initially_valid = false;
                if con.conname.is_empty() {
                    con.conname = constraint_name(&rv.relname, &con);
                }
                p.later.push(format!(
                    "ALTER TABLE {table} VALIDATE CONSTRAINT {}",
                    sql_name(&[&con.conname])
                ));
                p.changes.push(format!(
                    "{at} {}: {} added NOT VALID, validated in a later migration",
                    if kind == ConstrType::ConstrForeign {
                        "foreign-key-without-not-valid"
                    } else {
                        "check-without-not-valid"
                    },
                    con.conname
                ));
                let mut cmd = cmd.clone();
                cmd.def = Some(Box::new(protobuf::Node {
                    node: Some(NodeEnum::Constraint(con)),
                }));
                kept.push(cmd_node(*cmd));
                changed = true;
            }
            AlterTableType::AtSetNotNull => {
                let column = cmd.name.clone();
                let check = truncate63(format!("{}_{}_not_null", rv.relname, column));
                let (col, chk) = (sql_name(&[&column]), sql_name(&[&check]));
                extra_now.push(format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {chk} CHECK ({col} IS NOT NULL) NOT VALID"
                ));
                p.later.extend(not_null_steps(&table, &col, &chk));
                p.changes.push(format!(
                    "{at} set-not-null: {column} proved NOT NULL by a CHECK validated later"
                ));
                changed = true;
            }
            AlterTableType::AtAddColumn => {
                let Some(NodeEnum::ColumnDef(def)) =
                    cmd.def.as_deref().and_then(|d| d.node.as_ref())
                else {
                    kept.push(node.clone());
                    continue;
                };
                let Some(default) = volatile_default(def) else {
                    kept.push(node.clone());
                    continue;
                };
                let not_null = def.is_not_null
                    || def.constraints.iter().any(|c| {
                        matches!(c.node.as_ref(), Some(NodeEnum::Constraint(c)) if c.contype() == ConstrType::ConstrNotnull)
                    });
                let mut plain = def.clone();
                plain.is_not_null = false;
                plain.raw_default = None;
                plain.constraints.retain(|c| {
                    !matches!(c.node.as_ref(), Some(NodeEnum::Constraint(c))
                        if matches!(c.contype(), ConstrType::ConstrDefault | ConstrType::ConstrNotnull))
                });
                let mut cmd = cmd.clone();
                cmd.def = Some(Box::new(protobuf::Node {
                    node: Some(NodeEnum::ColumnDef(plain)),
                }));
                kept.push(cmd_node(*cmd));
                let col = sql_name(&[&def.colname]);
                extra_now.push(format!(
                    "ALTER TABLE {table} ALTER COLUMN {col} SET DEFAULT {default}"
                ));
                let backfill = format!(
                    "-- Rows that existed before have {col} NULL. Backfill them in batches before \
                     this migration\n-- runs (each batch commits; writes go on):\n--   dataforge \
                     backfill --table {} --set \"{col} = {default}\" --where \"{col} IS NULL\"",
                    shell_table(&table)
                );
                if not_null {
                    let check = truncate63(format!("{}_{}_not_null", rv.relname, def.colname));
                    let chk = sql_name(&[&check]);
                    // Added now, NOT VALID: new rows get the default and satisfy it, and
                    // the later VALIDATE scans without blocking writes (in the same
                    // transaction as an ADD it would scan under ACCESS EXCLUSIVE).
                    extra_now.push(format!(
                        "ALTER TABLE {table} ADD CONSTRAINT {chk} CHECK ({col} IS NOT NULL) NOT VALID"
                    ));
                    p.later.push(backfill);
                    p.later.extend(not_null_steps(&table, &col, &chk));
                } else {
                    p.later.push(backfill);
                }
                p.changes.push(format!(
                    "{at} volatile-default: {} added without a default, default set for new rows, \
                     old rows backfilled{}",
                    def.colname,
                    if not_null { ", then NOT NULL" } else { "" }
                ));
                changed = true;
            }
            AlterTableType::AtDropColumn => {
                p.contract
                    .push(single_cmd(a, node.clone()).unwrap_or_else(|| {
                        format!("ALTER TABLE {table} DROP COLUMN {}", sql_name(&[&cmd.name]))
                    }));
                p.changes.push(format!(
                    "{at} drop-column: {} dropped in a last migration (expand-contract)",
                    cmd.name
                ));
                changed = true;
            }
            _ => kept.push(node.clone()),
        }
    }
    if !changed {
        return false;
    }
    if !kept.is_empty() {
        let mut stmt = a.clone();
        stmt.cmds = kept;
        match NodeEnum::AlterTableStmt(stmt).deparse(Default::default()) {
            Ok(sql) => p.now.push(sql),
            // Not expected: the tree came from the parser. Keep the statement as written
            // and undo nothing rather than lose it.
            Err(_) => p.now.push(st.text.clone()),
        }
    }
    p.now.extend(extra_now);
    true
}

fn cmd_node(cmd: AlterTableCmd) -> protobuf::Node {
    protobuf::Node {
        node: Some(NodeEnum::AlterTableCmd(Box::new(cmd))),
    }
}

/// `ALTER TABLE t <cmd>` for one subcommand of `a`.
fn single_cmd(a: &protobuf::AlterTableStmt, cmd: protobuf::Node) -> Option<String> {
    let mut stmt = a.clone();
    stmt.cmds = vec![cmd];
    NodeEnum::AlterTableStmt(stmt)
        .deparse(Default::default())
        .ok()
}

fn not_null_steps(table: &str, col: &str, chk: &str) -> [String; 3] {
    [
        format!("ALTER TABLE {table} VALIDATE CONSTRAINT {chk}"),
        format!(
            "-- PostgreSQL 12+ proves NOT NULL from the valid check: no scan, a brief lock.\n\
             ALTER TABLE {table} ALTER COLUMN {col} SET NOT NULL"
        ),
        format!("ALTER TABLE {table} DROP CONSTRAINT {chk}"),
    ]
}

/// The default expression of an added column when it is volatile (or a serial's
/// sequence), as SQL.
fn volatile_default(def: &protobuf::ColumnDef) -> Option<String> {
    if super::lint::rules::volatile_default_is_serial(def) {
        return None; // a serial's sequence has no mechanical split here
    }
    let mut exprs: Vec<&protobuf::Node> = def.raw_default.iter().map(|b| b.as_ref()).collect();
    for c in &def.constraints {
        if let Some(NodeEnum::Constraint(c)) = c.node.as_ref() {
            if c.contype() == ConstrType::ConstrDefault {
                exprs.extend(c.raw_expr.iter().map(|b| b.as_ref()));
            }
        }
    }
    let expr = exprs.into_iter().find(|e| {
        e.node
            .as_ref()
            .is_some_and(|n| super::lint::rules::volatile_default_call(n).is_some())
    })?;
    expr_sql(expr)
}

/// One expression as SQL, by deparsing `SELECT <expr>`.
fn expr_sql(expr: &protobuf::Node) -> Option<String> {
    let select = protobuf::SelectStmt {
        target_list: vec![protobuf::Node {
            node: Some(NodeEnum::ResTarget(Box::new(protobuf::ResTarget {
                val: Some(Box::new(expr.clone())),
                ..Default::default()
            }))),
        }],
        limit_option: protobuf::LimitOption::Default as i32,
        op: protobuf::SetOperation::SetopNone as i32,
        ..Default::default()
    };
    let sql = NodeEnum::SelectStmt(Box::new(select))
        .deparse(Default::default())
        .ok()?;
    sql.strip_prefix("SELECT ").map(str::to_string)
}

/// The name PostgreSQL would give an unnamed constraint, made explicit so the later
/// `VALIDATE` can name it.
fn constraint_name(table: &str, con: &protobuf::Constraint) -> String {
    let cols: Vec<String> = con
        .fk_attrs
        .iter()
        .filter_map(|n| match n.node.as_ref() {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect();
    let name = if con.contype() == ConstrType::ConstrForeign {
        format!("{table}_{}_fkey", cols.join("_"))
    } else {
        format!("{table}_check")
    };
    truncate63(name)
}

/// PostgreSQL keeps the first 63 bytes of a name.
fn truncate63(mut s: String) -> String {
    while s.len() > 63 {
        s.pop();
    }
    s
}

/// A table name as a shell argument in the backfill note (`"Order"` needs quoting).
fn shell_table(table: &str) -> String {
    if table.contains('"') {
        format!("'{table}'")
    } else {
        table.to_string()
    }
}

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
        std::fs::write(
            tmp.join(MARKER),
            format!(
                "# Written by `dataforge migrate lint --fix`. `up` and `deploy` refuse to run\n\
                 # this folder while the original below is still in the migrations folder.\n\
                 original = {:?}\n",
                r.original
            ),
        )?;
        std::fs::rename(&tmp, &folder)?;
        written.push(folder);
    }
    Ok(written)
}

/// The original a rewritten folder replaces (`None` for ordinary migrations).
pub fn original_of(folder: &Path) -> Option<String> {
    let text = std::fs::read_to_string(folder.join(MARKER)).ok()?;
    let v: toml::Value = toml::from_str(&text).ok()?;
    v.get("original")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(sql: &str) -> Vec<(String, String)> {
        rewrite("m", sql)
            .unwrap()
            .map(|r| {
                r.steps
                    .into_iter()
                    .map(|s| {
                        let body: Vec<&str> =
                            s.sql.lines().filter(|l| !l.starts_with("--")).collect();
                        (s.name, body.join("\n").trim().to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn an_index_is_built_concurrently_in_its_own_migration() {
        assert_eq!(
            steps("CREATE TABLE a (id int);\nCREATE UNIQUE INDEX \"User_email_key\" ON \"User\"(\"email\");"),
            vec![
                ("m_1_expand".into(), "CREATE TABLE a (id int);".into()),
                (
                    "m_2_concurrent_index".into(),
                    "CREATE UNIQUE INDEX CONCURRENTLY \"User_email_key\" ON \"User\"(\"email\");"
                        .into()
                ),
            ]
        );
    }

    #[test]
    fn constraints_are_added_not_valid_and_validated_later() {
        let s = steps(
            "ALTER TABLE \"Post\" ADD CONSTRAINT \"Post_authorId_fkey\" FOREIGN KEY (\"authorId\") \
             REFERENCES \"User\"(id), ADD CHECK (n > 0);",
        );
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(s[0].1.contains("NOT VALID"), "{s:?}");
        assert_eq!(
            s[1].1,
            "ALTER TABLE \"Post\" VALIDATE CONSTRAINT \"Post_authorId_fkey\";\n\n\
             ALTER TABLE \"Post\" VALIDATE CONSTRAINT \"Post_check\";"
        );
    }

    #[test]
    fn nothing_to_rewrite_is_none() {
        assert!(
            rewrite("m", "CREATE TABLE t (id int);\nCREATE INDEX i ON t (id);")
                .unwrap()
                .is_none()
        );
    }
}
