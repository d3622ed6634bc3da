//! `rename-column`: the running application still uses the old name.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::migrate::lint::{table_name, Ctx, Risk, Rule};

pub const RULE: Rule = Rule {
    name: "rename-column",
    risk: Risk::High,
    advice: "expand-contract: add the new column, write both, backfill, move reads, then drop \
             the old column in a later release (Prisma: keep the field and use @map)",
    bad: "ALTER TABLE users RENAME COLUMN name TO full_name;",
    good: "ALTER TABLE users ADD COLUMN full_name text;",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<String> {
    match ctx.node {
        NodeEnum::RenameStmt(r)
            if r.rename_type() == ObjectType::ObjectColumn
                && r.relation_type() == ObjectType::ObjectTable
                && !ctx.is_new(r.relation.as_ref()) =>
        {
            let table = r.relation.as_ref().map(table_name).unwrap_or_default();
            vec![format!(
                "renames column {table}.{} to {}: code using the old name fails from this moment",
                r.subname, r.newname
            )]
        }
        _ => Vec::new(),
    }
}
