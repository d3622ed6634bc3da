//! `null`: every value becomes NULL.

use super::{Build, Options, Row, Spec, Transform};

pub static SPEC: Spec = Spec {
    name: "null",
    summary: "Writes NULL (the column must be nullable).",
    options: &[],
    examples: &[super::Example {
        options: "",
        input: "secret note",
        row: &[],
    }],
    accepts: super::Accepts::Any,
    build,
};

struct Null;

fn build(_: &mut Options, _: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    Ok(Box::new(Null))
}

impl Transform for Null {
    fn keeps_distinct(&self) -> bool {
        true
    }

    fn max_chars(&self) -> Option<usize> {
        // NULL holds no characters, and NULLs never collide under a unique key
        Some(0)
    }

    fn apply(&self, _: &str, _: &dyn Row) -> Result<Option<String>, String> {
        Ok(None)
    }
}
