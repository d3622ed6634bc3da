//! `iban`: a valid IBAN with the country and length of the input.

use crate::pii::validate::mod97;
use rand::RngExt;

use super::{Build, Options, Row, Spec, Transform};
use crate::anonymize::key::DomainKey;

pub static SPEC: Spec = Spec {
    name: "iban",
    summary: "A valid IBAN (mod-97 check digits) with the input's country code, length, grouping spaces and the letter/digit pattern of its account part. A value that is not an IBAN is an error naming the row.",
    options: &[],
    examples: &[
        super::Example { options: "", input: "RO49AAAA1B31007593840000", row: &[] },
        super::Example { options: "", input: "DE89 3704 0044 0532 0130 00", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Text]),
    build,
};

struct Iban {
    key: DomainKey,
    real: Option<std::sync::Arc<crate::anonymize::real::RealValues>>,
}

fn build(_: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    Ok(Box::new(Iban {
        key: b.domain_key(),
        real: b.real(),
    }))
}

impl Transform for Iban {
    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
        // ASCII first: the byte slicing below is then on character boundaries
        let ok = compact.is_ascii()
            && compact.len() >= 15
            && compact.len() <= 34
            && compact[..2].chars().all(|c| c.is_ascii_uppercase())
            && compact[2..4].chars().all(|c| c.is_ascii_digit())
            && compact[4..].chars().all(|c| c.is_ascii_alphanumeric());
        if !ok {
            return Err(format!(
                "`{value}` is not an IBAN (country, 2 check digits, account)"
            ));
        }
        let mut rng = self.key.rng(compact.as_bytes());
        let country = &compact[..2];
        // never an account the source holds
        let fresh = crate::anonymize::real::unreal(self.real.as_deref(), |_| {
            let mut account = String::with_capacity(compact.len());
            for c in compact[4..].chars() {
                if c.is_ascii_digit() {
                    super::push_digits(&mut account, 1, &mut rng);
                } else {
                    account.push(char::from(b'A' + rng.random_range(0..26u8)));
                }
            }
            let r = mod97(&format!("{country}00{account}")).unwrap_or(0);
            format!("{country}{:02}{account}", 98 - r)
        });
        // the input's spacing, character for character
        let mut chars = fresh.chars();
        let out: String = value
            .chars()
            .map(|c| {
                if c.is_whitespace() {
                    c
                } else {
                    chars.next().unwrap_or(c)
                }
            })
            .collect();
        Ok(Some(out))
    }
}
