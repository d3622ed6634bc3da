//! What a dump's DDL tells the pipeline before any row moves: the unique keys (so a
//! transformer that could give two rows one value is caught before loading) and the
//! tables it creates (so loading a data-only dump into a fresh database is refused up
//! front). Read from pg_dump's fixed output forms, which `pg_get_indexdef` shares.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use crate::anonymize::config::{qualified, split_qualified, split_quoted};

/// A primary key, unique constraint or unique index: rows may not share these values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueKey {
    /// The qualified table name, as in the plan.
    pub table: String,
    /// The index or constraint name.
    pub name: String,
    /// The columns, and for an expression index every name the expression mentions
    /// (the check keeps those that are columns of the table).
    pub columns: Vec<String>,
}

/// A name as pg_dump writes it, quoted or not, qualified or not: `a`, `"Billing Dept"`,
/// `"Billing Dept"."Invoice Lines"`, `public."we""ird"` (a quoted name may hold spaces,
/// dots and doubled quotes, so `\S+` missed keys of such tables and verify went without them).
const NAME: &str = r#"(?:"(?:[^"]|"")+"|[^\s."(]+)(?:\.(?:"(?:[^"]|"")+"|[^\s."(]+))?"#;

fn pattern(template: &str) -> Regex {
    Regex::new(&template.replace("NAME", NAME)).expect("a valid pattern")
}

static INDEX: LazyLock<Regex> = LazyLock::new(|| {
    pattern(r"^CREATE UNIQUE INDEX (?:CONCURRENTLY )?(NAME) ON (?:ONLY )?(NAME) USING \S+ \((.*)$")
});
static ALTER: LazyLock<Regex> = LazyLock::new(|| pattern(r"^ALTER TABLE (?:ONLY )?(NAME)$"));
static CONSTRAINT: LazyLock<Regex> = LazyLock::new(|| {
    pattern(
        r"^\s+ADD CONSTRAINT (NAME) (?:PRIMARY KEY|UNIQUE(?: NULLS (?:NOT )?DISTINCT)?) \((.*)$",
    )
});
static FOREIGN: LazyLock<Regex> = LazyLock::new(|| {
    pattern(r"^\s+ADD CONSTRAINT (NAME) FOREIGN KEY \((.*?)\) REFERENCES (NAME)\((.*?)\)")
});
/// pg_dump's `ALTER TABLE ONLY parent ATTACH PARTITION child …` and the
/// `CREATE TABLE child PARTITION OF parent …` a hand-written schema uses.
static ATTACH: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"^ALTER TABLE (?:ONLY )?(NAME) ATTACH PARTITION (NAME) "));
static PARTITION_OF: LazyLock<Regex> = LazyLock::new(|| {
    pattern(r"^CREATE (?:UNLOGGED )?TABLE (?:IF NOT EXISTS )?(NAME) PARTITION OF (NAME)[ ;(]")
});
static CREATE: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"^CREATE (?:UNLOGGED |FOREIGN )?TABLE (NAME) \("));
/// pg_dump's `--inserts` forms: a row per statement, or (`--rows-per-insert`) the rows on
/// the lines after `VALUES`.
static INSERT: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"^INSERT INTO (NAME) (?:\(.*\) )?VALUES(?: \(.*\);)?$"));
static WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#""(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*"#).expect("a valid pattern")
});

/// A foreign key: the child's columns refer to the parent's.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ForeignKey {
    pub table: String,
    pub name: String,
    pub columns: Vec<String>,
    pub parent: String,
    pub parent_columns: Vec<String>,
}

/// Which table each partition belongs to, up the chain: a key declared on a partitioned
/// table holds for the rows of its partitions, which is where the rows are.
#[derive(Debug, Default, Clone)]
pub struct Partitions {
    parent: std::collections::HashMap<String, String>,
}

impl Partitions {
    pub fn new<'a>(pairs: impl IntoIterator<Item = &'a (String, String)>) -> Partitions {
        Partitions {
            parent: pairs.into_iter().cloned().collect(),
        }
    }

    /// Whether `table` is `of` or one of its partitions, at any depth.
    pub fn within(&self, table: &str, of: &str) -> bool {
        let mut t = table;
        // a chain longer than the tables there are is a cycle: stop
        for _ in 0..=self.parent.len() {
            if t == of {
                return true;
            }
            match self.parent.get(t) {
                Some(p) => t = p,
                None => return false,
            }
        }
        false
    }

    /// The keys without the copies the catalog keeps per partition: a key of (or to) a
    /// partitioned table is listed again for each partition, and each copy would check
    /// only part of the rows (the rows of one partition of the referenced table, so the
    /// others' rows look like orphans).
    pub fn declared(&self, keys: &[ForeignKey]) -> Vec<ForeignKey> {
        keys.iter()
            .filter(|k| {
                !keys.iter().any(|d| {
                    d != *k
                        && d.columns == k.columns
                        && d.parent_columns == k.parent_columns
                        && self.within(&k.table, &d.table)
                        && self.within(&k.parent, &d.parent)
                })
            })
            .cloned()
            .collect()
    }
}

/// Reads DDL a line at a time (pg_dump puts `ALTER TABLE ONLY t` and its
/// `ADD CONSTRAINT …` on two lines).
#[derive(Debug, Default)]
pub struct DdlScan {
    pub unique: Vec<UniqueKey>,
    pub foreign: Vec<ForeignKey>,
    /// Partition → the table it is a partition of.
    pub partitions: Vec<(String, String)>,
    pub created: BTreeSet<String>,
    /// Tables whose rows come as INSERT statements (`pg_dump --inserts`), with the line
    /// of the first one: rows the transformers never see.
    pub inserts: Vec<(String, u64)>,
    /// Column types, domains and enums, from the statements that create them.
    pub types: crate::source::types::DdlTypes,
    /// The text of its `COMMENT ON` statements (the first 10,000).
    pub comments: Vec<String>,
    /// A `COMMENT ON` statement being read, until the line that ends it, and whether a
    /// literal is open at the end of the last line read.
    commenting: Option<String>,
    comment_quoted: bool,
    /// Large objects the dump creates, and the OID and line of the first.
    pub large_objects: u64,
    pub first_large_object: Option<(String, u64)>,
    altering: Option<String>,
    /// A `CREATE TABLE`, `CREATE DOMAIN` or `CREATE TYPE` statement being read, until the
    /// line that ends it.
    creating: Option<String>,
    /// Its schema objects, for verify's comparison of the two sides.
    pub objects: crate::source::schema_objects::SchemaObjects,
}

/// The statements whose text goes to the parser for column types.
fn creates_a_type(line: &str) -> bool {
    [
        "CREATE TABLE ",
        "CREATE UNLOGGED TABLE ",
        "CREATE DOMAIN ",
        "CREATE TYPE ",
    ]
    .iter()
    .any(|p| line.starts_with(p))
}

impl DdlScan {
    /// Reads the next line of SQL; `at` is its line number in the dump.
    pub fn line(&mut self, line: &str, at: u64) {
        let line = line.trim_end_matches(['\n', '\r']);
        self.objects.line(line);
        if self.creating.is_none() && creates_a_type(line) {
            self.creating = Some(String::new());
        }
        if let Some(stmt) = self.creating.as_mut() {
            stmt.push_str(line);
            stmt.push('\n');
            // pg_dump ends each statement on a line of its own ending in `;`; a statement
            // past 1 MB is no table definition worth reading
            if line.ends_with(';') || stmt.len() > 1 << 20 {
                let stmt = self.creating.take().unwrap_or_default();
                self.types.statement(&stmt);
            }
        }
        if self.commenting.is_none() && line.starts_with("COMMENT ON ") {
            self.commenting = Some(String::new());
            self.comment_quoted = false;
        }
        if let Some(stmt) = self.commenting.as_mut() {
            stmt.push_str(line);
            stmt.push('\n');
            let ends = ends_statement(line.as_bytes(), &mut self.comment_quoted);
            if ends || stmt.len() > 1 << 20 {
                let stmt = self.commenting.take().unwrap_or_default();
                if self.comments.len() < 10_000 {
                    self.comments.extend(comment_text(&stmt));
                }
            }
        }
        if let Some(oid) = large_object_created(line) {
            self.large_objects += 1;
            if self.first_large_object.is_none() {
                self.first_large_object = Some((oid.to_string(), at));
            }
        }
        let altering = self.altering.take();
        if let Some(c) = INSERT.captures(line) {
            let table = table_name(&c[1]);
            if !self.inserts.iter().any(|(t, _)| *t == table) {
                self.inserts.push((table, at));
            }
        } else if let Some(k) = unique_index(line) {
            self.unique.push(k);
        } else if let Some(c) = ALTER.captures(line) {
            self.altering = Some(table_name(&c[1]));
        } else if let Some(c) = ATTACH.captures(line) {
            self.partitions.push((table_name(&c[2]), table_name(&c[1])));
        } else if let (Some(table), Some(c)) = (altering.clone(), FOREIGN.captures(line)) {
            self.foreign.push(ForeignKey {
                table,
                name: unquote(&c[1]),
                columns: names(&c[2]),
                parent: table_name(&c[3]),
                parent_columns: names(&c[4]),
            });
        } else if let (Some(table), Some(c)) = (altering, CONSTRAINT.captures(line)) {
            self.unique.push(UniqueKey {
                table,
                name: unquote(&c[1]),
                columns: key_columns(&c[2]),
            });
        } else if let Some(c) = CREATE.captures(line) {
            self.created.insert(table_name(&c[1]));
        } else if let Some(c) = PARTITION_OF.captures(line) {
            self.created.insert(table_name(&c[1]));
            self.partitions.push((table_name(&c[1]), table_name(&c[2])));
        }
    }
}

/// A unique index from its definition (`CREATE UNIQUE INDEX name ON t USING btree (…)`,
/// as pg_dump writes it and `pg_get_indexdef` returns it).
pub fn unique_index(def: &str) -> Option<UniqueKey> {
    let c = INDEX.captures(def)?;
    Some(UniqueKey {
        table: table_name(&c[2]),
        name: unquote(&c[1]),
        columns: key_columns(&c[3]),
    })
}

fn table_name(raw: &str) -> String {
    let parts = split_qualified(raw);
    if parts.len() == 2 {
        format!("{}.{}", parts[0], parts[1])
    } else {
        qualified(raw)
    }
}

/// `a, "B c"` → `a`, `B c`.
fn names(list: &str) -> Vec<String> {
    split_quoted(list, ',')
        .iter()
        .map(|n| n.trim().to_string())
        .collect()
}

fn unquote(raw: &str) -> String {
    split_qualified(raw).pop().unwrap_or_default()
}

/// The names inside the key's parentheses (those after `INCLUDE` or `WHERE` are not part
/// of the key).
fn key_columns(rest: &str) -> Vec<String> {
    let mut depth = 1;
    let mut end = rest.len();
    let mut quoted = false;
    for (i, ch) in rest.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth == 0 {
                    end = i;
                    break;
                }
            }
            _ => {}
        }
    }
    let mut out: Vec<String> = Vec::new();
    for w in WORD.find_iter(&rest[..end]) {
        let name = unquote(w.as_str());
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// The OID a dump line creates an object under (`SELECT pg_catalog.lo_create('424242');`).
pub fn large_object_created(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("SELECT pg_catalog.lo_create('")?;
    rest.split_once('\'').map(|(oid, _)| oid)
}

/// The text of a `COMMENT ON … IS …;` statement, read by PostgreSQL's own parser (quoted
/// names holding ` IS `, `''`, `E'…'` and all), if `sql` is one.
pub fn comment_text(sql: &str) -> Option<String> {
    let parsed = pg_query::parse(sql, 0).ok()?;
    parsed
        .protobuf
        .stmts
        .iter()
        .find_map(|raw| match raw.stmt.as_ref()?.node.as_ref()? {
            pg_query::NodeEnum::CommentStmt(c) => Some(c.comment.clone()),
            _ => None,
        })
}

/// Whether a statement ends on `line`: its last non-blank character is a `;` outside any
/// quoted literal. `quoted` carries whether a literal is open from line to line (a
/// doubled `''` closes and opens it again, which leaves it open).
pub fn ends_statement(line: &[u8], quoted: &mut bool) -> bool {
    for &b in line {
        if b == b'\'' {
            *quoted = !*quoted;
        }
    }
    let end = line.trim_ascii_end();
    !*quoted && end.ends_with(b";")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names with spaces, dots and quotes: their keys were missed (`\S+`), so the guard
    /// and verify's unique and foreign-key checks silently went without them.
    #[test]
    fn keys_of_tables_named_with_spaces_are_read() {
        let mut s = DdlScan::default();
        for (i, l) in [
            "CREATE TABLE \"Billing Dept\".\"Invoice Lines\" (",
            "ALTER TABLE ONLY \"Billing Dept\".\"Invoice Lines\"",
            "    ADD CONSTRAINT \"Invoice Lines_pkey\" PRIMARY KEY (\"Line ID\");",
            "ALTER TABLE ONLY \"Billing Dept\".\"Invoice Lines\"",
            "    ADD CONSTRAINT \"Invoice Lines_User Id_fkey\" FOREIGN KEY (\"User Id\") REFERENCES public.\"a.b users\"(id);",
            "CREATE UNIQUE INDEX \"memo idx\" ON \"Billing Dept\".\"Invoice Lines\" USING btree (lower(\"Memo\"));",
        ]
        .into_iter()
        .enumerate()
        {
            s.line(l, i as u64 + 1);
        }
        assert_eq!(
            s.created.iter().collect::<Vec<_>>(),
            ["Billing Dept.Invoice Lines"]
        );
        let keys: Vec<(String, String, Vec<String>)> = s
            .unique
            .into_iter()
            .map(|k| (k.table, k.name, k.columns))
            .collect();
        assert_eq!(
            keys,
            [
                (
                    "Billing Dept.Invoice Lines".into(),
                    "Invoice Lines_pkey".into(),
                    vec!["Line ID".into()]
                ),
                (
                    "Billing Dept.Invoice Lines".into(),
                    "memo idx".into(),
                    vec!["lower".into(), "Memo".into()]
                ),
            ]
        );
        assert_eq!(s.foreign.len(), 1);
        assert_eq!(s.foreign[0].parent, "public.a.b users");
        assert_eq!(s.foreign[0].columns, ["User Id"]);
    }

    #[test]
    fn pg_dump_forms_are_read() {
        let mut s = DdlScan::default();
        for (i, l) in [
            "CREATE TABLE public.actor (",
            "ALTER TABLE ONLY public.actor",
            "    ADD CONSTRAINT actor_pkey_incl PRIMARY KEY (actor_id) INCLUDE (first_name, last_name);",
            "ALTER TABLE ONLY sales.\"Order\"",
            "    ADD CONSTRAINT \"Order_key\" UNIQUE (\"Ref No\", region);",
            "ALTER TABLE ONLY public.x",
            "    ADD CONSTRAINT x_fk FOREIGN KEY (a) REFERENCES public.y(a);",
            "CREATE UNIQUE INDEX users_email ON public.users USING btree (lower((email)::text)) WHERE (deleted_at IS NULL);",
            "CREATE INDEX idx ON public.users USING btree (name);",
        ]
        .into_iter()
        .chain([
            "INSERT INTO public.actor VALUES (1, 'Ana');",
            "INSERT INTO public.actor (id, name) VALUES (2, 'Ion');",
            "INSERT INTO public.city VALUES",
            "INSERT INTO log SELECT 1;",
        ])
        .enumerate()
        {
            s.line(l, i as u64 + 1);
        }
        assert_eq!(
            s.inserts,
            [
                ("public.actor".to_string(), 10),
                ("public.city".to_string(), 12)
            ],
            "a function body's INSERT … SELECT is not a row"
        );
        assert_eq!(s.created.iter().collect::<Vec<_>>(), ["public.actor"]);
        let keys: Vec<(String, String, Vec<String>)> = s
            .unique
            .into_iter()
            .map(|k| (k.table, k.name, k.columns))
            .collect();
        assert_eq!(
            keys,
            [
                (
                    "public.actor".into(),
                    "actor_pkey_incl".into(),
                    vec!["actor_id".into()]
                ),
                (
                    "sales.Order".into(),
                    "Order_key".into(),
                    vec!["Ref No".into(), "region".into()]
                ),
                (
                    "public.users".into(),
                    "users_email".into(),
                    vec!["lower".into(), "email".into(), "text".into()]
                ),
            ]
        );
    }

    #[test]
    fn partitions_are_read_in_both_forms_and_a_key_is_checked_once() {
        let mut s = DdlScan::default();
        for (i, l) in [
            "CREATE TABLE public.account (",
            "CREATE TABLE public.account_1 (",
            "ALTER TABLE ONLY public.account ATTACH PARTITION public.account_1 FOR VALUES IN (1);",
            "CREATE TABLE public.\"account 2\" PARTITION OF public.account FOR VALUES IN (2);",
            "CREATE TABLE public.a2_x PARTITION OF public.\"account 2\" FOR VALUES FROM (1) TO (5);",
        ]
        .iter()
        .enumerate()
        {
            s.line(l, i as u64 + 1);
        }
        assert_eq!(
            s.partitions,
            [
                ("public.account_1".to_string(), "public.account".to_string()),
                ("public.account 2".into(), "public.account".into()),
                ("public.a2_x".into(), "public.account 2".into()),
            ]
        );
        assert!(s.created.contains("public.account 2"));
        let p = Partitions::new(&s.partitions);
        assert!(p.within("public.a2_x", "public.account"));
        assert!(p.within("public.account", "public.account"));
        assert!(!p.within("public.account", "public.a2_x"));
        let key = |table: &str, parent: &str| ForeignKey {
            table: table.into(),
            name: "fk".into(),
            columns: vec!["a".into()],
            parent: parent.into(),
            parent_columns: vec!["id".into()],
        };
        // the catalog's copies per partition go; a key between two plain tables stays
        let keys = [
            key("public.note", "public.account"),
            key("public.note", "public.account_1"),
            key("public.note", "public.a2_x"),
            key("public.other", "public.account_1"),
        ];
        assert_eq!(
            p.declared(&keys),
            [
                key("public.note", "public.account"),
                key("public.other", "public.account_1")
            ]
        );
    }
}
