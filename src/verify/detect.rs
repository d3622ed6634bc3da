//! Detectors for personal data in columns the config keeps: e-mail addresses, phone
//! numbers, IBANs (mod-97), card numbers (Luhn) and Romanian CNPs (check digit). They
//! catch what a leak scan cannot: a clerk's note holding someone the source columns
//! never named.

use std::sync::LazyLock;

use regex::Regex;

use crate::anonymize::transformers::{
    card_number::luhn_valid, iban::mod97, national_id::cnp_valid,
};

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

/// Calls `f(detector, matched text)` for every finding in `text`.
pub fn detect(text: &str, f: &mut dyn FnMut(&'static str, &str)) {
    if text.contains('@') {
        for m in EMAIL.find_iter(text) {
            f("email", m.as_str());
        }
    }
    let digits = text.bytes().filter(u8::is_ascii_digit).count();
    if digits < 9 {
        return;
    }
    for m in PHONE.find_iter(text) {
        let n = m.as_str().bytes().filter(u8::is_ascii_digit).count();
        if (9..=15).contains(&n) {
            f("phone", m.as_str());
        }
    }
    for m in IBAN.find_iter(text) {
        let compact: String = m.as_str().chars().filter(|c| *c != ' ').collect();
        if (15..=34).contains(&compact.len()) && mod97(&compact) == Some(1) {
            f("iban", m.as_str());
        }
    }
    for m in CARD.find_iter(text) {
        let d: String = m.as_str().chars().filter(char::is_ascii_digit).collect();
        if (13..=19).contains(&d.len()) && luhn_valid(&d) {
            f("card-number", m.as_str());
        }
    }
    for m in CNP.find_iter(text) {
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
    fn masks_all_but_the_ends_of_each_part() {
        assert_eq!(mask("jane.doe@gmail.com"), "j**e.d*e@g***l.c*m");
        assert_eq!(mask("+40 721 234 567"), "+40 7*1 2*4 5*7");
    }
}
