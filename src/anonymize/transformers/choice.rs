//! `choice`: one of a weighted list, chosen by the keyed hash of the input.

use super::{Build, OptionDoc, Options, Row, Spec, Transform};
use crate::anonymize::key::DomainKey;

pub static SPEC: Spec = Spec {
    name: "choice",
    summary: "One of `values`, chosen by the keyed hash of the input with the given `weights` (equal when left out): equal inputs get equal choices.",
    options: &[
        OptionDoc { name: "values", kind: "array of strings", default: "required", doc: "the values to choose from" },
        OptionDoc { name: "weights", kind: "array of numbers", default: "all 1", doc: "one weight per value" },
    ],
    examples: &[
        super::Example { options: "values = [\"bronze\", \"silver\", \"gold\"]\nweights = [6, 3, 1]", input: "platinum", row: &[] },
    ],
    accepts: super::Accepts::Any,
    build,
};

struct Choice {
    key: DomainKey,
    values: Vec<String>,
    cumulative: Vec<f64>,
}

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    let values: Vec<String> = match o.value("values") {
        Some(toml::Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or("option `values` of `choice` must hold strings only".to_string())
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err("option `values` of `choice` must be a non-empty array of strings".into())
        }
        None => return Err("`choice` needs the option `values`".into()),
    };
    let weights: Vec<f64> = match o.value("weights") {
        None => vec![1.0; values.len()],
        Some(toml::Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_float()
                    .or(v.as_integer().map(|i| i as f64))
                    .filter(|w| *w >= 0.0)
                    .ok_or(
                        "option `weights` of `choice` must hold non-negative numbers".to_string(),
                    )
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("option `weights` of `choice` must be an array of numbers".into()),
    };
    if weights.len() != values.len() || weights.iter().sum::<f64>() <= 0.0 {
        return Err(format!(
            "`choice` has {} values and {} weights (with a positive total); give one weight per value",
            values.len(),
            weights.len()
        ));
    }
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    let cumulative = weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect();
    Ok(Box::new(Choice {
        key: b.domain_key(),
        values,
        cumulative,
    }))
}

impl Transform for Choice {
    fn apply(&self, value: &str, _: &dyn Row) -> Result<Option<String>, String> {
        let u = (self.key.hash_u64(value.as_bytes()) >> 11) as f64 / (1u64 << 53) as f64;
        let i = self
            .cumulative
            .iter()
            .position(|c| u < *c)
            .unwrap_or(self.values.len() - 1);
        Ok(Some(self.values[i].clone()))
    }
}
