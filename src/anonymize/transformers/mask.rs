//! `mask`: keeps the first and last few characters, masks the rest.

use super::{Build, OptionDoc, Options, Row, Spec, Transform};

pub static SPEC: Spec = Spec {
    name: "mask",
    summary: "Keeps the first `keep_first` and last `keep_last` characters and replaces every other character with `char` (the length stays).",
    options: &[
        OptionDoc { name: "keep_first", kind: "integer", default: "0", doc: "characters kept at the start" },
        OptionDoc { name: "keep_last", kind: "integer", default: "4", doc: "characters kept at the end" },
        OptionDoc { name: "char", kind: "string", default: "`*`", doc: "the masking character" },
    ],
    examples: &[
        super::Example { options: "", input: "4111 1111 1111 1234", row: &[] },
        super::Example { options: "keep_first = 1\nkeep_last = 0\nchar = \"x\"", input: "Popescu", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Text]),
    build,
};

struct Mask {
    first: usize,
    last: usize,
    ch: char,
}

fn build(o: &mut Options, _: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let first = o.int_in("keep_first", 0..=1000)?.unwrap_or(0) as usize;
    let last = o.int_in("keep_last", 0..=1000)?.unwrap_or(4) as usize;
    let ch = match o.string("char")? {
        None => '*',
        Some(s) if s.chars().count() == 1 => s.chars().next().unwrap_or('*'),
        Some(s) => {
            return Err(format!(
                "option `char` of `mask` must be one character, found \"{s}\""
            ))
        }
    };
    Ok(Box::new(Mask { first, last, ch }))
}

impl Transform for Mask {
    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        let n = value.chars().count();
        if self.first + self.last >= n {
            // Keeping that much would show the whole value.
            return Ok(Some(std::iter::repeat_n(self.ch, n).collect()));
        }
        Ok(Some(
            value
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i < self.first || i + self.last >= n {
                        c
                    } else {
                        self.ch
                    }
                })
                .collect(),
        ))
    }
}
