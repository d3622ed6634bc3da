//! `hash`: a keyed hash of the value, in hex or base32.

use super::{Build, OptionDoc, Options, Row, Spec, Transform};
use crate::anonymize::key::DomainKey;

pub static SPEC: Spec = Spec {
    name: "hash",
    summary: "A keyed blake3 hash of the value: equal inputs give equal outputs, and nothing about the input can be read back without the key.",
    options: &[
        OptionDoc { name: "encoding", kind: "string", default: "`hex`", doc: "`hex` (lowercase) or `base32` (RFC 4648, lowercase, no padding)" },
        OptionDoc { name: "length", kind: "integer", default: "16", doc: "characters of output, 4 to 64 (hex) or 4 to 52 (base32)" },
        OptionDoc { name: "prefix", kind: "string", default: "empty", doc: "text put before the hash" },
    ],
    examples: &[
        super::Example { options: "", input: "jane.doe@example.org", row: &[] },
        super::Example { options: "encoding = \"base32\"\nlength = 10\nprefix = \"user-\"", input: "jane.doe@example.org", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Text]),
    build,
};

struct Hash {
    key: DomainKey,
    base32: bool,
    length: usize,
    prefix: String,
}

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let base32 = match o.string("encoding")?.as_deref() {
        None | Some("hex") => false,
        Some("base32") => true,
        Some(other) => return Err(format!("unknown encoding `{other}`; use `hex` or `base32`")),
    };
    let max = if base32 { 52 } else { 64 };
    let length = o.int_in("length", 4..=max)?.unwrap_or(16) as usize;
    let prefix = o.string("prefix")?.unwrap_or_default();
    Ok(Box::new(Hash {
        key: b.domain_key(),
        base32,
        length,
        prefix,
    }))
}

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// `bytes` in lowercase unpadded base32.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    base32_into(&mut out, bytes);
    out
}

/// [`base32`], appended to `out`.
pub fn base32_into(out: &mut String, bytes: &[u8]) {
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((acc << (5 - bits)) & 31) as usize]));
    }
}

impl Transform for Hash {
    fn keeps_distinct(&self) -> bool {
        self.length * if self.base32 { 5 } else { 4 } >= 64
    }

    fn max_chars(&self) -> Option<usize> {
        Some(self.prefix.chars().count() + self.length)
    }

    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        let h = self.key.hash(value.as_bytes());
        let mut enc = if self.base32 {
            base32(&h)
        } else {
            blake3::Hash::from_bytes(h).to_hex().to_string()
        };
        enc.truncate(self.length);
        Ok(Some(format!("{}{enc}", self.prefix)))
    }
}
