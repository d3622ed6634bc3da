//! `phone`: the digits replaced, the country code, length and formatting kept.

use super::{Build, OptionDoc, Options, Row, Spec, Transform};
use crate::anonymize::key::DomainKey;

pub static SPEC: Spec = Spec {
    name: "phone",
    summary: "Replaces the digits of a phone number with keyed random digits, keeping its length, its formatting (spaces, dashes, brackets) and its leading digits: the country code after a `+`, else the trunk prefix. Formatting is ignored when choosing, so `+40 721 234 567` and `+40721234567` map to the same digits.",
    options: &[
        OptionDoc { name: "keep_prefix", kind: "integer", default: "2", doc: "leading digits kept as they are (the country code, or a trunk prefix such as `07`)" },
    ],
    examples: &[
        super::Example { options: "", input: "+40 721 234 567", row: &[] },
        super::Example { options: "", input: "+40721234567", row: &[] },
        super::Example { options: "", input: "(555) 123-4567", row: &[] },
        super::Example { options: "keep_prefix = 1", input: "+1 212 555 0100", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Text]),
    build,
};

struct Phone {
    key: DomainKey,
    keep: usize,
    real: Option<std::sync::Arc<crate::anonymize::real::RealValues>>,
}

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let keep = o.int_in("keep_prefix", 0..=6)?.unwrap_or(2) as usize;
    Ok(Box::new(Phone {
        key: b.domain_key(),
        keep,
        real: b.real(),
    }))
}

impl Transform for Phone {
    fn apply(&self, value: &str, row: &dyn Row) -> Result<Option<String>, String> {
        let mut out = String::with_capacity(value.len());
        Ok(self.apply_into(value, row, &mut out)?.then_some(out))
    }

    fn apply_into(&self, value: &str, _: &dyn Row, out: &mut String) -> Result<bool, String> {
        // the digits, without a buffer from the heap: a longer run of them is hashed whole
        let mut buf = [0u8; 64];
        let mut n = 0;
        for &b in value.as_bytes().iter().filter(|b| b.is_ascii_digit()) {
            if n < buf.len() {
                buf[n] = b;
            }
            n += 1;
        }
        let mut rng = if n <= buf.len() {
            self.key.rng(&buf[..n])
        } else {
            let digits: Vec<u8> = value.bytes().filter(u8::is_ascii_digit).collect();
            self.key.rng(&digits)
        };
        // never a number the source holds: another customer's, or this one's own
        let mut digits = super::Digits::new(&mut rng);
        crate::anonymize::real::unreal_into(self.real.as_deref(), out, |_, out| {
            let mut seen = 0;
            for c in value.chars() {
                if c.is_ascii_digit() {
                    if seen < self.keep {
                        out.push(c);
                    } else if seen == self.keep {
                        // a number does not go on with a 0 after its prefix
                        out.push(char::from(b'1' + digits.below(9)));
                    } else {
                        out.push(char::from(b'0' + digits.below(10)));
                    }
                    seen += 1;
                } else {
                    out.push(c);
                }
            }
        });
        Ok(true)
    }
}
