//! `numeric-noise`: numbers moved by a keyed relative amount.

use super::{Build, OptionDoc, Options, Row, Spec, Transform};
use crate::anonymize::key::DomainKey;

pub static SPEC: Spec = Spec {
    name: "numeric-noise",
    summary: "Multiplies a number by a keyed factor between 1 − `percent`/100 and 1 + `percent`/100, keeping its number of decimals (an integer stays an integer) and its sign; totals and distributions stay close, exact amounts do not survive. A value is never moved past its column's range (`smallint`, `numeric(5,2)` …): it stops at the bound. On a `money` column the amount keeps its written form (currency sign, grouping and decimal separators, as the server's lc_monetary wrote it).",
    options: &[
        OptionDoc { name: "percent", kind: "number", default: "10", doc: "the largest relative change, above 0 and at most 100" },
    ],
    examples: &[
        super::Example { options: "", input: "4.99", row: &[] },
        super::Example { options: "percent = 25", input: "1200", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Integer, super::Kind::Numeric, super::Kind::Float, super::Kind::Money, super::Kind::Text]),
    build,
};

struct Noise {
    key: DomainKey,
    percent: f64,
    /// A `money` column: amounts as the server writes them (`$1,234.50`, `1.234,50 €`).
    money: bool,
    /// The column's range, when its type has one the factor could pass.
    range: Option<(f64, f64)>,
}

/// The values a column of type `t` holds, for the integer and `numeric(p,s)` types.
fn range(t: &crate::anonymize::types::ColumnType) -> Option<(f64, f64)> {
    let max = match t.base.as_str() {
        "int2" => f64::from(i16::MAX),
        "int4" => f64::from(i32::MAX),
        // the largest double below 2^63 (i64::MAX itself rounds up, out of range)
        "int8" => 9_223_372_036_854_774_784.0,
        "numeric" => {
            let (p, s) = t.numeric?;
            10f64.powi(p - s) - 10f64.powi(-s)
        }
        _ => return None,
    };
    Some((
        -max - f64::from(u8::from(t.kind == super::Kind::Integer)),
        max,
    ))
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
        money: b.ty.is_some_and(|t| t.kind == super::Kind::Money),
        range: b.ty.and_then(range),
    }))
}

impl Noise {
    /// The keyed factor for `v`.
    fn factor(&self, v: &str) -> f64 {
        let u = (self.key.hash_u64(v.as_bytes()) >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        1.0 + (u * 2.0 - 1.0) * self.percent / 100.0
    }

    /// An amount of money moved, written as the input was: what surrounds the digits
    /// (currency, sign, parentheses) kept, the same decimal separator and places, and
    /// the same grouping character every three digits.
    fn money(&self, value: &str) -> Result<String, String> {
        let v = value.trim();
        let bad = || format!("`{value}` is not an amount of money");
        let first = v.find(|c: char| c.is_ascii_digit()).ok_or_else(bad)?;
        let last = v.rfind(|c: char| c.is_ascii_digit()).ok_or_else(bad)?;
        let (prefix, core, suffix) = (&v[..first], &v[first..=last], &v[last + 1..]);
        // the decimal separator: the last non-digit, when one or two digits follow it
        let sep = core.rfind(|c: char| !c.is_ascii_digit());
        let (int, frac, decimal) = match sep {
            Some(i) if core.len() - i - 1 <= 2 => {
                let c = core[i..].chars().next().unwrap_or('.');
                (&core[..i], &core[i + c.len_utf8()..], Some(c))
            }
            _ => (core, "", None),
        };
        let group = int.chars().find(|c| !c.is_ascii_digit());
        let digits: String = int.chars().filter(char::is_ascii_digit).collect();
        let x: f64 = format!("{digits}.{frac}0").parse().map_err(|_| bad())?;
        let moved = format!("{:.*}", frac.len(), x * self.factor(v));
        let (whole, places) = moved.split_once('.').unwrap_or((&moved, ""));
        let mut out = String::from(prefix);
        for (i, d) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                out.extend(group);
            }
            out.push(d);
        }
        out.extend(decimal);
        out.push_str(places);
        out.push_str(suffix);
        Ok(out)
    }
}

impl Transform for Noise {
    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        if self.money {
            return self.money(value).map(Some);
        }
        let v = value.trim();
        let x: f64 = v
            .parse()
            .map_err(|_| format!("`{value}` is not a number"))?;
        if !x.is_finite() {
            return Ok(Some(value.to_string()));
        }
        let decimals = v.split_once('.').map_or(0, |(_, f)| f.len());
        let mut y = x * self.factor(v);
        if let Some((lo, hi)) = self.range {
            y = y.clamp(lo, hi);
        }
        Ok(Some(format!("{:.*}", decimals, y)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::types::ColumnType;

    fn noise(ty: &ColumnType) -> Box<dyn Transform> {
        let key = crate::anonymize::key::Key::from_secret(b"a test key, 16+ characters");
        let cols = ["balance".to_string()];
        let b = Build {
            key: &key,
            domain: "numeric-noise".into(),
            columns: &cols,
            column: "balance",
            reals: None,
            ty: Some(ty),
        };
        build(&mut Options::new("numeric-noise", toml::Table::new()), &b).unwrap()
    }

    /// Values at the edge of their column's range stay in it, those the factor would
    /// push past it held at the bound.
    #[test]
    fn values_stay_in_their_columns_range() {
        // numeric(5,2) as the catalog stores it: ((5 << 16) | 2) + 4
        let numeric_5_2 = (5 << 16 | 2) + 4;
        let near = || {
            (0..100)
                .map(|n| format!("99{}.{:02}", n % 10, n))
                .collect::<Vec<_>>()
        };
        let cases = [
            (
                "smallint",
                "int2",
                -1,
                (32_700..=32_767).map(|n| n.to_string()).collect(),
                "32767",
            ),
            ("numeric(5,2)", "numeric", numeric_5_2, near(), "999.99"),
            // a domain over numeric(5,2): its name says nothing of the bound
            ("public.amount", "numeric", numeric_5_2, near(), "999.99"),
        ];
        for (sql, base, typmod, values, bound) in cases {
            let ty = ColumnType::from_catalog(sql.into(), base, typmod, false, false);
            let t = noise(&ty);
            let outs: Vec<String> = values
                .iter()
                .map(|v| t.apply(v, &super::super::NoRow).unwrap().unwrap())
                .collect();
            for (v, out) in values.iter().zip(&outs) {
                crate::anonymize::valid::check(&ty, out)
                    .unwrap_or_else(|e| panic!("{sql} {v} -> {out}: {e}"));
            }
            assert!(
                outs.iter().any(|o| o == bound),
                "{sql}: some value reaches the bound"
            );
        }
    }

    /// Money keeps its written form in any lc_monetary, and stays valid for the column.
    #[test]
    fn money_keeps_its_written_form() {
        let money = ColumnType::from_catalog("money".into(), "money", -1, false, false);
        let t = noise(&money);
        let shape = |s: &str| -> String {
            s.chars()
                .map(|c| if c.is_ascii_digit() { '9' } else { c })
                .collect()
        };
        for (input, form) in [
            ("$1,234.50", "$9,999.99"),
            ("-$12.00", "-$99.99"),
            ("1.234,50 €", "9.999,99 €"),
            ("$0.99", "$9.99"),
        ] {
            let out = t.apply(input, &super::super::NoRow).unwrap().unwrap();
            crate::anonymize::valid::check(&money, &out).unwrap();
            assert_eq!(shape(&out), form, "{input} -> {out}");
            assert_ne!(out, input);
        }
        assert_eq!(
            t.apply("free", &super::super::NoRow).unwrap_err(),
            "`free` is not an amount of money"
        );
    }
}
