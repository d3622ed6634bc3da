//! Names the rewrite writes: constraint names as PostgreSQL chooses them, and the quoting
//! of identifiers and shell words.

use super::*;

/// The name PostgreSQL gives an unnamed constraint (ChooseConstraintName): a foreign
/// key `table_col1_col2_fkey`; a check `table_col_check` when its expression reads one
/// column, else `table_check`; the parts cut to fit 63 bytes, the label kept; a name taken
/// in this file gets a number after the label, as PostgreSQL does for names it finds
/// taken. (A name taken by a constraint the file does not show cannot be seen here: the
/// rewrite is for review.)
pub(super) fn constraint_name(
    table: &str,
    con: &protobuf::Constraint,
    taken: &mut std::collections::HashSet<String>,
) -> String {
    use lint::strings;
    let name = if con.contype() == ConstrType::ConstrForeign {
        object_name(table, Some(&strings(&con.fk_attrs).join("_")), "fkey")
    } else {
        let mut cols: Vec<String> = Vec::new();
        if let Some(expr) = con.raw_expr.as_deref().and_then(|e| e.node.as_ref()) {
            for (n, ..) in expr.nodes() {
                if let pg_query::NodeRef::ColumnRef(c) = n {
                    if let Some(last) = strings(&c.fields).pop() {
                        if !cols.contains(&last) {
                            cols.push(last);
                        }
                    }
                }
            }
        }
        match cols.as_slice() {
            [one] => object_name(table, Some(one), "check"),
            _ => object_name(table, None, "check"),
        }
    };
    unique_name(name, taken)
}

/// `name`, or with 1, 2 … after it until it is not in `taken`; recorded as taken.
pub(super) fn unique_name(name: String, taken: &mut std::collections::HashSet<String>) -> String {
    let mut candidate = name.clone();
    let mut pass = 0;
    while taken.contains(&candidate.to_lowercase()) {
        pass += 1;
        let suffix = pass.to_string();
        let mut base = name.clone();
        while base.len() + suffix.len() > 63 {
            base.pop();
        }
        candidate = format!("{base}{suffix}");
    }
    taken.insert(candidate.to_lowercase());
    candidate
}

/// The temporary check that proves `column` NOT NULL: `table_column_not_null`, as
/// [`object_name`] fits it. Lint's `set-not-null` knows this name.
pub fn not_null_check_name(table: &str, column: &str) -> String {
    object_name(table, Some(column), "not_null")
}

/// PostgreSQL's makeObjectName: `name1_name2_label` in at most 63 bytes, the longer of the
/// two names cut first (at a character boundary), the label kept whole.
pub fn object_name(name1: &str, name2: Option<&str>, label: &str) -> String {
    let overhead = label.len() + 1 + usize::from(name2.is_some());
    let avail = 63usize.saturating_sub(overhead);
    let (mut n1, mut n2) = (name1.len(), name2.map_or(0, str::len));
    while n1 + n2 > avail {
        if n1 > n2 {
            n1 -= 1;
        } else {
            n2 -= 1;
        }
    }
    let clip = |s: &str, mut n: usize| {
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        s[..n].to_string()
    };
    match name2 {
        Some(n) => format!("{}_{}_{label}", clip(name1, n1), clip(n, n2)),
        None => format!("{}_{label}", clip(name1, n1)),
    }
}

/// The constraint names a statement gives explicitly (lowercase).
pub(super) fn explicit_constraint_names(node: Option<&NodeEnum>) -> Vec<String> {
    let Some(node) = node else {
        return Vec::new();
    };
    node.nodes()
        .into_iter()
        .filter_map(|(n, ..)| match n {
            pg_query::NodeRef::Constraint(c) if !c.conname.is_empty() => {
                Some(c.conname.to_lowercase())
            }
            _ => None,
        })
        .collect()
}

/// Whether `text` names `word` as a whole identifier, quoted or not (case-insensitive).
pub(super) fn mentions(text: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let hay = text.to_lowercase();
    let word = word.to_lowercase();
    hay.match_indices(&word).any(|(i, _)| {
        let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
        !hay[..i].chars().next_back().is_some_and(ident)
            && !hay[i + word.len()..].chars().next().is_some_and(ident)
    })
}

/// `arg` as one POSIX shell word: in single quotes when it holds anything but plain
/// characters (a `'` inside written `'\''`).
pub(super) fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}
