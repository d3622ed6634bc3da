//! The shared machinery of the fake-data transformers (names, places, companies): a
//! value from the locale's lists, chosen by a stream seeded with the keyed hash of the
//! input, in the input's case style.

use super::{Build, OptionDoc, Options, Row, Transform};
use crate::anonymize::key::DomainKey;
use crate::seed::locale::fake_into;
use crate::seed::profile::{FakeKind, Locale};

pub static OPTIONS: [OptionDoc; 1] = [OptionDoc {
    name: "locale",
    kind: "string",
    default: "`en`",
    doc: "`en` or `ro` (Romanian, with diacritics)",
}];

struct Fake {
    kind: FakeKind,
    key: DomainKey,
    locale: Locale,
}

pub fn build(kind: FakeKind, o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let locale = super::locale(o)?;
    Ok(Box::new(Fake {
        kind,
        key: b.domain_key(),
        locale,
    }))
}

impl Transform for Fake {
    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        // `MARIA` and `Maria` are one person: the choice is keyed on the folded value,
        // the case style comes from the value as written
        let folded = value.trim().to_lowercase();
        let mut rng = self.key.rng(folded.as_bytes());
        let mut out = String::new();
        // a draw equal to the value itself would leave it in its own row: draw again from
        // the same stream (deterministic; the lists are long enough that 8 draws suffice)
        for _ in 0..8 {
            out.clear();
            fake_into(&mut out, self.kind, self.locale, &mut rng);
            if out.to_lowercase() != folded {
                break;
            }
        }
        Ok(Some(match_case(value, out)))
    }
}

/// `out` in the case style of `input`: all upper, all lower, or as generated.
pub fn match_case(input: &str, out: String) -> String {
    let letters = || input.chars().filter(|c| c.is_alphabetic());
    if letters().count() < 2 {
        out
    } else if letters().all(char::is_uppercase) {
        out.to_uppercase()
    } else if letters().all(char::is_lowercase) {
        out.to_lowercase()
    } else {
        out
    }
}
