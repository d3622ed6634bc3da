//! What a config must hold against the source before any row is read: every table and
//! column covered (fail closed, with a snippet to paste), every transformer able to write
//! its column's type, both sides of every foreign key mapped alike, and large objects
//! covered when the source holds any (issue 14). The
//! unique-key check needs the built transformers and lives with the plan.

use super::config::{Action, Config};
use super::init::{column_line, table_key, table_section};
use super::plan::PlanError;
use super::transformers;
use crate::source::catalog::ForeignKey;
use crate::source::SourceTable;

/// Stops the run, before any row is read, when a transformer is paired with a column it
/// cannot write valid values into (`hash` on `inet`, `lorem` on `xml`): each such column
/// is listed with its place in the config, its type and the transformers that fit it.
pub fn check_types(config: &Config, source: &[SourceTable]) -> Result<(), PlanError> {
    let mut problems = Vec::new();
    for st in source {
        let Some(tc) = config
            .tables
            .get(&st.name)
            .filter(|t| t.action == Action::Anonymize)
        else {
            continue;
        };
        for (i, col) in st.columns.iter().enumerate() {
            let (Some(cc), Some(Some(ty))) = (tc.columns.get(col), st.types.get(i)) else {
                continue;
            };
            let Some(spec) = transformers::find(&cc.transformer) else {
                continue;
            };
            if spec.accepts.takes(ty.kind) {
                continue;
            }
            let place = column_place(config, &st.name, col);
            problems.push(format!(
                "  {} {}.{col} is {} ({}{}): `{}` writes {}; for this column use {}",
                place.trim_end(),
                st.name,
                ty.sql,
                if ty.array { "an array of " } else { "" },
                ty.kind.describe(),
                spec.name,
                spec.accepts.describe(),
                transformers::writing(ty.kind).join(", ")
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(PlanError::Coverage(format!(
        "transformers are paired with columns they cannot write, so the output would not \
         load; nothing was read:\n{}\nEvery output must be valid for its column: \
         docs/transformers.md says what each transformer writes.",
        problems.join("\n")
    )))
}

/// How a column's values map, for comparing the two sides of a foreign key: equal
/// mappings keep equal values equal. `keep` is one mapping whatever its domain.
#[derive(Debug, PartialEq)]
enum Mapping<'a> {
    /// The table has no rows in the copy (truncated) or is not in it (skipped).
    NoRows(Action),
    Keep,
    /// Every value becomes NULL: a reference that is NULL points at nothing, and holds.
    Null,
    By {
        transformer: &'a str,
        domain: &'a str,
        options: &'a toml::Table,
    },
}

impl std::fmt::Display for Mapping<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mapping::NoRows(Action::Skip) => f.write_str("its table is skipped (not in the copy)"),
            Mapping::NoRows(_) => f.write_str("its table is truncated (no rows in the copy)"),
            Mapping::Keep => f.write_str("`keep`"),
            Mapping::Null => f.write_str("`null`"),
            Mapping::By {
                transformer,
                domain,
                options,
            } => {
                write!(f, "`{transformer}` (domain `{domain}`")?;
                if !options.is_empty() {
                    let opts: Vec<String> =
                        options.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    write!(f, ", {}", opts.join(", "))?;
                }
                f.write_str(")")
            }
        }
    }
}

fn mapping<'a>(config: &'a Config, table: &str, column: &str) -> Option<Mapping<'a>> {
    let tc = config.tables.get(table)?;
    if tc.action != Action::Anonymize {
        return Some(Mapping::NoRows(tc.action));
    }
    let cc = tc.columns.get(column)?;
    Some(match cc.transformer.as_str() {
        "keep" => Mapping::Keep,
        "null" => Mapping::Null,
        t => Mapping::By {
            transformer: t,
            domain: &cc.domain,
            options: &cc.options,
        },
    })
}

/// Stops the run, before any row is read, when the copy could not keep a foreign key of
/// the source: the referencing and the referenced column must map alike (the same
/// transformer, domain and options; `null` on the referencing side always holds), and a
/// table with rows may not reference one that has none in the copy (issue 14).
pub fn check_foreign(config: &Config, keys: &[ForeignKey]) -> Result<(), PlanError> {
    let mut problems = Vec::new();
    for k in keys {
        for (col, pcol) in k.columns.iter().zip(&k.parent_columns) {
            let (Some(child), Some(parent)) = (
                mapping(config, &k.table, col),
                mapping(config, &k.parent, pcol),
            ) else {
                continue;
            };
            let holds = match (&child, &parent) {
                // a skipped table takes its keys with it
                (Mapping::NoRows(Action::Skip), _) => true,
                // a key to a table not in the copy cannot be made, whatever the rows
                (_, Mapping::NoRows(Action::Skip)) => false,
                (Mapping::NoRows(_) | Mapping::Null, _) => true,
                (_, Mapping::NoRows(_)) => false,
                (c, p) => c == p,
            };
            if holds {
                continue;
            }
            let place = column_place(config, &k.table, col);
            problems.push(format!(
                "  {} {}.{col} references {}.{pcol} (foreign key {}): {child} on this side, \
                 {parent} on the referenced side",
                place.trim_end(),
                k.table,
                k.parent,
                k.name
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(PlanError::Coverage(format!(
        "foreign keys of the source could not hold in the copy, so nothing was read:\n{}\n\
         Give both columns of each the same transformer, options and domain (for instance \
         `{{ transformer = \"email\", domain = \"customer-email\" }}` on each), make the \
         referencing column `null`, or truncate the referencing table too (skip it too, when \
         the referenced table is skipped). `anonymize init` \
         writes such pairs alike.",
        problems.join("\n")
    )))
}

/// Where `table.column` is in the config, as `file:line:col:` (empty when it is not).
pub(super) fn column_place(config: &Config, table: &str, column: &str) -> String {
    config
        .tables
        .get(table)
        .and_then(|tc| tc.columns.get(column))
        .map(|cc| config.err(cc.span.clone(), "").to_string())
        .unwrap_or_default()
}

/// The fail-closed check: the full list of what is missing and what is stale, with a
/// snippet to paste.
pub fn check_coverage(config: &Config, source: &[SourceTable]) -> Result<(), PlanError> {
    let mut missing_tables = Vec::new();
    let mut missing_columns: Vec<(&SourceTable, Vec<usize>)> = Vec::new();
    let mut stale = Vec::new();
    for st in source {
        match config.tables.get(&st.name) {
            None => missing_tables.push(st),
            Some(tc) if tc.action == Action::Anonymize => {
                let missing: Vec<usize> = (0..st.columns.len())
                    .filter(|&i| !tc.columns.contains_key(&st.columns[i]))
                    .collect();
                if !missing.is_empty() {
                    missing_columns.push((st, missing));
                }
                for (col, cc) in &tc.columns {
                    if !st.columns.contains(col) {
                        stale.push((
                            config.err(cc.span.clone(), "").to_string(),
                            format!("{}.{col}", st.name),
                        ));
                    }
                }
            }
            Some(_) => {}
        }
    }
    for (name, tc) in &config.tables {
        if !source.iter().any(|s| &s.name == name) {
            stale.push((
                config.err(tc.span.clone(), "").to_string(),
                format!("{name} (the whole table)"),
            ));
        }
    }
    if missing_tables.is_empty() && missing_columns.is_empty() && stale.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "{} does not match the source; nothing was read.\n",
        config.file
    );
    let listed: Vec<String> = missing_tables
        .iter()
        .map(|t| format!("{} (a whole table)", t.name))
        .chain(missing_columns.iter().flat_map(|(t, cols)| {
            cols.iter()
                .map(move |&i| format!("{}.{}", t.name, t.columns[i]))
        }))
        .collect();
    if !listed.is_empty() {
        msg.push_str(&format!(
            "Not in the config (an unmentioned column is never copied as it is):\n  {}\n",
            listed.join("\n  ")
        ));
    }
    if !stale.is_empty() {
        msg.push_str("In the config but not in the source (remove them, or check the source):\n");
        for (place, what) in &stale {
            msg.push_str(&format!("  {} {what}\n", place.trim_end()));
        }
    }
    if !listed.is_empty() {
        msg.push_str("\nAdd this to the config, after reviewing each suggestion:\n");
        for (t, cols) in &missing_columns {
            msg.push_str(&format!("\n# under [tables.{}]:\n", table_key(&t.name)));
            for &i in cols {
                msg.push_str(&column_line(t, i));
            }
        }
        for t in &missing_tables {
            msg.push_str(&table_section(t, &[]));
        }
    }
    Err(PlanError::Coverage(msg.trim_end().to_string()))
}

/// Stops the run, before any row is read, when the source holds large objects and the
/// config does not say what to do with them: like an unmentioned column, they would
/// otherwise pass on (or vanish) unasked. `first` names one, for the message.
pub fn check_large_objects(config: &Config, count: u64, first: &str) -> Result<(), PlanError> {
    if count == 0 || config.large_objects.is_some() {
        return Ok(());
    }
    Err(PlanError::Coverage(format!(
        "the source holds {count} large object{} ({first}), and {} does not say what to do \
         with them; nothing was read. Large objects are whole files (scans, vCards, photos) \
         that no column transformer sees. Add one of:\n\n\
         [large_objects]\n\
         action = \"empty\"   # each object kept, with no content: every oid still resolves\n\
         # action = \"drop\"   # none in the copy\n\
         # action = \"keep\"   # copied as they are, with reason = \"…\" (no personal data in them)",
        if count == 1 { "" } else { "s" },
        config.file
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::config::Config;
    use crate::anonymize::types::ColumnType;

    /// The snippet a fail-closed stop prints suggests what the column's type can take,
    /// as init does: not `hash` for an inet column named like an IP address (issue 14).
    /// A source with large objects and a config without [large_objects] stops, saying
    /// how many, which, and what to add; with the section, or with none to cover, it goes on.
    #[test]
    fn large_objects_are_covered_or_the_run_stops() {
        let bare = Config::parse("[tables.t]\ncolumns.id = \"keep\"\n", "anonymize.toml").unwrap();
        let e = check_large_objects(&bare, 2, "OID 424242, dump.sql:310")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the source holds 2 large objects (OID 424242, dump.sql:310)"),
            "{e}"
        );
        assert!(e.contains("anonymize.toml does not say what to do"), "{e}");
        assert!(e.contains("nothing was read"), "{e}");
        assert!(e.contains("[large_objects]\naction = \"empty\""), "{e}");
        assert!(check_large_objects(&bare, 0, "").is_ok());
        let covered =
            Config::parse("[large_objects]\naction = \"drop\"\n", "anonymize.toml").unwrap();
        assert!(check_large_objects(&covered, 2, "").is_ok());
        // keep needs a reason; an unknown action is named at its place
        let e = Config::parse("[large_objects]\naction = \"keep\"\n", "a.toml").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("a.toml:2:10: [large_objects] action = \"keep\""),
            "{e}"
        );
        let e = Config::parse("[large_objects]\naction = \"wipe\"\n", "a.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.toml:2:10: unknown large-object action `wipe`; use empty, drop or keep"
        );
        assert!(Config::parse(
            "[large_objects]\naction = \"keep\"\nreason = \"product photos\"\n",
            "a.toml"
        )
        .is_ok());
    }

    /// A table kept, truncated or with its column cleared that refers to a skipped one
    /// stops the run before any row is read: the key could not be made in the copy.
    #[test]
    fn a_key_to_a_skipped_table_stops_the_run() {
        let fk = ForeignKey {
            table: "public.orders".into(),
            name: "orders_customer_fkey".into(),
            columns: vec!["customer".into()],
            parent: "public.customers".into(),
            parent_columns: vec!["id".into()],
        };
        for orders in [
            "action = \"truncate\"",
            "columns.customer = \"null\"",
            "columns.customer = \"keep\"",
        ] {
            let config = Config::parse(
                &format!("[tables.customers]\naction = \"skip\"\n[tables.orders]\n{orders}\n"),
                "anonymize.toml",
            )
            .unwrap();
            let e = check_foreign(&config, std::slice::from_ref(&fk))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("public.orders.customer references public.customers.id (foreign key orders_customer_fkey): ")
                    && e.contains("its table is skipped (not in the copy) on the referenced side"),
                "{orders}: {e}"
            );
        }
        let both = Config::parse(
            "[tables.customers]\naction = \"skip\"\n[tables.orders]\naction = \"skip\"\n",
            "anonymize.toml",
        )
        .unwrap();
        assert!(check_foreign(&both, &[fk]).is_ok());
    }

    #[test]
    fn the_coverage_snippet_fits_suggestions_to_types() {
        let config =
            Config::parse("[tables.t]\ncolumns.id = \"keep\"\n", "anonymize.toml").unwrap();
        let inet = ColumnType::from_catalog("inet".into(), "inet", -1, false, false);
        let money = ColumnType::from_catalog("money".into(), "money", -1, false, false);
        let source = [SourceTable {
            name: "public.t".into(),
            columns: vec!["id".into(), "last_ip".into(), "token".into()],
            types: vec![None, Some(inet), Some(money)],
        }];
        let e = check_coverage(&config, &source).unwrap_err().to_string();
        assert!(e.contains("columns.last_ip = \"ip-address\""), "{e}");
        assert!(e.contains("columns.token = \"null\""), "{e}");
        assert!(e.contains("`hash` cannot write money"), "{e}");
    }
}
