//! `postal-code`: a postal code in the input's own format.

use rand::RngExt;

use super::{Build, OptionDoc, Options, Row, Spec, Transform};
use crate::anonymize::key::DomainKey;

pub static SPEC: Spec = Spec {
    name: "postal-code",
    summary: "Keeps the first `keep_prefix` characters (the region) and the input's format — digits become keyed digits, letters keyed letters of the same case, spaces and dashes stay — so codes from any country (`90210`, `010101`, `SW1A 1AA`) keep their shape and rough region.",
    options: &[
        OptionDoc { name: "keep_prefix", kind: "integer", default: "1", doc: "leading characters kept" },
    ],
    examples: &[
        super::Example { options: "", input: "90210", row: &[] },
        super::Example { options: "", input: "010101", row: &[] },
        super::Example { options: "keep_prefix = 2", input: "SW1A 1AA", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Text]),
    build,
};

struct PostalCode {
    key: DomainKey,
    keep: usize,
}

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let keep = o.int_in("keep_prefix", 0..=10)?.unwrap_or(1) as usize;
    Ok(Box::new(PostalCode {
        key: b.domain_key(),
        keep,
    }))
}

impl Transform for PostalCode {
    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        let mut rng = self.key.rng(value.as_bytes());
        // a code no longer than its prefix (`3`) would be kept whole: nothing is kept
        let alnum = value.chars().filter(char::is_ascii_alphanumeric).count();
        let keep = if alnum <= self.keep { 0 } else { self.keep };
        let mut draw = || -> String {
            value
                .chars()
                .enumerate()
                .map(|(i, c)| match c {
                    _ if i < keep => c,
                    '0'..='9' => char::from(b'0' + rng.random_range(0..10u8)),
                    'a'..='z' => char::from(b'a' + rng.random_range(0..26u8)),
                    'A'..='Z' => char::from(b'A' + rng.random_range(0..26u8)),
                    other => other,
                })
                .collect()
        };
        // the code itself, drawn by chance, would stay in its own row: draw again
        let mut out = draw();
        for _ in 0..8 {
            if out != value || alnum == 0 {
                break;
            }
            out = draw();
        }
        Ok(Some(out))
    }
}
