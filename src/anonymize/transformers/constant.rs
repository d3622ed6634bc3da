//! `constant`: every value becomes the same text.

use super::{Build, OptionDoc, Options, Row, Spec, Transform};

pub static SPEC: Spec = Spec {
    name: "constant",
    summary: "Writes the same value in every row (NULLs stay NULL unless `fill_null` is set).",
    options: &[
        OptionDoc {
            name: "value",
            kind: "string",
            default: "required",
            doc: "the value written",
        },
        OptionDoc {
            name: "fill_null",
            kind: "boolean",
            default: "false",
            doc: "write the value in NULL cells too",
        },
    ],
    examples: &[super::Example {
        options: "value = \"redacted\"",
        input: "Jane Doe",
        row: &[],
    }],
    accepts: super::Accepts::Any,
    build,
};

struct Constant {
    value: String,
    fill_null: bool,
}

fn build(o: &mut Options, _: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let value = o.string("value")?;
    let value = o.require("value", value)?;
    let fill_null = o.boolean("fill_null")?.unwrap_or(false);
    Ok(Box::new(Constant { value, fill_null }))
}

impl Transform for Constant {
    fn apply(&self, _: &str, _: &dyn Row) -> Result<Option<String>, String> {
        Ok(Some(self.value.clone()))
    }
    fn takes_null(&self) -> bool {
        self.fill_null
    }
}
