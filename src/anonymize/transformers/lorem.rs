//! `lorem`: free text replaced letter by letter, keeping its shape.

use super::{Build, Kind, OptionDoc, Options, Row, Spec, Transform};
use crate::anonymize::key::DomainKey;

pub static SPEC: Spec = Spec {
    name: "lorem",
    summary: "Replaces every word with lorem-ipsum text of the same length and capitalisation, and every digit with a keyed digit; spaces, punctuation and line breaks stay where they were, so lengths, line counts and layout hold while no word of the original survives. On an `xml` column only text, attribute values, comments and CDATA are replaced (names, entity references and processing instructions kept), so the document stays well-formed; on a `tsvector` column only the lexemes (positions and weights kept).",
    options: &[OptionDoc {
        name: "format",
        kind: "string",
        default: "the column's type",
        doc: "`text`, `xml` or `tsvector`: the syntax kept",
    }],
    examples: &[
        super::Example { options: "", input: "Client called on 12 May:\nwants the settlement by Friday.", row: &[] },
        super::Example { options: "format = \"xml\"", input: "<person id=\"7\"><name>Maria Anders</name><!-- VIP --></person>", row: &[] },
        super::Example { options: "format = \"tsvector\"", input: "'anders':2 'maria':1A", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Text, super::Kind::Xml, super::Kind::Tsvector]),
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

/// The syntax the text lives in: only its words are replaced, so the value stays valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    /// Text nodes, attribute values, comments and CDATA; element and attribute names,
    /// entity references and processing instructions kept.
    Xml,
    /// The lexemes inside quotes; positions and weights kept.
    Tsvector,
}

struct Lorem {
    key: DomainKey,
    format: Format,
}

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let format = match o.string("format")?.as_deref() {
        Some("text") => Format::Text,
        Some("xml") => Format::Xml,
        Some("tsvector") => Format::Tsvector,
        Some(other) => {
            return Err(format!(
                "`format = \"{other}\"` is not one lorem knows: `text`, `xml` or `tsvector`"
            ))
        }
        None => match b.ty.map(|t| t.kind) {
            Some(Kind::Xml) => Format::Xml,
            Some(Kind::Tsvector) => Format::Tsvector,
            _ => Format::Text,
        },
    };
    Ok(Box::new(Lorem {
        key: b.domain_key(),
        format,
    }))
}

/// Replaces the words and digits of `text` (letters by lorem ipsum of the same length and
/// capitalisation, digits by keyed digits), everything else kept, onto `out`.
fn fill(text: &str, rng: &mut impl rand::RngExt, out: &mut String) {
    let chars: Vec<char> = text.chars().collect();
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
                super::push_digits(out, 1, rng);
            } else {
                out.push(c);
            }
            i += 1;
        }
    }
}

/// [`fill`] on character data, entity references (`&amp;`, `&#233;`) kept whole.
fn fill_xml_text(text: &str, rng: &mut impl rand::RngExt, out: &mut String) {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        fill(&rest[..amp], rng, out);
        let end = rest[amp..].find(';').map_or(rest.len(), |e| amp + e + 1);
        out.push_str(&rest[amp..end]);
        rest = &rest[end..];
    }
    fill(rest, rng, out);
}

/// Well-formed XML stays well-formed: markup is copied, what it holds is filled.
fn fill_xml(value: &str, rng: &mut impl rand::RngExt, out: &mut String) {
    let mut rest = value;
    while let Some(lt) = rest.find('<') {
        fill_xml_text(&rest[..lt], rng, out);
        rest = &rest[lt..];
        // (opening, closing, whether what is between them is filled)
        let (open, close, filled) = if rest.starts_with("<!--") {
            ("<!--", "-->", true)
        } else if rest.starts_with("<![CDATA[") {
            ("<![CDATA[", "]]>", true)
        } else if rest.starts_with("<?") {
            ("<?", "?>", false)
        } else if rest.starts_with("<!") {
            ("<!", ">", false)
        } else {
            ("<", ">", false)
        };
        let body_end = rest[open.len()..]
            .find(close)
            .map_or(rest.len(), |e| open.len() + e);
        let body = &rest[open.len()..body_end];
        out.push_str(open);
        if filled {
            fill(body, rng, out);
        } else if open == "<" {
            // a tag: names kept, attribute values filled
            let mut quote: Option<char> = None;
            let mut start = 0;
            for (i, c) in body.char_indices() {
                match quote {
                    None if c == '"' || c == '\'' => {
                        out.push_str(&body[start..=i]);
                        start = i + 1;
                        quote = Some(c);
                    }
                    Some(q) if c == q => {
                        fill_xml_text(&body[start..i], rng, out);
                        out.push(c);
                        start = i + 1;
                        quote = None;
                    }
                    _ => {}
                }
            }
            out.push_str(&body[start..]);
        } else {
            out.push_str(body);
        }
        let end = (body_end + close.len()).min(rest.len());
        out.push_str(&rest[body_end..end]);
        rest = &rest[end..];
    }
    fill_xml_text(rest, rng, out);
}

/// The lexemes of a tsvector (`'word':1,3A 'other':2`) filled, quotes, positions and
/// weights kept; a doubled quote inside a lexeme is kept as it is.
fn fill_tsvector(value: &str, rng: &mut impl rand::RngExt, out: &mut String) {
    let mut chars = value.char_indices().peekable();
    let mut lexeme: Option<usize> = None;
    while let Some((i, c)) = chars.next() {
        match (lexeme, c) {
            (None, '\'') => {
                out.push(c);
                lexeme = Some(i + 1);
            }
            (Some(start), '\'') if chars.peek().is_some_and(|&(_, n)| n == '\'') => {
                fill(&value[start..i], rng, out);
                out.push_str("''");
                chars.next();
                lexeme = Some(i + 2);
            }
            (Some(start), '\'') => {
                fill(&value[start..i], rng, out);
                out.push(c);
                lexeme = None;
            }
            (None, _) => out.push(c),
            (Some(_), _) => {}
        }
    }
    if let Some(start) = lexeme {
        fill(&value[start..], rng, out);
    }
}

impl Transform for Lorem {
    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        let mut rng = self.key.rng(value.as_bytes());
        let mut out = String::with_capacity(value.len());
        match self.format {
            Format::Text => fill(value, &mut rng, &mut out),
            Format::Xml => fill_xml(value, &mut rng, &mut out),
            Format::Tsvector => fill_tsvector(value, &mut rng, &mut out),
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::types::ColumnType;

    fn lorem(kind: Kind) -> Box<dyn Transform> {
        let (sql, base) = match kind {
            Kind::Xml => ("xml", "xml"),
            _ => ("tsvector", "tsvector"),
        };
        let ty = ColumnType::from_catalog(sql.into(), base, -1, false, false);
        let key = crate::anonymize::key::Key::from_secret(b"a test key, 16+ characters");
        let cols = ["c".to_string()];
        let b = Build {
            key: &key,
            domain: "lorem".into(),
            columns: &cols,
            column: "c",
            reals: None,
            ty: Some(&ty),
        };
        build(&mut Options::new("lorem", toml::Table::new()), &b).unwrap()
    }

    /// On an `xml` column the document stays well-formed and no word of it survives; on
    /// a `tsvector` column positions and weights stay (issue 14: lorem on xml wrote
    /// unbalanced tags).
    #[test]
    fn xml_and_tsvector_keep_their_syntax() {
        let xml = ColumnType::from_catalog("xml".into(), "xml", -1, false, false);
        let doc = "<?xml version=\"1.0\"?><person id=\"7\" note='Maria &amp; Co'>\
                   <name>Maria Anders</name><!-- VIP since 2019 --><![CDATA[a<b Anders]]>\
                   <x/>Berlin &#233;</person>";
        let out = lorem(Kind::Xml)
            .apply(doc, &super::super::NoRow)
            .unwrap()
            .unwrap();
        crate::anonymize::valid::check(&xml, &out).unwrap_or_else(|e| panic!("{e}: {out}"));
        for word in ["Maria", "Anders", "VIP", "Berlin", "2019"] {
            assert!(!out.contains(word), "{word} survived: {out}");
        }
        for kept in [
            "<?xml version=\"1.0\"?>",
            "<person id=\"",
            "<name>",
            "</name>",
            "&amp;",
            "&#233;",
            "<x/>",
        ] {
            assert!(out.contains(kept), "{kept} lost: {out}");
        }
        let ts = lorem(Kind::Tsvector)
            .apply("'anders':2 'maria':1A 'o''neil':3", &super::super::NoRow)
            .unwrap()
            .unwrap();
        let shape: String = ts
            .chars()
            .map(|c| {
                if c.is_alphabetic() && c != 'A' {
                    'x'
                } else {
                    c
                }
            })
            .collect();
        assert_eq!(shape, "'xxxxxx':2 'xxxxx':1A 'x''xxxx':3", "{ts}");
        assert!(!ts.contains("maria") && !ts.contains("anders"), "{ts}");
    }
}
