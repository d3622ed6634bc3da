//! `foreign-key-locks-referenced-table`: adding a foreign key takes a SHARE ROW EXCLUSIVE lock on the referenced table too — also for a brand-new table — which blocks every write to that existing table while the lock waits and is held.

use pg_query::protobuf::{ConstrType, Constraint};
use pg_query::NodeEnum;

use crate::migrate::lint::table_name;

use crate::migrate::lint::{Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "foreign-key-locks-referenced-table",
    risk: Risk::Medium,
    advice: "set a short lock_timeout (dataforge's runner does) and deploy when writes to the referenced table are light; NOT VALID keeps the lock short on an existing referencing table",
    bad: "CREATE TABLE invoices (id bigint PRIMARY KEY, order_id bigint REFERENCES orders (id));",
    good: "CREATE TABLE invoices (id bigint PRIMARY KEY, order_id bigint);",
    check,
};

fn take<'a>(n: &'a pg_query::Node, fks: &mut Vec<&'a Constraint>) {
    if let Some(NodeEnum::Constraint(c)) = n.node.as_ref() {
        if c.contype() == ConstrType::ConstrForeign {
            fks.push(c);
        }
    }
}

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    let mut fks: Vec<&Constraint> = Vec::new();
    match ctx.node {
        NodeEnum::CreateStmt(c) => {
            for e in &c.table_elts {
                match e.node.as_ref() {
                    Some(NodeEnum::ColumnDef(d)) => {
                        d.constraints.iter().for_each(|k| take(k, &mut fks))
                    }
                    _ => take(e, &mut fks),
                }
            }
        }
        NodeEnum::AlterTableStmt(a) => {
            for cmd in &a.cmds {
                if let Some(NodeEnum::AlterTableCmd(cmd)) = cmd.node.as_ref() {
                    match cmd.def.as_ref().and_then(|d| d.node.as_ref()) {
                        Some(NodeEnum::ColumnDef(d)) => {
                            d.constraints.iter().for_each(|k| take(k, &mut fks))
                        }
                        _ => {
                            if let Some(d) = cmd.def.as_ref() {
                                take(d, &mut fks)
                            }
                        }
                    }
                }
            }
        }
        _ => {}
    }
    fks.into_iter()
        .filter_map(|c| c.pktable.as_ref())
        .filter(|rv| !ctx.is_new(Some(rv)))
        .map(|rv| {
            format!(
                "a foreign key to {} locks that existing table (SHARE ROW EXCLUSIVE): writes to it wait while the lock does",
                table_name(rv)
            )
        })
        .collect()
}
