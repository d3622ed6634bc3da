//! `mac-address`: a keyed permutation of MAC addresses.

use super::feistel::Feistel;
use super::{Build, OptionDoc, Options, Row, Spec, Transform};

pub static SPEC: Spec = Spec {
    name: "mac-address",
    summary: "Another MAC address of the same size (6 bytes, or 8 for `macaddr8`), by a keyed permutation: one-to-one, so unique keys hold. The multicast and locally-administered bits stay as they were; with `keep_vendor` the first three bytes (the maker's OUI) do too. Written as the server writes it: lower-case pairs joined by `:`.",
    options: &[OptionDoc {
        name: "keep_vendor",
        kind: "boolean",
        default: "`false`",
        doc: "keep the first three bytes, which name the maker, not the device",
    }],
    examples: &[
        super::Example { options: "", input: "08:00:2b:01:02:03", row: &[] },
        super::Example { options: "keep_vendor = true", input: "08-00-2B-01-02-03", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Macaddr, super::Kind::Text]),
    build,
};

struct MacAddress {
    permutation: Feistel,
    keep_vendor: bool,
}

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    Ok(Box::new(MacAddress {
        permutation: Feistel::new(&b.domain_key()),
        keep_vendor: o.boolean("keep_vendor")?.unwrap_or(false),
    }))
}

impl Transform for MacAddress {
    fn keeps_distinct(&self) -> bool {
        true
    }

    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        let hex: String = value
            .trim()
            .chars()
            .filter(|c| !matches!(c, ':' | '-' | '.'))
            .collect();
        let bytes = hex.len() / 2;
        if !matches!(hex.len(), 12 | 16) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "`{value}` is not a MAC address (6 or 8 bytes in hex)"
            ));
        }
        let n = u64::from_str_radix(&hex, 16).map_err(|e| e.to_string())?;
        let width = 8 * bytes as u32;
        let out = if self.keep_vendor {
            // the bytes after the OUI
            let span = width - 24;
            let low = u128::from(n) & ((1u128 << span) - 1);
            (u128::from(n) & !((1u128 << span) - 1)) | self.permutation.permute(low, span)
        } else {
            // every bit but the first byte's two flags (multicast, locally administered)
            let flags_at = width - 8;
            let flags = u128::from(n) & (0b11 << flags_at);
            let above = u128::from(n) >> (flags_at + 2);
            let below = u128::from(n) & ((1u128 << flags_at) - 1);
            let packed = self
                .permutation
                .permute((above << flags_at) | below, width - 2);
            ((packed >> flags_at) << (flags_at + 2)) | flags | (packed & ((1u128 << flags_at) - 1))
        };
        let digits = format!("{out:0w$x}", w = 2 * bytes);
        let pairs: Vec<&str> = (0..bytes).map(|i| &digits[2 * i..2 * i + 2]).collect();
        Ok(Some(pairs.join(":")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::types::ColumnType;

    fn t(options: &str) -> Box<dyn Transform> {
        let key = crate::anonymize::key::Key::from_secret(b"a test key, 16+ characters");
        let cols = ["mac".to_string()];
        let b = Build {
            key: &key,
            domain: "mac".into(),
            columns: &cols,
            column: "mac",
            reals: None,
            ty: None,
        };
        build(
            &mut Options::new("mac-address", toml::from_str(options).unwrap()),
            &b,
        )
        .unwrap()
    }

    #[test]
    fn addresses_stay_valid_distinct_with_their_flags_and_vendor() {
        let macaddr = ColumnType::from_catalog("macaddr".into(), "macaddr", -1, false, false);
        let row = &super::super::NoRow;
        let (plain, vendor) = (t(""), t("keep_vendor = true"));
        let mut seen = std::collections::HashSet::new();
        for i in 0..2000u32 {
            let v = format!("0a:00:2b:00:{:02x}:{:02x}", i / 256, i % 256);
            let o = plain.apply(&v, row).unwrap().unwrap();
            crate::anonymize::valid::check(&macaddr, &o).unwrap();
            // 0x0a: locally administered, not multicast; both stay
            assert_eq!(u8::from_str_radix(&o[..2], 16).unwrap() & 0b11, 0b10, "{o}");
            assert!(seen.insert(o), "two inputs met");
            let k = vendor.apply(&v, row).unwrap().unwrap();
            assert!(k.starts_with("0a:00:2b:") && k != v, "{k}");
        }
        assert_eq!(
            plain
                .apply("08:00:2b:01:02:03:04:05", row)
                .unwrap()
                .unwrap()
                .len(),
            23
        );
        assert_eq!(
            plain.apply("08:00:2b", row).unwrap_err(),
            "`08:00:2b` is not a MAC address (6 or 8 bytes in hex)"
        );
    }
}
