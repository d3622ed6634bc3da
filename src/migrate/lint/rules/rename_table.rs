//! `rename-table`: the running application still uses the old name.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::migrate::lint::{table_name, Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "rename-table",
    risk: Risk::High,
    advice: "expand-contract: create the new table (or a view with the new name over the \
             old table), move the application to it, then retire the old name in a later \
             release",
    bad: "ALTER TABLE customers RENAME TO clients;",
    good: "CREATE VIEW clients AS SELECT * FROM customers;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    match ctx.node {
        NodeEnum::RenameStmt(r)
            if r.rename_type() == ObjectType::ObjectTable && !ctx.is_new(r.relation.as_ref()) =>
        {
            let from = r.relation.as_ref().map(table_name).unwrap_or_default();
            vec![format!(
                "renames table {from} to {}: code using the old name fails from this moment",
                r.newname
            )]
        }
        _ => Vec::new(),
    }
}
