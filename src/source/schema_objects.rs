//! The schema objects a pg_dump script creates, read a line at a time: tables, indexes,
//! constraints, triggers, views, materialized views, policies, rules, sequences and
//! extensions, each with its table and its definition as the parser deparses it (so
//! layout and the dumping pg_dump's version do not count). Verify compares the source's
//! set with the output's, whatever each side is: a dump file's own DDL, or what pg_dump
//! writes for a live database.

use std::collections::BTreeSet;

use pg_query::protobuf::{AlterTableType, RangeVar};
use pg_query::NodeEnum;

/// One object: what it is, the table it belongs to (or is), its name, its definition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SchemaObject {
    pub kind: &'static str,
    pub table: String,
    pub name: String,
    pub definition: String,
}

impl std::fmt::Display for SchemaObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.name == self.table {
            write!(f, "{} {}", self.kind, self.table)
        } else {
            write!(f, "{} {} on {}", self.kind, self.name, self.table)
        }
    }
}

/// The statements that make objects, by how pg_dump starts them.
const STARTS: [&str; 13] = [
    "CREATE TABLE ",
    "CREATE UNLOGGED TABLE ",
    "CREATE INDEX ",
    "CREATE UNIQUE INDEX ",
    "ALTER TABLE ",
    "CREATE TRIGGER ",
    "CREATE CONSTRAINT TRIGGER ",
    "CREATE VIEW ",
    "CREATE MATERIALIZED VIEW ",
    "CREATE POLICY ",
    "CREATE SEQUENCE ",
    "CREATE RULE ",
    "CREATE EXTENSION ",
];

/// Reads a script's lines; [`objects`](Self::objects) is what it made of them.
#[derive(Debug, Default)]
pub struct SchemaObjects {
    reading: Option<String>,
    pub objects: BTreeSet<SchemaObject>,
}

impl SchemaObjects {
    /// Every object of `script`.
    pub fn of(script: &str) -> BTreeSet<SchemaObject> {
        let mut s = SchemaObjects::default();
        for line in script.lines() {
            s.line(line);
        }
        s.objects
    }

    /// One line of the script (pg_dump ends each statement with `;` at the end of a line).
    pub fn line(&mut self, line: &str) {
        let line = line.trim_end_matches(['\n', '\r']);
        if self.reading.is_none() && STARTS.iter().any(|s| line.starts_with(s)) {
            self.reading = Some(String::new());
        }
        let Some(stmt) = self.reading.as_mut() else {
            return;
        };
        stmt.push_str(line);
        stmt.push('\n');
        if line.ends_with(';') || stmt.len() > 1 << 20 {
            let stmt = self.reading.take().unwrap_or_default();
            self.objects.extend(object(&stmt));
        }
    }
}

fn qualified(r: Option<&RangeVar>) -> String {
    match r {
        Some(r) if r.schemaname.is_empty() => format!("public.{}", r.relname),
        Some(r) => format!("{}.{}", r.schemaname, r.relname),
        None => String::new(),
    }
}

/// The object a statement makes; `None` for one that makes none worth comparing (an
/// owner change) or that the parser refuses (the load reports those).
fn object(stmt: &str) -> Option<SchemaObject> {
    let parsed = pg_query::parse(stmt, 0).ok()?;
    let node = parsed
        .protobuf
        .stmts
        .first()?
        .stmt
        .as_ref()?
        .node
        .as_ref()?;
    let (kind, table, name) = match node {
        NodeEnum::CreateStmt(c) => {
            let t = qualified(c.relation.as_ref());
            ("table", t.clone(), t)
        }
        NodeEnum::IndexStmt(i) => ("index", qualified(i.relation.as_ref()), i.idxname.clone()),
        NodeEnum::AlterTableStmt(a) => {
            let t = qualified(a.relation.as_ref());
            let cmd = a.cmds.iter().find_map(|c| match c.node.as_ref() {
                Some(NodeEnum::AlterTableCmd(c)) => Some(c),
                _ => None,
            })?;
            match AlterTableType::try_from(cmd.subtype).ok()? {
                // owners are the target's own (--no-owner)
                AlterTableType::AtChangeOwner => return None,
                AlterTableType::AtAddConstraint => {
                    let name = match cmd.def.as_ref().and_then(|d| d.node.as_ref()) {
                        Some(NodeEnum::Constraint(c)) => c.conname.clone(),
                        _ => String::new(),
                    };
                    ("constraint", t, name)
                }
                AlterTableType::AtEnableRowSecurity | AlterTableType::AtForceRowSecurity => {
                    ("row level security", t.clone(), t)
                }
                _ => ("table setting", t.clone(), t),
            }
        }
        NodeEnum::CreateTrigStmt(c) => (
            "trigger",
            qualified(c.relation.as_ref()),
            c.trigname.clone(),
        ),
        NodeEnum::ViewStmt(v) => {
            let t = qualified(v.view.as_ref());
            ("view", t.clone(), t)
        }
        NodeEnum::CreateTableAsStmt(c) => {
            let t = qualified(c.into.as_ref().and_then(|i| i.rel.as_ref()));
            ("materialized view", t.clone(), t)
        }
        NodeEnum::CreatePolicyStmt(p) => {
            ("policy", qualified(p.table.as_ref()), p.policy_name.clone())
        }
        NodeEnum::CreateSeqStmt(s) => {
            let t = qualified(s.sequence.as_ref());
            ("sequence", t.clone(), t)
        }
        NodeEnum::RuleStmt(r) => ("rule", qualified(r.relation.as_ref()), r.rulename.clone()),
        NodeEnum::CreateExtensionStmt(e) => ("extension", e.extname.clone(), e.extname.clone()),
        _ => return None,
    };
    let definition = parsed
        .protobuf
        .deparse(pg_query::DeparseOptions::default())
        .unwrap_or_else(|_| stmt.split_whitespace().collect::<Vec<_>>().join(" "));
    Some(SchemaObject {
        kind,
        table,
        name,
        definition,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_known_by_table_name_and_definition_not_layout() {
        let a = SchemaObjects::of(
            "CREATE TABLE crm.\"Customer\" (\n    id integer NOT NULL,\n    city character varying(15)\n);\n\
             ALTER TABLE crm.\"Customer\" OWNER TO app;\n\
             ALTER TABLE ONLY crm.\"Customer\"\n    ADD CONSTRAINT \"Customer_pkey\" PRIMARY KEY (id);\n\
             CREATE UNIQUE INDEX email_lower ON crm.\"Customer\" USING btree (lower(city));\n",
        );
        let b = SchemaObjects::of(
            "CREATE TABLE crm.\"Customer\" (id integer NOT NULL, city varchar(15));\n\
             ALTER TABLE ONLY crm.\"Customer\" ADD CONSTRAINT \"Customer_pkey\" PRIMARY KEY (id);\n\
             CREATE UNIQUE INDEX email_lower ON crm.\"Customer\" USING btree (city);\n",
        );
        let names: Vec<String> = a.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "constraint Customer_pkey on crm.Customer",
                "index email_lower on crm.Customer",
                "table crm.Customer"
            ]
        );
        // the same table and key however laid out; the index differs in its expression
        let differ: Vec<String> = a
            .symmetric_difference(&b)
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            differ,
            [
                "index email_lower on crm.Customer",
                "index email_lower on crm.Customer"
            ]
        );
    }
}
