//! `full-name`: a first and a last name.

use super::{Build, Options, Row, Spec, Transform};
use crate::anonymize::key::DomainKey;
use crate::seed::locale::fake_into;
use crate::seed::profile::{FakeKind, Locale};

pub static SPEC: Spec = Spec {
    name: "full-name",
    summary: "A first and a last name from the locale's lists, chosen by the keyed hash of the whole input, case-folded (`MARIA ANDERS` and `Maria Anders` are one person); the case style is kept.",
    options: &super::fake::OPTIONS,
    examples: &[
        super::Example { options: "", input: "Jane Doe", row: &[] },
        super::Example { options: "", input: "JANE DOE", row: &[] },
        super::Example { options: "locale = \"ro\"", input: "Ioana Popescu", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Text]),
    build,
};

struct FullName {
    key: DomainKey,
    locale: Locale,
}

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let locale = super::locale(o)?;
    Ok(Box::new(FullName {
        key: b.domain_key(),
        locale,
    }))
}

impl Transform for FullName {
    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        // one person whatever the case: keyed on the folded value (issue 14)
        super::fake::with_folded(value, |folded| {
            let mut rng = self.key.rng(folded.as_bytes());
            let mut out = String::new();
            // never the value itself, nor either of its words left in place
            let words: Vec<&str> = folded.split_whitespace().collect();
            for _ in 0..8 {
                out.clear();
                fake_into(&mut out, FakeKind::FirstName, self.locale, &mut rng);
                out.push(' ');
                fake_into(&mut out, FakeKind::LastName, self.locale, &mut rng);
                if !out
                    .split_whitespace()
                    .any(|w| words.iter().any(|x| super::fake::same_folded(w, x)))
                {
                    break;
                }
            }
            Ok(Some(super::fake::match_case(value, out)))
        })
    }
}
