//! `integer-id`: a keyed permutation of the integers 0 … 2^bits − 1.

use super::{Build, OptionDoc, Options, Row, Spec, Transform};
use crate::anonymize::key::DomainKey;

pub static SPEC: Spec = Spec {
    name: "integer-id",
    summary: "A keyed permutation of the non-negative integers below 2^`bits` (a Feistel network with cycle walking): one-to-one, so keys stay unique and, with one `domain`, foreign keys keep matching; outputs stay in range, so an `integer` column still fits. A negative or too large input is an error naming the row.",
    options: &[
        OptionDoc { name: "bits", kind: "integer", default: "31", doc: "the range: 31 fits `integer`, 63 fits `bigint`; 8 to 63" },
    ],
    examples: &[
        super::Example { options: "", input: "1", row: &[] },
        super::Example { options: "", input: "2", row: &[] },
        super::Example { options: "bits = 16", input: "599", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Integer, super::Kind::Numeric, super::Kind::Text]),
    build,
};

struct IntegerId {
    bits: u32,
    rounds: Vec<DomainKey>,
}

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let bits = o.int_in("bits", 8..=63)?.unwrap_or(31) as u32;
    let k = b.domain_key();
    Ok(Box::new(IntegerId {
        bits,
        rounds: (0..6).map(|i| k.sub(&format!("r{i}"))).collect(),
    }))
}

impl IntegerId {
    /// One pass of a balanced Feistel network over `2 * half` bits.
    fn feistel(&self, x: u64, half: u32) -> u64 {
        let mask = (1u64 << half) - 1;
        let (mut l, mut r) = (x >> half, x & mask);
        for k in &self.rounds {
            let f = k.hash_u64(&r.to_le_bytes()) & mask;
            (l, r) = (r, l ^ f);
        }
        (l << half) | r
    }
}

impl Transform for IntegerId {
    fn keeps_distinct(&self) -> bool {
        true
    }

    fn max_chars(&self) -> Option<usize> {
        // the digits of 2^bits − 1
        Some((f64::from(self.bits) * std::f64::consts::LOG10_2).floor() as usize + 1)
    }

    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        let v: u64 = value
            .trim()
            .parse()
            .map_err(|_| format!("`{value}` is not a non-negative integer"))?;
        let limit = 1u64 << self.bits;
        if v >= limit {
            return Err(format!(
                "{v} is outside 0 … 2^{} − 1; raise `bits`",
                self.bits
            ));
        }
        // the Feistel network permutes 2^(2·half) ≥ 2^bits values; walking the cycle
        // until the value falls back in range keeps the permutation inside it
        let half = self.bits.div_ceil(2);
        let mut x = self.feistel(v, half);
        while x >= limit {
            x = self.feistel(x, half);
        }
        Ok(Some(x.to_string()))
    }
}
