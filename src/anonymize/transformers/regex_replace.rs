//! `regex-replace`: text matching a pattern replaced.

use super::{Build, OptionDoc, Options, Row, Spec, Transform};

pub static SPEC: Spec = Spec {
    name: "regex-replace",
    summary: "Replaces every match of `pattern` (Rust regex syntax) with `replacement`, which may use `$1` or `${name}` for groups; text outside the matches stays. For removing known patterns (account numbers in a reference, tokens in a URL) from otherwise harmless text.",
    options: &[
        OptionDoc { name: "pattern", kind: "string", default: "required", doc: "the regular expression" },
        OptionDoc { name: "replacement", kind: "string", default: "required", doc: "what each match becomes" },
    ],
    examples: &[
        super::Example { options: "pattern = '\\d{4}-\\d{4}'\nreplacement = \"XXXX-XXXX\"", input: "invoice 2024-0042 paid", row: &[] },
        super::Example { options: "pattern = '(?P<user>[^@\\s]+)@'\nreplacement = \"someone@\"", input: "cc: ana@firm.ro", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Text]),
    build,
};

struct RegexReplace {
    pattern: regex::Regex,
    replacement: String,
}

fn build(o: &mut Options, _: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let pattern = o.string("pattern")?;
    let pattern = o.require("pattern", pattern)?;
    let replacement = o.string("replacement")?;
    let replacement = o.require("replacement", replacement)?;
    let pattern = regex::Regex::new(&pattern)
        .map_err(|e| format!("option `pattern` of `regex-replace` is not a valid regex: {e}"))?;
    Ok(Box::new(RegexReplace {
        pattern,
        replacement,
    }))
}

impl Transform for RegexReplace {
    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        Ok(Some(
            self.pattern
                .replace_all(value, self.replacement.as_str())
                .into_owned(),
        ))
    }
}
