//! Shared by `foreign-key-without-not-valid` and `check-without-not-valid`: an added
//! constraint that is validated at once scans the table while holding its lock.

use pg_query::protobuf::{AlterTableType, ConstrType, Constraint};
use pg_query::NodeEnum;

use crate::migrate::lint::{existing_table_cmds, Ctx};

/// Constraints of `kind` added to an existing table without NOT VALID.
pub fn validated_at_once<'a>(ctx: &Ctx<'a>, kind: ConstrType) -> Vec<(String, &'a Constraint)> {
    let Some((rv, cmds)) = existing_table_cmds(ctx) else {
        return Vec::new();
    };
    cmds.into_iter()
        .filter(|c| c.subtype() == AlterTableType::AtAddConstraint)
        .filter_map(|c| match c.def.as_deref().and_then(|d| d.node.as_ref()) {
            Some(NodeEnum::Constraint(con)) if con.contype() == kind && !con.skip_validation => {
                Some((crate::migrate::lint::table_name(rv), con.as_ref()))
            }
            _ => None,
        })
        .collect()
}
