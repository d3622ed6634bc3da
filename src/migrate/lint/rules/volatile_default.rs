//! `volatile-default`: a new column whose default is volatile (`random()`,
//! `gen_random_uuid()`, `clock_timestamp()`, a sequence) makes PostgreSQL rewrite the whole
//! table under an ACCESS EXCLUSIVE lock; a constant or `now()` default does not.

use pg_query::protobuf::{ColumnDef, ConstrType};
use pg_query::{NodeEnum, NodeRef};

use crate::migrate::lint::{added_columns, dotted, table_name, Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "volatile-default",
    risk: Risk::Medium,
    advice: "add the column without a default (or with a constant one), set the default \
             afterwards with `ALTER COLUMN … SET DEFAULT`, and backfill old rows in batches",
    bad: "ALTER TABLE orders ADD COLUMN public_id uuid DEFAULT gen_random_uuid();",
    good: "ALTER TABLE orders ADD COLUMN public_id uuid;\n\
           ALTER TABLE orders ALTER COLUMN public_id SET DEFAULT gen_random_uuid();",
    check,
};

/// Built-in functions whose value changes per row: a default calling one is evaluated for
/// every existing row.
const VOLATILE: &[&str] = &[
    "random",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "txid_current",
    "setseed",
];

/// Whether the column is declared `serial`/`bigserial`/`smallserial` (a sequence default).
pub fn is_serial(def: &ColumnDef) -> bool {
    def.type_name.as_ref().is_some_and(|t| {
        matches!(
            dotted(&t.names).to_ascii_lowercase().as_str(),
            "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2"
        )
    })
}

pub fn volatile_call(node: &NodeEnum) -> Option<String> {
    node.nodes().into_iter().find_map(|(n, ..)| match n {
        NodeRef::FuncCall(f) => {
            let name = dotted(&f.funcname);
            let base = name
                .rsplit('.')
                .next()
                .unwrap_or(&name)
                .to_ascii_lowercase();
            VOLATILE
                .contains(&base.as_str())
                .then(|| format!("{name}()"))
        }
        _ => None,
    })
}

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    let Some((rv, defs)) = added_columns(ctx) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for def in defs {
        let mut defaults: Vec<&NodeEnum> = def
            .raw_default
            .iter()
            .filter_map(|d| d.node.as_ref())
            .collect();
        for c in &def.constraints {
            if let Some(NodeEnum::Constraint(c)) = c.node.as_ref() {
                if c.contype() == ConstrType::ConstrDefault {
                    defaults.extend(c.raw_expr.iter().filter_map(|e| e.node.as_ref()));
                }
            }
        }
        let found = if is_serial(def) {
            Some("a sequence (serial)".to_string())
        } else {
            defaults.into_iter().find_map(volatile_call)
        };
        if let Some(what) = found {
            out.push(format!(
                "adds {}.{} with a volatile default ({what}): the whole table is rewritten \
                 while reads and writes wait",
                table_name(rv),
                def.colname
            ));
        }
    }
    out
}
