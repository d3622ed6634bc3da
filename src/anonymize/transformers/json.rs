//! `json`: transformers applied at paths inside a JSON document.

use serde_json::Value;

use super::{Build, NoRow, OptionDoc, Options, Row, Spec, Transform};

pub static SPEC: Spec = Spec {
    name: "json",
    summary: "Applies transformers at paths inside a JSON (or jsonb) document and keeps the rest. A path is `$` followed by `.key`, `[*]` (every array element) or `.*` (every member); each names a transformer, or an inline table with `transformer`, its options and an optional `domain`. Strings are transformed as text; numbers and booleans as their text, written back as the same JSON type when the result still parses as one.",
    options: &[
        OptionDoc { name: "paths", kind: "table", default: "required", doc: "path → transformer (a name, or a table with `transformer` and options)" },
    ],
    examples: &[
        super::Example {
            options: "paths = { \"$.email\" = \"email\", \"$.phones[*]\" = \"phone\" }",
            input: "{\"email\":\"ana@firm.ro\",\"phones\":[\"+40 721 234 567\"],\"vip\":true}",
            row: &[],
        },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Json, super::Kind::Text]),
    build,
};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    AnyMember,
    AnyElement,
}

struct Json {
    paths: Vec<(Vec<Step>, Box<dyn Transform>)>,
}

fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let bad = |why: &str| {
        format!("path `{path}` in `json`: {why}; write e.g. `$.contact.email` or `$.phones[*]`")
    };
    let mut rest = path
        .strip_prefix('$')
        .ok_or_else(|| bad("it must start with `$`"))?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[*]") {
            steps.push(Step::AnyElement);
            rest = r;
        } else if let Some(r) = rest.strip_prefix(".*") {
            steps.push(Step::AnyMember);
            rest = r;
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(bad("an empty key"));
            }
            steps.push(Step::Key(r[..end].to_string()));
            rest = &r[end..];
        } else {
            return Err(bad("unexpected text"));
        }
    }
    if steps.is_empty() {
        return Err(bad("it names no member"));
    }
    Ok(steps)
}

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let table = match o.value("paths") {
        Some(toml::Value::Table(t)) if !t.is_empty() => t,
        Some(_) => {
            return Err("option `paths` of `json` must be a table of path = transformer".into())
        }
        None => return Err("`json` needs the option `paths`".into()),
    };
    let mut paths = Vec::new();
    for (path, spec) in table {
        let steps = parse_path(&path)?;
        let (name, mut options) = match spec {
            toml::Value::String(s) => (s, toml::Table::new()),
            toml::Value::Table(mut t) => match t.remove("transformer") {
                Some(toml::Value::String(s)) => (s, t),
                _ => {
                    return Err(format!(
                        "path `{path}` in `json` needs `transformer = \"…\"`"
                    ))
                }
            },
            _ => return Err(format!("path `{path}` in `json` must name a transformer")),
        };
        if name == "json" {
            return Err(format!("path `{path}`: `json` inside `json` is not supported; list the inner paths instead"));
        }
        let domain = match options.remove("domain") {
            Some(toml::Value::String(d)) => d,
            Some(_) => return Err(format!("`domain` at path `{path}` must be a string")),
            None => name.clone(),
        };
        let inner = Build {
            key: b.key,
            domain,
            columns: b.columns,
            column: b.column,
            reals: b.reals,
            ty: None,
        };
        let t = super::build(&name, options, &inner).map_err(|e| format!("path `{path}`: {e}"))?;
        paths.push((steps, t));
    }
    Ok(Box::new(Json { paths }))
}

/// The paths a `json` column's options name, parsed: the leaves that transformer
/// rewrites, which verify searches the output for (the rest of the document is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPaths(Vec<Vec<Step>>);

impl JsonPaths {
    /// The leaves under each identifying path of a `json` column's options, with the
    /// path's transformer and domain (`domain` option, else the transformer's name): what
    /// feeds the sets of real values (see [`crate::anonymize::real`]).
    pub fn identifying(options: &toml::Table) -> Vec<(JsonPaths, String, String)> {
        let Some(toml::Value::Table(t)) = options.get("paths") else {
            return Vec::new();
        };
        t.iter()
            .filter_map(|(path, spec)| {
                let (name, domain) = match spec {
                    toml::Value::String(n) => (n.clone(), n.clone()),
                    toml::Value::Table(t) => {
                        let n = t.get("transformer")?.as_str()?.to_string();
                        let d = t
                            .get("domain")
                            .and_then(|d| d.as_str())
                            .unwrap_or(&n)
                            .to_string();
                        (n, d)
                    }
                    _ => return None,
                };
                Some((JsonPaths(vec![parse_path(path).ok()?]), name, domain))
            })
            .collect()
    }

    /// The paths of a `json` transformer's options whose transformer passes `searched`
    /// (verify leaves out those that keep values by design: `keep`, shifts, noise);
    /// `None` if none is left or they do not parse.
    pub fn from_options(
        options: &toml::Table,
        searched: impl Fn(&str) -> bool,
    ) -> Option<JsonPaths> {
        let toml::Value::Table(t) = options.get("paths")? else {
            return None;
        };
        let mut out = Vec::new();
        for (path, spec) in t {
            let name = match spec {
                toml::Value::String(n) => n.as_str(),
                toml::Value::Table(t) => t.get("transformer")?.as_str()?,
                _ => return None,
            };
            if searched(name) {
                out.push(parse_path(path).ok()?);
            }
        }
        (!out.is_empty()).then_some(JsonPaths(out))
    }

    /// Calls `f` with every leaf of `doc` at one of the paths (the leaves under an object
    /// or array a path names, as the transformer takes them).
    pub fn leaves(&self, doc: &Value, f: &mut dyn FnMut(&str)) {
        fn under(v: &Value, steps: &[Step], f: &mut dyn FnMut(&str)) {
            let Some((first, rest)) = steps.split_first() else {
                return all(v, f);
            };
            match (first, v) {
                (Step::Key(k), Value::Object(m)) => {
                    if let Some(c) = m.get(k) {
                        under(c, rest, f);
                    }
                }
                (Step::AnyMember, Value::Object(m)) => m.values().for_each(|c| under(c, rest, f)),
                (Step::AnyElement, Value::Array(a)) => a.iter().for_each(|c| under(c, rest, f)),
                _ => {}
            }
        }
        fn all(v: &Value, f: &mut dyn FnMut(&str)) {
            match v {
                Value::String(s) => f(s),
                Value::Number(n) => f(&n.to_string()),
                Value::Array(a) => a.iter().for_each(|c| all(c, f)),
                Value::Object(m) => m.values().for_each(|c| all(c, f)),
                _ => {}
            }
        }
        for steps in &self.0 {
            under(doc, steps, f);
        }
    }
}

fn visit(v: &mut Value, steps: &[Step], t: &dyn Transform) -> Result<(), String> {
    let Some((first, rest)) = steps.split_first() else {
        return leaf(v, t);
    };
    match (first, v) {
        (Step::Key(k), Value::Object(m)) => match m.get_mut(k) {
            Some(child) => visit(child, rest, t),
            None => Ok(()),
        },
        (Step::AnyMember, Value::Object(m)) => m.values_mut().try_for_each(|c| visit(c, rest, t)),
        (Step::AnyElement, Value::Array(a)) => a.iter_mut().try_for_each(|c| visit(c, rest, t)),
        _ => Ok(()),
    }
}

fn leaf(v: &mut Value, t: &dyn Transform) -> Result<(), String> {
    let text = match v {
        Value::Null => return Ok(()),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        // a whole object or array under one transformer: transform its leaves
        Value::Array(a) => return a.iter_mut().try_for_each(|c| leaf(c, t)),
        Value::Object(m) => return m.values_mut().try_for_each(|c| leaf(c, t)),
    };
    let out = t.apply(&text, &NoRow)?;
    *v = match (out, &*v) {
        (None, _) => Value::Null,
        (Some(s), Value::String(_)) => Value::String(s),
        (Some(s), _) => serde_json::from_str::<Value>(&s)
            .ok()
            .filter(|p| p.is_number() || p.is_boolean())
            .unwrap_or(Value::String(s)),
    };
    Ok(())
}

impl Transform for Json {
    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        let mut doc: Value =
            serde_json::from_str(value).map_err(|e| format!("not a JSON document ({e})"))?;
        for (steps, t) in &self.paths {
            visit(&mut doc, steps, t.as_ref())?;
        }
        Ok(Some(doc.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::real::{Collector, Identity};

    /// A phone drawn for a JSON leaf never is one of its domain's real numbers: the draw
    /// it would make is made real, and the leaf gets another.
    #[test]
    fn a_phone_path_draws_around_the_real_numbers_of_its_domain() {
        let key = crate::anonymize::key::Key::from_secret(b"a test key, 16+ characters");
        let cols = ["profile".to_string()];
        let options: toml::Table =
            toml::from_str("paths = { \"$.phones[*]\" = \"phone\" }").unwrap();
        let doc = r#"{"phones": ["+40 721 234 567"]}"#;
        let json = |reals| {
            let b = Build {
                key: &key,
                domain: "json".into(),
                columns: &cols,
                column: "profile",
                reals,
                ty: None,
            };
            let t = super::super::build("json", options.clone(), &b).unwrap();
            t.apply(doc, &super::super::NoRow).unwrap().unwrap()
        };
        let free = json(None);
        let drawn: serde_json::Value = serde_json::from_str(&free).unwrap();
        let drawn = drawn["phones"][0].as_str().unwrap().to_string();
        let mut c = Collector::new(crate::anonymize::real::SEED);
        let slot = c.slot(Identity::Phone, "phone");
        c.add(slot, drawn.as_bytes());
        let reals = c.finish();
        let guarded = json(Some(&reals));
        assert!(!guarded.contains(&drawn), "{drawn} is real now: {guarded}");
    }
}
