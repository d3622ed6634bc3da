//! Writing a config: the `[tables.…]` sections `anonymize init` prints and the snippet a
//! fail-closed stop pastes, from each column's suggestion ([`super::suggest`]) fitted to
//! its type, both sides of every foreign key written alike, under table keys that read
//! back as the same tables.

use std::collections::BTreeMap;

use super::suggest::{suggest, Suggestion};
use super::transformers;
use super::types::ColumnType;
use crate::source::catalog::{ForeignKey, UniqueKey};
use crate::source::SourceTable;

/// The `[tables.…]` key that reads back (through [`qualified`](super::config::qualified))
/// as the table `name` (`schema.table`): a part holding `.` or `"` is quoted as SQL quotes
/// it, so `public."a.b"` and `a.b` stay two tables and `we"ird` stays `we"ird`.
pub fn table_key(name: &str) -> String {
    let (schema, table) = name.split_once('.').unwrap_or(("public", name));
    let part = |p: &str| {
        if p.contains(['.', '"']) {
            format!("\"{}\"", p.replace('"', "\"\""))
        } else {
            p.to_string()
        }
    };
    toml_key(&if schema == "public" {
        part(table)
    } else {
        format!("{}.{}", part(schema), part(table))
    })
}

/// A TOML key, quoted when it needs to be.
pub fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        format!("\"{}\"", k.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// `columns.x = "…"   # why`, for column `i` of `t` (the fail-closed snippet).
pub(super) fn column_line(t: &SourceTable, i: usize) -> String {
    line(&t.columns[i], &suggestion(t, i, &[]))
}

fn line(column: &str, s: &Suggestion) -> String {
    format!(
        "columns.{} = {}   # {}\n",
        toml_key(column),
        s.toml,
        s.reason
    )
}

/// A whole `[tables.x]` section for `t`; `samples[i]` are sampled values of column i.
pub fn table_section(t: &SourceTable, samples: &[Vec<String>]) -> String {
    section(t, &suggestions(t, samples))
}

/// A suggestion for every column of `t`; `samples[i]` are sampled values of column i.
pub fn suggestions(t: &SourceTable, samples: &[Vec<String>]) -> Vec<Suggestion> {
    (0..t.columns.len())
        .map(|i| {
            let sample: Vec<&str> = samples
                .get(i)
                .map(|v| v.iter().map(String::as_str).collect())
                .unwrap_or_default();
            suggestion(t, i, &sample)
        })
        .collect()
}

/// The suggestion for column `i` of `t`, from its name, type and samples, and one its
/// type can take.
fn suggestion(t: &SourceTable, i: usize, samples: &[&str]) -> Suggestion {
    let ty = t.types.get(i).and_then(Option::as_ref);
    if let Some(s) = ty.and_then(by_type) {
        return s;
    }
    let s = suggest(&t.columns[i], ty.map(|t| t.sql.as_str()), samples);
    match ty {
        Some(ty) => fit_suggestion(s, ty),
        None => s,
    }
}

/// Types whose every value identifies a device, and through it a person, whatever the
/// column is called: a keyed permutation of the same type.
fn by_type(ty: &ColumnType) -> Option<Suggestion> {
    let (transformer, what) = match ty.kind {
        super::types::Kind::Inet => ("ip-address", "an IP address"),
        super::types::Kind::Macaddr => ("mac-address", "a MAC address"),
        _ => return None,
    };
    Some(Suggestion {
        toml: format!("\"{transformer}\""),
        reason: format!(
            "the column's type is {}: {what} identifies a device, and through it a person",
            ty.sql
        ),
    })
}

/// A suggestion the column's type can take: one whose transformer cannot write the type
/// becomes `null`, saying why (issue 14: init never suggests an incompatible pair).
fn fit_suggestion(s: Suggestion, ty: &ColumnType) -> Suggestion {
    let Some(spec) = parsed(&s).and_then(|(name, _)| transformers::find(&name)) else {
        return s;
    };
    if spec.accepts.takes(ty.kind) {
        return s;
    }
    Suggestion {
        toml: "\"null\"".into(),
        reason: format!(
            "{}, but `{}` cannot write {} ({}); null clears it (on a NOT NULL column use \
             {{ transformer = \"constant\", value = \"…\" }} with a valid {})",
            s.reason,
            spec.name,
            ty.sql,
            ty.kind.describe(),
            ty.kind.describe()
        ),
    }
}

/// A `[tables.x]` section writing `suggestions[i]` for column i.
pub fn section(t: &SourceTable, suggestions: &[Suggestion]) -> String {
    let mut s = format!("\n[tables.{}]\n", table_key(&t.name));
    for (c, sg) in t.columns.iter().zip(suggestions) {
        s.push_str(&line(c, sg));
    }
    s
}

/// The transformer a suggestion names and its options.
fn parsed(s: &Suggestion) -> Option<(String, toml::Table)> {
    match toml::from_str::<toml::Table>(&format!("x = {}", s.toml))
        .ok()?
        .remove("x")?
    {
        toml::Value::String(n) => Some((n, toml::Table::new())),
        toml::Value::Table(mut t) => match t.remove("transformer")? {
            toml::Value::String(n) => Some((n, t)),
            _ => None,
        },
        _ => None,
    }
}

/// Gives every column under a unique key (an expression index's columns included) a
/// suggestion that keeps distinct values distinct within the column's length, as the
/// run's own guard ([`super::plan::check_unique`]) will ask: one that could merge two
/// rows becomes a keyed `hash` that fits. Asked of the transformer itself, built with a
/// throwaway key.
pub fn fit_unique_keys(
    suggested: &mut BTreeMap<String, Vec<Suggestion>>,
    tables: &[SourceTable],
    keys: &[UniqueKey],
) {
    let key = super::key::Key::from_secret(b"init: does it keep values distinct?");
    for k in keys {
        let Some(t) = tables.iter().find(|t| t.name == k.table) else {
            continue;
        };
        for col in &k.columns {
            let Some(i) = t.columns.iter().position(|c| c == col) else {
                continue;
            };
            let ty = t.types.get(i).and_then(Option::as_ref);
            let limit = ty.and_then(|ty| ty.max_chars);
            let Some(s) = suggested.get_mut(&t.name).and_then(|s| s.get_mut(i)) else {
                continue;
            };
            let Some((name, options)) = parsed(s) else {
                continue;
            };
            let b = transformers::Build {
                key: &key,
                domain: name.clone(),
                columns: &t.columns,
                column: col,
                reals: None,
                ty,
            };
            let Ok(tr) = transformers::build(&name, options, &b) else {
                continue;
            };
            let fits = |m: Option<usize>| limit.is_none_or(|n| m.is_some_and(|m| m <= n));
            // `keep` writes the source's own values: distinct, and of the column's length
            if tr.is_keep() || (tr.keeps_distinct() && fits(tr.max_chars())) {
                continue;
            }
            if ty.is_some_and(|ty| ty.kind != super::types::Kind::Text) {
                continue;
            }
            let hash = match limit {
                None | Some(16..) => Some("\"hash\"".to_string()),
                Some(13..=15) => Some(
                    "{ transformer = \"hash\", encoding = \"base32\", length = 13 }".to_string(),
                ),
                Some(_) => None,
            };
            *s = match hash {
                Some(toml) => Suggestion {
                    toml,
                    reason: format!(
                        "{}; but `{name}` could give two rows one value under unique key {}, \
                         and a keyed hash keeps them distinct",
                        s.reason, k.name
                    ),
                },
                None => Suggestion {
                    toml: s.toml.clone(),
                    reason: format!(
                        "{}; REVIEW: under unique key {} `{name}` could give two rows one value, \
                         and {} characters are too few for a keyed hash to keep them distinct",
                        s.reason,
                        k.name,
                        limit.unwrap_or(0)
                    ),
                },
            };
        }
    }
}

/// The columns init could not decide (a name-only guess, a unique key too short for a
/// keyed hash), as a comment block for the end of the config, or empty when there are
/// none: what to look at first.
pub fn undecided(suggested: &BTreeMap<String, Vec<Suggestion>>, tables: &[SourceTable]) -> String {
    let mut lines = Vec::new();
    for t in tables {
        for (c, s) in t
            .columns
            .iter()
            .zip(suggested.get(&t.name).into_iter().flatten())
        {
            if s.reason.ends_with(super::suggest::NAME_ONLY) || s.reason.contains("REVIEW:") {
                lines.push(format!("#   {}.{c} = {}: {}\n", t.name, s.toml, s.reason));
            }
        }
    }
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "\n# {} column{} init could not decide from names and values; check these first:\n{}",
        lines.len(),
        if lines.len() == 1 { "" } else { "s" },
        lines.concat()
    )
}

/// Transformers whose suggestion makes a table a person table.
const PERSONAL: [&str; 13] = [
    "date-shift",
    "lorem",
    "hash",
    "email",
    "phone",
    "first-name",
    "last-name",
    "full-name",
    "street",
    "postal-code",
    "iban",
    "card-number",
    "national-id",
];

/// A text-search vector in a table of people is made from their text (names, notes),
/// whatever its sampled lexemes showed: `lorem` replaces the lexemes and keeps positions
/// and weights.
pub fn rewrite_person_vectors(
    suggested: &mut BTreeMap<String, Vec<Suggestion>>,
    tables: &[SourceTable],
) {
    for t in tables {
        let Some(cols) = suggested.get(&t.name) else {
            continue;
        };
        let person = cols
            .iter()
            .any(|s| parsed(s).is_some_and(|(n, _)| PERSONAL.contains(&n.as_str())));
        if !person {
            continue;
        }
        let vectors: Vec<usize> = (0..t.columns.len())
            .filter(|&i| {
                t.types
                    .get(i)
                    .and_then(Option::as_ref)
                    .is_some_and(|ty| ty.kind == super::types::Kind::Tsvector)
                    && cols.get(i).is_some_and(|s| s.toml == "\"keep\"")
            })
            .collect();
        for i in vectors {
            if let Some(s) = suggested.get_mut(&t.name).and_then(|c| c.get_mut(i)) {
                *s = Suggestion {
                    toml: "\"lorem\"".into(),
                    reason: "a text-search vector in a table of people is made of their text; \
                             lorem replaces the lexemes and keeps positions and weights"
                        .into(),
                };
            }
        }
    }
}

/// A column called `name` in a catalogue is not a person's: a table none of whose other
/// columns is personal and that no foreign key links to a person table (a `language`
/// table's `English` and `Italian`, a `category` or a `genre`) keeps the names that only
/// the column's name suggested anonymizing. Tables linked to people keep the suggestion.
pub fn keep_catalogue_names(
    suggested: &mut BTreeMap<String, Vec<Suggestion>>,
    keys: &[ForeignKey],
) {
    let transformer = |s: &Suggestion| parsed(s).map(|(n, _)| n).unwrap_or_default();
    let weak = |s: &Suggestion| s.reason.ends_with(super::suggest::NAME_ONLY);
    let person = |table: &str| {
        suggested.get(table).is_some_and(|cols| {
            cols.iter()
                .any(|s| !weak(s) && PERSONAL.contains(&transformer(s).as_str()))
        })
    };
    let catalogues: Vec<String> = suggested
        .keys()
        .filter(|t| !person(t))
        .filter(|t| {
            !keys.iter().any(|k| {
                (&k.table == *t && person(&k.parent)) || (&k.parent == *t && person(&k.table))
            })
        })
        .cloned()
        .collect();
    for t in catalogues {
        for s in suggested.get_mut(&t).into_iter().flatten() {
            if weak(s) {
                *s = Suggestion {
                    toml: "\"keep\"".into(),
                    reason: "REVIEW: kept as a catalogue's names, as no other column of the table \
                             is personal and no foreign key links it to a table of people; some \
                             sampled values may be people's names"
                        .into(),
                };
            }
        }
    }
}

/// Gives the referencing column of every foreign key the referenced column's suggestion
/// (through chains of keys), so the config `init` writes keeps every reference.
pub fn align_foreign_keys(
    suggested: &mut BTreeMap<String, Vec<Suggestion>>,
    tables: &[SourceTable],
    keys: &[ForeignKey],
) {
    let index = |table: &str, col: &str| {
        let t = tables.iter().find(|t| t.name == table)?;
        Some((t.name.clone(), t.columns.iter().position(|c| c == col)?))
    };
    // a chain of n keys settles in n rounds; cycles settle in one more
    for _ in 0..=keys.len().min(64) {
        let mut changed = false;
        for k in keys {
            for (col, pcol) in k.columns.iter().zip(&k.parent_columns) {
                let (Some((ct, ci)), Some((pt, pi))) =
                    (index(&k.table, col), index(&k.parent, pcol))
                else {
                    continue;
                };
                let Some(parent) = suggested
                    .get(&pt)
                    .and_then(|s| s.get(pi))
                    .map(|s| s.toml.clone())
                else {
                    continue;
                };
                if let Some(child) = suggested.get_mut(&ct).and_then(|s| s.get_mut(ci)) {
                    if child.toml != parent {
                        child.toml = parent;
                        child.reason = format!(
                            "references {}.{pcol} (foreign key {}): mapped alike so the reference holds",
                            k.parent, k.name
                        );
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    /// A tsvector kept in a table of people becomes lorem; one in a catalogue stays.
    #[test]
    fn text_search_vectors_of_people_are_rewritten() {
        use super::{BTreeMap, ColumnType, SourceTable, Suggestion};
        let tsvector = || {
            Some(ColumnType::from_catalog(
                "tsvector".into(),
                "tsvector",
                -1,
                false,
                false,
            ))
        };
        let table = |name: &str| SourceTable {
            name: name.into(),
            columns: vec!["name".into(), "search".into()],
            types: vec![None, tsvector()],
        };
        let s = |toml: &str| Suggestion {
            toml: toml.into(),
            reason: "by name".into(),
        };
        let tables = [table("public.users"), table("public.genres")];
        let mut suggested = BTreeMap::from([
            (
                "public.users".to_string(),
                vec![s("\"first-name\""), s("\"keep\"")],
            ),
            (
                "public.genres".to_string(),
                vec![s("\"keep\""), s("\"keep\"")],
            ),
        ]);
        super::rewrite_person_vectors(&mut suggested, &tables);
        assert_eq!(suggested["public.users"][1].toml, "\"lorem\"");
        assert_eq!(suggested["public.genres"][1].toml, "\"keep\"");
    }

    /// Under a unique key, a suggestion that could merge rows becomes a keyed hash that
    /// fits the column; one that keeps values distinct stays (the run's guard would
    /// otherwise refuse init's own config).
    #[test]
    fn unique_keys_get_suggestions_that_keep_values_distinct() {
        use super::{BTreeMap, ColumnType, SourceTable, Suggestion, UniqueKey};
        let varchar = |n: i32| {
            Some(ColumnType::from_catalog(
                format!("varchar({n})"),
                "varchar",
                n + 4,
                false,
                false,
            ))
        };
        let t = SourceTable {
            name: "public.people".into(),
            columns: vec![
                "username".into(),
                "code".into(),
                "pin".into(),
                "email".into(),
                "nickname".into(),
                "handle".into(),
            ],
            types: vec![
                varchar(64),
                varchar(14),
                varchar(6),
                varchar(200),
                varchar(12),
                varchar(12),
            ],
        };
        let s = |toml: &str| Suggestion {
            toml: toml.into(),
            reason: "by name".into(),
        };
        let mut suggested = BTreeMap::from([(
            t.name.clone(),
            vec![
                s("\"full-name\""),
                s("\"full-name\""),
                s("\"full-name\""),
                s("\"email\""),
                s("\"null\""),
                s("\"keep\""),
            ],
        )]);
        let keys: Vec<UniqueKey> = t
            .columns
            .iter()
            .map(|c| UniqueKey {
                table: t.name.clone(),
                name: format!("people_{c}_key"),
                columns: vec![c.clone()],
            })
            .collect();
        super::fit_unique_keys(&mut suggested, std::slice::from_ref(&t), &keys);
        let got: Vec<&str> = suggested[&t.name].iter().map(|s| s.toml.as_str()).collect();
        assert_eq!(
            got,
            [
                "\"hash\"",
                "{ transformer = \"hash\", encoding = \"base32\", length = 13 }",
                "\"full-name\"",
                "\"email\"",
                "\"null\"",
                "\"keep\""
            ]
        );
        // NULLs never collide; kept values are the source's own, distinct and short enough
        assert_eq!(suggested[&t.name][4].reason, "by name");
        assert_eq!(suggested[&t.name][5].reason, "by name");
        assert!(
            suggested[&t.name][0].reason.ends_with(
                "but `full-name` could give two rows one value under unique key people_username_key, and a keyed hash keeps them distinct"
            ),
            "{}",
            suggested[&t.name][0].reason
        );
        assert!(suggested[&t.name][2]
            .reason
            .contains("REVIEW: under unique key people_pin_key"));
    }

    /// `language.name` ("English") stays as it is: nothing links the table to people; a
    /// `team` table people refer to keeps the suggestion, as does a table of people.
    #[test]
    fn catalogue_names_are_kept_unless_linked_to_people() {
        use super::{BTreeMap, ForeignKey, SourceTable, Suggestion};
        let name_only = Suggestion {
            toml: "\"full-name\"".into(),
            reason: format!("the name `name` {}", crate::anonymize::suggest::NAME_ONLY),
        };
        let email = Suggestion {
            toml: "\"email\"".into(),
            reason: "by name".into(),
        };
        let mut suggested = BTreeMap::from([
            ("public.language".to_string(), vec![name_only.clone()]),
            ("public.team".to_string(), vec![name_only.clone()]),
            ("public.people".to_string(), vec![email, name_only]),
        ]);
        let keys = [ForeignKey {
            table: "public.people".into(),
            name: "people_team_fk".into(),
            columns: vec!["team".into()],
            parent: "public.team".into(),
            parent_columns: vec!["id".into()],
        }];
        super::keep_catalogue_names(&mut suggested, &keys);
        let tables: Vec<SourceTable> = ["public.language", "public.team"]
            .iter()
            .map(|n| SourceTable {
                name: n.to_string(),
                columns: vec!["name".into()],
                types: vec![None],
            })
            .collect();
        let undecided = super::undecided(&suggested, &tables);
        assert!(
            undecided.starts_with(
                "\n# 2 columns init could not decide from names and values; check these first:\n\
                 #   public.language.name = \"keep\": REVIEW: kept as a catalogue's names"
            ) && undecided.ends_with(&format!(
                "#   public.team.name = \"full-name\": the name `name` {}\n",
                crate::anonymize::suggest::NAME_ONLY
            )),
            "{undecided}"
        );
        assert_eq!(suggested["public.language"][0].toml, "\"keep\"");
        assert!(suggested["public.language"][0]
            .reason
            .starts_with("REVIEW: kept as a catalogue's names"));
        assert_eq!(suggested["public.team"][0].toml, "\"full-name\"");
        assert_eq!(suggested["public.people"][1].toml, "\"full-name\"");
    }

    /// A suggestion its column's type cannot take becomes `null`, saying why; device
    /// addresses get their typed permutation whatever the column's name.
    #[test]
    fn suggestions_fit_the_columns_type() {
        let money = super::ColumnType::from_catalog("money".into(), "money", -1, false, false);
        let s = super::fit_suggestion(
            super::Suggestion {
                toml: "\"hash\"".into(),
                reason: "the name `balance` suggests an account".into(),
            },
            &money,
        );
        assert_eq!(s.toml, "\"null\"");
        assert!(
            s.reason.starts_with("the name `balance` suggests an account, but `hash` cannot write money (money); null clears it"),
            "{}",
            s.reason
        );
        let inet = super::ColumnType::from_catalog("inet".into(), "inet", -1, false, false);
        assert_eq!(super::by_type(&inet).unwrap().toml, "\"ip-address\"");
    }

    use super::*;
    use crate::anonymize::config::Config;

    /// init writes the referencing column of a foreign key like the referenced one,
    /// through a chain of keys, saying why (issue 14).
    #[test]
    fn init_maps_both_sides_of_a_foreign_key_alike() {
        let table = |name: &str, cols: &[&str]| SourceTable {
            name: name.into(),
            columns: cols.iter().map(|c| c.to_string()).collect(),
            types: vec![None; cols.len()],
        };
        let tables = [
            table("public.people", &["email"]),
            table("public.subscribers", &["contact"]),
            table("public.bounces", &["address"]),
        ];
        let fk = |t: &str, c: &str, p: &str, pc: &str| ForeignKey {
            table: t.into(),
            name: format!("{t}_fk"),
            columns: vec![c.into()],
            parent: p.into(),
            parent_columns: vec![pc.into()],
        };
        // listed child-first, so one round is not enough
        let keys = [
            fk("public.bounces", "address", "public.subscribers", "contact"),
            fk("public.subscribers", "contact", "public.people", "email"),
        ];
        let sg = |toml: &str| {
            vec![Suggestion {
                toml: toml.into(),
                reason: "by name".into(),
            }]
        };
        let mut suggested = BTreeMap::from([
            ("public.people".to_string(), sg("\"email\"")),
            ("public.subscribers".to_string(), sg("\"hash\"")),
            ("public.bounces".to_string(), sg("\"keep\"")),
        ]);
        align_foreign_keys(&mut suggested, &tables, &keys);
        for t in ["public.subscribers", "public.bounces"] {
            assert_eq!(suggested[t][0].toml, "\"email\"", "{t}");
        }
        assert!(
            suggested["public.bounces"][0]
                .reason
                .contains("references public.subscribers.contact"),
            "{:?}",
            suggested["public.bounces"][0]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// The config `init` writes reads back as the same tables, whatever their names:
        /// quotes, dots, spaces, unicode, a table named like another schema's (issue 14).
        #[test]
        fn table_keys_read_back_as_the_same_tables(
            schema in "public|[a-zA-Z_ \"ăș€-]{1,8}",
            table in "[a-zA-Z_ .\"ăș€;-]{1,12}",
        ) {
            let dotted = format!("{schema}.{table}");
            let mut names = vec![dotted.clone()];
            // the table `x.y` of public beside the table `y` of schema `x`
            if let Some((a, b)) = table.split_once('.') {
                if !a.is_empty() && !b.is_empty() {
                    names.push(format!("{a}.{b}"));
                }
            }
            names.push(format!("public.{table}"));
            names.sort();
            names.dedup();
            let text: String = names
                .iter()
                .map(|n| format!("[tables.{}]\ncolumns.x = \"keep\"\n", table_key(n)))
                .collect();
            let config = Config::parse(&text, "anonymize.toml").map_err(|e| {
                proptest::test_runner::TestCaseError::fail(format!("{e}\n{text}"))
            })?;
            let read: Vec<&String> = config.tables.keys().collect();
            proptest::prop_assert_eq!(read, names.iter().collect::<Vec<_>>(), "{}", text);
        }
    }
}
