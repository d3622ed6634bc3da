//! `uuid`: a keyed permutation of all UUIDs.

use super::{Build, Options, Row, Spec, Transform};
use crate::anonymize::key::DomainKey;

pub static SPEC: Spec = Spec {
    name: "uuid",
    summary: "A keyed permutation of the 128-bit UUID space (a 4-round Feistel network on blake3): one-to-one, so primary keys stay unique, and with one `domain` for a key and the columns referring to it, foreign keys keep pointing at the same rows.",
    options: &[],
    examples: &[
        super::Example { options: "", input: "6f1c2b9e-8a3d-4f5e-9b7a-1c2d3e4f5a6b", row: &[] },
        super::Example { options: "", input: "6F1C2B9E-8A3D-4F5E-9B7A-1C2D3E4F5A6B", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Uuid, super::Kind::Text]),
    build,
};

struct UuidPerm {
    rounds: [DomainKey; 4],
}

fn build(_: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let k = b.domain_key();
    Ok(Box::new(UuidPerm {
        rounds: [k.sub("r0"), k.sub("r1"), k.sub("r2"), k.sub("r3")],
    }))
}

impl Transform for UuidPerm {
    fn keeps_distinct(&self) -> bool {
        true
    }

    fn max_chars(&self) -> Option<usize> {
        Some(36)
    }

    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        let u = uuid::Uuid::parse_str(value.trim())
            .map_err(|e| format!("`{value}` is not a UUID: {e}"))?;
        let n = u.as_u128();
        let (mut l, mut r) = ((n >> 64) as u64, n as u64);
        for k in &self.rounds {
            let f = k.hash_u64(&r.to_le_bytes());
            (l, r) = (r, l ^ f);
        }
        Ok(Some(
            uuid::Uuid::from_u128((u128::from(l) << 64) | u128::from(r)).to_string(),
        ))
    }
}
