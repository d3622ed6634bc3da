//! Detectors for personal data in columns the config keeps: e-mail addresses, phone
//! numbers, IBANs (mod-97), card numbers (Luhn) and Romanian CNPs (check digit). They
//! catch what a leak scan cannot: a clerk's note holding someone the source columns
//! never named.

use std::sync::LazyLock;

use regex::Regex;

use crate::pii::validate::{cnp_valid, luhn_valid, mod97};

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b").expect("valid")
});
/// International numbers (`+40 721 234 567`), North American ones (`(555) 123-4567`) and
/// Romanian mobiles (`0721234567`, `0721 234 567`).
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}|\(\d{3}\) ?\d{3}[ .-]\d{4}|\b07\d{2}[ .-]?\d{3}[ .-]?\d{3}\b)",
    )
    .expect("valid")
});
static IBAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b").expect("valid")
});
static CARD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[2-6]\d{3}(?:[ -]?\d{3,4}){2,4}\b").expect("valid"));
static CNP: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b[1-8]\d{12}\b").expect("valid"));

/// A value whose shape its type fixes, with no room for personal data inside: a UUID,
/// or an ISO date or timestamp (`2024-01-31`, `2024-01-31 12:00:00.5+02`).
pub fn structured(value: &str) -> bool {
    let b = value.as_bytes();
    let all = |bytes: &[u8], class: u8| bytes.iter().all(|&c| CLASS[c as usize] & class != 0);
    if b.len() == 36 {
        return [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
            && [&b[..8], &b[9..13], &b[14..18], &b[19..23], &b[24..]]
                .iter()
                .all(|part| all(part, HEX));
    }
    b.len() >= 10
        && b[4] == b'-'
        && b[7] == b'-'
        && all(&b[..4], DIGIT)
        && all(&b[5..7], DIGIT)
        && all(&b[8..10], DIGIT)
        && all(&b[10..], TIME)
}

/// Byte classes for [`structured`], by table: it runs on every UUID and timestamp cell.
const HEX: u8 = 1;
const DIGIT: u8 = 2;
const TIME: u8 = 4;
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_hexdigit() {
            t[c] |= HEX;
        }
        if b.is_ascii_digit() {
            t[c] |= DIGIT | TIME;
        }
        // case-folded too: the leak scan looks at folded text
        if matches!(
            b,
            b' ' | b':' | b'.' | b'+' | b'-' | b'T' | b'Z' | b't' | b'z'
        ) {
            t[c] |= TIME;
        }
        c += 1;
    }
    t
};

/// The spans of the UUIDs in `text`, whose digit groups would otherwise read as card or
/// phone numbers.
fn uuid_spans(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    if b.len() < 36 || !text.contains('-') {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i + 36 <= b.len() {
        if text.is_char_boundary(i) && text.is_char_boundary(i + 36) && structured(&text[i..i + 36])
        {
            out.push((i, i + 36));
            i += 36;
        } else {
            i += 1;
        }
    }
    out
}

/// Whether the whole of `s` is an e-mail address (for suggesting a column's transformer
/// from its values; [`detect`] finds addresses inside text).
pub fn looks_like_email(s: &str) -> bool {
    let s = s.trim();
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// Whether the whole of `s` is a phone number (dates are not).
pub fn looks_like_phone(s: &str) -> bool {
    let s = s.trim();
    let b = s.as_bytes();
    // 2006-02-14, 2006-02-14 22:04:36: dates, not numbers to call
    let date =
        b.len() >= 10 && b[4] == b'-' && b[7] == b'-' && b[..4].iter().all(u8::is_ascii_digit);
    if date {
        return false;
    }
    let digits = s.chars().filter(char::is_ascii_digit).count();
    (7..=15).contains(&digits)
        && s.chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        && (s.starts_with('+') || s.starts_with('0') || s.contains([' ', '-', '(']))
}

/// The UTF-8 text that the hex digits `hex` encode, if they are hex and it is text.
pub fn bytea_text(hex: &[u8]) -> Option<String> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16);
    let bytes: Option<Vec<u8>> = hex
        .chunks_exact(2)
        .map(|p| Some((digit(p[0])? * 16 + digit(p[1])?) as u8))
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Calls `f(detector, matched text)` for every finding in `text`.
pub fn detect(text: &str, f: &mut dyn FnMut(&'static str, &str)) {
    if structured(text) {
        return;
    }
    if text.contains('@') {
        for m in EMAIL.find_iter(text) {
            f("email", m.as_str());
        }
    }
    let digits = text.bytes().filter(u8::is_ascii_digit).count();
    if digits < 9 {
        return;
    }
    let uuids = uuid_spans(text);
    let in_uuid = |m: &regex::Match| uuids.iter().any(|&(a, b)| m.start() < b && a < m.end());
    for m in PHONE.find_iter(text).filter(|m| !in_uuid(m)) {
        let n = m.as_str().bytes().filter(u8::is_ascii_digit).count();
        if (9..=15).contains(&n) {
            f("phone", m.as_str());
        }
    }
    for m in IBAN.find_iter(text).filter(|m| !in_uuid(m)) {
        let compact: String = m.as_str().chars().filter(|c| *c != ' ').collect();
        if (15..=34).contains(&compact.len()) && mod97(&compact) == Some(1) {
            f("iban", m.as_str());
        }
    }
    for m in CARD.find_iter(text).filter(|m| !in_uuid(m)) {
        let d: String = m.as_str().chars().filter(char::is_ascii_digit).collect();
        if (13..=19).contains(&d.len()) && luhn_valid(&d) {
            f("card-number", m.as_str());
        }
    }
    for m in CNP.find_iter(text).filter(|m| !in_uuid(m)) {
        if cnp_valid(m.as_str()) {
            f("national-id", m.as_str());
        }
    }
}

/// A finding as a report may show it: letters and digits masked but the first and
/// the last of each part, so a reviewer sees the shape and never the value.
pub fn mask(found: &str) -> String {
    let chars: Vec<char> = found.chars().collect();
    let mut out = String::with_capacity(found.len());
    let alnum = |c: char| c.is_alphanumeric();
    for (i, &c) in chars.iter().enumerate() {
        let first = i == 0 || !alnum(chars[i - 1]);
        let last = i + 1 == chars.len() || !alnum(chars[i + 1]);
        if alnum(c) && !first && !last {
            out.push('*');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        detect(text, &mut |d, m| out.push((d, m.to_string())));
        out
    }

    #[test]
    fn finds_each_kind_and_not_dates_or_amounts() {
        assert_eq!(
            found("write to Jane.Doe@Gmail.com today"),
            [("email", "Jane.Doe@Gmail.com".to_string())]
        );
        assert_eq!(
            found("call +40 721 234 567"),
            [("phone", "+40 721 234 567".to_string())]
        );
        assert_eq!(
            found("or (555) 123-4567"),
            [("phone", "(555) 123-4567".to_string())]
        );
        assert_eq!(
            found("IBAN RO49 AAAA 1B31 0075 9384 0000"),
            [("iban", "RO49 AAAA 1B31 0075 9384 0000".to_string())]
        );
        assert_eq!(
            found("card 4111 1111 1111 1111"),
            [("card-number", "4111 1111 1111 1111".to_string())]
        );
        assert_eq!(
            found("CNP 1800101221144"),
            [("national-id", "1800101221144".to_string())]
        );
        assert!(found("2022-01-24 21:40:19.123456+00").is_empty());
        assert!(found("paid 1234.99 on order 20220124").is_empty());
        assert!(
            found("card 4111 1111 1111 1112").is_empty(),
            "not Luhn-valid"
        );
    }

    #[test]
    fn digit_groups_of_a_uuid_are_not_numbers() {
        // 34729441-3118-4519 reads as a Luhn-valid card number without the UUID around it
        let id = "34729441-3118-4519-8c0e-2b3b6c2e29a4";
        assert!(structured(id));
        assert!(found(id).is_empty());
        assert!(found(&format!("request {id} failed")).is_empty());
        assert!(structured("2024-01-31 12:00:00.5+02"));
        assert!(!structured("2024-01-31 call +40 721 234 567"));
        assert!(structured("2024-01-31t12:00:00z"), "a folded ISO timestamp");
        assert!(structured("2024-01-31"));
        assert!(!structured("2024-1-31 x"));
        assert!(
            !structured("34729441-3118-4519-8c0e-2b3b6c2e29ag"),
            "g is no hex digit"
        );
        assert!(!structured("34729441-3118-4519-8c0e_2b3b6c2e29a4"));
        assert_eq!(
            found(&format!("{id}: card 4111 1111 1111 1111")),
            [("card-number", "4111 1111 1111 1111".to_string())]
        );
    }

    #[test]
    fn masks_all_but_the_ends_of_each_part() {
        assert_eq!(mask("jane.doe@gmail.com"), "j**e.d*e@g***l.c*m");
        assert_eq!(mask("+40 721 234 567"), "+40 7*1 2*4 5*7");
    }
}
