//! People's names in values and in text: a value that is a person's name (one to four
//! words, one a known first name), and text that names one (a capitalised known first
//! name and a capitalised word after it); with the detectors, the kinds of personal data
//! a text holds. Shared by init's suggestions and verify's look at comments.

/// Every first name of the generators' lists, folded: a word of text that is one, followed
/// by a capitalised word, names a person.
pub static FIRST_NAMES: std::sync::LazyLock<std::collections::HashSet<String>> =
    std::sync::LazyLock::new(|| {
        use crate::seed::locale::list;
        use crate::seed::profile::{FakeKind, Locale};
        [Locale::En, Locale::Ro]
            .into_iter()
            .filter_map(|l| list(FakeKind::FirstName, l))
            .flatten()
            .map(|n| n.to_lowercase())
            .collect()
    });

pub fn capitalised(w: &str) -> bool {
    let mut c = w.chars();
    c.next().is_some_and(char::is_uppercase) && c.any(char::is_lowercase)
}

/// A person's name: one to four words of letters (any case; `Anders, Maria` too), one
/// of them a known first name (`Maria Anders`, `MARIA ANDERS`; not `Aniseed Syrup`).
pub fn looks_like_person(s: &str) -> bool {
    let ws: Vec<&str> = s
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    (1..=4).contains(&ws.len())
        && ws
            .iter()
            .all(|w| w.chars().all(|c| c.is_alphabetic() || "-'.".contains(c)))
        && ws.iter().any(|w| FIRST_NAMES.contains(&w.to_lowercase()))
}

/// A person named inside text: a known first name, capitalised, and a capitalised word
/// after it (`… called Maria Anders on …`).
pub fn names_a_person(text: &str) -> bool {
    let ws: Vec<&str> = text
        .split(|c: char| !c.is_alphabetic() && c != '-' && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    ws.windows(2).any(|p| {
        capitalised(p[0]) && capitalised(p[1]) && FIRST_NAMES.contains(&p[0].to_lowercase())
    })
}

/// The kinds of personal data in `text` (`email`, `phone` …, `people's names`), for
/// what init says of text outside columns (comments).
pub fn personal_in(text: &str) -> Vec<&'static str> {
    let mut found = found_in(text);
    if names_a_person(text) {
        found.push("people's names");
    }
    found
}

/// What the detectors find in `text`, as `email`, `phone` …, without repeats.
pub fn found_in(text: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    crate::pii::detect::detect(text, &mut |d, _| {
        if !found.contains(&d) {
            found.push(d);
        }
    });
    found
}
