//! Column types, known before any row is read: from the catalog of a live source, or from
//! a dump's own DDL parsed by PostgreSQL's parser (pg_query), never by pattern. A
//! transformer declares the kinds of column it can write ([`Kind`]); the plan refuses a
//! pairing it cannot write, applies a transformer to each element of an array column, and
//! cuts outputs to the length of `varchar(n)`/`char(n)`, so the output is valid input for
//! its column (issue 14). Numbers are not clamped here (that would merge distinct
//! values); `numeric-noise`, which never keeps values distinct, holds its own output to
//! the column's range.

use std::collections::{BTreeMap, BTreeSet};

use pg_query::protobuf::a_const::Val;
use pg_query::protobuf::TypeName;
use pg_query::NodeEnum;

/// What a column holds, as far as a transformer's output is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// text, varchar(n), char(n), name, citext
    Text,
    /// json, jsonb
    Json,
    /// smallint, integer, bigint
    Integer,
    /// numeric(p,s)
    Numeric,
    /// real, double precision
    Float,
    Money,
    Bool,
    Date,
    /// timestamp, timestamptz
    Timestamp,
    Time,
    Interval,
    Uuid,
    /// inet, cidr
    Inet,
    /// macaddr, macaddr8
    Macaddr,
    Xml,
    Tsvector,
    Bytea,
    /// A user-defined enum.
    Enum,
    /// Anything else (geometric types, ranges, composite types, oid, bit strings …).
    Other,
}

impl Kind {
    /// The kind of a base type, by its internal name (`varchar`, `int4`, `timestamptz`).
    pub fn of(base: &str, is_enum: bool) -> Kind {
        if is_enum {
            return Kind::Enum;
        }
        match base {
            "text" | "varchar" | "bpchar" | "name" | "citext" | "char" => Kind::Text,
            "json" | "jsonb" => Kind::Json,
            "int2" | "int4" | "int8" => Kind::Integer,
            "numeric" => Kind::Numeric,
            "float4" | "float8" => Kind::Float,
            "money" => Kind::Money,
            "bool" => Kind::Bool,
            "date" => Kind::Date,
            "timestamp" | "timestamptz" => Kind::Timestamp,
            "time" | "timetz" => Kind::Time,
            "interval" => Kind::Interval,
            "uuid" => Kind::Uuid,
            "inet" | "cidr" => Kind::Inet,
            "macaddr" | "macaddr8" => Kind::Macaddr,
            "xml" => Kind::Xml,
            "tsvector" => Kind::Tsvector,
            "bytea" => Kind::Bytea,
            _ => Kind::Other,
        }
    }

    /// How messages name it.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Json => "json",
            Kind::Integer => "integer",
            Kind::Numeric => "numeric",
            Kind::Float => "floating-point",
            Kind::Money => "money",
            Kind::Bool => "boolean",
            Kind::Date => "date",
            Kind::Timestamp => "timestamp",
            Kind::Time => "time",
            Kind::Interval => "interval",
            Kind::Uuid => "uuid",
            Kind::Inet => "network address",
            Kind::Macaddr => "MAC address",
            Kind::Xml => "xml",
            Kind::Tsvector => "tsvector",
            Kind::Bytea => "bytea",
            Kind::Enum => "enum",
            Kind::Other => "other",
        }
    }
}

/// A column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    /// As the source names it: `character varying(15)`, `crm.short_city`, `text[]`.
    pub sql: String,
    /// The base type's internal name once domains and arrays are seen through.
    pub base: String,
    pub kind: Kind,
    /// The most characters a value may hold (`varchar(n)`, `char(n)`, and domains over them).
    pub max_chars: Option<usize>,
    /// An array of the base type: a transformer applies to each element.
    pub array: bool,
    /// `numeric(p,s)`'s precision and scale (domains and arrays seen through).
    pub numeric: Option<(i32, i32)>,
}

impl ColumnType {
    /// A type from its base name and modifiers. `typmod` is as the catalog stores it
    /// (`atttypmod`): the length plus 4 for `varchar`/`char`, -1 when none.
    pub fn from_catalog(sql: String, base: &str, typmod: i32, array: bool, is_enum: bool) -> Self {
        let kind = Kind::of(base, is_enum);
        let m = (typmod >= 4).then(|| (typmod - 4) as u32);
        ColumnType {
            sql,
            base: base.to_string(),
            kind,
            max_chars: m
                .filter(|_| matches!(base, "varchar" | "bpchar"))
                .map(|n| n as usize),
            array,
            // numeric's typmod: ((p << 16) | s) + 4, the scale in 11 bits with a sign
            numeric: m.filter(|_| base == "numeric").map(|m| {
                let m = m as i32;
                ((m >> 16) & 0xffff, ((m & 0x7ff) ^ 1024) - 1024)
            }),
        }
    }
}

/// The last part of a dotted name of String nodes (`pg_catalog.varchar` → `varchar`), and
/// the whole of it qualified with `public` when it has one part.
fn names(nodes: &[pg_query::Node]) -> Vec<String> {
    crate::migrate::lint::strings(nodes)
}

fn qualified(parts: &[String]) -> String {
    match parts {
        [one] => format!("public.{one}"),
        [.., schema, name] => format!("{schema}.{name}"),
        [] => String::new(),
    }
}

fn typmods(t: &TypeName) -> Vec<i64> {
    t.typmods
        .iter()
        .filter_map(|m| match m.node.as_ref() {
            Some(NodeEnum::AConst(c)) => match c.val.as_ref() {
                Some(Val::Ival(i)) => Some(i64::from(i.ival)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// What a dump's DDL says about types: the columns of every table it creates, its
/// domains and its enums. Fed the text of each `CREATE TABLE`, `CREATE DOMAIN` and
/// `CREATE TYPE` statement.
#[derive(Debug, Default)]
pub struct DdlTypes {
    /// Per table (`schema.table`): its columns and their types as written.
    tables: BTreeMap<String, Vec<(String, TypeName)>>,
    domains: BTreeMap<String, TypeName>,
    enums: BTreeSet<String>,
}

impl DdlTypes {
    /// Reads one statement; one the parser refuses is passed over (the load will report it).
    pub fn statement(&mut self, sql: &str) {
        let Ok(parsed) = pg_query::parse(sql, 0) else {
            return;
        };
        for raw in &parsed.protobuf.stmts {
            match raw.stmt.as_ref().and_then(|s| s.node.as_ref()) {
                Some(NodeEnum::CreateStmt(c)) => {
                    let Some(rel) = c.relation.as_ref() else {
                        continue;
                    };
                    let schema = if rel.schemaname.is_empty() {
                        "public"
                    } else {
                        &rel.schemaname
                    };
                    let cols = c
                        .table_elts
                        .iter()
                        .filter_map(|e| match e.node.as_ref() {
                            Some(NodeEnum::ColumnDef(d)) => {
                                Some((d.colname.clone(), d.type_name.clone()?))
                            }
                            _ => None,
                        })
                        .collect::<Vec<_>>();
                    // `CREATE TABLE p1 PARTITION OF p FOR VALUES …` (pg_dump 13 and older)
                    // lists no columns: they are the parent's
                    let parent = c.inh_relations.first().and_then(|n| match n.node.as_ref() {
                        Some(NodeEnum::RangeVar(r)) => Some(format!(
                            "{}.{}",
                            if r.schemaname.is_empty() {
                                "public"
                            } else {
                                &r.schemaname
                            },
                            r.relname
                        )),
                        _ => None,
                    });
                    let cols = match parent.and_then(|p| self.tables.get(&p)) {
                        Some(inherited) if cols.is_empty() => inherited.clone(),
                        _ => cols,
                    };
                    self.tables
                        .insert(format!("{schema}.{}", rel.relname), cols);
                }
                Some(NodeEnum::CreateDomainStmt(d)) => {
                    if let Some(t) = d.type_name.clone() {
                        self.domains.insert(qualified(&names(&d.domainname)), t);
                    }
                }
                Some(NodeEnum::CreateEnumStmt(e)) => {
                    self.enums.insert(qualified(&names(&e.type_name)));
                }
                _ => {}
            }
        }
    }

    /// The type of `column` of `table`, when the DDL created it.
    pub fn column(&self, table: &str, column: &str) -> Option<ColumnType> {
        let (_, t) = self.tables.get(table)?.iter().find(|(c, _)| c == column)?;
        Some(self.resolve(t, crate::migrate::lint::type_text(t), 0))
    }

    fn resolve(&self, t: &TypeName, sql: String, depth: usize) -> ColumnType {
        let parts = names(&t.names);
        let array = !t.array_bounds.is_empty();
        let q = qualified(&parts);
        if depth < 8 {
            if let Some(base) = self.domains.get(&q) {
                let mut inner = self.resolve(base, sql, depth + 1);
                inner.array |= array;
                return inner;
            }
        }
        let base = if parts.len() == 1 || parts.first().is_some_and(|p| p == "pg_catalog") {
            parts.last().cloned().unwrap_or_default()
        } else {
            q.clone()
        };
        let mods = typmods(t);
        // an extension's type is schema-qualified in a dump (`public.citext`)
        let kind = Kind::of(
            parts.last().map_or("", String::as_str),
            self.enums.contains(&q),
        );
        ColumnType {
            sql,
            max_chars: match (base.as_str(), mods.as_slice()) {
                ("varchar" | "bpchar", [n]) if *n > 0 => Some(*n as usize),
                // `character` without a length is char(1)
                ("bpchar", []) if parts.first().is_some_and(|p| p == "pg_catalog") => Some(1),
                _ => None,
            },
            numeric: match (base.as_str(), mods.as_slice()) {
                ("numeric", [p]) => Some((*p as i32, 0)),
                ("numeric", [p, s]) => Some((*p as i32, *s as i32)),
                _ => None,
            },
            base,
            kind,
            array,
        }
    }
}

/// Fits a transformer's output to its column: at most `max_chars` characters
/// (`varchar(n)`, `char(n)`). `None` when the value fits as it is. Numbers out of their
/// column's range are not clamped (that would merge distinct values): the load refuses
/// them, naming the table, and the run fails.
pub fn fit(t: &ColumnType, value: &str) -> Option<String> {
    let n = t.max_chars?;
    let (cut, _) = value.char_indices().nth(n)?;
    Some(value[..cut].trim_end().to_string())
}

/// [`fit`] in place, on the part of `out` from `start`.
pub fn fit_in_place(t: &ColumnType, out: &mut String, start: usize) {
    let Some(n) = t.max_chars else { return };
    if let Some((cut, _)) = out[start..].char_indices().nth(n) {
        out.truncate(start + cut);
        let kept = out[start..].trim_end().len();
        out.truncate(start + kept);
    }
}

/// Rewrites each element of an array literal (`{a,"b c",NULL,{d}}`, with an optional
/// `[1:2]=` dimension prefix) through `f`, keeping NULL elements, nesting and bounds.
/// `f` gets the decoded element and returns the new one (`None` for NULL).
pub fn map_array(
    literal: &str,
    mut f: impl FnMut(&str) -> Result<Option<String>, String>,
) -> Result<String, String> {
    let bad = |why: &str| format!("`{literal}` is not an array literal: {why}");
    let mut out = String::with_capacity(literal.len() + 16);
    let mut chars = literal.char_indices().peekable();
    // the dimension decoration, `[1:2][0:1]=`, is kept as it is
    if literal.starts_with('[') {
        let eq = literal
            .find('=')
            .ok_or_else(|| bad("a dimension prefix without `=`"))?;
        out.push_str(&literal[..=eq]);
        while chars.peek().is_some_and(|&(i, _)| i <= eq) {
            chars.next();
        }
    }
    let mut depth = 0usize;
    let mut expect_element = false;
    while let Some((_, c)) = chars.next() {
        match c {
            '{' => {
                depth += 1;
                out.push('{');
                expect_element = true;
            }
            '}' if depth > 0 => {
                depth -= 1;
                out.push('}');
                expect_element = false;
            }
            ',' if depth > 0 => {
                out.push(',');
                expect_element = true;
            }
            c if c.is_ascii_whitespace() => {}
            '"' if depth > 0 => {
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, e)) => value.push(e),
                            None => return Err(bad("it ends inside a quoted element")),
                        },
                        Some((_, '"')) => break,
                        Some((_, e)) => value.push(e),
                        None => return Err(bad("it ends inside a quoted element")),
                    }
                }
                put_element(&mut out, f(&value)?.as_deref());
                expect_element = false;
            }
            _ if depth > 0 && expect_element => {
                let mut value = String::new();
                if c == '\\' {
                    value.extend(chars.next().map(|(_, e)| e));
                } else {
                    value.push(c);
                }
                while let Some(&(_, n)) = chars.peek() {
                    if n == ',' || n == '}' {
                        break;
                    }
                    chars.next();
                    if n == '\\' {
                        if let Some((_, e)) = chars.next() {
                            value.push(e);
                        }
                    } else {
                        value.push(n);
                    }
                }
                let value = value.trim_end_matches(|c: char| c.is_ascii_whitespace());
                if value.eq_ignore_ascii_case("NULL") {
                    out.push_str("NULL");
                } else {
                    put_element(&mut out, f(value)?.as_deref());
                }
                expect_element = false;
            }
            _ => return Err(bad(&format!("unexpected `{c}`"))),
        }
    }
    if depth != 0 || !out.contains('{') {
        return Err(bad("its braces do not balance"));
    }
    Ok(out)
}

/// One array element, quoted where it must be.
fn put_element(out: &mut String, v: Option<&str>) {
    let Some(v) = v else {
        out.push_str("NULL");
        return;
    };
    let quote = v.is_empty()
        || v.eq_ignore_ascii_case("NULL")
        || v.chars()
            .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace());
    if !quote {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fitting in place, after text already in the buffer, cuts exactly as [`fit`].
    #[test]
    fn fitting_in_place_cuts_as_fit_does() {
        for n in [0, 1, 3, 5, 8] {
            let t = ColumnType {
                max_chars: Some(n),
                ..ColumnType::from_catalog("text".into(), "text", -1, false, false)
            };
            for v in ["", "ab", "abc de", "șțăî xy", "a    b", "abcdefghij"] {
                let mut out = String::from("ș head ");
                let start = out.len();
                out.push_str(v);
                fit_in_place(&t, &mut out, start);
                let want = fit(&t, v).unwrap_or_else(|| v.to_string());
                assert_eq!(&out[start..], want, "{v:?} in {n}");
                assert!(out.starts_with("ș head "));
            }
        }
    }

    /// numeric(p,s) is known through a domain and an array, from DDL and from the catalog.
    #[test]
    fn numeric_precision_is_seen_through_domains_and_arrays() {
        let mut t = DdlTypes::default();
        t.statement("CREATE DOMAIN public.amount AS numeric(5,2);");
        t.statement("CREATE TABLE public.p (a public.amount, b numeric(7)[], c numeric);");
        assert_eq!(t.column("public.p", "a").unwrap().numeric, Some((5, 2)));
        assert_eq!(t.column("public.p", "b").unwrap().numeric, Some((7, 0)));
        assert_eq!(t.column("public.p", "c").unwrap().numeric, None);
        let catalog = ColumnType::from_catalog(
            "public.amount".into(),
            "numeric",
            (5 << 16 | 2) + 4,
            false,
            false,
        );
        assert_eq!(catalog.numeric, Some((5, 2)));
    }

    /// A partition made with `PARTITION OF` and no column list has its parent's types.
    #[test]
    fn a_partition_without_columns_has_its_parents_types() {
        let mut t = DdlTypes::default();
        t.statement("CREATE TABLE public.events (id integer, actor_email character varying(40)) PARTITION BY RANGE (id);");
        t.statement(
            "CREATE TABLE public.events_1 PARTITION OF public.events FOR VALUES FROM (0) TO (10);",
        );
        let ty = t
            .column("public.events_1", "actor_email")
            .expect("the parent's column");
        assert_eq!(ty.max_chars, Some(40));
    }

    fn ddl(sql: &str) -> DdlTypes {
        let mut d = DdlTypes::default();
        for stmt in pg_query::split_with_parser(sql).unwrap() {
            d.statement(stmt);
        }
        d
    }

    /// The forms pg_dump writes, read by PostgreSQL's own parser: quoted mixed-case
    /// names, schemas, domains (over domains), enums, arrays, lengths, precisions.
    #[test]
    fn a_dumps_ddl_gives_each_column_its_type() {
        let d = ddl(r#"
            CREATE TYPE crm.tier AS ENUM ('free', 'pro');
            CREATE DOMAIN crm.short_city AS character varying(15);
            CREATE DOMAIN crm.city_again AS crm.short_city;
            CREATE TABLE crm."Customer" (
                "Id" integer NOT NULL,
                "First Name" text NOT NULL,
                other_emails text[],
                city character varying(15),
                home crm.city_again,
                homes crm.short_city[],
                tier crm.tier DEFAULT 'free'::crm.tier NOT NULL,
                profile jsonb,
                at timestamp with time zone,
                credit numeric(10,2),
                code character(2),
                flag character,
                ip inet
            );"#);
        let t = |c: &str| d.column("crm.Customer", c).unwrap();
        assert_eq!(t("Id").kind, Kind::Integer);
        assert_eq!(t("Id").base, "int4");
        assert_eq!(t("First Name").kind, Kind::Text);
        assert_eq!(
            (t("other_emails").kind, t("other_emails").array),
            (Kind::Text, true)
        );
        assert_eq!(t("other_emails").sql, "text[]");
        assert_eq!(t("city").max_chars, Some(15));
        assert_eq!((t("home").max_chars, t("home").array), (Some(15), false));
        assert_eq!((t("homes").max_chars, t("homes").array), (Some(15), true));
        assert_eq!(t("tier").kind, Kind::Enum);
        assert_eq!(t("profile").kind, Kind::Json);
        assert_eq!(t("at").kind, Kind::Timestamp);
        assert_eq!(
            (t("credit").kind, t("credit").max_chars),
            (Kind::Numeric, None)
        );
        assert_eq!(t("code").max_chars, Some(2));
        assert_eq!(t("flag").max_chars, Some(1));
        assert_eq!(t("ip").kind, Kind::Inet);
        assert!(d.column("crm.Customer", "nope").is_none());
        assert!(
            d.column("public.Customer", "Id").is_none(),
            "another schema"
        );
    }

    #[test]
    fn the_catalogs_typmods_are_read() {
        let v =
            ColumnType::from_catalog("character varying(15)".into(), "varchar", 19, false, false);
        assert_eq!(v.max_chars, Some(15));
        let n = ColumnType::from_catalog(
            "numeric(10,2)".into(),
            "numeric",
            (10 << 16 | 2) + 4,
            false,
            false,
        );
        assert_eq!(
            (n.kind, n.max_chars),
            (Kind::Numeric, None),
            "a precision is no length"
        );
        let t = ColumnType::from_catalog("text".into(), "text", -1, false, false);
        assert_eq!(t.max_chars, None);
    }

    #[test]
    fn outputs_are_fitted_to_their_column() {
        let v = ColumnType::from_catalog("varchar(15)".into(), "varchar", 19, false, false);
        assert_eq!(
            fit(&v, "Villeneuve-d'Ascq-sur-Mer").as_deref(),
            Some("Villeneuve-d'As")
        );
        assert_eq!(
            fit(&v, "București-Ilfov-Sud").unwrap().chars().count(),
            15,
            "characters, not bytes"
        );
        assert_eq!(fit(&v, "Lyon"), None);
        assert_eq!(
            fit(&v, "Abcdefgh Ijklm Nopq"),
            Some("Abcdefgh Ijklm".into()),
            "no trailing space"
        );
        let small = ColumnType::from_catalog("smallint".into(), "int2", -1, false, false);
        assert_eq!(
            fit(&small, "40000"),
            None,
            "never clamped: that would merge values"
        );
        let neg = ColumnType::from_catalog(
            "numeric(5,-2)".into(),
            "numeric",
            (5 << 16 | 0x7fe) + 4,
            false,
            false,
        );
        assert_eq!(
            fit(&neg, "123456"),
            None,
            "a negative scale reads without a panic"
        );
    }

    #[test]
    fn array_elements_are_mapped_and_the_rest_kept() {
        let up = |v: &str| Ok(Some(v.to_uppercase()));
        assert_eq!(map_array("{a,b,NULL,c}", up).unwrap(), "{A,B,NULL,C}");
        assert_eq!(
            map_array(r#"{"a b","q\"uote","back\\slash",""}"#, up).unwrap(),
            r#"{"A B","Q\"UOTE","BACK\\SLASH",""}"#
        );
        assert_eq!(
            map_array("{{a,b},{c,NULL}}", up).unwrap(),
            "{{A,B},{C,NULL}}"
        );
        assert_eq!(map_array("[0:1]={x,y}", up).unwrap(), "[0:1]={X,Y}");
        assert_eq!(map_array("{}", up).unwrap(), "{}");
        // an element that becomes NULL, or the word null, stays an element
        assert_eq!(map_array("{a,b}", |_| Ok(None)).unwrap(), "{NULL,NULL}");
        assert_eq!(
            map_array("{a}", |_| Ok(Some("null".into()))).unwrap(),
            "{\"null\"}"
        );
        assert!(map_array("{a,b", up).is_err());
        assert!(map_array("plain", up).is_err());
    }

    proptest::proptest! {
        /// Any list of elements, written as PostgreSQL writes arrays, reads back the same
        /// through the identity.
        #[test]
        fn arrays_round_trip(elems in proptest::collection::vec(proptest::option::of("\\PC{0,12}"), 0..6)) {
            let mut lit = String::from("{");
            for (i, e) in elems.iter().enumerate() {
                if i > 0 { lit.push(','); }
                put_element(&mut lit, e.as_deref());
            }
            lit.push('}');
            let mut seen = Vec::new();
            let again = map_array(&lit, |v| { seen.push(v.to_string()); Ok(Some(v.to_string())) }).unwrap();
            proptest::prop_assert_eq!(&again, &lit);
            let want: Vec<String> = elems.iter().flatten().cloned().collect();
            proptest::prop_assert_eq!(seen, want);
        }
    }
}
