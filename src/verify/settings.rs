//! The `[verify]` section of `anonymize.toml`: thresholds with documented defaults, and
//! per-column overrides. A value out of range is an error at `file:line:col`.
//!
//! ```toml
//! [verify]
//! tvd = 0.15                         # any threshold below, for every column
//!
//! [verify.columns."public.notes.body"]
//! allow = ["email"]                  # detector findings (or "leak" hits) accepted here…
//! reason = "support addresses, not people's"   # …and why (required with allow)
//! ks = 0.2                           # a threshold for this column only
//! ```

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::anonymize::config::{qualified, Config, ConfigError};

/// Thresholds: a check fails past its threshold and warns past half of it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Thresholds {
    /// Largest difference in the share of NULLs (absolute, 0–1).
    pub null_rate: f64,
    /// Largest difference in the distinct ratio (distinct values / non-null values).
    pub distinct_ratio: f64,
    /// Largest total-variation distance between categorical frequencies (0–1).
    pub tvd: f64,
    /// Largest population stability index between categorical frequencies.
    pub psi: f64,
    /// Largest Kolmogorov–Smirnov statistic between numeric or date values (0–1).
    pub ks: f64,
    /// Largest total-variation distance between string-length histograms (0–1).
    pub length_tvd: f64,
    /// Largest total-variation distance between the shapes of categorical frequencies
    /// (sorted, labels ignored): a categorical column whose categories collapsed.
    pub shape_tvd: f64,
    /// Largest Kolmogorov–Smirnov statistic between foreign-key fan-outs (0–1).
    pub fanout_ks: f64,
    /// Largest share of an anonymized column's rows whose new value happens to equal
    /// another row's source value (0–1): a generated phone number that is also some
    /// other customer's. Chance makes a few; a transformer that moved values between
    /// rows makes nearly all. A value left in its own row is a leak, never a
    /// coincidence.
    pub coincidence_rate: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            null_rate: 0.02,
            distinct_ratio: 0.1,
            tvd: 0.1,
            psi: 0.25,
            ks: 0.1,
            length_tvd: 0.35,
            shape_tvd: 0.2,
            fanout_ks: 0.1,
            coincidence_rate: 0.05,
        }
    }
}

/// Everything `verify` reads from the config.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Settings {
    pub thresholds: Thresholds,
    /// Rows sampled per table for distribution checks (by keyed hash of the row key).
    pub sample_rows: usize,
    /// Distinct source values (and forms) kept exactly; past it, a Bloom filter.
    pub leak_exact_max: usize,
    /// The Bloom filter's size in MB.
    pub bloom_mb: usize,
    /// Source values shorter than this many characters are not searched for.
    pub min_length: usize,
    /// A column with at most this many distinct values is categorical.
    pub categorical_max: usize,
    /// Per column (`schema.table.column`).
    pub columns: BTreeMap<String, ColumnSettings>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ColumnSettings {
    pub thresholds: Thresholds,
    /// Detectors whose findings are accepted in this column.
    pub allow: Vec<String>,
    pub reason: Option<String>,
    /// Why this kept column's text is published reference data (a catalogue): a leak hit
    /// there is chance when the source's own text of the column holds the same form
    /// ("Grace" in a film title), and a leak when it does not.
    pub reference: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            thresholds: Thresholds::default(),
            sample_rows: 20_000,
            leak_exact_max: 1_000_000,
            bloom_mb: 96,
            min_length: 4,
            categorical_max: 50,
            columns: BTreeMap::new(),
        }
    }
}

/// What `allow` accepts: the detectors, and `leak` (source values accepted in this
/// output column, e.g. public reference data that shares words with names).
pub const DETECTORS: &[&str] = &[
    "email",
    "phone",
    "iban",
    "card-number",
    "national-id",
    "leak",
];

#[derive(Deserialize)]
struct Outer {
    verify: Option<Spanned<RawVerify>>,
}

/// A section holding the thresholds' fields next to its own (serde's `flatten` would
/// let a misspelt key through).
macro_rules! with_thresholds {
    ($name:ident { $($(#[$m:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $name {
            null_rate: Option<Spanned<f64>>,
            distinct_ratio: Option<Spanned<f64>>,
            tvd: Option<Spanned<f64>>,
            psi: Option<Spanned<f64>>,
            ks: Option<Spanned<f64>>,
            length_tvd: Option<Spanned<f64>>,
            shape_tvd: Option<Spanned<f64>>,
            fanout_ks: Option<Spanned<f64>>,
            coincidence_rate: Option<Spanned<f64>>,
            $($(#[$m])* $field: $ty),*
        }
        impl $name {
            fn thresholds(&self) -> [(&'static str, &Option<Spanned<f64>>); 9] {
                [
                    ("null_rate", &self.null_rate),
                    ("distinct_ratio", &self.distinct_ratio),
                    ("tvd", &self.tvd),
                    ("psi", &self.psi),
                    ("ks", &self.ks),
                    ("length_tvd", &self.length_tvd),
                    ("shape_tvd", &self.shape_tvd),
                    ("fanout_ks", &self.fanout_ks),
                    ("coincidence_rate", &self.coincidence_rate),
                ]
            }
        }
    };
}

with_thresholds!(RawVerify {
    sample_rows: Option<Spanned<i64>>,
    leak_exact_max: Option<Spanned<i64>>,
    bloom_mb: Option<Spanned<i64>>,
    min_length: Option<Spanned<i64>>,
    categorical_max: Option<Spanned<i64>>,
    #[serde(default)]
    columns: BTreeMap<String, Spanned<RawColumn>>,
});

with_thresholds!(RawColumn {
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    reason: Option<String>,
    reference: Option<Spanned<String>>,
});

fn check(
    cfg: &Config,
    v: &Spanned<f64>,
    name: &str,
    range: Range<f64>,
    upper_open: bool,
) -> Result<f64, ConfigError> {
    let x = *v.get_ref();
    let ok = x >= range.start && (x < range.end || (!upper_open && x == range.end));
    if !ok || x.is_nan() {
        let upper = if range.end.is_infinite() {
            "any positive number".to_string()
        } else {
            format!("{} to {}", range.start, range.end)
        };
        return Err(cfg.err(
            v.span(),
            format!("[verify] `{name}` = {x} is out of range; use {upper}"),
        ));
    }
    Ok(x)
}

fn thresholds(
    cfg: &Config,
    raw: [(&'static str, &Option<Spanned<f64>>); 9],
    base: &Thresholds,
) -> Result<Thresholds, ConfigError> {
    let mut t = base.clone();
    for (name, v) in raw {
        let Some(v) = v else { continue };
        let (range, open) = if name == "psi" {
            (0.0..f64::INFINITY, true)
        } else {
            (0.0..1.0, false)
        };
        let x = check(cfg, v, name, range, open)?;
        *match name {
            "null_rate" => &mut t.null_rate,
            "distinct_ratio" => &mut t.distinct_ratio,
            "tvd" => &mut t.tvd,
            "psi" => &mut t.psi,
            "ks" => &mut t.ks,
            "length_tvd" => &mut t.length_tvd,
            "shape_tvd" => &mut t.shape_tvd,
            "fanout_ks" => &mut t.fanout_ks,
            _ => &mut t.coincidence_rate,
        } = x;
    }
    Ok(t)
}

fn int(
    cfg: &Config,
    v: &Option<Spanned<i64>>,
    name: &str,
    min: i64,
    into: &mut usize,
) -> Result<(), ConfigError> {
    if let Some(v) = v {
        if *v.get_ref() < min {
            return Err(cfg.err(
                v.span(),
                format!(
                    "[verify] `{name}` = {} is out of range; use at least {min}",
                    v.get_ref()
                ),
            ));
        }
        *into = *v.get_ref() as usize;
    }
    Ok(())
}

impl Settings {
    /// The `[verify]` section of `cfg` (defaults where it says nothing).
    pub fn from_config(cfg: &Config) -> Result<Settings, ConfigError> {
        let outer: Outer = toml::from_str(&cfg.text).map_err(|e| {
            let at = e.span().unwrap_or(0..0);
            cfg.err(at, e.message().trim().to_string())
        })?;
        let mut s = Settings::default();
        let Some(raw) = outer.verify else {
            return Ok(s);
        };
        let raw = raw.into_inner();
        s.thresholds = thresholds(cfg, raw.thresholds(), &s.thresholds)?;
        int(
            cfg,
            &raw.sample_rows,
            "sample_rows",
            100,
            &mut s.sample_rows,
        )?;
        int(
            cfg,
            &raw.leak_exact_max,
            "leak_exact_max",
            0,
            &mut s.leak_exact_max,
        )?;
        int(cfg, &raw.bloom_mb, "bloom_mb", 1, &mut s.bloom_mb)?;
        int(cfg, &raw.min_length, "min_length", 1, &mut s.min_length)?;
        int(
            cfg,
            &raw.categorical_max,
            "categorical_max",
            2,
            &mut s.categorical_max,
        )?;
        for (name, col) in raw.columns {
            let span = col.span();
            let col = col.into_inner();
            let parts = crate::anonymize::config::split_qualified(&name);
            let key = match parts.as_slice() {
                [t, c] => format!("{}.{c}", qualified(t)),
                [s, t, c] => format!("{s}.{t}.{c}"),
                _ => {
                    return Err(cfg.err(
                        span,
                        format!("[verify.columns] `{name}`: name a column as table.column or schema.table.column"),
                    ))
                }
            };
            for a in &col.allow {
                if !DETECTORS.contains(&a.get_ref().as_str()) {
                    return Err(cfg.err(
                        a.span(),
                        format!(
                            "[verify.columns.\"{name}\"] unknown detector `{}`; use one of {}",
                            a.get_ref(),
                            DETECTORS.join(", ")
                        ),
                    ));
                }
            }
            if !col.allow.is_empty() && col.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(cfg.err(
                    span,
                    format!("[verify.columns.\"{name}\"] `allow` needs a `reason`: why these findings are not personal data"),
                ));
            }
            let reference = match col.reference.clone() {
                Some(r) if r.get_ref().trim().is_empty() => {
                    return Err(cfg.err(
                        r.span(),
                        format!("[verify.columns.\"{name}\"] `reference` says why this text is published; it is empty"),
                    ))
                }
                r => r.map(|r| r.into_inner()),
            };
            s.columns.insert(
                key,
                ColumnSettings {
                    thresholds: thresholds(cfg, col.thresholds(), &s.thresholds)?,
                    allow: col.allow.into_iter().map(|a| a.into_inner()).collect(),
                    reason: col.reason,
                    reference,
                },
            );
        }
        Ok(s)
    }

    /// The thresholds for one column.
    pub fn for_column(&self, column: &str) -> &Thresholds {
        self.columns
            .get(column)
            .map_or(&self.thresholds, |c| &c.thresholds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Result<Settings, String> {
        let cfg = Config::parse(text, "anonymize.toml").map_err(|e| e.to_string())?;
        Settings::from_config(&cfg).map_err(|e| e.to_string())
    }

    /// A reference column says why its text is published; an empty reason is refused
    /// at its place (issue 14).
    #[test]
    fn a_reference_column_says_why() {
        let s =
            settings("[verify.columns.\"film.title\"]\nreference = \"film titles, published\"\n")
                .unwrap();
        assert_eq!(
            s.columns["public.film.title"].reference.as_deref(),
            Some("film titles, published")
        );
        let e = settings("[verify.columns.\"film.title\"]\nreference = \" \"\n").unwrap_err();
        assert!(
            e.starts_with(
                "anonymize.toml:2:13: [verify.columns.\"film.title\"] `reference` says why"
            ),
            "{e}"
        );
    }

    #[test]
    fn defaults_and_overrides() {
        let s =
            settings("[verify]\ntvd = 0.2\n[verify.columns.\"users.status\"]\nks = 0.3\n").unwrap();
        assert_eq!(s.thresholds.tvd, 0.2);
        assert_eq!(s.for_column("public.users.status").ks, 0.3);
        assert_eq!(s.for_column("public.users.status").tvd, 0.2);
        assert_eq!(s.for_column("public.users.other").ks, 0.1);
    }

    #[test]
    fn out_of_range_points_at_the_value() {
        let e =
            settings("[tables.users]\ncolumns.id = \"keep\"\n\n[verify]\ntvd = 1.5\n").unwrap_err();
        assert_eq!(
            e,
            "anonymize.toml:5:7: [verify] `tvd` = 1.5 is out of range; use 0 to 1"
        );
        let e = settings("[verify.columns.\"notes.body\"]\nks = -0.1\n").unwrap_err();
        assert_eq!(
            e,
            "anonymize.toml:2:6: [verify] `ks` = -0.1 is out of range; use 0 to 1"
        );
        let e = settings("[verify]\nsample_rows = 5\n").unwrap_err();
        assert_eq!(
            e,
            "anonymize.toml:2:15: [verify] `sample_rows` = 5 is out of range; use at least 100"
        );
        let e = settings("[verify.columns.\"notes.body\"]\nallow = [\"emial\"]\nreason = \"x\"\n")
            .unwrap_err();
        assert!(
            e.starts_with(
                "anonymize.toml:2:10: [verify.columns.\"notes.body\"] unknown detector `emial`"
            ),
            "{e}"
        );
        let e = settings("[verify.columns.\"notes.body\"]\nallow = [\"email\"]\n").unwrap_err();
        assert!(e.contains("`allow` needs a `reason`"), "{e}");
        let e = settings("[verify]\nkss = 0.1\n").unwrap_err();
        assert!(e.starts_with("anonymize.toml:"), "{e}");
    }
}
