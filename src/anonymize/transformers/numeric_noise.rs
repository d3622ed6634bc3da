//! `numeric-noise`: numbers moved by a keyed relative amount.

use super::{Build, OptionDoc, Options, Row, Spec, Transform};
use crate::anonymize::key::DomainKey;

pub static SPEC: Spec = Spec {
    name: "numeric-noise",
    summary: "Multiplies a number by a keyed factor between 1 − `percent`/100 and 1 + `percent`/100, keeping its number of decimals (an integer stays an integer) and its sign; totals and distributions stay close, exact amounts do not survive.",
    options: &[
        OptionDoc { name: "percent", kind: "number", default: "10", doc: "the largest relative change, above 0 and at most 100" },
    ],
    examples: &[
        super::Example { options: "", input: "4.99", row: &[] },
        super::Example { options: "percent = 25", input: "1200", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Integer, super::Kind::Numeric, super::Kind::Float, super::Kind::Text]),
    build,
};

struct Noise {
    key: DomainKey,
    percent: f64,
}

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let percent = o.float("percent")?.unwrap_or(10.0);
    if !(percent > 0.0 && percent <= 100.0) {
        return Err(format!(
            "option `percent` of `numeric-noise` must be above 0 and at most 100, found {percent}"
        ));
    }
    Ok(Box::new(Noise {
        key: b.domain_key(),
        percent,
    }))
}

impl Transform for Noise {
    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        let v = value.trim();
        let x: f64 = v
            .parse()
            .map_err(|_| format!("`{value}` is not a number"))?;
        if !x.is_finite() {
            return Ok(Some(value.to_string()));
        }
        let decimals = v.split_once('.').map_or(0, |(_, f)| f.len());
        let u = (self.key.hash_u64(v.as_bytes()) >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        let factor = 1.0 + (u * 2.0 - 1.0) * self.percent / 100.0;
        Ok(Some(format!("{:.*}", decimals, x * factor)))
    }
}
