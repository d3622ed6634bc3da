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
//! | `volatile-default` | the column added without a default and the default set for new rows; old rows backfilled in a migration of their own (`dataforge backfill` first, for a large table); then `NOT NULL` as above if it was asked for |
//! | `drop-column` | expand–contract: the drop moves to a last migration, with the note on when to deploy it |
//!
//! A statement is left as written, and said so, when moving its pieces would change what
//! the file means: an index or column that another statement of the file uses, a column
//! that is a key or an identity. Session settings (`SET search_path …`) are repeated in
//! every step.
//!
//! The original folder is left untouched. The new folders are named after it
//! (`<name>_01_expand`, `<name>_02_concurrent_index`, …) so they sort right after it, and
//! each holds a `rewrite.toml` naming the original: `up` and `deploy` refuse to run a
//! rewrite while its original folder is still there, so the two never both apply.

use pg_query::protobuf::{self, AlterTableCmd, AlterTableType, ConstrType};
use pg_query::NodeEnum;

use super::lint::{self, Statement};

mod folders;
mod names;

use super::plan::sql_name;
pub use folders::{original_of, write, MARKER};
use names::*;
pub use names::{not_null_check_name, object_name};

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
    /// A migration of its own: old rows of new columns given their values.
    backfill: Vec<String>,
    /// A later migration: validations, NOT NULL.
    later: Vec<String>,
    /// The last migration, deployed once no code uses what it drops.
    contract: Vec<String>,
    /// `SET …` statements, repeated at the top of every step.
    session: Vec<String>,
    changes: Vec<String>,
    /// Constraint names taken in this file, so generated ones do not collide.
    names: std::collections::HashSet<String>,
    /// Statements rewritten (not counting those left as written).
    rewritten: usize,
}

/// The safe rewrite of the migration `name` (its SQL `sql`), or `None` when no finding
/// has a mechanical rewrite.
pub fn rewrite(name: &str, sql: &str) -> Result<Option<Rewrite>, lint::SyntaxError> {
    let statements = lint::split(sql)?;
    let mut created = std::collections::HashSet::new();
    let mut p = Pieces::default();
    for st in &statements {
        for name in explicit_constraint_names(st.node.as_ref()) {
            p.names.insert(name);
        }
    }
    // whether a statement other than `me` names `word` (an index, a column, a table)
    let used_elsewhere = |me: usize, word: &str| {
        statements
            .iter()
            .enumerate()
            .any(|(i, other)| i != me && mentions(&other.text, word))
    };
    for (n, st) in statements.iter().enumerate() {
        let handled = match st.node.as_ref() {
            Some(NodeEnum::VariableSetStmt(_)) => {
                p.session.push(st.text.clone());
                false
            }
            Some(NodeEnum::IndexStmt(i))
                if !i.concurrent
                    && i.relation.as_ref().is_none_or(|rv| rv.inh)
                    && !i
                        .relation
                        .as_ref()
                        .is_some_and(|rv| created.contains(&rv.relname.to_lowercase())) =>
            {
                let table = i
                    .relation
                    .as_ref()
                    .map(|rv| rv.relname.clone())
                    .unwrap_or_default();
                let columns: Vec<&str> = i
                    .index_params
                    .iter()
                    .filter_map(|p| match p.node.as_ref() {
                        Some(NodeEnum::IndexElem(e)) if !e.name.is_empty() => Some(e.name.as_str()),
                        _ => None,
                    })
                    .collect();
                // the index used by another statement (`ADD CONSTRAINT … USING INDEX`), or
                // its columns by one on the same table (a foreign key that needs the key,
                // a rename or a drop that the later build would no longer find)
                let needed = (!i.idxname.is_empty() && used_elsewhere(n, &i.idxname))
                    || statements.iter().enumerate().any(|(k, o)| {
                        let upper = o.text.to_ascii_uppercase();
                        k != n
                            && mentions(&o.text, &table)
                            && columns.iter().any(|c| mentions(&o.text, c))
                            && ((i.unique && upper.contains("REFERENCES"))
                                || ["RENAME", "DROP", " TYPE "]
                                    .iter()
                                    .any(|w| upper.contains(w)))
                    });
                if needed {
                    p.changes.push(format!(
                        "{}:{} index-without-concurrently: left as written: another statement \
                         of this migration uses the index",
                        st.line, st.column
                    ));
                    false
                } else {
                    p.rewritten += 1;
                    p.concurrent.push(concurrently(&st.text));
                    p.changes.push(format!(
                        "{}:{} index-without-concurrently: CREATE INDEX CONCURRENTLY, in its own migration",
                        st.line, st.column
                    ));
                    true
                }
            }
            Some(NodeEnum::AlterTableStmt(a))
                if a.objtype() == protobuf::ObjectType::ObjectTable
                    && !a
                        .relation
                        .as_ref()
                        .is_some_and(|rv| created.contains(&rv.relname.to_lowercase())) =>
            {
                alter_table(st, a, &mut p, &|word| used_elsewhere(n, word))
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
    if p.rewritten == 0 {
        // every finding was left as written: nothing to write, only what was said
        return Ok(Some(Rewrite {
            original: name.to_string(),
            steps: Vec::new(),
            changes: p.changes,
        }));
    }
    let session = if p.session.is_empty() {
        String::new()
    } else {
        format!("{}\n\n", join(&p.session))
    };
    let header = |what: &str| {
        format!(
            "-- Rewritten from {name} by `dataforge migrate lint --fix`: {what}\n\
             -- Review it; then delete the original folder {name} (it must not run as well).\n"
        )
    };
    let mut steps = Vec::new();
    let mut push = |suffix: &str, body: String| {
        let n = steps.len() + 1;
        steps.push(Step {
            // two digits: ten steps and more still sort in order
            name: format!("{name}_{n:02}_{suffix}"),
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
                 retrying. Reads and writes go on. On a partitioned\n-- table PostgreSQL \
                 refuses CONCURRENTLY: build it on each partition, then ON ONLY the parent,\n\
                 -- and ATTACH the partitions' indexes.\n\n{session}{index};\n",
                header("the index, built without blocking writes.")
            ),
        );
    }
    if !p.backfill.is_empty() {
        push(
            "backfill",
            format!(
                "{}-- One UPDATE in one transaction: it locks the rows it changes (reads go on). \
                 For a large table run\n-- the `dataforge backfill` command below before \
                 deploying this: it updates in batches that\n-- each commit, and leaves this \
                 migration nothing to do.\n\n{session}{}\n",
                header("old rows given the new column's values."),
                join(&p.backfill)
            ),
        );
    }
    if !p.later.is_empty() {
        push(
            "validate",
            format!(
                "{}-- VALIDATE scans under SHARE UPDATE EXCLUSIVE: reads and writes go on.\n\n{session}{}\n",
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
                 approve it with `dataforge migrate approve`.\n\n{session}{}\n",
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
/// nothing was (the statement then stays as written). `used(word)`: whether another
/// statement of the file names `word`.
fn alter_table(
    st: &Statement,
    a: &protobuf::AlterTableStmt,
    p: &mut Pieces,
    used: &dyn Fn(&str) -> bool,
) -> bool {
    let Some(rv) = a.relation.as_ref() else {
        return false;
    };
    let parts: Vec<&str> = [rv.schemaname.as_str(), rv.relname.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    // what the statements written here act on: IF EXISTS and ONLY as the original has them
    let table = format!(
        "{}{}{}",
        if a.missing_ok { "IF EXISTS " } else { "" },
        if rv.inh { "" } else { "ONLY " },
        sql_name(&parts)
    );
    // each subcommand's own line:col, as lint gives it
    let places = st
        .node
        .as_ref()
        .map(|n| lint::subcommand_places(st, n))
        .unwrap_or_default();
    let place = |ci: usize| {
        let (line, column) = lint::place_in(st, places.get(ci).map_or(0, |p| p.0));
        format!("{line}:{column}")
    };
    let mut kept: Vec<protobuf::Node> = Vec::new();
    let mut extra_now: Vec<String> = Vec::new();
    let mut changed = false;
    for (ci, node) in a.cmds.iter().enumerate() {
        let Some(NodeEnum::AlterTableCmd(cmd)) = node.node.as_ref() else {
            kept.push(node.clone());
            continue;
        };
        let at = place(ci);
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
                    con.conname = constraint_name(&rv.relname, &con, &mut p.names);
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
                let check = unique_name(not_null_check_name(&rv.relname, &column), &mut p.names);
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
                let has = |kinds: &[ConstrType]| {
                    def.constraints.iter().any(|c| {
                        matches!(c.node.as_ref(), Some(NodeEnum::Constraint(c)) if kinds.contains(&c.contype()))
                    })
                };
                // a key or an identity must hold from the first row on: no split
                if !def.identity.is_empty()
                    || has(&[
                        ConstrType::ConstrPrimary,
                        ConstrType::ConstrUnique,
                        ConstrType::ConstrIdentity,
                        ConstrType::ConstrGenerated,
                    ])
                {
                    p.changes.push(format!(
                        "{at} volatile-default: {} left as written: a key or identity column \
                         cannot be added in steps",
                        def.colname
                    ));
                    kept.push(node.clone());
                    continue;
                }
                let not_null = def.is_not_null || has(&[ConstrType::ConstrNotnull]);
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
                p.backfill.push(format!(
                    "--   dataforge backfill --table {} --set {} --where {}\n\
                     UPDATE {} SET {col} = {default} WHERE {col} IS NULL",
                    shell_quote(&sql_name(&parts)),
                    shell_quote(&format!("{col} = {default}")),
                    shell_quote(&format!("{col} IS NULL")),
                    sql_name(&parts)
                ));
                if not_null {
                    // Added after the backfill, NOT VALID: every row already holds a value,
                    // and VALIDATE, a migration later, scans without blocking writes (in
                    // the same transaction as the ADD it would scan under ACCESS EXCLUSIVE).
                    let check =
                        unique_name(not_null_check_name(&rv.relname, &def.colname), &mut p.names);
                    let chk = sql_name(&[&check]);
                    p.backfill.push(format!(
                        "ALTER TABLE {table} ADD CONSTRAINT {chk} CHECK ({col} IS NOT NULL) NOT VALID"
                    ));
                    p.later.extend(not_null_steps(&table, &col, &chk));
                }
                p.changes.push(format!(
                    "{at} volatile-default: {} added without a default, default set for new rows, \
                     old rows backfilled in a migration of their own{}",
                    def.colname,
                    if not_null { ", then NOT NULL" } else { "" }
                ));
                changed = true;
            }
            AlterTableType::AtDropColumn
                if used(&cmd.name) || named_by_another_cmd(a, ci, &cmd.name) =>
            {
                p.changes.push(format!(
                    "{at} drop-column: {} left as written: another statement of this migration \
                     names it (a drop and re-add, say)",
                    cmd.name
                ));
                kept.push(node.clone());
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
    p.rewritten += 1;
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

/// Whether a subcommand of `a` other than the `me`-th names column `column` (Prisma's
/// `DROP COLUMN "role", ADD COLUMN "role" "Role"` for a type change).
fn named_by_another_cmd(a: &protobuf::AlterTableStmt, me: usize, column: &str) -> bool {
    a.cmds.iter().enumerate().any(|(j, n)| {
        j != me
            && match n.node.as_ref() {
                Some(NodeEnum::AlterTableCmd(c)) => {
                    c.name.eq_ignore_ascii_case(column)
                        || matches!(c.def.as_deref().and_then(|d| d.node.as_ref()),
                            Some(NodeEnum::ColumnDef(d)) if d.colname.eq_ignore_ascii_case(column))
                }
                _ => false,
            }
    })
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

#[cfg(test)]
mod tests;
