//! `template`: a value built from other columns of the same row, after transformation.

use super::{Build, OptionDoc, Options, Row, Spec, Transform};

pub static SPEC: Spec = Spec {
    name: "template",
    summary: "Builds the value from other columns of the same row after their own transformers ran: `{column}` inserts one, `{column|lower}`, `{column|upper}` and `{column|slug}` (ASCII, dots for separators) adjust it, `{{` and `}}` write braces. So an email follows the new first and last name.",
    options: &[
        OptionDoc { name: "template", kind: "string", default: "required", doc: "the text, with `{column}` places" },
    ],
    examples: &[
        super::Example { options: "template = \"{first_name|slug}.{last_name|slug}@example.com\"", input: "jane.doe@gmail.com", row: &[("first_name", "Ștefan"), ("last_name", "Popescu")] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Text]),
    build,
};

enum Part {
    Text(String),
    Column(usize, Filter),
}

#[derive(Clone, Copy)]
enum Filter {
    None,
    Lower,
    Upper,
    Slug,
}

struct Template {
    parts: Vec<Part>,
}

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let text = o.string("template")?;
    let text = o.require("template", text)?;
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find(['{', '}']) {
        lit.push_str(&rest[..i]);
        let (c, after) = (&rest[i..i + 1], &rest[i + 1..]);
        if after.starts_with(c) {
            lit.push_str(c);
            rest = &after[1..];
            continue;
        }
        if c == "}" {
            return Err("a lone `}` in `template`; write `}}` for a brace".into());
        }
        let end = after.find('}').ok_or("an unclosed `{` in `template`")?;
        let (name, filter) = match after[..end].split_once('|') {
            Some((n, f)) => (
                n.trim(),
                match f.trim() {
                    "lower" => Filter::Lower,
                    "upper" => Filter::Upper,
                    "slug" => Filter::Slug,
                    other => {
                        return Err(format!(
                            "unknown filter `{other}` in `template`; use lower, upper or slug"
                        ))
                    }
                },
            ),
            None => (after[..end].trim(), Filter::None),
        };
        if name == b.column {
            return Err(format!("`template` of `{name}` cannot read its own column"));
        }
        if !lit.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut lit)));
        }
        parts.push(Part::Column(b.column_index(name)?, filter));
        rest = &after[end + 1..];
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        parts.push(Part::Text(lit));
    }
    Ok(Box::new(Template { parts }))
}

impl Transform for Template {
    fn pure(&self) -> bool {
        false
    }

    fn apply(&self, _: &str, row: &dyn Row) -> Result<Option<String>, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Column(i, f) => {
                    let v = row.output(*i).unwrap_or_default();
                    match f {
                        Filter::None => out.push_str(&v),
                        Filter::Lower => out.push_str(&v.to_lowercase()),
                        Filter::Upper => out.push_str(&v.to_uppercase()),
                        Filter::Slug => crate::seed::locale::slug_into(&mut out, &v, '.'),
                    }
                }
            }
        }
        Ok(Some(out))
    }

    fn reads_outputs(&self) -> Vec<usize> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Column(i, _) => Some(*i),
                Part::Text(_) => None,
            })
            .collect()
    }
}
