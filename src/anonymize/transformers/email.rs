//! `email`: a realistic address, unique per input.

use super::{Build, OptionDoc, Options, Row, Spec, Transform};
use crate::anonymize::key::DomainKey;
use crate::seed::locale::{fake_into, slug_into};
use crate::seed::profile::{FakeKind, Locale};

pub static SPEC: Spec = Spec {
    name: "email",
    summary: "An address `first.last.tag@domain` built from a fake name; the tag (8 base32 characters of the keyed hash) keeps distinct inputs distinct. Give every column holding the same people's addresses one `domain` and they keep matching across tables. Inputs differing only in case map alike.",
    options: &[
        OptionDoc { name: "domain_name", kind: "string", default: "`example.com`", doc: "the mail domain written, or `keep` to keep each input's own domain" },
        OptionDoc { name: "locale", kind: "string", default: "`en`", doc: "names from `en` or `ro` (folded to ASCII)" },
    ],
    examples: &[
        super::Example { options: "", input: "jane.doe@gmail.com", row: &[] },
        super::Example { options: "", input: "Jane.Doe@Gmail.com", row: &[] },
        super::Example { options: "domain_name = \"keep\"", input: "MARY.SMITH@sakilacustomer.org", row: &[] },
    ],
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

impl Transform for Email {
    fn keeps_distinct(&self) -> bool {
        true
    }

    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        let normalized = value.trim().to_lowercase();
        let h = self.key.hash(normalized.as_bytes());
        // the same stream as self.key.rng(normalized), without hashing twice
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::from_seed(h);
        let (mut first, mut last) = (String::new(), String::new());
        fake_into(&mut first, FakeKind::FirstName, self.locale, &mut rng);
        fake_into(&mut last, FakeKind::LastName, self.locale, &mut rng);
        let mut out = String::with_capacity(40);
        slug_into(&mut out, &first, '.');
        out.push('.');
        slug_into(&mut out, &last, '.');
        out.push('.');
        out.push_str(&super::hash::base32(&h[..5]));
        out.push('@');
        match &self.domain {
            Some(d) => out.push_str(d),
            None => out.push_str(value.rsplit_once('@').map_or("example.com", |(_, d)| d)),
        }
        Ok(Some(out))
    }
}
