//! The SQL inside `DO $$ … $$` blocks. Migrations often wrap DDL in a block to make it
//! conditional (`IF NOT EXISTS (…) THEN ALTER TABLE …`), which hides it from linters that
//! read only top-level statements. The block's body is parsed with PostgreSQL's own
//! PL/pgSQL parser (libpg_query's `parse_plpgsql`), and every SQL statement it runs, and
//! every `EXECUTE` of a constant string, is placed in the file and linted like the others.

use pg_query::NodeEnum;
use serde_json::Value;

use super::statements::{needs_tree, parse_node};
use super::Statement;

/// The statements a `DO` block runs (`st`, whose tree is `node`), each placed at its own
/// line and column in the file. Empty for anything else, for blocks in other languages,
/// and for bodies the PL/pgSQL parser rejects (the server would reject them too, and says
/// where).
pub fn inner_of(st: &Statement, node: Option<&NodeEnum>) -> Vec<Statement> {
    let Some(NodeEnum::DoStmt(d)) = node else {
        return Vec::new();
    };
    let mut body = None;
    for arg in &d.args {
        let Some(NodeEnum::DefElem(e)) = arg.node.as_ref() else {
            continue;
        };
        let value = match e.arg.as_deref().and_then(|a| a.node.as_ref()) {
            Some(NodeEnum::String(s)) => s.sval.as_str(),
            _ => continue,
        };
        match e.defname.as_str() {
            "as" => body = Some(value),
            "language" if !value.eq_ignore_ascii_case("plpgsql") => return Vec::new(),
            _ => {}
        }
    }
    let Some(body) = body else {
        return Vec::new();
    };
    let Ok(tree) = pg_query::parse_plpgsql(&st.text) else {
        return Vec::new();
    };
    // Where the body starts in the statement: exact for dollar quoting; a body written as
    // a '…' string with doubled quotes is not found verbatim, and its statements are then
    // placed at the DO itself.
    let body_at = st.text.find(body);
    let mut found = Vec::new();
    collect(&tree, &mut found);
    let mut out: Vec<Statement> = found
        .into_iter()
        .filter_map(|(lineno, sql)| {
            let at = body_at
                .and_then(|b| locate(body, lineno, &sql).map(|i| b + i))
                .unwrap_or(0);
            place(st, at, sql)
        })
        .collect();
    out.sort_by_key(|s| s.offset);
    out
}

/// `(line in the body, SQL)` for every statement the block runs, in tree order.
fn collect(v: &Value, out: &mut Vec<(usize, String)>) {
    match v {
        Value::Object(map) => {
            for (key, inner) in map {
                let lineno = || inner.get("lineno").and_then(Value::as_u64).unwrap_or(1) as usize;
                match key.as_str() {
                    "PLpgSQL_stmt_execsql" => {
                        if let Some(q) = expr_query(inner.get("sqlstmt")) {
                            out.push((lineno(), q.to_string()));
                        }
                    }
                    "PLpgSQL_stmt_dynexecute" => {
                        if let Some(s) = expr_query(inner.get("query")).and_then(constant_string) {
                            out.push((lineno(), s));
                        }
                    }
                    _ => {}
                }
                collect(inner, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
        _ => {}
    }
}

fn expr_query(v: Option<&Value>) -> Option<&str> {
    v?.get("PLpgSQL_expr")?.get("query")?.as_str()
}

/// The value of an `EXECUTE` argument that is one string constant (`'ALTER TABLE …'`);
/// anything built at run time cannot be read before it runs.
fn constant_string(expr: &str) -> Option<String> {
    use pg_query::protobuf::a_const::Val;
    let NodeEnum::SelectStmt(s) = parse_node(&format!("SELECT {expr}"))? else {
        return None;
    };
    let target = s.target_list.first()?;
    let Some(NodeEnum::ResTarget(t)) = target.node.as_ref() else {
        return None;
    };
    match t.val.as_deref()?.node.as_ref()? {
        NodeEnum::AConst(c) => match c.val.as_ref()? {
            Val::Sval(v) => Some(v.sval.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Byte offset of `sql` in `body`, searched from the start of its 1-based line `lineno`
/// (for an `EXECUTE '…'`, the statement sits inside the literal: its first word is
/// searched instead).
fn locate(body: &str, lineno: usize, sql: &str) -> Option<usize> {
    let line_start = if lineno <= 1 {
        0
    } else {
        memchr::memchr_iter(b'\n', body.as_bytes()).nth(lineno - 2)? + 1
    };
    let rest = &body[line_start..];
    let probe = sql.lines().next().unwrap_or(sql);
    rest.find(probe)
        .or_else(|| rest.find(sql.split_whitespace().next()?))
        .map(|i| line_start + i)
}

/// A statement found at byte `at` of the `DO` statement `st`.
fn place(st: &Statement, at: usize, sql: String) -> Option<Statement> {
    let text = sql.trim().trim_end_matches(';').trim_end().to_string();
    if text.is_empty() {
        return None;
    }
    let keyword = text
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    let before = &st.text[..at];
    let line = st.line + memchr::memchr_iter(b'\n', before.as_bytes()).count();
    let column = match before.rfind('\n') {
        Some(nl) => before[nl + 1..].chars().count() + 1,
        None => st.column + before.chars().count(),
    };
    let node = if needs_tree(&keyword, &text) {
        parse_node(&text)
    } else {
        None
    };
    Some(Statement {
        offset: st.offset + at,
        line,
        column,
        text,
        keyword,
        node,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::lint::split;

    fn inner(sql: &str) -> Vec<(usize, usize, String)> {
        split(sql)
            .unwrap()
            .iter()
            .flat_map(|st| inner_of(st, st.node.as_ref()))
            .map(|s| (s.line, s.column, s.text))
            .collect()
    }

    #[test]
    fn statements_in_nested_blocks_and_constant_executes_are_placed_in_the_file() {
        let sql = "SELECT 1;\n\
                   DO $$\n\
                   DECLARE r record;\n\
                   BEGIN\n\
                   \x20 IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mood') THEN\n\
                   \x20   CREATE TYPE mood AS ENUM ('a');\n\
                   \x20 END IF;\n\
                   \x20 EXECUTE 'ALTER TABLE users DROP COLUMN y';\n\
                   \x20 EXECUTE 'DROP TABLE ' || quote_ident('t');\n\
                   EXCEPTION WHEN duplicate_object THEN NULL;\n\
                   END $$;";
        assert_eq!(
            inner(sql),
            vec![
                (6, 5, "CREATE TYPE mood AS ENUM ('a')".to_string()),
                (8, 12, "ALTER TABLE users DROP COLUMN y".to_string()),
            ]
        );
    }

    #[test]
    fn other_languages_and_single_line_blocks() {
        assert_eq!(
            inner("DO $$ BEGIN DROP TABLE a; END $$;"),
            vec![(1, 13, "DROP TABLE a".to_string())]
        );
        assert_eq!(
            inner("DO LANGUAGE plperl $$ my $x = 1; $$;"),
            Vec::<(usize, usize, String)>::new()
        );
    }
}
