//! `national-id`: a valid Romanian CNP.

use crate::pii::validate::cnp_check;
use rand::RngExt;

use super::{Build, OptionDoc, Options, Row, Spec, Transform};
use crate::anonymize::key::DomainKey;

pub static SPEC: Spec = Spec {
    name: "national-id",
    summary: "A national identity number with a valid check digit. `ro` (the Romanian CNP, 13 digits: sex and century, birth date, county, serial, check) keeps the input's sex-and-century digit and birth year when they are valid, so ages and genders keep their distribution; the birth day, county and serial are keyed random.",
    options: &[
        OptionDoc { name: "country", kind: "string", default: "`ro`", doc: "only `ro` so far" },
        OptionDoc { name: "keep_birth_year", kind: "boolean", default: "true", doc: "keep the year of birth" },
    ],
    examples: &[
        super::Example { options: "", input: "1800101221144", row: &[] },
        super::Example { options: "keep_birth_year = false", input: "2950315400013", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Text]),
    build,
};

struct Cnp {
    key: DomainKey,
    keep_year: bool,
    real: Option<std::sync::Arc<crate::anonymize::real::RealValues>>,
}

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    match o.string("country")?.as_deref() {
        None | Some("ro") => {}
        Some(other) => {
            return Err(format!(
                "national-id knows `ro` (Romanian CNP) only, not `{other}`"
            ))
        }
    }
    let keep_year = o.boolean("keep_birth_year")?.unwrap_or(true);
    Ok(Box::new(Cnp {
        key: b.domain_key(),
        keep_year,
        real: b.real(),
    }))
}

impl Transform for Cnp {
    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        let v = value.trim();
        let mut rng = self.key.rng(v.as_bytes());
        let digits = v.len() == 13 && v.bytes().all(|b| b.is_ascii_digit());
        let sex = match v.as_bytes().first() {
            Some(b) if digits && (b'1'..=b'8').contains(b) => *b - b'0',
            _ => rng.random_range(1..=2u8),
        };
        let year = if self.keep_year && digits {
            v[1..3].parse::<u32>().unwrap_or(0)
        } else {
            rng.random_range(0..100u32)
        };
        // never a CNP the source holds
        Ok(Some(crate::anonymize::real::unreal(
            self.real.as_deref(),
            |_| {
                let month = rng.random_range(1..=12u32);
                let day = rng.random_range(1..=28u32);
                let county = rng.random_range(1..=46u32);
                let serial = rng.random_range(1..=999u32);
                let first12 = format!("{sex}{year:02}{month:02}{day:02}{county:02}{serial:03}");
                format!("{first12}{}", cnp_check(&first12))
            },
        )))
    }
}
