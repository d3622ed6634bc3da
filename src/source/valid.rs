//! Whether a value is valid input for its column's type, told without a server: what
//! verify asks of every anonymized value of a file output, so a file `psql` would refuse
//! fails verify instead of passing it (issue 14). The rules follow PostgreSQL's input
//! functions for the text pg_dump writes (ISO dates, `\x` bytea); a kind with no rule
//! here ([`checked`] is false) is counted as not checked, never as valid.

use super::types::{ColumnType, Kind};

/// Whether values of this type are checked at all.
pub fn checked(t: &ColumnType) -> bool {
    !matches!(
        t.kind,
        Kind::Other | Kind::Enum | Kind::Interval | Kind::Tsvector
    )
}

/// `Ok` when `value` (decoded, not NULL) is valid input for `t`, else why not. An
/// array's elements are checked one by one.
pub fn check(t: &ColumnType, value: &str) -> Result<(), String> {
    if t.array {
        let mut first_error = None;
        super::types::map_array(value, |e| {
            if first_error.is_none() {
                if let Err(why) = scalar(t, e) {
                    first_error = Some(format!("element `{e}`: {why}"));
                }
            }
            Ok(None)
        })?;
        return first_error.map_or(Ok(()), Err);
    }
    scalar(t, value)
}

fn scalar(t: &ColumnType, v: &str) -> Result<(), String> {
    let ok = |b: bool, what: &str| if b { Ok(()) } else { Err(what.to_string()) };
    if v.contains('\0') {
        return Err("a NUL character, which no PostgreSQL text can hold".into());
    }
    match t.kind {
        Kind::Text => match t.max_chars {
            Some(n) if t.base == "varchar" && v.chars().count() > n => {
                Err(format!("{} characters, more than {n}", v.chars().count()))
            }
            // char(n) drops trailing blanks past n, as the server does
            Some(n) if v.trim_end_matches(' ').chars().count() > n => {
                Err(format!("{} characters, more than {n}", v.chars().count()))
            }
            _ => Ok(()),
        },
        Kind::Json => serde_json::from_str::<serde::de::IgnoredAny>(v)
            .map(|_| ())
            .map_err(|e| format!("not JSON ({e})")),
        Kind::Integer => {
            let s = v.trim();
            let fits = match t.base.as_str() {
                "int2" => s.parse::<i16>().is_ok(),
                "int4" => s.parse::<i32>().is_ok(),
                _ => s.parse::<i64>().is_ok(),
            };
            ok(fits, &format!("not an integer that fits {}", t.sql))
        }
        Kind::Numeric => numeric(t, v.trim()),
        Kind::Float => {
            let s = v.trim().to_ascii_lowercase();
            let s = s.trim_start_matches(['+', '-']);
            ok(
                matches!(s, "nan" | "inf" | "infinity")
                    || s.parse::<f64>().is_ok_and(f64::is_finite),
                "not a floating-point number",
            )
        }
        Kind::Money => money(v.trim()),
        Kind::Bool => {
            let s = v.trim().to_ascii_lowercase();
            let words = ["true", "false", "yes", "no", "on", "off", "1", "0"];
            ok(
                !s.is_empty() && s != "o" && words.iter().any(|w| w.starts_with(&s)),
                "not a boolean",
            )
        }
        Kind::Date => date(v.trim()).map(|_| ()),
        Kind::Timestamp => timestamp(v.trim()),
        Kind::Time => time_of_day(v.trim()),
        Kind::Uuid => uuid::Uuid::parse_str(v.trim())
            .map(|_| ())
            .map_err(|_| "not a UUID".into()),
        Kind::Inet => inet(&t.base, v.trim()),
        Kind::Macaddr => macaddr(&t.base, v.trim()),
        Kind::Xml => xml(v),
        Kind::Bytea => bytea(v),
        Kind::Enum | Kind::Interval | Kind::Tsvector | Kind::Other => Ok(()),
    }
}

/// `numeric(p,s)` (precision and scale read from the type as written): at most `p - s`
/// digits before the point once rounded to `s` places.
fn numeric(t: &ColumnType, s: &str) -> Result<(), String> {
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.trim_start_matches(['+', '-']),
        "nan" | "infinity" | "inf"
    ) {
        return Ok(());
    }
    let body = s.trim_start_matches(['+', '-']);
    let (mantissa, exp) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().map_err(|_| "not a number")?),
        None => (body, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err("not a number".into());
    }
    let Some((p, sc)) = t.numeric else {
        return Ok(());
    };
    let int_digits = int.trim_start_matches('0').len() as i32 + exp;
    if int_digits > p - sc {
        return Err(format!(
            "{int_digits} digits before the point, more than {} allows",
            t.sql
        ));
    }
    Ok(())
}

fn money(s: &str) -> Result<(), String> {
    // the server reads money in its lc_monetary's format (`$1,234.50`, `1.234,50 €`,
    // `1 234,50 kr`, `-1.234,50 Lei`): the amount is digits with grouping and decimal
    // separators; around it, a sign, parentheses and a currency symbol or word
    let (Some(first), Some(last)) = (
        s.find(|c: char| c.is_ascii_digit()),
        s.rfind(|c: char| c.is_ascii_digit()),
    ) else {
        return Err("not an amount of money".into());
    };
    let core = &s[first..=last];
    let separators = |c: char| matches!(c, '.' | ',' | '\'' | ' ' | '\u{a0}' | '\u{202f}');
    let good = core.chars().all(|c| c.is_ascii_digit() || separators(c))
        && !core.contains("..")
        && !core.contains(",,")
        && s[..first].chars().filter(|&c| c == '-' || c == '(').count() <= 1;
    if good {
        Ok(())
    } else {
        Err("not an amount of money".into())
    }
}

/// A date as pg_dump writes it (ISO, `YYYY-MM-DD`, ` BC` for years before 1), or
/// `infinity` / `-infinity`.
fn date(s: &str) -> Result<(), String> {
    if matches!(s, "infinity" | "-infinity") {
        return Ok(());
    }
    let s = s.strip_suffix(" BC").unwrap_or(s);
    let bad = || format!("`{s}` is not a date (YYYY-MM-DD)");
    let mut parts = s.splitn(3, '-');
    let (y, m, d) = (parts.next(), parts.next(), parts.next());
    let num = |p: Option<&str>| p.and_then(|p| p.parse::<i32>().ok());
    let (Some(y), Some(m), Some(d)) = (num(y), num(m), num(d)) else {
        return Err(bad());
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    // there is no year 0: 1 BC comes before 1 AD
    if y < 1 || !(1..=days).contains(&d) {
        return Err(bad());
    }
    Ok(())
}

/// `HH:MM[:SS[.ffffff]]`, with a zone for `timetz` (`+02`, `-03:30`).
fn time_of_day(s: &str) -> Result<(), String> {
    let bad = || format!("`{s}` is not a time of day (HH:MM:SS)");
    let clock = s.find(['+', '-']).map_or(s, |i| &s[..i]);
    let zone = &s[clock.len()..];
    let mut parts = clock.split(':');
    let h: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let m: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let sec: f64 = match parts.next() {
        Some(p) => p.parse().map_err(|_| bad())?,
        None => 0.0,
    };
    let midnight = h == 24 && m == 0 && sec == 0.0;
    if parts.next().is_some() || !(h < 24 && m < 60 && (0.0..61.0).contains(&sec) || midnight) {
        return Err(bad());
    }
    if !zone.is_empty() {
        let z = &zone[1..];
        let fine = !z.is_empty()
            && z.split(':').count() <= 3
            && z.split(':')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !fine {
            return Err(bad());
        }
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS[.f][zone][ BC]`, or `infinity` / `-infinity`.
fn timestamp(s: &str) -> Result<(), String> {
    if matches!(s, "infinity" | "-infinity") {
        return Ok(());
    }
    let s = s.strip_suffix(" BC").unwrap_or(s);
    let (d, t) = s
        .split_once([' ', 'T'])
        .ok_or_else(|| format!("`{s}` is not a timestamp (YYYY-MM-DD HH:MM:SS)"))?;
    date(d)?;
    time_of_day(t.trim())
}

/// `inet` (an address with an optional prefix length) or `cidr` (no bits set past the
/// prefix).
fn inet(base: &str, s: &str) -> Result<(), String> {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (
            a,
            Some(
                b.parse::<u8>()
                    .map_err(|_| format!("`{s}`: bad prefix length"))?,
            ),
        ),
        None => (s, None),
    };
    let ip: std::net::IpAddr = addr
        .parse()
        .map_err(|_| format!("`{s}` is not an IP address"))?;
    let width = if ip.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(width);
    if bits > width {
        return Err(format!("`{s}`: a prefix longer than {width} bits"));
    }
    if base == "cidr" {
        let n = match ip {
            std::net::IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
            std::net::IpAddr::V6(a) => u128::from(a),
        };
        if bits < 128 && n << bits != 0 {
            return Err(format!(
                "`{s}` has bits set to the right of its prefix (cidr)"
            ));
        }
    }
    Ok(())
}

/// `macaddr` (6 bytes) or `macaddr8` (6 or 8), in the forms the server reads: pairs
/// separated by `:` or `-`, groups of 4 separated by `.`, groups of 6 by `:` or `-`, or
/// the hex digits alone.
fn macaddr(base: &str, s: &str) -> Result<(), String> {
    let hex: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    let digits = hex.len();
    let sizes: &[usize] = if base == "macaddr8" { &[12, 16] } else { &[12] };
    if hex.chars().all(|c| c.is_ascii_hexdigit()) && sizes.contains(&digits) {
        Ok(())
    } else {
        Err(format!("`{s}` is not a {base}"))
    }
}

/// Well-formed XML content (the server's default `XMLOPTION CONTENT`): tags balance, every
/// `<` opens markup, every `&` an entity.
fn xml(s: &str) -> Result<(), String> {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = s;
    while let Some(lt) = rest.find(['<', '&']) {
        let tail = &rest[lt..];
        if tail.starts_with('&') {
            let end = tail.find(';').ok_or("an `&` that starts no entity")?;
            let name = &tail[1..end];
            let good = match name.strip_prefix('#') {
                Some(n) => n.strip_prefix('x').map_or(
                    !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
                    |h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()),
                ),
                None => matches!(name, "lt" | "gt" | "amp" | "apos" | "quot"),
            };
            if !good {
                return Err(format!("`&{name};` is not an entity XML knows"));
            }
            rest = &tail[end + 1..];
            continue;
        }
        let mut skipped = false;
        for (start, end) in [
            ("<!--", "-->"),
            ("<![CDATA[", "]]>"),
            ("<?", "?>"),
            ("<!", ">"),
        ] {
            if let Some(after) = tail.strip_prefix(start) {
                let close = after
                    .find(end)
                    .ok_or_else(|| format!("an unclosed `{start}`"))?;
                rest = &after[close + end.len()..];
                skipped = true;
                break;
            }
        }
        if skipped {
            continue;
        }
        let close = tail.find('>').ok_or("a `<` that opens no tag")?;
        let inner = &tail[1..close];
        rest = &tail[close + 1..];
        if let Some(name) = inner.strip_prefix('/') {
            match open.pop() {
                Some(o) if o == name.trim() => {}
                Some(o) => return Err(format!("`</{}>` closes `<{o}>`", name.trim())),
                None => return Err(format!("`</{}>` closes nothing", name.trim())),
            }
        } else {
            let self_closing = inner.ends_with('/');
            let name = inner
                .split(|c: char| c.is_whitespace() || c == '/')
                .next()
                .unwrap_or("");
            if name.is_empty() || name.contains(['<', '&', '"', '\'']) {
                return Err(format!("`<{inner}>` is not a tag"));
            }
            if !self_closing {
                open.push(name);
            }
        }
    }
    match open.last() {
        Some(o) => Err(format!("`<{o}>` is never closed")),
        None => Ok(()),
    }
}

/// `\x` followed by pairs of hex digits, or the escape format (backslashes only before
/// three octal digits or another backslash).
fn bytea(s: &str) -> Result<(), String> {
    if let Some(hex) = s.strip_prefix("\\x") {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        return if digits.len().is_multiple_of(2) && digits.iter().all(u8::is_ascii_hexdigit) {
            Ok(())
        } else {
            Err("`\\x` followed by something other than pairs of hex digits".into())
        };
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let octal =
                b.len() >= i + 4 && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c));
            if b.get(i + 1) == Some(&b'\\') {
                i += 2;
                continue;
            }
            if !octal {
                return Err("a backslash that starts no escape (bytea escape format)".into());
            }
            i += 4;
        } else {
            i += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(sql: &str, base: &str, typmod: i32, array: bool) -> ColumnType {
        // `numeric(p,s)` as the catalog stores it
        let typmod = match sql
            .strip_prefix("numeric(")
            .and_then(|r| r.strip_suffix(')'))
        {
            Some(ps) => {
                let (p, s) = ps.split_once(',').unwrap_or((ps, "0"));
                (p.trim().parse::<i32>().unwrap() << 16 | s.trim().parse::<i32>().unwrap()) + 4
            }
            None => typmod,
        };
        ColumnType::from_catalog(sql.into(), base, typmod, array, false)
    }

    /// Each pairing the issue saw pass verify yet fail `psql`, and the value that is fine.
    #[test]
    fn values_psql_refuses_are_invalid_and_good_ones_pass() {
        let cases: &[(ColumnType, &str, bool)] = &[
            (
                ty("text[]", "text", -1, true),
                "{a@x.org,NULL,\"b c\"}",
                true,
            ),
            (
                ty("character varying(15)", "varchar", 19, false),
                "Bucharest",
                true,
            ),
            (
                ty("character varying(15)", "varchar", 19, false),
                "Port Kaylinborough",
                false,
            ),
            (ty("inet", "inet", -1, false), "192.168.0.1/24", true),
            (ty("inet", "inet", -1, false), "3QF2MZ7A", false),
            (ty("cidr", "cidr", -1, false), "10.1.0.0/16", true),
            (ty("cidr", "cidr", -1, false), "10.1.2.3/16", false),
            (
                ty("xml", "xml", -1, false),
                "<a x=\"1\">b &amp; <c/></a>",
                true,
            ),
            (ty("xml", "xml", -1, false), "<a>lorem <b>ipsum</a>", false),
            (ty("xml", "xml", -1, false), "fish & chips", false),
            (ty("integer", "int4", -1, false), "2147483648", false),
            (ty("smallint", "int2", -1, false), "-32768", true),
            (ty("numeric(5,2)", "numeric", -1, false), "123.456", true),
            (ty("numeric(5,2)", "numeric", -1, false), "1234.5", false),
            (ty("date", "date", -1, false), "2024-02-29", true),
            (ty("date", "date", -1, false), "2023-02-29", false),
            (
                ty("timestamp with time zone", "timestamptz", -1, false),
                "2023-12-31 23:59:59.5+05:30",
                true,
            ),
            (
                ty("timestamp without time zone", "timestamp", -1, false),
                "2023-12-31 25:00:00",
                false,
            ),
            (
                ty("uuid", "uuid", -1, false),
                "c4ca4238-a0b9-2382-0dcc-509a6f75849b",
                true,
            ),
            (ty("uuid", "uuid", -1, false), "c4ca4238", false),
            (
                ty("macaddr", "macaddr", -1, false),
                "08:00:2b:01:02:03",
                true,
            ),
            (ty("macaddr", "macaddr", -1, false), "08:00:2b:01:02", false),
            (ty("jsonb", "jsonb", -1, false), "{\"a\": [1, null]}", true),
            (ty("jsonb", "jsonb", -1, false), "{a: 1}", false),
            (ty("bytea", "bytea", -1, false), "\\x0aff", true),
            (ty("bytea", "bytea", -1, false), "\\x0af", false),
            (ty("boolean", "bool", -1, false), "t", true),
            (ty("boolean", "bool", -1, false), "maybe", false),
            (ty("money", "money", -1, false), "$1,234.50", true),
            (ty("money", "money", -1, false), "lots", false),
            (ty("money", "money", -1, false), "1.234,50 €", true),
            (ty("money", "money", -1, false), "-1.234,50 Lei", true),
            (ty("money", "money", -1, false), "1 234,50 kr", true),
            (ty("money", "money", -1, false), "1-2-3", false),
            (ty("money", "money", -1, false), "--5", false),
            (
                ty("double precision", "float8", -1, false),
                "-Infinity",
                true,
            ),
            (ty("integer[]", "int4", -1, true), "{1,NULL,x}", false),
        ];
        for (t, v, good) in cases {
            let r = check(t, v);
            assert_eq!(r.is_ok(), *good, "{} `{v}`: {r:?}", t.sql);
        }
        let why = check(&cases[2].0, "Port Kaylinborough").unwrap_err();
        assert_eq!(why, "18 characters, more than 15");
    }
}
