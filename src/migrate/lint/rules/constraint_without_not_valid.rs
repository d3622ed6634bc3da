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
    // `ADD CONSTRAINT …`, and a constraint written on an added column
    // (`ADD COLUMN c int REFERENCES t`), which is checked against every row just the same.
    let constraints = cmds.into_iter().flat_map(|c| {
        match (c.subtype(), c.def.as_deref().and_then(|d| d.node.as_ref())) {
            (AlterTableType::AtAddConstraint, Some(NodeEnum::Constraint(con))) => {
                vec![con.as_ref()]
            }
            (AlterTableType::AtAddColumn, Some(NodeEnum::ColumnDef(def))) => def
                .constraints
                .iter()
                .filter_map(|n| match n.node.as_ref() {
                    Some(NodeEnum::Constraint(con)) => Some(con.as_ref()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    });
    constraints
        .filter(|con| con.contype() == kind && !con.skip_validation)
        .map(|con| (crate::migrate::lint::table_name(rv), con))
        .collect()
}
