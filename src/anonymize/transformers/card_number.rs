//! `card-number`: a Luhn-valid card number of the input's length.

use super::{Build, OptionDoc, Options, Row, Spec, Transform};
use crate::anonymize::key::DomainKey;
use crate::pii::validate::luhn_sum;

pub static SPEC: Spec = Spec {
    name: "card-number",
    summary: "A card number that passes the Luhn check, with the input's length and separators; `keep_bin` keeps the first six digits (the issuer), so card-type logic still works.",
    options: &[
        OptionDoc { name: "keep_bin", kind: "boolean", default: "false", doc: "keep the first 6 digits" },
    ],
    examples: &[
        super::Example { options: "", input: "4111 1111 1111 1111", row: &[] },
        super::Example { options: "keep_bin = true", input: "5500-0000-0000-0004", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Text]),
    build,
};

struct Card {
    key: DomainKey,
    keep_bin: bool,
    real: Option<std::sync::Arc<crate::anonymize::real::RealValues>>,
}

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let keep_bin = o.boolean("keep_bin")?.unwrap_or(false);
    Ok(Box::new(Card {
        key: b.domain_key(),
        keep_bin,
        real: b.real(),
    }))
}

impl Transform for Card {
    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        let digits: String = value.chars().filter(char::is_ascii_digit).collect();
        if digits.len() < 12 || digits.len() > 19 {
            return Err(format!("`{value}` is not a card number (12 to 19 digits)"));
        }
        let mut rng = self.key.rng(digits.as_bytes());
        // never a card number the source holds
        let body = crate::anonymize::real::unreal(self.real.as_deref(), |_| {
            let mut body = String::with_capacity(digits.len());
            if self.keep_bin {
                body.push_str(&digits[..6]);
            } else {
                // a leading zero would read as no issuer at all
                body.push(char::from(
                    b'1' + rand::RngExt::random_range(&mut rng, 0..9u8),
                ));
            }
            let missing = digits.len() - 1 - body.len();
            super::push_digits(&mut body, missing, &mut rng);
            let check = (10 - luhn_sum(&body, true) % 10) % 10;
            body.push(char::from(b'0' + check as u8));
            body
        });
        let mut it = body.chars();
        Ok(Some(
            value
                .chars()
                .map(|c| {
                    if c.is_ascii_digit() {
                        it.next().unwrap_or(c)
                    } else {
                        c
                    }
                })
                .collect(),
        ))
    }
}
