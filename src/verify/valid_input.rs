//! Restorability of a file output (`valid_input`): which anonymized columns have their
//! values checked as input for their type (decided once, from the config and the dump's
//! DDL, before the read), and the checks the read's findings make.

use std::collections::BTreeMap;

use super::report::{Check, Status};
use super::Finding;
use crate::anonymize::config::{Action, Config};
use crate::source::types::ColumnType;
use crate::source::Source;

/// The columns of a file output whose values are checked, and those that cannot be.
#[derive(Default)]
pub struct Typed {
    /// `(table, column)` → its type, for the anonymized columns with a rule.
    pub types: BTreeMap<(String, String), ColumnType>,
    pub checked: Vec<String>,
    /// With why: no rule for the type, or the type unknown.
    pub unchecked: Vec<String>,
}

/// What the read of `dst` checks: nothing for a database (its server took every value);
/// for a file, every anonymized column (`keep` values are the source's own, `null` writes
/// none).
pub fn plan(config: &Config, dst: &Source) -> Typed {
    let mut out = Typed::default();
    let Source::Dump(..) = dst else {
        return out;
    };
    for t in dst.tables() {
        let Some(tc) = config.tables.get(&t.name) else {
            continue;
        };
        if tc.action != Action::Anonymize {
            continue;
        }
        for (c, ty) in t.columns.iter().zip(&t.types) {
            let anonymized = tc
                .columns
                .get(c)
                .is_some_and(|cc| !matches!(cc.transformer.as_str(), "keep" | "null"));
            if !anonymized {
                continue;
            }
            match ty {
                None => out.unchecked.push(format!("{}.{c} (type unknown)", t.name)),
                Some(ty) if !crate::source::valid::checked(ty) => {
                    out.unchecked.push(format!("{}.{c} ({})", t.name, ty.sql));
                }
                Some(ty) => {
                    out.checked.push(format!("{}.{c} ({})", t.name, ty.sql));
                    out.types.insert((t.name.clone(), c.clone()), ty.clone());
                }
            }
        }
    }
    out
}

/// A failure per column holding values its type refuses, or one pass naming what was and
/// was not checked.
pub fn checks(typed: &Typed, invalid: &BTreeMap<(String, String), Finding>) -> Vec<Check> {
    let check = |status, table: &str, column: Option<&str>, measured: f64, detail| Check {
        status,
        check: "valid_input".into(),
        table: table.into(),
        column: column.map(str::to_string),
        measured: Some(measured),
        threshold: Some(0.0),
        detail,
        chart: None,
    };
    let mut out: Vec<Check> = invalid
        .iter()
        .map(|((table, column), f)| {
            check(
                Status::Fail,
                table,
                Some(column),
                f.count as f64,
                format!(
                    "{} value(s) the server would refuse on restore, e.g. {}; choose a \
                     transformer for the column's type (`dataforge anonymize transformers` \
                     lists what each accepts)",
                    f.count,
                    f.samples.join("; ")
                ),
            )
        })
        .collect();
    if invalid.is_empty() && typed.checked.is_empty() && !typed.unchecked.is_empty() {
        // a check that looked at nothing does not pass
        out.push(check(
            Status::Warn,
            "(anonymized columns)",
            None,
            0.0,
            format!(
                "no anonymized value could be checked against its type, so the file may not \
                 restore: {}",
                typed.unchecked.join(", ")
            ),
        ));
    } else if invalid.is_empty() && !typed.checked.is_empty() {
        out.push(check(
            Status::Pass,
            "(anonymized columns)",
            None,
            0.0,
            format!(
                "every value of {} anonymized column(s) is valid input for its type{}",
                typed.checked.len(),
                if typed.unchecked.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; not checked (no rule for the type): {}",
                        typed.unchecked.join(", ")
                    )
                }
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing checked is a warning, never a pass; something checked and clean passes.
    #[test]
    fn a_check_that_looked_at_nothing_does_not_pass() {
        let none = Typed {
            unchecked: vec!["public.t.c (type unknown)".into()],
            ..Typed::default()
        };
        let c = checks(&none, &BTreeMap::new());
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].status, Status::Warn);
        assert!(
            c[0].detail.contains("public.t.c (type unknown)"),
            "{}",
            c[0].detail
        );
        let some = Typed {
            checked: vec!["public.t.d (date)".into()],
            ..none
        };
        assert_eq!(checks(&some, &BTreeMap::new())[0].status, Status::Pass);
        assert!(checks(&Typed::default(), &BTreeMap::new()).is_empty());
    }
}
