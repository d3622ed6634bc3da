//! The gate on destructive and locking changes: migrations are parsed with PostgreSQL's
//! own grammar (libpg_query, through the `pg_query` crate) and checked statement by
//! statement against [`rules::ALL`], one rule per file, each with a stable kebab-case name
//! documented in `docs/lint-rules.md`.
//!
//! Why libpg_query rather than a hand-written SQL grammar: it is the server's parser, so
//! every statement PostgreSQL accepts parses here too (`DO` blocks, `REINDEX`,
//! `ALTER TABLE … ATTACH PARTITION`, pg_dump output), and what it rejects is what the server
//! would reject.

mod do_block;
pub mod rules;
pub mod statements;

use std::collections::HashSet;
use std::fmt;

use pg_query::protobuf::RangeVar;
use pg_query::NodeEnum;
use serde::Serialize;

pub use statements::{line_col, split, Statement, SyntaxError};

/// How much a finding can hurt production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Worth knowing; nothing blocks.
    Low,
    /// Locks or scans a table that may be large: plan the deploy window.
    Medium,
    /// Loses data or breaks the running application: `up` and `deploy` refuse it unless
    /// the migration is approved.
    High,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule sees: one statement and what the file did before it.
pub struct Ctx<'a> {
    pub node: &'a NodeEnum,
    /// The statement as written (the tree holds names already cut to 63 bytes).
    pub text: &'a str,
    /// Tables created earlier in the same file (lowercase, schema-less): changes to them
    /// lock nobody out.
    pub created: &'a HashSet<String>,
    /// Whether the file set `lock_timeout` before this statement.
    pub lock_timeout_set: bool,
    /// Whether the whole file is one `BEGIN … COMMIT` of its own (which the runner keeps
    /// as one atomic transaction).
    pub wrapped: bool,
    /// Constraints validated earlier in the file, as `table.constraint` (lowercase,
    /// schema-less).
    pub validated: &'a HashSet<String>,
}

impl Ctx<'_> {
    /// Whether `rv` names a table this file created, so nothing else can be using it.
    pub fn is_new(&self, rv: Option<&RangeVar>) -> bool {
        rv.is_some_and(|rv| self.created.contains(&rv.relname.to_lowercase()))
    }
}

/// One lint rule: a stable name, a risk, what to do instead, examples, and the check.
pub struct Rule {
    /// Stable kebab-case name, used in approvals, `--json` and the docs.
    pub name: &'static str,
    pub risk: Risk,
    /// What to do instead.
    pub advice: &'static str,
    /// A migration this rule flags, and the safe way to write it (both are tests).
    pub bad: &'static str,
    pub good: &'static str,
    /// Returns one message per problem in the statement.
    pub check: fn(&Ctx<'_>) -> Vec<String>,
}

/// One problem found in a migration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub risk: Risk,
    /// 1-based line and column of the statement in the file.
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub advice: &'static str,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} [{}, {} risk]\n  fix: {}",
            self.line, self.column, self.message, self.rule, self.risk, self.advice
        )
    }
}

/// Statements whose trees are held at once by [`lint_sql`]: trees take several times the
/// memory of their text, and a window keeps a large file's peak near a small one's.
const WINDOW: usize = 64;

/// Lints one migration's SQL. A syntax error is returned with its line and column.
///
/// Trees are made a window of statements at a time by helper threads (one per core, each
/// taking every n-th window, a window or two ahead) while this thread lints the windows in
/// order and drops their trees: a large file's trees are never all held at once, and the
/// helpers live for the whole file (the parser keeps per-thread state that a thread per
/// window would pile up).
pub fn lint_sql(sql: &str) -> Result<Vec<Finding>, SyntaxError> {
    let statements = statements::split_plain(sql)?;
    let mut state = FileState::new(&statements);
    let mut out = Vec::new();
    let windows: Vec<&[Statement]> = statements.chunks(WINDOW).collect();
    let trees = |window: &[Statement]| -> Vec<Option<NodeEnum>> {
        window
            .iter()
            .map(|st| {
                statements::needs_tree(&st.keyword, &st.text)
                    .then(|| statements::parse_node(&st.text))
                    .flatten()
            })
            .collect()
    };
    let helpers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(windows.len());
    if helpers <= 1 {
        for window in &windows {
            for (st, node) in window.iter().zip(trees(window)) {
                state.lint_node(st, node.as_ref(), &mut out);
            }
        }
        return Ok(out);
    }
    let _stderr = statements::StderrKept::new();
    std::thread::scope(|scope| {
        let receivers: Vec<_> = (0..helpers)
            .map(|k| {
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                let windows = &windows;
                scope.spawn(move || {
                    for window in windows.iter().skip(k).step_by(helpers) {
                        if tx.send(trees(window)).is_err() {
                            return;
                        }
                    }
                });
                rx
            })
            .collect();
        for (i, window) in windows.iter().enumerate() {
            // a helper only ends early by panicking, which the scope passes on
            let Ok(nodes) = receivers[i % helpers].recv() else {
                break;
            };
            for (st, node) in window.iter().zip(nodes) {
                state.lint_node(st, node.as_ref(), &mut out);
            }
        }
    });
    Ok(out)
}

/// Lints statements already split by [`split`] (so `plan` parses a file once). The SQL
/// inside `DO` blocks is linted too, each finding placed at its statement in the block.
pub fn lint_statements(statements: &[Statement]) -> Vec<Finding> {
    let mut state = FileState::new(statements);
    let mut out = Vec::new();
    for st in statements {
        state.lint(st, &mut out);
    }
    out
}

/// What the rules know of the file so far.
struct FileState {
    created: HashSet<String>,
    validated: HashSet<String>,
    lock_timeout_set: bool,
    wrapped: bool,
}

impl FileState {
    fn new(statements: &[Statement]) -> Self {
        FileState {
            created: HashSet::new(),
            validated: HashSet::new(),
            lock_timeout_set: false,
            wrapped: matches!(
                crate::migrate::txcontrol::shape(statements),
                crate::migrate::txcontrol::Shape::Wrapped { .. }
            ),
        }
    }

    /// Lints `st`, and the statements of a DO block it is.
    fn lint(&mut self, st: &Statement, out: &mut Vec<Finding>) {
        self.lint_node(st, st.node.as_ref(), out);
    }

    /// [`Self::lint`] of `st` whose tree is `node`.
    fn lint_node(&mut self, st: &Statement, node: Option<&NodeEnum>, out: &mut Vec<Finding>) {
        lint_one(st, node, self, "", out);
        for inner in do_block::inner_of(st, node) {
            lint_one(
                &inner,
                inner.node.as_ref(),
                self,
                " (inside a DO block)",
                out,
            );
        }
    }
}

fn lint_one(
    st: &Statement,
    node: Option<&NodeEnum>,
    state: &mut FileState,
    suffix: &str,
    out: &mut Vec<Finding>,
) {
    let Some(node) = node else {
        return;
    };
    let ctx = Ctx {
        node,
        text: &st.text,
        created: &state.created,
        lock_timeout_set: state.lock_timeout_set,
        wrapped: state.wrapped,
        validated: &state.validated,
    };
    let mut timeout_named = false;
    let subcommands = subcommand_places(st, node);
    for rule in rules::ALL {
        let mut claimed = vec![false; subcommands.len()];
        for message in (rule.check)(&ctx) {
            // Once per file is enough to make the point.
            timeout_named |= rule.name == "missing-lock-timeout";
            let offset = subcommands
                .iter()
                .enumerate()
                .find(|(i, (_, name))| !claimed[*i] && names(&message, name))
                .map_or(0, |(i, (offset, _))| {
                    claimed[i] = true;
                    *offset
                });
            let (line, column) = place_in(st, offset);
            out.push(Finding {
                rule: rule.name,
                risk: rule.risk,
                line,
                column,
                message: message + suffix,
                advice: rule.advice,
            });
        }
    }
    state.lock_timeout_set |= timeout_named;
    match node {
        NodeEnum::CreateStmt(c) => {
            if let Some(rv) = &c.relation {
                state.created.insert(rv.relname.to_lowercase());
            }
        }
        NodeEnum::CreateTableAsStmt(c) => {
            if let Some(rv) = c.into.as_ref().and_then(|i| i.rel.as_ref()) {
                state.created.insert(rv.relname.to_lowercase());
            }
        }
        NodeEnum::VariableSetStmt(s) if s.name.eq_ignore_ascii_case("lock_timeout") => {
            state.lock_timeout_set = true;
        }
        NodeEnum::AlterTableStmt(a) => {
            let table = a.relation.as_ref().map(|rv| rv.relname.to_lowercase());
            for c in &a.cmds {
                if let (Some(NodeEnum::AlterTableCmd(cmd)), Some(table)) = (c.node.as_ref(), &table)
                {
                    if cmd.subtype() == pg_query::protobuf::AlterTableType::AtValidateConstraint {
                        state
                            .validated
                            .insert(format!("{table}.{}", cmd.name.to_lowercase()));
                    }
                }
            }
        }
        _ => {}
    }
}

/// Where each subcommand of an `ALTER TABLE` starts in the statement's text (bytes), with
/// the name it acts on (column, constraint); empty for other statements. A finding about
/// one subcommand is placed there rather than at the statement's start: Prisma writes
/// one subcommand per line.
pub(crate) fn subcommand_places(st: &Statement, node: &NodeEnum) -> Vec<(usize, String)> {
    let NodeEnum::AlterTableStmt(a) = node else {
        return Vec::new();
    };
    let Some(rv) = a.relation.as_ref() else {
        return Vec::new();
    };
    let Ok(tokens) = pg_query::scan_tokens(&st.text) else {
        return Vec::new();
    };
    let text = |t: &pg_query::protobuf::ScanToken| &st.text[t.start as usize..t.end as usize];
    // the first token after the table's (possibly qualified) name
    let Some(mut i) = tokens.iter().position(|t| t.start >= rv.location) else {
        return Vec::new();
    };
    while i + 2 < tokens.len() && text(&tokens[i + 1]) == "." {
        i += 2;
    }
    i += 1;
    let mut starts = Vec::new();
    if let Some(t) = tokens.get(i) {
        starts.push(t.start as usize);
    }
    let mut depth = 0i32;
    for (j, t) in tokens.iter().enumerate().skip(i) {
        match text(t) {
            "(" => depth += 1,
            ")" => depth -= 1,
            "," if depth == 0 => {
                if let Some(next) = tokens.get(j + 1) {
                    starts.push(next.start as usize);
                }
            }
            _ => {}
        }
    }
    if starts.len() != a.cmds.len() {
        return Vec::new(); // not understood: findings stay at the statement
    }
    a.cmds
        .iter()
        .zip(starts)
        .map(|(c, at)| {
            // Messages name a column as `table.column`, a constraint by its name alone.
            let name = match c.node.as_ref() {
                Some(NodeEnum::AlterTableCmd(cmd)) => {
                    use pg_query::protobuf::AlterTableType as T;
                    match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
                        Some(NodeEnum::ColumnDef(def)) => format!(".{}", def.colname),
                        Some(NodeEnum::Constraint(con)) if !con.conname.is_empty() => {
                            format!(" {}", con.conname)
                        }
                        _ if matches!(
                            cmd.subtype(),
                            T::AtDropConstraint | T::AtValidateConstraint
                        ) =>
                        {
                            format!(" {}", cmd.name)
                        }
                        _ if !cmd.name.is_empty() => format!(".{}", cmd.name),
                        _ => String::new(),
                    }
                }
                _ => String::new(),
            };
            (at, name)
        })
        .collect()
}

/// Whether `message` names `name` (`.column` or ` constraint`, as
/// [`subcommand_places`] gives it) as a whole word.
fn names(message: &str, name: &str) -> bool {
    name.len() > 1
        && message.match_indices(name).any(|(i, _)| {
            matches!(
                message[i + name.len()..].chars().next(),
                None | Some(' ' | ':' | ',' | ')' | '"')
            )
        })
}

/// Line and column of byte `offset` of `st`'s text in the file.
pub(crate) fn place_in(st: &Statement, offset: usize) -> (usize, usize) {
    let before = &st.text[..offset.min(st.text.len())];
    match before.rfind('\n') {
        Some(nl) => (
            st.line + before.matches('\n').count(),
            before[nl + 1..].chars().count() + 1,
        ),
        None => (st.line, st.column + before.chars().count()),
    }
}

/// The highest risk among findings (`None` when there are none).
pub fn overall_risk(findings: &[Finding]) -> Option<Risk> {
    findings.iter().map(|f| f.risk).max()
}

/// Findings that block `up` and `deploy` unless approved.
pub fn blocking(findings: &[Finding]) -> impl Iterator<Item = &Finding> {
    findings.iter().filter(|f| f.risk == Risk::High)
}

/// `schema.table` or `table`, as written.
pub fn table_name(rv: &RangeVar) -> String {
    if rv.schemaname.is_empty() {
        rv.relname.clone()
    } else {
        format!("{}.{}", rv.schemaname, rv.relname)
    }
}

/// The dotted name in a list of `String` nodes (`DROP TABLE a.b`, function names, …).
pub fn dotted(names: &[pg_query::Node]) -> String {
    strings(names).join(".")
}

/// The values of the `String` nodes in `nodes` (a name's parts, a column list).
pub fn strings(nodes: &[pg_query::Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match n.node.as_ref() {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

/// A type as written: `varchar(100)`, `numeric(10,2)`, `public.mood[]`.
pub fn type_text(t: &pg_query::protobuf::TypeName) -> String {
    use pg_query::protobuf::a_const::Val;
    let mut s = dotted(&t.names)
        .trim_start_matches("pg_catalog.")
        .to_string();
    let mods: Vec<String> = t
        .typmods
        .iter()
        .filter_map(|m| match m.node.as_ref() {
            Some(NodeEnum::AConst(c)) => match c.val.as_ref() {
                Some(Val::Ival(i)) => Some(i.ival.to_string()),
                Some(Val::Fval(f)) => Some(f.fval.clone()),
                Some(Val::Sval(v)) => Some(v.sval.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    if !mods.is_empty() {
        s.push_str(&format!("({})", mods.join(",")));
    }
    for _ in &t.array_bounds {
        s.push_str("[]");
    }
    s
}

/// The name of one object in a `DROP` list: a `List` of names or a single `String`.
pub fn object_name(node: &pg_query::Node) -> String {
    match node.node.as_ref() {
        Some(NodeEnum::List(l)) => dotted(&l.items),
        Some(NodeEnum::String(s)) => s.sval.clone(),
        Some(NodeEnum::TypeName(t)) => dotted(&t.names),
        _ => "?".into(),
    }
}

/// The names a `DROP` of one of `kinds` drops (functions by name, without arguments).
pub fn dropped_objects(ctx: &Ctx<'_>, kinds: &[pg_query::protobuf::ObjectType]) -> Vec<String> {
    match ctx.node {
        NodeEnum::DropStmt(d) if kinds.contains(&d.remove_type()) => d
            .objects
            .iter()
            .map(|o| match o.node.as_ref() {
                Some(NodeEnum::ObjectWithArgs(f)) => dotted(&f.objname),
                _ => object_name(o),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The old and new name of a `RENAME` of one of `kinds`.
pub fn renamed(
    ctx: &Ctx<'_>,
    kinds: &[pg_query::protobuf::ObjectType],
) -> Option<(String, String)> {
    let NodeEnum::RenameStmt(r) = ctx.node else {
        return None;
    };
    if !kinds.contains(&r.rename_type()) {
        return None;
    }
    let old = if !r.subname.is_empty() {
        r.subname.clone()
    } else if let Some(rv) = r.relation.as_ref() {
        table_name(rv)
    } else {
        r.object.as_deref().map(object_name).unwrap_or_default()
    };
    Some((old, r.newname.clone()))
}

/// The last part of a dotted name, lowercased: how `Ctx::created` keys tables.
pub fn base_name(dotted: &str) -> String {
    dotted.rsplit('.').next().unwrap_or(dotted).to_lowercase()
}

/// The columns an `ALTER TABLE … ADD COLUMN` adds to a table that existed before this
/// file (`None` for anything else, or for a table the file created).
pub fn added_columns<'a>(
    ctx: &Ctx<'a>,
) -> Option<(&'a RangeVar, Vec<&'a pg_query::protobuf::ColumnDef>)> {
    let (rv, cmds) = existing_table_cmds(ctx)?;
    let defs = cmds
        .into_iter()
        .filter(|c| c.subtype() == pg_query::protobuf::AlterTableType::AtAddColumn)
        .filter_map(|c| match c.def.as_deref().and_then(|d| d.node.as_ref()) {
            Some(NodeEnum::ColumnDef(def)) => Some(def.as_ref()),
            _ => None,
        })
        .collect();
    Some((rv, defs))
}

/// The subcommands of an ALTER TABLE on a table that existed before this file (`None`
/// for anything else: changes to a table the file created lock nobody out).
pub fn existing_table_cmds<'a>(
    ctx: &Ctx<'a>,
) -> Option<(&'a RangeVar, Vec<&'a pg_query::protobuf::AlterTableCmd>)> {
    let NodeEnum::AlterTableStmt(a) = ctx.node else {
        return None;
    };
    if ctx.is_new(a.relation.as_ref()) {
        return None;
    }
    if a.objtype() != pg_query::protobuf::ObjectType::ObjectTable {
        return None;
    }
    let rv = a.relation.as_ref()?;
    let cmds = a
        .cmds
        .iter()
        .filter_map(|c| match c.node.as_ref() {
            Some(NodeEnum::AlterTableCmd(cmd)) => Some(cmd.as_ref()),
            _ => None,
        })
        .collect();
    Some((rv, cmds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_flags_its_bad_example_and_passes_its_good_one() {
        for rule in rules::ALL {
            let bad = lint_sql(rule.bad).unwrap_or_else(|e| panic!("{}: bad: {e}", rule.name));
            assert!(
                bad.iter().any(|f| f.rule == rule.name),
                "{} does not flag its bad example: {bad:?}",
                rule.name
            );
            let good = lint_sql(rule.good).unwrap_or_else(|e| panic!("{}: good: {e}", rule.name));
            assert!(
                good.iter().all(|f| f.rule != rule.name),
                "{} flags its good example: {good:?}",
                rule.name
            );
        }
    }

    #[test]
    fn rule_names_are_unique_kebab_case() {
        let mut seen = HashSet::new();
        for rule in rules::ALL {
            assert!(seen.insert(rule.name), "{} twice", rule.name);
            assert!(
                rule.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-'),
                "{}",
                rule.name
            );
        }
    }

    #[test]
    fn tables_created_in_the_same_file_are_not_flagged() {
        let sql = "CREATE TABLE t (id int);\nCREATE INDEX t_id ON t (id);\n\
                   ALTER TABLE t ADD COLUMN c int NOT NULL;";
        assert_eq!(lint_sql(sql).unwrap(), vec![]);
    }

    #[test]
    fn windows_of_trees_lint_as_the_whole_file_does() {
        let mut sql = String::new();
        for i in 0..(WINDOW * 5 + 7) {
            sql.push_str(&format!(
                "CREATE INDEX i{i} ON users (c{i});\nINSERT INTO t VALUES ({i});\n\
                 DO $$ BEGIN ALTER TABLE users DROP COLUMN d{i}; END $$;\n"
            ));
        }
        let windowed = lint_sql(&sql).unwrap();
        assert_eq!(windowed, lint_statements(&split(&sql).unwrap()));
        assert_eq!(
            windowed.iter().filter(|f| f.rule == "drop-column").count(),
            WINDOW * 5 + 7
        );
    }

    #[test]
    fn findings_on_a_subcommand_point_at_it() {
        let sql = "ALTER TABLE \"public\".\"User\" ADD COLUMN \"bio\" TEXT,\n\
                   DROP COLUMN \"name\",\n\
                   ALTER COLUMN \"email\" SET NOT NULL;";
        let at: Vec<(&str, usize, usize)> = lint_sql(sql)
            .unwrap()
            .iter()
            .map(|f| (f.rule, f.line, f.column))
            .collect();
        assert_eq!(
            at,
            vec![
                ("drop-column", 2, 1),
                ("set-not-null", 3, 1),
                ("missing-lock-timeout", 1, 1)
            ]
        );
    }

    #[test]
    fn findings_carry_the_statement_position() {
        let f = lint_sql("SELECT 1;\n\n  DROP TABLE users;").unwrap();
        assert_eq!((f[0].rule, f[0].line, f[0].column), ("drop-table", 3, 3));
    }
}
