//! `lorem`: free text replaced letter by letter, keeping its shape.

use super::{Build, Options, Row, Spec, Transform};
use crate::anonymize::key::DomainKey;

pub static SPEC: Spec = Spec {
    name: "lorem",
    summary: "Replaces every word with lorem-ipsum text of the same length and capitalisation, and every digit with a keyed digit; spaces, punctuation and line breaks stay where they were, so lengths, line counts and layout hold while no word of the original survives.",
    options: &[],
    examples: &[
        super::Example { options: "", input: "Client called on 12 May:\nwants the settlement by Friday.", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Text]),
    build,
};

const WORDS: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "enim",
    "ad",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
    "nisi",
    "aliquip",
    "ex",
    "ea",
    "commodo",
    "consequat",
    "duis",
    "aute",
    "irure",
    "in",
    "reprehenderit",
    "voluptate",
    "velit",
    "esse",
    "cillum",
    "fugiat",
    "nulla",
    "pariatur",
    "excepteur",
    "sint",
    "occaecat",
    "cupidatat",
    "non",
    "proident",
    "sunt",
    "culpa",
    "qui",
    "officia",
    "deserunt",
    "mollit",
    "anim",
    "id",
    "est",
    "laborum",
];

struct Lorem {
    key: DomainKey,
}

fn build(_: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    Ok(Box::new(Lorem {
        key: b.domain_key(),
    }))
}

impl Transform for Lorem {
    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        use rand::RngExt;
        let mut rng = self.key.rng(value.as_bytes());
        let mut out = String::with_capacity(value.len());
        let chars: Vec<char> = value.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_alphabetic() {
                let end = chars[i..]
                    .iter()
                    .position(|c| !c.is_alphabetic())
                    .map_or(chars.len(), |p| i + p);
                let len = end - i;
                // words of the list, joined without spaces, cut to the length
                let mut filler = String::new();
                while filler.chars().count() < len {
                    filler.push_str(WORDS[rng.random_range(0..WORDS.len())]);
                }
                for (src, f) in chars[i..end].iter().zip(filler.chars()) {
                    if src.is_uppercase() {
                        out.extend(f.to_uppercase());
                    } else {
                        out.push(f);
                    }
                }
                i = end;
            } else {
                if c.is_ascii_digit() {
                    super::push_digits(&mut out, 1, &mut rng);
                } else {
                    out.push(c);
                }
                i += 1;
            }
        }
        Ok(Some(out))
    }
}
