//! `keep`: the value passes through unchanged, byte for byte.

use super::{Build, Options, Row, Spec, Transform};

pub static SPEC: Spec = Spec {
    name: "keep",
    summary: "Passes the value through unchanged (the column is not personal data). Every column must say so explicitly: nothing passes unmentioned.",
    options: &[],
    examples: &[super::Example { options: "", input: "2006-02-15 09:34:33", row: &[] }],
    accepts: super::Accepts::Any,
    build,
};

struct Keep;

fn build(_: &mut Options, _: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    Ok(Box::new(Keep))
}

impl Transform for Keep {
    fn keeps_distinct(&self) -> bool {
        true
    }

    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        Ok(Some(value.to_string()))
    }
    fn is_keep(&self) -> bool {
        true
    }
}
