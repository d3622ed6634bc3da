//! `[subset]`: a small, consistent slice of a live source instead of all of it.
//!
//! ```toml
//! [subset]
//! targets = [
//!   { table = "public.customer", percent = 10 },       # keyed sample by primary key
//!   { table = "public.staff", where = "active" },       # an SQL condition
//!   { table = "public.rental", where = "rental_date >= '2022-08-01'",
//!     order = "rental_date desc", limit = 5000 },
//! ]
//! children = "all"             # "all" | "none" | { max = N } per parent and reference
//! passthrough = ["public.country", "public.language", "public.film"]   # copied whole
//!
//! [[subset.relations]]         # a reference the schema does not declare
//! from = "public.comment.entity_id"
//! to = "public.post.id"
//! where = "entity_type = 'post'"   # on the referencing row
//! ```
//!
//! What is kept: the targets' rows; then, per `children`, the rows that refer to a kept
//! row (transitively, from the targets down); then every row a kept row refers to,
//! through declared foreign keys and `[[subset.relations]]`, nullable ones included,
//! transitively (integrity is not optional). Cycles are followed to a fixed point.
//! Tables neither reached nor passed through are copied empty. This module reads the
//! section; [`crate::subset`] computes the slice inside the source's snapshot.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::anonymize::config::{qualified, split_qualified, Config, ConfigError};

/// The `[subset]` section, read.
#[derive(Debug, Clone)]
pub struct Subset {
    pub targets: Vec<Target>,
    pub children: Children,
    /// Tables copied whole (qualified), and where each is named.
    pub passthrough: Vec<(String, Range<usize>)>,
    pub relations: Vec<Relation>,
    pub span: Range<usize>,
}

/// One target: a table's rows chosen by a keyed sample, a condition, a limit, or a mix.
#[derive(Debug, Clone)]
pub struct Target {
    /// Qualified, unquoted (`public.customer`).
    pub table: String,
    /// Keep this share of the rows (0 < p ≤ 100), chosen by the keyed PRF of the
    /// primary key.
    pub percent: Option<f64>,
    /// An SQL condition on the table's rows.
    pub filter: Option<String>,
    /// At most this many rows, the first by `order`.
    pub limit: Option<u64>,
    /// An SQL `ORDER BY` list.
    pub order: Option<String>,
    pub span: Range<usize>,
    /// Where `table = …` is.
    pub table_span: Range<usize>,
    pub filter_span: Option<Range<usize>>,
}

/// How far the slice follows rows that refer to kept rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Children {
    All,
    None,
    /// At most this many per kept parent row and reference.
    Max(u64),
}

/// A reference the schema does not declare: `from` (`table.column`) holds values of
/// `to`, on the referencing rows matching `filter`.
#[derive(Debug, Clone)]
pub struct Relation {
    pub from: (String, String),
    pub to: (String, String),
    pub filter: Option<String>,
    pub from_span: Range<usize>,
    pub to_span: Range<usize>,
    pub filter_span: Option<Range<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSubset {
    #[serde(default)]
    targets: Vec<Spanned<RawTarget>>,
    children: Option<Spanned<toml::Value>>,
    #[serde(default)]
    passthrough: Vec<Spanned<String>>,
    #[serde(default)]
    relations: Vec<Spanned<RawRelation>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    table: Spanned<String>,
    percent: Option<Spanned<toml::Value>>,
    #[serde(rename = "where")]
    filter: Option<Spanned<String>>,
    limit: Option<Spanned<i64>>,
    order: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelation {
    from: Spanned<String>,
    to: Spanned<String>,
    #[serde(rename = "where")]
    filter: Option<Spanned<String>>,
}

/// `schema.table.column` or `table.column` (in `public`), quoted parts allowed.
fn column_ref(s: &str) -> Option<(String, String)> {
    let parts = split_qualified(s);
    match parts.as_slice() {
        [t, c] if !t.is_empty() && !c.is_empty() => Some((format!("public.{t}"), c.clone())),
        [s, t, c] if !s.is_empty() && !t.is_empty() && !c.is_empty() => {
            Some((format!("{s}.{t}"), c.clone()))
        }
        _ => None,
    }
}

/// Why `sql`, a condition or an ORDER BY list the config gives, cannot be put into a
/// statement as one expression: a `;`, a comment, or a parenthesis that closes what it
/// did not open (which would make the rest of the statement part of it, or it part of
/// the statement). Quoted text and names are skipped.
fn fragment_problem(sql: &str) -> Option<&'static str> {
    let (mut depth, mut chars) = (0i32, sql.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                // to the closing quote (a doubled one stays inside)
                loop {
                    match chars.next() {
                        None => return Some("a quote is not closed"),
                        Some(q) if q == c => {
                            if chars.peek() == Some(&c) {
                                chars.next();
                            } else {
                                break;
                            }
                        }
                        Some(_) => {}
                    }
                }
            }
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Some("a `)` closes a parenthesis it did not open");
                }
            }
            ';' => return Some("it holds a `;`: one expression only"),
            '-' if chars.peek() == Some(&'-') => return Some("it holds a `--` comment"),
            '/' if chars.peek() == Some(&'*') => return Some("it holds a `/*` comment"),
            _ => {}
        }
    }
    (depth != 0).then_some("a `(` is not closed")
}

impl Subset {
    pub(crate) fn parse(cfg: &Config, raw: Spanned<RawSubset>) -> Result<Subset, ConfigError> {
        let span = raw.span();
        let raw = raw.into_inner();
        if raw.targets.is_empty() {
            return Err(cfg.err(
                span,
                "[subset] needs at least one target, e.g. targets = [{ table = \"public.customer\", percent = 10 }]",
            ));
        }
        let mut targets = Vec::new();
        for t in raw.targets {
            let tspan = t.span();
            let t = t.into_inner();
            let table = qualified(t.table.get_ref());
            let percent = match &t.percent {
                None => None,
                Some(p) => {
                    let v = match p.get_ref() {
                        toml::Value::Integer(i) => *i as f64,
                        toml::Value::Float(f) => *f,
                        other => {
                            return Err(cfg.err(
                                p.span(),
                                format!(
                                    "subset target {table}: `percent` must be a number, found {}",
                                    other.type_str()
                                ),
                            ))
                        }
                    };
                    if !(v > 0.0 && v <= 100.0) {
                        return Err(cfg.err(
                            p.span(),
                            format!("subset target {table}: `percent` must be above 0 and at most 100, found {v}"),
                        ));
                    }
                    Some(v)
                }
            };
            let limit = match &t.limit {
                None => None,
                Some(l) if *l.get_ref() < 0 => {
                    return Err(cfg.err(
                        l.span(),
                        format!("subset target {table}: `limit` must be 0 or more"),
                    ))
                }
                Some(l) => Some(*l.get_ref() as u64),
            };
            if let (Some(l), None) = (&t.limit, &t.order) {
                return Err(cfg.err(
                    l.span(),
                    format!(
                        "subset target {table}: `limit` without `order` would keep whichever rows \
                         the server reads first, different from run to run; add the order to \
                         take them in, e.g. order = \"id\" or order = \"created_at desc, id\""
                    ),
                ));
            }
            if percent.is_none() && t.filter.is_none() && limit.is_none() {
                return Err(cfg.err(
                    tspan,
                    format!(
                        "subset target {table} says nothing of which rows to keep: give \
                         `percent`, `where` or `limit` (with `order`); to copy the whole \
                         table, list it in `passthrough`"
                    ),
                ));
            }
            if let Some(o) = &t.order {
                if o.get_ref().trim().is_empty() {
                    return Err(cfg.err(
                        o.span(),
                        format!(
                            "subset target {table}: `order` must be an ORDER BY list, e.g. \"id\""
                        ),
                    ));
                }
            }
            for (key, v) in [("where", &t.filter), ("order", &t.order)] {
                if let Some(why) = v.as_ref().and_then(|v| fragment_problem(v.get_ref())) {
                    return Err(cfg.err(
                        v.as_ref().expect("checked").span(),
                        format!(
                            "subset target {table}: `{key}` must be one SQL expression, and {why}"
                        ),
                    ));
                }
            }
            targets.push(Target {
                table,
                percent,
                filter: t.filter.as_ref().map(|f| f.get_ref().clone()),
                filter_span: t.filter.as_ref().map(|f| f.span()),
                limit,
                order: t.order.map(Spanned::into_inner),
                span: tspan,
                table_span: t.table.span(),
            });
        }
        let children = match raw.children {
            None => Children::All,
            Some(c) => {
                let cspan = c.span();
                match c.into_inner() {
                    toml::Value::String(s) if s == "all" => Children::All,
                    toml::Value::String(s) if s == "none" => Children::None,
                    toml::Value::Table(t)
                        if t.len() == 1
                            && t.get("max").and_then(toml::Value::as_integer).is_some_and(|n| n > 0) =>
                    {
                        Children::Max(t["max"].as_integer().expect("checked") as u64)
                    }
                    _ => {
                        return Err(cfg.err(
                            cspan,
                            "[subset] children must be \"all\", \"none\" or { max = N } (N at least 1: \
                             at most N referring rows per kept row)",
                        ))
                    }
                }
            }
        };
        let passthrough = raw
            .passthrough
            .into_iter()
            .map(|p| (qualified(p.get_ref()), p.span()))
            .collect();
        let mut relations = Vec::new();
        for r in raw.relations {
            let r = r.into_inner();
            let parse = |s: &Spanned<String>, which: &str| {
                column_ref(s.get_ref()).ok_or_else(|| {
                    cfg.err(
                        s.span(),
                        format!(
                            "[[subset.relations]] {which} = {:?}: name a column as \
                             \"schema.table.column\" (or \"table.column\" in public)",
                            s.get_ref()
                        ),
                    )
                })
            };
            if let Some(f) = &r.filter {
                if let Some(why) = fragment_problem(f.get_ref()) {
                    return Err(cfg.err(
                        f.span(),
                        format!(
                            "[[subset.relations]] `where` must be one SQL expression, and {why}"
                        ),
                    ));
                }
            }
            relations.push(Relation {
                from: parse(&r.from, "from")?,
                to: parse(&r.to, "to")?,
                filter: r.filter.as_ref().map(|f| f.get_ref().clone()),
                filter_span: r.filter.as_ref().map(|f| f.span()),
                from_span: r.from.span(),
                to_span: r.to.span(),
            });
        }
        Ok(Subset {
            targets,
            children,
            passthrough,
            relations,
            span,
        })
    }

    /// Whether `table` is copied whole.
    pub fn is_passthrough(&self, table: &str) -> bool {
        self.passthrough.iter().any(|(t, _)| t == table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text, "a.toml").unwrap_err().to_string()
    }

    #[test]
    fn a_subset_section_reads_targets_children_passthrough_and_relations() {
        let c = Config::parse(
            "[subset]\ntargets = [{ table = \"customer\", percent = 10 }, { table = \"sales.\\\"Order\\\"\", where = \"open\", order = \"id\", limit = 5 }]\n\
             children = { max = 3 }\npassthrough = [\"film\"]\n\n[[subset.relations]]\nfrom = \"comment.entity_id\"\nto = \"public.post.id\"\nwhere = \"entity_type = 'post'\"\n",
            "a.toml",
        )
        .unwrap();
        let s = c.subset.unwrap();
        assert_eq!(s.targets[0].table, "public.customer");
        assert_eq!(s.targets[0].percent, Some(10.0));
        assert_eq!(s.targets[1].table, "sales.Order");
        assert_eq!(s.targets[1].limit, Some(5));
        assert_eq!(s.children, Children::Max(3));
        assert!(s.is_passthrough("public.film"));
        assert_eq!(
            s.relations[0].from,
            ("public.comment".into(), "entity_id".into())
        );
        assert_eq!(s.relations[0].to, ("public.post".into(), "id".into()));
    }

    #[test]
    fn a_limit_without_an_order_is_placed_and_says_what_to_add() {
        let e =
            err("[subset]\ntargets = [{ table = \"rental\", where = \"true\", limit = 5000 }]\n");
        assert!(
            e.starts_with("a.toml:2:56: subset target public.rental: `limit` without `order`"),
            "{e}"
        );
        assert!(e.contains("order = \"id\""), "{e}");
    }

    #[test]
    fn a_fragment_that_would_reach_past_its_place_is_refused() {
        for (sql, why) in [
            ("rental_id -- newest", "`--` comment"),
            ("id /* x", "`/*` comment"),
            (
                "false) union all (select ctid from mail",
                "closes a parenthesis",
            ),
            ("true; drop table t", "`;`"),
            ("(a = 1", "not closed"),
            ("name = 'it''s", "quote is not closed"),
        ] {
            assert!(
                fragment_problem(sql).is_some_and(|w| w.contains(why)),
                "{sql}"
            );
        }
        for sql in [
            "a = ';--)' AND \"we\"\"ird\" = 1",
            "(x IN (1, 2))",
            "created_at desc, id",
        ] {
            assert_eq!(fragment_problem(sql), None, "{sql}");
        }
        let e = Config::parse(
            "[subset]\ntargets = [{ table = \"r\", where = \"true\", order = \"id -- newest\", limit = 3 }]\n",
            "a.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("a.toml:2:51: subset target public.r: `order` must be one SQL expression, and it holds a `--` comment"),
            "{e}"
        );
    }

    #[test]
    fn bad_subset_values_are_placed() {
        let e = err("[subset]\ntargets = [{ table = \"c\", percent = 0 }]\n");
        assert!(
            e.starts_with("a.toml:2:37: subset target public.c: `percent` must be above 0"),
            "{e}"
        );
        let e = err("[subset]\ntargets = [{ table = \"c\" }]\n");
        assert!(
            e.starts_with("a.toml:2:12: subset target public.c says nothing"),
            "{e}"
        );
        let e = err("[subset]\ntargets = [{ table = \"c\", percent = 5 }]\nchildren = \"some\"\n");
        assert!(
            e.starts_with("a.toml:3:12: [subset] children must be"),
            "{e}"
        );
        let e = err("[subset]\ntargets = [{ table = \"c\", percent = 5 }]\n[[subset.relations]]\nfrom = \"entity_id\"\nto = \"post.id\"\n");
        assert!(
            e.starts_with("a.toml:4:8: [[subset.relations]] from = \"entity_id\""),
            "{e}"
        );
        let e = err("[subset]\nchildren = \"all\"\n");
        assert!(
            e.starts_with("a.toml:1:1: [subset] needs at least one target"),
            "{e}"
        );
    }
}
