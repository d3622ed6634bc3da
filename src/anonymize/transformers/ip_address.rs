//! `ip-address`: a keyed permutation of IP addresses, in their family and prefix.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::feistel::Feistel;
use super::{Build, OptionDoc, Options, Row, Spec, Transform};

pub static SPEC: Spec = Spec {
    name: "ip-address",
    summary: "Another address of the same family (IPv4 or IPv6) with the same prefix length, by a keyed permutation: one-to-one, so unique keys hold, and one `domain` maps an address alike in every column. A network (`10.1.0.0/16`, as `cidr` holds) stays a network: only its prefix bits move. `keep_bits` keeps the first bits (a subnet) as they were.",
    options: &[OptionDoc {
        name: "keep_bits",
        kind: "integer",
        default: "`0`",
        doc: "leading bits kept as they are (e.g. 16 keeps `10.1.x.x`)",
    }],
    examples: &[
        super::Example { options: "", input: "192.168.10.25", row: &[] },
        super::Example { options: "", input: "10.1.0.0/16", row: &[] },
        super::Example { options: "keep_bits = 16", input: "10.1.200.7/24", row: &[] },
        super::Example { options: "", input: "2001:db8::8a2e:370:7334", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Inet, super::Kind::Text]),
    build,
};

struct IpAddress {
    permutation: Feistel,
    keep_bits: u32,
}

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let keep_bits = match o.integer("keep_bits")? {
        None => 0,
        Some(n @ 0..=128) => n as u32,
        Some(n) => return Err(format!("`keep_bits = {n}`: a number of bits from 0 to 128")),
    };
    Ok(Box::new(IpAddress {
        permutation: Feistel::new(&b.domain_key()),
        keep_bits,
    }))
}

impl Transform for IpAddress {
    fn keeps_distinct(&self) -> bool {
        true
    }

    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        let v = value.trim();
        let (addr, prefix) = match v.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (v, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{value}` is not an IP address"))?;
        let (n, width) = match ip {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => (u128::from(a), 128),
        };
        let bits = match prefix {
            Some(p) => p
                .parse::<u32>()
                .ok()
                .filter(|&b| b <= width)
                .ok_or_else(|| {
                    format!("`{value}`: `/{p}` is not a prefix length of {width} bits")
                })?,
            None => width,
        };
        // a network moves its prefix bits only, so its host bits stay zero
        let host = width - bits;
        let host_mask = if host == 128 {
            u128::MAX
        } else {
            (1u128 << host) - 1
        };
        let moved_to = if n & host_mask == 0 { bits } else { width };
        let keep = self.keep_bits.min(moved_to);
        let span = moved_to - keep;
        let low = width - moved_to;
        let field = if span == 0 {
            0
        } else {
            (n >> low) & (u128::MAX >> (128 - span))
        };
        let permuted = if span == 0 {
            0
        } else {
            self.permutation.permute(field, span)
        };
        let cleared = if span == 0 {
            n
        } else {
            n & !((u128::MAX >> (128 - span)) << low)
        };
        // nothing to move (a /0 network, or every bit kept): the value as it is
        let out = if span == 0 {
            n
        } else {
            cleared | (permuted << low)
        };
        let text = match ip {
            IpAddr::V4(_) => Ipv4Addr::from(out as u32).to_string(),
            IpAddr::V6(_) => Ipv6Addr::from(out).to_string(),
        };
        Ok(Some(match prefix {
            Some(p) => format!("{text}/{p}"),
            None => text,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::types::ColumnType;

    fn t(options: &str) -> Box<dyn Transform> {
        let key = crate::anonymize::key::Key::from_secret(b"a test key, 16+ characters");
        let cols = ["ip".to_string()];
        let b = Build {
            key: &key,
            domain: "ip".into(),
            columns: &cols,
            column: "ip",
            reals: None,
            ty: None,
        };
        build(
            &mut Options::new("ip-address", toml::from_str(options).unwrap()),
            &b,
        )
        .unwrap()
    }

    /// Outputs are valid for `inet` and `cidr`, keep family, prefix and kept bits, and
    /// never merge two inputs.
    #[test]
    fn addresses_stay_valid_distinct_and_in_their_prefix() {
        let inet = ColumnType::from_catalog("inet".into(), "inet", -1, false, false);
        let cidr = ColumnType::from_catalog("cidr".into(), "cidr", -1, false, false);
        let plain = t("");
        let mut seen = std::collections::HashSet::new();
        for i in 0..2000u32 {
            let v = format!("10.{}.{}.{}", i / 250 % 4, i % 250, i % 7);
            let o = plain.apply(&v, &super::super::NoRow).unwrap().unwrap();
            crate::anonymize::valid::check(&inet, &o).unwrap();
            assert!(seen.insert(o), "two inputs met");
        }
        let net = plain
            .apply("10.1.0.0/16", &super::super::NoRow)
            .unwrap()
            .unwrap();
        crate::anonymize::valid::check(&cidr, &net).unwrap();
        assert!(net.ends_with(".0.0/16"), "{net}");
        let kept = t("keep_bits = 16")
            .apply("10.1.200.7/24", &super::super::NoRow)
            .unwrap()
            .unwrap();
        assert!(kept.starts_with("10.1.") && kept.ends_with("/24"), "{kept}");
        for net in ["::/0", "0.0.0.0/0", "10.0.0.0/8"] {
            let o = plain.apply(net, &super::super::NoRow).unwrap().unwrap();
            crate::anonymize::valid::check(&cidr, &o)
                .unwrap_or_else(|e| panic!("{net} -> {o}: {e}"));
        }
        let v6 = plain
            .apply("2001:db8::1", &super::super::NoRow)
            .unwrap()
            .unwrap();
        assert!(v6.contains(':') && v6 != "2001:db8::1", "{v6}");
        assert_eq!(
            plain
                .apply("not an address", &super::super::NoRow)
                .unwrap_err(),
            "`not an address` is not an IP address"
        );
    }
}
