//! The shared machinery of the fake-data transformers (names, places, companies): a
//! value from the locale's lists, chosen by a stream seeded with the keyed hash of the
//! input, in the input's case style.

use super::{Build, OptionDoc, Options, Row, Transform};
use crate::anonymize::key::DomainKey;
use crate::seed::locale::fake_into;
use crate::seed::profile::{FakeKind, Locale};

pub static OPTIONS: [OptionDoc; 1] = [OptionDoc {
    name: "locale",
    kind: "string",
    default: "`en`",
    doc: "`en` or `ro` (Romanian, with diacritics)",
}];

struct Fake {
    kind: FakeKind,
    key: DomainKey,
    locale: Locale,
    cycle: Option<Cycle>,
}

/// A keyed permutation of the list values are drawn from, as one cycle: a value that is
/// itself on the list (a seeded database, a common name) maps one-to-one onto the list,
/// and never onto itself. Without it, the 36 first names of a seeded table collapsed into
/// 24 under a keyed draw, and verify rightly saw the categories shrink (issue 14).
struct Cycle {
    /// The list without repeats, and each name's place in it, by its lower case.
    names: Vec<&'static str>,
    index: foldhash::HashMap<String, usize>,
    /// `next[i]`: the place of the name that name `i` becomes.
    next: Vec<usize>,
}

impl Cycle {
    fn new(list: &'static [&'static str], key: &DomainKey) -> Cycle {
        let mut names = Vec::with_capacity(list.len());
        let mut index = foldhash::HashMap::default();
        for &name in list {
            if let std::collections::hash_map::Entry::Vacant(e) = index.entry(name.to_lowercase()) {
                e.insert(names.len());
                names.push(name);
            }
        }
        // Sattolo's algorithm: a uniformly random permutation with a single cycle
        let mut next: Vec<usize> = (0..names.len()).collect();
        // thousands of draws from one seed, whose result shows in the copy: ChaCha20
        let mut rng = key.sub("list cycle").long_rng(b"");
        for i in (1..next.len()).rev() {
            let j = rand::RngExt::random_range(&mut rng, 0..i);
            next.swap(i, j);
        }
        Cycle { names, index, next }
    }
}

pub fn build(kind: FakeKind, o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let locale = super::locale(o)?;
    let key = b.domain_key();
    let cycle = crate::seed::locale::list(kind, locale).map(|l| Cycle::new(l, &key));
    Ok(Box::new(Fake {
        kind,
        key,
        locale,
        cycle,
    }))
}

impl Transform for Fake {
    fn apply(&self, value: &str, row: &dyn Row) -> Result<Option<String>, String> {
        let mut out = String::new();
        Ok(self.apply_into(value, row, &mut out)?.then_some(out))
    }

    fn apply_into(&self, value: &str, _: &dyn Row, out: &mut String) -> Result<bool, String> {
        // `MARIA` and `Maria` are one person: the choice is keyed on the folded value,
        // the case style comes from the value as written
        let start = out.len();
        with_folded(value, |folded| {
            if let Some(c) = &self.cycle {
                if let Some(&i) = c.index.get(folded) {
                    out.push_str(c.names[c.next[i]]);
                    match_case_at(value, out, start);
                    return;
                }
            }
            let mut rng = self.key.rng(folded.as_bytes());
            // a draw equal to the value itself would leave it in its own row: draw again
            // from the same stream (deterministic; the lists are long enough that 8 do)
            for _ in 0..8 {
                out.truncate(start);
                fake_into(out, self.kind, self.locale, &mut rng);
                if !same_folded(&out[start..], folded) {
                    break;
                }
            }
            match_case_at(value, out, start);
        });
        Ok(true)
    }
}

/// Calls `f` with `value` trimmed and case-folded: the value itself when it has nothing
/// to fold, else folded into a buffer each thread reuses, so one person whatever the case
/// costs no allocation on the hot path.
pub fn with_folded<R>(value: &str, f: impl FnOnce(&str) -> R) -> R {
    thread_local! {
        static BUF: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    let t = crate::pii::trim(value);
    if t.is_ascii() && !t.bytes().fold(false, |any, b| any | b.is_ascii_uppercase()) {
        return f(t);
    }
    BUF.with_borrow_mut(|buf| {
        buf.clear();
        if t.is_ascii() {
            buf.push_str(t);
            buf.make_ascii_lowercase();
        } else {
            buf.extend(t.chars().flat_map(char::to_lowercase));
        }
        f(buf)
    })
}

/// Whether `drawn` is `folded` (already case-folded) whatever its case.
pub fn same_folded(drawn: &str, folded: &str) -> bool {
    if drawn.is_ascii() && folded.is_ascii() {
        drawn.eq_ignore_ascii_case(folded)
    } else {
        drawn.to_lowercase() == folded
    }
}

/// [`match_case`] on the part of `out` from `start`, in place when both are ASCII.
pub fn match_case_at(input: &str, out: &mut String, start: usize) {
    if input.is_ascii() && out[start..].is_ascii() {
        match ascii_style(input) {
            (false, true, false) => out[start..].make_ascii_uppercase(),
            (false, false, true) => out[start..].make_ascii_lowercase(),
            _ => {}
        }
        return;
    }
    let tail = out.split_off(start);
    out.push_str(&match_case(input, tail));
}

/// Of an ASCII value: whether it has fewer than two letters, any capital, any small one.
fn ascii_style(input: &str) -> (bool, bool, bool) {
    let (mut letters, mut upper, mut lower) = (0usize, false, false);
    for b in input.bytes() {
        letters += usize::from(b.is_ascii_alphabetic());
        upper |= b.is_ascii_uppercase();
        lower |= b.is_ascii_lowercase();
        if upper && lower {
            // mixed: kept as generated, whatever follows
            break;
        }
    }
    (letters < 2, upper, lower)
}

/// `out` in the case style of `input`: all upper, all lower, or as generated.
pub fn match_case(input: &str, mut out: String) -> String {
    if input.is_ascii() {
        // one pass over the bytes, and no allocation when the output is ASCII too
        return match ascii_style(input) {
            (false, true, false) if out.is_ascii() => {
                out.make_ascii_uppercase();
                out
            }
            (false, true, false) => out.to_uppercase(),
            (false, false, true) if out.is_ascii() => {
                out.make_ascii_lowercase();
                out
            }
            (false, false, true) => out.to_lowercase(),
            _ => out,
        };
    }
    match_case_chars(input, out)
}

/// [`match_case`] for any text, a character at a time.
fn match_case_chars(input: &str, out: String) -> String {
    let letters = || input.chars().filter(|c| c.is_alphabetic());
    if letters().count() < 2 {
        out
    } else if letters().all(char::is_uppercase) {
        out.to_uppercase()
    } else if letters().all(char::is_lowercase) {
        out.to_lowercase()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The ASCII fast path renders exactly as the character-wise rule does.
        #[test]
        fn ascii_fast_path_matches_the_general_rule(
            input in "[A-Za-z0-9 .'-]{0,12}",
            out in "[A-Za-z .-]{0,12}|[a-zăîșțâ]{1,8}",
        ) {
            let mut at = String::from("kept ");
            at.push_str(&out);
            match_case_at(&input, &mut at, 5);
            prop_assert_eq!(&at[5..], match_case(&input, out.clone()));
            prop_assert_eq!(
                match_case(&input, out.clone()),
                match_case_chars(&input, out)
            );
        }
    }
}
