//! The leak scan: keyed 128-bit hashes of every value of every anonymized source column
//! (and of its normalized forms), then every cell of the output searched for them:
//! whole values, tokens and short phrases of free text, JSON leaves, array elements,
//! e-mail local parts and the digits of phone-like runs.
//!
//! The hashes are keyed (xxh3-128 seeded from the anonymization key): they never leave
//! memory, and nobody holding a report can test a guess against them. Up to a bound
//! they are kept exactly, with the column each came from; past it, in a blocked Bloom
//! filter whose hits are confirmed by a second read of the source.

use std::sync::{Arc, OnceLock};

use foldhash::HashMap;

pub use crate::bloom::Bloom;
use xxhash_rust::xxh3::xxh3_128_with_seed;

/// How a source column's values are normalized before hashing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Norm {
    /// Trimmed and case-folded.
    Text,
    /// Also the local part of an address.
    Email,
    /// Also the digits alone (phones, national ids, card numbers).
    Digits,
    /// Also without spaces and dashes (IBANs).
    Compact,
    /// A `json` column: the leaves at the paths it rewrites are source values, each as
    /// text (the rest of the document is kept, so it is not searched for).
    Json(std::sync::Arc<crate::anonymize::transformers::json::JsonPaths>),
}

/// The forms of a source value searched for in the output, by its column's
/// transformer; `None` for columns that are not searched (kept columns; keys, whose
/// numbers mean nothing alone and are checked by integrity; perturbed dates and
/// numbers, and weighted choices, whose output may equal some input by design).
pub fn norm_for(transformer: &str, options: &toml::Table) -> Option<Norm> {
    match transformer {
        "json" => crate::anonymize::transformers::json::JsonPaths::from_options(options, |t| {
            t != "json" && norm_for(t, &toml::Table::new()).is_some()
        })
        .map(|p| Norm::Json(std::sync::Arc::new(p))),
        "keep" | "integer-id" | "date-shift" | "timestamp-shift" | "numeric-noise" | "choice" => {
            None
        }
        "email" => Some(Norm::Email),
        "phone" | "national-id" | "card-number" => Some(Norm::Digits),
        "iban" => Some(Norm::Compact),
        _ => Some(Norm::Text),
    }
}

/// The least digits a digits-only form must have: a postal code or a row number alone
/// identifies nobody, a phone number or national id does.
pub const MIN_DIGITS: usize = 7;

/// Where a candidate came from in an output cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cand {
    /// The whole value, a JSON leaf, an array element, a phrase of words, a local part
    /// or a run of digits: a match is a hit.
    Exact,
    /// The `n`th word of free text: a common word may equal a short source value by
    /// chance ("Grace", "Rose"), so a word alone is a hit only if it holds a digit or an
    /// `@`, or if the word beside it is a hit too ("jane doe").
    Word(usize),
}

/// Calls `f` with every form of `value` (already case-folded by the caller) that is at
/// least `min_len` characters long.
pub fn source_forms(
    value: &str,
    norm: &Norm,
    min_len: usize,
    buf: &mut String,
    f: &mut dyn FnMut(&str),
) {
    source_forms_at(value, norm, min_len, buf, f, 0);
}

/// [`source_forms`] at `depth` of a JSON document or an array: a value held only in a
/// JSON leaf or an array element is a source value as much as a whole cell is, as the
/// output's candidates already take them (issue 14).
fn source_forms_at(
    value: &str,
    norm: &Norm,
    min_len: usize,
    buf: &mut String,
    f: &mut dyn FnMut(&str),
    depth: usize,
) {
    let whole = crate::pii::trim(value);
    if depth < 8 && (whole.starts_with('{') || whole.starts_with('[')) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(whole) {
            json_leaves(&v, &mut |leaf| {
                source_forms_at(leaf, norm, min_len, &mut String::new(), f, depth + 1)
            });
        } else if whole.starts_with('{') && whole.ends_with('}') {
            for element in array_elements(&whole[1..whole.len() - 1]) {
                if element != "null" {
                    source_forms_at(&element, norm, min_len, buf, f, depth + 1);
                }
            }
        }
    }
    let numeric = whole
        .bytes()
        .all(|b| b.is_ascii_digit() || b" +-.()/".contains(&b));
    if long_enough(whole, min_len)
        && (!numeric || whole.bytes().filter(u8::is_ascii_digit).count() >= MIN_DIGITS)
    {
        f(whole);
    }
    match norm {
        Norm::Text | Norm::Json(_) => {}
        Norm::Email => {
            // a person's local part (`jane.doe`, `jdoe84`), not a role's (`office`)
            if let Some((local, _)) = whole.rsplit_once('@') {
                if long_enough(local, min_len)
                    && local.contains(|c: char| c.is_ascii_digit() || ".-_+".contains(c))
                {
                    f(local);
                }
            }
        }
        Norm::Digits => {
            buf.clear();
            buf.extend(whole.chars().filter(char::is_ascii_digit));
            if buf.len() >= MIN_DIGITS && buf != whole {
                f(buf);
            }
        }
        Norm::Compact => {
            buf.clear();
            buf.extend(whole.chars().filter(|c| !c.is_whitespace() && *c != '-'));
            if long_enough(buf, min_len) && buf != whole {
                f(buf);
            }
        }
    }
}

/// Whether `s` has at least `n` characters (counted only when its bytes cannot tell).
fn long_enough(s: &str, n: usize) -> bool {
    s.len() >= n && (s.len() >= 4 * n || s.is_ascii() || s.chars().count() >= n)
}

/// [`separator`] for each ASCII byte.
static SEPARATORS: [bool; 128] = {
    let mut t = [false; 128];
    let mut i = 0;
    while i < 128 {
        t[i] = matches!(
            i as u8,
            b' ' | b'\t'
                | b'\n'
                | b'\r'
                | 0x0b
                | 0x0c
                | b','
                | b';'
                | b':'
                | b'('
                | b')'
                | b'['
                | b']'
                | b'{'
                | b'}'
                | b'<'
                | b'>'
                | b'"'
                | b'\''
                | b'|'
                | b'/'
                | b'\\'
                | b'='
                | b'!'
                | b'?'
                | b'*'
                | b'&'
        );
        i += 1;
    }
    t
};

/// Whether `s` holds a separator ([`separator`]), by table for ASCII.
fn has_separator(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes().any(|b| SEPARATORS[b as usize])
    } else {
        s.contains(separator)
    }
}

/// Characters that separate tokens of free text (an address's `.@+-_` do not).
fn separator(c: char) -> bool {
    if c.is_ascii() {
        return SEPARATORS[c as usize];
    }
    c.is_whitespace()
        || matches!(
            c,
            ',' | ';'
                | ':'
                | '('
                | ')'
                | '['
                | ']'
                | '{'
                | '}'
                | '<'
                | '>'
                | '"'
                | '\''
                | '|'
                | '/'
                | '\\'
                | '='
                | '!'
                | '?'
                | '*'
                | '&'
        )
}

/// Calls `f` with every candidate the output cell `folded` (case-folded) offers.
pub fn candidates(folded: &str, min_len: usize, f: &mut dyn FnMut(&str, Cand)) {
    let mut words = 0;
    candidates_at(folded, min_len, f, 0, &mut words);
}

fn candidates_at(
    text: &str,
    min_len: usize,
    f: &mut dyn FnMut(&str, Cand),
    depth: usize,
    words: &mut usize,
) {
    let whole = crate::pii::trim(text);
    if whole.is_empty() {
        return;
    }
    if long_enough(whole, min_len) {
        f(whole, Cand::Exact);
    }
    // a UUID or a timestamp holds nothing but itself
    if crate::pii::detect::structured(whole) {
        return;
    }
    if depth < 8 && (whole.starts_with('{') || whole.starts_with('[')) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(whole) {
            json_leaves(&v, &mut |leaf| {
                candidates_at(leaf, min_len, f, depth + 1, words)
            });
            return;
        }
        if whole.starts_with('{') && whole.ends_with('}') {
            for element in array_elements(&whole[1..whole.len() - 1]) {
                candidates_at(&element, min_len, f, depth + 1, words);
            }
            return;
        }
    }
    if !has_separator(whole) && !whole.contains('@') {
        digit_runs(whole, f);
        return;
    }
    // tokens, their address local parts, and phrases of two and three words
    let tokens: Vec<&str> = whole
        .split(separator)
        .map(|t| t.trim_matches(|c: char| c == '.' || c == '-' || c == '_'))
        .filter(|t| !t.is_empty())
        .collect();
    let mut phrase = String::new();
    for (i, t) in tokens.iter().enumerate() {
        *words += 1;
        if long_enough(t, min_len) && *t != whole {
            f(t, Cand::Word(*words));
        }
        if let Some((local, _)) = t.rsplit_once('@') {
            if long_enough(local, min_len) {
                f(local, Cand::Exact);
            }
        }
        for n in 2..=3 {
            if i + n <= tokens.len() {
                phrase.clear();
                for (k, w) in tokens[i..i + n].iter().enumerate() {
                    if k > 0 {
                        phrase.push(' ');
                    }
                    phrase.push_str(w);
                }
                if phrase != whole {
                    f(&phrase, Cand::Exact);
                }
            }
        }
    }
    digit_runs(whole, f);
}

/// The digits of every run of digits and phone punctuation with at least
/// [`MIN_DIGITS`] of them: `+40 (721) 234-567` → `40721234567`.
fn digit_runs(text: &str, f: &mut dyn FnMut(&str, Cand)) {
    // most text has too few digits for any run to count
    if text.bytes().filter(u8::is_ascii_digit).count() < MIN_DIGITS {
        return;
    }
    let mut digits = String::new();
    let flush = |digits: &mut String, f: &mut dyn FnMut(&str, Cand)| {
        if digits.len() >= MIN_DIGITS && digits.len() <= 34 {
            f(digits, Cand::Exact);
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if !matches!(c, ' ' | '-' | '.' | '(' | ')' | '+' | '/') {
            flush(&mut digits, f);
        }
    }
    flush(&mut digits, f);
}

fn json_leaves(v: &serde_json::Value, f: &mut dyn FnMut(&str)) {
    match v {
        serde_json::Value::String(s) => f(s),
        serde_json::Value::Number(n) => f(&n.to_string()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| json_leaves(x, f)),
        serde_json::Value::Object(o) => o.values().for_each(|x| json_leaves(x, f)),
        _ => {}
    }
}

/// The elements of a PostgreSQL array literal's inside (`a,"b c",{d}`), unquoted.
fn array_elements(inner: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in inner.chars() {
        match c {
            _ if escaped => {
                cur.push(c);
                escaped = false;
            }
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            '{' | '}' if !quoted => {}
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// The keyed hash of a form: what the set holds and what a candidate is looked up by.
pub fn form_hash(seed: u64, form: &str) -> u128 {
    xxh3_128_with_seed(form.as_bytes(), seed)
}

/// The source's values: exactly (hash → column), or past `max` a Bloom filter.
pub struct LeakSet {
    seed: u64,
    // two u64s, not a u128: 24-byte entries instead of 32
    exact: HashMap<(u64, u64), u32>,
    /// Set once the exact set outgrows `max`; shared, so workers add to it directly.
    bloom: Arc<OnceLock<Bloom>>,
    max: usize,
    bloom_mb: usize,
    pub inserted: u64,
    /// Whether a UUID or timestamp is among the forms (else no output cell of that
    /// shape needs looking up).
    pub structured: bool,
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    No,
    /// A value of this source column.
    Column(u32),
    /// Possibly a source value (the Bloom filter): to be confirmed.
    Maybe,
}

fn split(h: u128) -> (u64, u64) {
    ((h >> 64) as u64, h as u64)
}

impl LeakSet {
    pub fn new(seed: u64, max: usize, bloom_mb: usize) -> LeakSet {
        LeakSet {
            seed,
            // sized once for what it may hold: growing by doubling rehashes it all
            exact: HashMap::with_capacity_and_hasher(max.min(1 << 20), Default::default()),
            bloom: Arc::default(),
            max,
            bloom_mb,
            inserted: 0,
            structured: false,
        }
    }

    pub fn hash(&self, form: &str) -> u128 {
        form_hash(self.seed, form)
    }

    /// Adds hashed forms with their columns.
    pub fn insert_many(&mut self, forms: &[(u128, u32)]) {
        let mut rest = forms;
        while !rest.is_empty() {
            if let Some(b) = self.bloom.get() {
                b.insert_all(rest.iter().map(|f| f.0));
                self.inserted += rest.len() as u64;
                return;
            }
            let (&(h, column), tail) = rest.split_first().expect("not empty");
            rest = tail;
            self.inserted += 1;
            self.exact.entry(split(h)).or_insert(column);
            if self.exact.len() > self.max {
                let b = Bloom::with_mb(self.bloom_mb);
                b.insert_all(
                    self.exact
                        .keys()
                        .map(|&(hi, lo)| (u128::from(hi) << 64) | u128::from(lo)),
                );
                self.exact = HashMap::default();
                let _ = self.bloom.set(b);
            }
        }
    }

    /// The filter, once there is one, for workers to add to while the merge goes on
    /// ([`LeakSet::insert_many`] decides when it starts).
    pub fn shared_filter(&self) -> Arc<OnceLock<Bloom>> {
        self.bloom.clone()
    }

    /// Starts loading what a lookup of `h` will read.
    pub fn prefetch(&self, h: u128) {
        if let Some(b) = self.bloom.get() {
            b.prefetch(h);
        }
    }

    pub fn find(&self, h: u128) -> Found {
        match self.bloom.get() {
            Some(b) if b.contains(h) => Found::Maybe,
            Some(_) => Found::No,
            None => self
                .exact
                .get(&split(h))
                .map_or(Found::No, |c| Found::Column(*c)),
        }
    }

    pub fn bloom(&self) -> Option<&Bloom> {
        self.bloom.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        candidates(&text.to_lowercase(), 4, &mut |c, _| out.push(c.to_string()));
        out
    }

    #[test]
    fn free_text_json_arrays_and_phones_give_their_parts() {
        let c = all("Call Jane Doe at +40 (721) 234-567, or jane.doe@gmail.com");
        for want in ["jane doe", "jane.doe@gmail.com", "jane.doe", "40721234567"] {
            assert!(c.iter().any(|x| x == want), "{want} in {c:?}");
        }
        let c = all(r#"{"contact": {"mail": "Jane.Doe@Gmail.com"}, "tags": ["x", 12345678]}"#);
        assert!(c.iter().any(|x| x == "jane.doe@gmail.com"), "{c:?}");
        assert!(c.iter().any(|x| x == "12345678"), "{c:?}");
        let c = all(r#"{alpha,"Jane Doe",0721234567}"#);
        assert!(c.iter().any(|x| x == "jane doe"), "{c:?}");
        assert!(c.iter().any(|x| x == "0721234567"), "{c:?}");
    }

    #[test]
    fn json_leaves_and_array_elements_are_source_forms() {
        let forms = |v: &str, norm| {
            let mut out = Vec::new();
            source_forms(v, &norm, 4, &mut String::new(), &mut |f| {
                out.push(f.to_string())
            });
            out
        };
        let a = forms(
            "{ana@home.example,null,\"lee 7@work.example\"}",
            Norm::Email,
        );
        assert!(a.contains(&"ana@home.example".to_string()), "{a:?}");
        assert!(a.contains(&"lee 7@work.example".to_string()), "{a:?}");
        let j = forms(
            r#"{"contact": {"name": "maria anders", "phones": ["+49 30 5550001"]}}"#,
            Norm::Digits,
        );
        assert!(j.contains(&"maria anders".to_string()), "{j:?}");
        assert!(
            j.contains(&"49305550001".to_string()),
            "the phone's digits: {j:?}"
        );
    }

    #[test]
    fn source_forms_normalize() {
        let mut buf = String::new();
        let mut out = Vec::new();
        source_forms("+40 721-234-567", &Norm::Digits, 4, &mut buf, &mut |f| {
            out.push(f.to_string())
        });
        assert_eq!(out, ["+40 721-234-567", "40721234567"]);
        out.clear();
        source_forms("jane.doe@gmail.com", &Norm::Email, 4, &mut buf, &mut |f| {
            out.push(f.to_string())
        });
        assert_eq!(out, ["jane.doe@gmail.com", "jane.doe"]);
    }

    #[test]
    fn bloom_finds_what_it_holds_and_states_its_rate() {
        let mut s = LeakSet::new(7, 10, 1);
        for i in 0..1000 {
            s.insert_many(&[(s.hash(&format!("value {i}")), 0)]);
        }
        assert!(s.bloom().is_some());
        for i in 0..1000 {
            assert_eq!(s.find(s.hash(&format!("value {i}"))), Found::Maybe);
        }
        let false_hits = (0..100_000)
            .filter(|i| s.find(s.hash(&format!("other {i}"))) != Found::No)
            .count();
        assert!(false_hits < 10, "{false_hits}");
        assert!(s.bloom().unwrap().false_positive_rate() < 1e-6);
    }

    #[test]
    fn a_full_bloom_filter_states_the_rate_it_has() {
        // 1 MB holding 1M values: about 4% of lookups of other values are found
        let mut s = LeakSet::new(7, 0, 1);
        let forms: Vec<(u128, u32)> = (0..1_000_000)
            .map(|i| (s.hash(&format!("value {i}")), 0))
            .collect();
        s.insert_many(&forms);
        // inserting again sets no new bit, so the stated rate does not move
        let stated = s.bloom().unwrap().false_positive_rate();
        s.insert_many(&forms);
        assert_eq!(s.bloom().unwrap().false_positive_rate(), stated);
        let tries = 200_000;
        let found = (0..tries)
            .filter(|i| s.find(s.hash(&format!("other {i}"))) != Found::No)
            .count();
        let measured = found as f64 / tries as f64;
        assert!(
            (0.01..0.1).contains(&stated) && (measured / stated - 1.0).abs() < 0.1,
            "stated {stated}, measured {measured}"
        );
    }

    #[test]
    fn the_separator_table_agrees_with_the_rule() {
        for b in 0u8..128 {
            let c = b as char;
            let rule = c.is_whitespace() || ",;:()[]{}<>\"'|/\\=!?*&".contains(c);
            assert_eq!(separator(c), rule, "{b:#x}");
        }
    }
}
