//! `email`: a realistic address, unique per input.

use super::{Build, OptionDoc, Options, Row, Spec, Transform};
use crate::anonymize::key::DomainKey;
use crate::seed::locale::{fake_into, slug_into};
use crate::seed::profile::{FakeKind, Locale};

pub static SPEC: Spec = Spec {
    name: "email",
    summary: "An address `first.last.tag@domain` built from a fake name; the tag (8 base32 characters of the keyed hash) keeps distinct inputs distinct. Give every column holding the same people's addresses one `domain` and they keep matching across tables. Inputs differing only in case are the same person (the same name) written in the input's case pattern: `ann.lee@x` → lower case, `ANN.LEE@X` → upper, `Ann.Lee@X` → capitalised names; any other mix keeps the name and takes a tag of its own, so values that differ only in case stay distinct under a case-sensitive unique key.",
    options: &[
        OptionDoc { name: "domain_name", kind: "string", default: "`example.com`", doc: "the mail domain written, or `keep` to keep each input's own domain" },
        OptionDoc { name: "locale", kind: "string", default: "`en`", doc: "names from `en` or `ro` (folded to ASCII)" },
    ],
    examples: &[
        super::Example { options: "", input: "jane.doe@gmail.com", row: &[] },
        super::Example { options: "", input: "Jane.Doe@Gmail.com", row: &[] },
        super::Example { options: "", input: "JANE.DOE@GMAIL.COM", row: &[] },
        super::Example { options: "", input: "Jane.Doe@Gmail.Com", row: &[] },
        super::Example { options: "domain_name = \"keep\"", input: "MARY.SMITH@sakilacustomer.org", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Text]),
    build,
};

struct Email {
    key: DomainKey,
    domain: Option<String>,
    locale: Locale,
}

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let domain = match o.string("domain_name")? {
        None => Some("example.com".to_string()),
        Some(d) if d == "keep" => None,
        Some(d) => Some(d),
    };
    let locale = super::locale(o)?;
    Ok(Box::new(Email {
        key: b.domain_key(),
        domain,
        locale,
    }))
}

/// The most characters of a local part.
const LOCAL_MAX: usize = 64;

impl Transform for Email {
    fn keeps_distinct(&self) -> bool {
        true
    }

    fn max_chars(&self) -> Option<usize> {
        // the input's own domain (`domain_name = "keep"`) has no bound known here
        self.domain
            .as_ref()
            .map(|d| LOCAL_MAX + 1 + d.chars().count())
    }

    fn apply(&self, value: &str, row: &dyn Row) -> Result<Option<String>, String> {
        let mut out = String::with_capacity(64);
        Ok(self.apply_into(value, row, &mut out)?.then_some(out))
    }

    fn apply_into(&self, value: &str, _: &dyn Row, out: &mut String) -> Result<bool, String> {
        let trimmed = crate::pii::trim(value);
        let written = Case::of(trimmed);
        // most addresses are lower case already: no copy to fold them
        let folded;
        let normalized = if written == Case::Lower {
            trimmed
        } else {
            folded = trimmed.to_lowercase();
            &folded
        };
        let h = self.key.hash(normalized.as_bytes());
        // the same stream as self.key.rng(normalized), without hashing twice
        let mut rng = crate::anonymize::key::stream(h);
        thread_local! {
            static NAMES: std::cell::RefCell<(String, String)> =
                const { std::cell::RefCell::new((String::new(), String::new())) };
        }
        // blanks around the value make another value under a unique key: Mixed too
        let case = if trimmed.len() == value.len() {
            written
        } else {
            Case::Mixed
        };
        // a mixed pattern is not one of the three a lowercase value can be rendered in:
        // its tag comes from the value as written, so it differs from each of them
        let tag_hash = match case {
            Case::Mixed => self.key.hash(value.as_bytes()),
            _ => h,
        };
        // 5 bytes: 8 base32 characters
        const TAG: usize = 8;
        let names = match case {
            Case::Mixed => Case::of(trimmed.rsplit_once('@').map_or(trimmed, |(l, _)| l)),
            c => c,
        };
        let name = |out: &mut String, part: &str| {
            let at = out.len();
            slug_into(out, part, '.');
            if matches!(names, Case::Title | Case::Upper) {
                // a slug is ASCII: its first byte is a whole character
                if let Some(first) = out[at..].get_mut(..1) {
                    first.make_ascii_uppercase();
                }
            }
        };
        let start = out.len();
        NAMES.with_borrow_mut(|(first, last)| {
            first.clear();
            last.clear();
            fake_into(first, FakeKind::FirstName, self.locale, &mut rng);
            fake_into(last, FakeKind::LastName, self.locale, &mut rng);
            name(out, first);
            out.push('.');
            name(out, last);
        });
        // a local part holds at most 64 characters (RFC 5321): the names give way, the
        // tag that keeps values distinct stays (slugs are ASCII, so bytes are characters)
        out.truncate(start + LOCAL_MAX - 1 - TAG);
        out.push('.');
        super::hash::base32_into(out, &tag_hash[..5]);
        out.push('@');
        match &self.domain {
            Some(d) => out.push_str(d),
            None => out.push_str(trimmed.rsplit_once('@').map_or("example.com", |(_, d)| d)),
        }
        if case == Case::Upper {
            out[start..].make_ascii_uppercase();
        } else if case == Case::Lower {
            out[start..].make_ascii_lowercase();
        }
        Ok(true)
    }
}

/// The case pattern of a value: every way a lowercase value can be written gets its own
/// rendering, so values that differ only in case never share an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// No capital letter.
    Lower,
    /// No small letter (and at least one capital).
    Upper,
    /// Each run of letters is a capital followed by small letters: `Ann.Lee@Firm.Com`.
    Title,
    Mixed,
}

impl Case {
    fn of(s: &str) -> Case {
        // most addresses: ASCII without a capital, told in one pass without an allocation
        if !s
            .bytes()
            .fold(false, |any, b| any | (b >= 0x80) | b.is_ascii_uppercase())
        {
            return Case::Lower;
        }
        // a class is an exact rendering of the lower-case form; a value that is not one
        // (`ǅ`, a Kelvin sign that folds to `k`) is Mixed and keyed as written
        let lower = s.to_lowercase();
        if s == lower {
            return Case::Lower;
        }
        if s == lower.to_uppercase() {
            return Case::Upper;
        }
        let mut title = String::with_capacity(lower.len());
        let mut start = true;
        for c in lower.chars() {
            if c.is_alphabetic() {
                if start {
                    title.extend(c.to_uppercase());
                } else {
                    title.push(c);
                }
                start = false;
            } else {
                title.push(c);
                start = true;
            }
        }
        if s == title {
            Case::Title
        } else {
            Case::Mixed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Box<dyn Transform> {
        let key = crate::anonymize::transformers::example_key();
        let cols = ["email".to_string()];
        let b = Build {
            key: &key,
            domain: "email".into(),
            columns: &cols,
            column: "email",
            reals: None,
            ty: None,
        };
        build(&mut Options::new("email", toml::Table::new()), &b).unwrap()
    }

    /// Under a case-insensitive key (citext, a nondeterministic collation, a unique index
    /// on lower(email)) the source's values differ in more than case: their outputs must
    /// too. Every other distinct-keeping transformer writes one case (hex, base32, digits,
    /// lower-case addresses), so this is the one that could break such a key.
    #[test]
    fn addresses_distinct_whatever_the_case_stay_so() {
        let t = email();
        let mut seen = std::collections::HashSet::new();
        for i in 0..5000 {
            let v = match i % 4 {
                0 => format!("ann.lee{i}@firm.example"),
                1 => format!("ANN.LEE{i}@FIRM.EXAMPLE"),
                2 => format!("Ann.Lee{i}@Firm.Example"),
                _ => format!("aNn.LeE{i}@firm.example"),
            };
            let out = t
                .apply(&v, &crate::anonymize::transformers::NoRow)
                .unwrap()
                .unwrap();
            assert!(seen.insert(out.to_lowercase()), "{v} met another address");
        }
    }

    /// Values that differ only in case stay distinct (a plain UNIQUE key allows them all)
    /// and keep their pattern; the person behind them is one (issue 14).
    #[test]
    fn case_variants_stay_distinct_and_keep_their_pattern() {
        let t = email();
        let variants = [
            "ann.lee@firm.example",
            "ANN.LEE@FIRM.EXAMPLE",
            "Ann.Lee@Firm.Example",
            "Ann.Lee@firm.example",
            "ann.Lee@firm.example",
            "aNN.lee@firm.example",
        ];
        let outs: Vec<String> = variants
            .iter()
            .map(|v| {
                t.apply(v, &crate::anonymize::transformers::NoRow)
                    .unwrap()
                    .unwrap()
            })
            .collect();
        let distinct: std::collections::BTreeSet<&String> = outs.iter().collect();
        assert_eq!(distinct.len(), variants.len(), "{outs:?}");
        let person = |o: &str| {
            o.to_lowercase()
                .split('.')
                .take(2)
                .collect::<Vec<_>>()
                .join(".")
        };
        assert!(
            outs.iter().all(|o| person(o) == person(&outs[0])),
            "one person: {outs:?}"
        );
        assert_eq!(outs[0], outs[0].to_lowercase());
        assert_eq!(outs[1], outs[1].to_uppercase());
        assert!(
            outs[2].starts_with(|c: char| c.is_uppercase()),
            "{}",
            outs[2]
        );
        assert!(
            outs[3].starts_with(|c: char| c.is_uppercase()),
            "names capitalised: {}",
            outs[3]
        );
        // blanks make another value under a unique key, and so does a letter that only
        // folds to the same lower case (a Kelvin sign, a titlecase digraph)
        let other = |v: &str| {
            t.apply(v, &crate::anonymize::transformers::NoRow)
                .unwrap()
                .unwrap()
        };
        assert_ne!(other(" Ann.Lee@firm.example "), outs[3]);
        assert_ne!(other("\u{212A}ate@x.com"), other("Kate@x.com"));
        assert_ne!(other("\u{1C5}@x.com"), other("\u{1C6}@x.com"));
        let long = format!("{}@x.com", "a".repeat(300));
        assert!(
            other(&long).split('@').next().unwrap().len() <= 64,
            "a local part's limit"
        );
    }
}
