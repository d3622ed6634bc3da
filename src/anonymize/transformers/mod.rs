//! Transformers: one module each, registered in [`ALL`] under a stable kebab-case name.
//!
//! A transformer is built once per column from its options, then applied to every
//! non-NULL value of that column (NULL stays NULL; an empty string stays empty unless the
//! column asks otherwise). Its output is a function of (key, domain, input), and of the
//! same row's other columns for the few that read them (`template`, `date-shift … by`).

use std::collections::BTreeSet;

use super::key::{DomainKey, Key};
pub use super::types::Kind;

pub mod card_number;
mod choice;
mod city;
mod company;
mod constant;
mod date_shift;
mod email;
mod fake;
mod feistel;
mod first_name;
mod full_name;
mod hash;
pub mod iban;
mod integer_id;
mod ip_address;
pub mod json;
mod keep;
mod last_name;
mod lorem;
mod mac_address;
mod mask;
pub mod national_id;
mod null;
mod numeric_noise;
mod phone;
mod postal_code;
mod regex_replace;
mod street;
mod template;
mod timestamp_shift;
mod uuid;

/// The validity checks the generated values pass: [`crate::pii::validate`], named here
/// too for the transformers' tests.
pub mod checks {
    pub use crate::pii::validate::{cnp_valid, luhn_valid, mod97};
}

/// Every transformer, in the order the docs list them.
pub static ALL: &[&Spec] = &[
    &keep::SPEC,
    &null::SPEC,
    &constant::SPEC,
    &hash::SPEC,
    &email::SPEC,
    &first_name::SPEC,
    &last_name::SPEC,
    &full_name::SPEC,
    &phone::SPEC,
    &street::SPEC,
    &city::SPEC,
    &postal_code::SPEC,
    &company::SPEC,
    &iban::SPEC,
    &card_number::SPEC,
    &national_id::SPEC,
    &uuid::SPEC,
    &integer_id::SPEC,
    &ip_address::SPEC,
    &mac_address::SPEC,
    &lorem::SPEC,
    &date_shift::SPEC,
    &timestamp_shift::SPEC,
    &numeric_noise::SPEC,
    &regex_replace::SPEC,
    &template::SPEC,
    &json::SPEC,
    &choice::SPEC,
    &mask::SPEC,
];

/// A transformer's entry in the registry.
pub struct Spec {
    /// Stable kebab-case name, used in `anonymize.toml`.
    pub name: &'static str,
    /// One line: what it does.
    pub summary: &'static str,
    pub options: &'static [OptionDoc],
    /// Worked examples, run as golden tests and shown in `docs/transformers.md`.
    pub examples: &'static [Example],
    /// The kinds of column it can write valid values into (on an array column, it
    /// applies to each element of an array of these).
    pub accepts: Accepts,
    pub build: BuildFn,
}

/// The kinds of column a transformer can write.
#[derive(Debug, Clone, Copy)]
pub enum Accepts {
    /// Every column: it writes the value it was given, NULL, or a value the config names.
    Any,
    Only(&'static [Kind]),
}

impl Accepts {
    pub fn takes(self, kind: Kind) -> bool {
        match self {
            Accepts::Any => true,
            Accepts::Only(kinds) => kinds.contains(&kind),
        }
    }

    /// For the catalog and messages: `text`, `date or text`, `any column`.
    pub fn describe(self) -> String {
        match self {
            Accepts::Any => "any column".into(),
            Accepts::Only(kinds) => {
                let names: Vec<&str> = kinds.iter().map(|k| k.describe()).collect();
                match names.as_slice() {
                    [one] => format!("{one} columns"),
                    [init @ .., last] => format!("{} or {last} columns", init.join(", ")),
                    [] => "no column".into(),
                }
            }
        }
    }
}

/// The transformers that can write a column of `kind`, in the catalog's order.
pub fn writing(kind: Kind) -> Vec<&'static str> {
    ALL.iter()
        .filter(|s| s.accepts.takes(kind))
        .map(|s| s.name)
        .collect()
}

pub struct OptionDoc {
    pub name: &'static str,
    /// `string`, `integer`, `boolean` …
    pub kind: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
}

/// How a transformer is built from its options.
pub type BuildFn = fn(&mut Options, &Build<'_>) -> Result<Box<dyn Transform>, String>;

/// An example: options written as TOML inline-table contents, an input, and other
/// columns of the row (for transformers that read them).
pub struct Example {
    pub options: &'static str,
    pub input: &'static str,
    pub row: &'static [(&'static str, &'static str)],
}

/// What a transformer is built with besides its options.
pub struct Build<'a> {
    pub key: &'a Key,
    /// The column's domain: the `domain` option, else the transformer's name.
    pub domain: String,
    /// The table's columns, in order (for transformers that read other columns).
    pub columns: &'a [String],
    /// The column being transformed.
    pub column: &'a str,
    /// The source's own identifying values, by domain: a transformer drawing phone
    /// numbers, IBANs, card numbers or national ids never writes one of its domain's.
    pub reals: Option<&'a crate::anonymize::real::RealSets>,
    /// The column's type, when known: a transformer writing more than one kind writes in
    /// the column's format (`lorem` on `xml` keeps the markup) and within its range.
    pub ty: Option<&'a super::types::ColumnType>,
}

impl Build<'_> {
    pub fn domain_key(&self) -> DomainKey {
        self.key.domain(&self.domain)
    }

    /// The source's real values in this column's domain, if any were collected.
    pub fn real(&self) -> Option<std::sync::Arc<crate::anonymize::real::RealValues>> {
        self.reals?.get(&self.domain).cloned()
    }

    /// The index of `name` among the table's columns.
    pub fn column_index(&self, name: &str) -> Result<usize, String> {
        self.columns.iter().position(|c| c == name).ok_or_else(|| {
            format!(
                "no column `{name}` in this table; its columns are {}",
                self.columns.join(", ")
            )
        })
    }
}

/// The row a value belongs to, for transformers that read other columns.
pub trait Row {
    /// The source value of column `i` (decoded), NULL as `None`.
    fn original(&self, i: usize) -> Option<String>;
    /// The output value of column `i`, after its own transformer ran.
    fn output(&self, i: usize) -> Option<String>;
}

/// A row with no other columns.
pub struct NoRow;

impl Row for NoRow {
    fn original(&self, _: usize) -> Option<String> {
        None
    }
    fn output(&self, _: usize) -> Option<String> {
        None
    }
}

/// One column's transformer, built.
pub trait Transform: Send + Sync {
    /// Transforms one non-NULL value; `Ok(None)` writes NULL. `Err` says why the value
    /// cannot be transformed (the caller adds the table, column and line).
    fn apply(&self, value: &str, row: &dyn Row) -> Result<Option<String>, String>;

    /// [`apply`](Self::apply), appending the output to `out`: `Ok(false)` for NULL
    /// (nothing appended). The hot transformers write here directly, so a value costs
    /// no allocation of its own.
    fn apply_into(&self, value: &str, row: &dyn Row, out: &mut String) -> Result<bool, String> {
        Ok(match self.apply(value, row)? {
            Some(v) => {
                out.push_str(&v);
                true
            }
            None => false,
        })
    }

    /// Columns of the row this transformer reads the output of: it runs after them.
    fn reads_outputs(&self) -> Vec<usize> {
        Vec::new()
    }

    /// Whether NULL goes to [`apply`](Self::apply) as well (as an empty string), for
    /// transformers that fill every row (`constant`).
    fn takes_null(&self) -> bool {
        false
    }

    /// Whether this is `keep` (the value passes byte for byte).
    fn is_keep(&self) -> bool {
        false
    }

    /// Whether the output depends on the value alone (not on other columns of the row),
    /// so a value seen before may be answered from memory.
    fn pure(&self) -> bool {
        true
    }

    /// Whether distinct inputs give distinct outputs (a permutation, or a keyed hash of
    /// at least 64 bits), so a column under a unique index may use it.
    fn keeps_distinct(&self) -> bool {
        false
    }

    /// The most characters an output can have, where that is bounded: a distinct output
    /// still fits a column of that length uncut.
    fn max_chars(&self) -> Option<usize> {
        None
    }
}

/// A transformer's options, taken one by one; whatever is left unread is an error.
pub struct Options {
    table: toml::Table,
    read: BTreeSet<String>,
    transformer: &'static str,
}

impl Options {
    pub fn new(transformer: &'static str, table: toml::Table) -> Options {
        Options {
            table,
            read: BTreeSet::new(),
            transformer,
        }
    }

    fn take(&mut self, name: &str) -> Option<&toml::Value> {
        self.read.insert(name.to_string());
        self.table.get(name)
    }

    fn wrong(&self, name: &str, wanted: &str, found: &toml::Value) -> String {
        format!(
            "option `{name}` of `{}` must be {wanted}, found {} {found}",
            self.transformer,
            found.type_str()
        )
    }

    pub fn string(&mut self, name: &str) -> Result<Option<String>, String> {
        match self.take(name).cloned() {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong(name, "a string", &other)),
        }
    }

    pub fn integer(&mut self, name: &str) -> Result<Option<i64>, String> {
        match self.take(name).cloned() {
            None => Ok(None),
            Some(toml::Value::Integer(i)) => Ok(Some(i)),
            Some(other) => Err(self.wrong(name, "an integer", &other)),
        }
    }

    /// An integer in `range`.
    pub fn int_in(
        &mut self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, String> {
        match self.integer(name)? {
            Some(v) if !range.contains(&v) => Err(format!(
                "option `{name}` of `{}` must be between {} and {}, found {v}",
                self.transformer,
                range.start(),
                range.end()
            )),
            v => Ok(v),
        }
    }

    pub fn float(&mut self, name: &str) -> Result<Option<f64>, String> {
        match self.take(name).cloned() {
            None => Ok(None),
            Some(toml::Value::Float(f)) => Ok(Some(f)),
            Some(toml::Value::Integer(i)) => Ok(Some(i as f64)),
            Some(other) => Err(self.wrong(name, "a number", &other)),
        }
    }

    pub fn boolean(&mut self, name: &str) -> Result<Option<bool>, String> {
        match self.take(name).cloned() {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(b)),
            Some(other) => Err(self.wrong(name, "true or false", &other)),
        }
    }

    /// Any value (for transformers that read structured options).
    pub fn value(&mut self, name: &str) -> Option<toml::Value> {
        self.take(name).cloned()
    }

    /// A required option.
    pub fn require<T>(&self, name: &str, v: Option<T>) -> Result<T, String> {
        v.ok_or_else(|| format!("`{}` needs the option `{name}`", self.transformer))
    }

    /// The options nobody read.
    pub fn unread(&self) -> Vec<String> {
        self.table
            .keys()
            .filter(|k| !self.read.contains(*k))
            .cloned()
            .collect()
    }
}

/// The locale option shared by the fake-data transformers.
pub fn locale(opts: &mut Options) -> Result<crate::seed::profile::Locale, String> {
    use crate::seed::profile::Locale;
    match opts.string("locale")?.as_deref() {
        None | Some("en") => Ok(Locale::En),
        Some("ro") => Ok(Locale::Ro),
        Some(other) => Err(format!("unknown locale `{other}`; use `en` or `ro`")),
    }
}

/// The transformer called `name`.
pub fn find(name: &str) -> Option<&'static Spec> {
    ALL.iter().copied().find(|s| s.name == name)
}

/// The registered name nearest to `name`, for "did you mean".
pub fn nearest(name: &str) -> Option<&'static str> {
    ALL.iter()
        .map(|s| (strsim_distance(name, s.name), s.name))
        .filter(|(d, n)| *d <= n.len().max(3) / 2)
        .min()
        .map(|(_, n)| n)
}

/// Levenshtein distance (the registry is small; no crate needed for this).
pub(crate) fn strsim_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Builds the transformer `name` with `options` (the domain option already removed).
pub fn build(
    name: &str,
    options: toml::Table,
    b: &Build<'_>,
) -> Result<Box<dyn Transform>, String> {
    let spec = find(name).ok_or_else(|| unknown(name))?;
    let mut opts = Options::new(spec.name, options);
    let t = (spec.build)(&mut opts, b)?;
    let unread = opts.unread();
    if !unread.is_empty() {
        let known: Vec<&str> = spec.options.iter().map(|o| o.name).collect();
        return Err(format!(
            "unknown option{} {} for `{}`; its options are: {}",
            if unread.len() > 1 { "s" } else { "" },
            unread
                .iter()
                .map(|u| format!("`{u}`"))
                .collect::<Vec<_>>()
                .join(", "),
            spec.name,
            if known.is_empty() {
                "none (besides `domain`)".to_string()
            } else {
                known.join(", ")
            }
        ));
    }
    Ok(t)
}

/// The message for an unknown transformer name.
pub fn unknown(name: &str) -> String {
    let names: Vec<&str> = ALL.iter().map(|s| s.name).collect();
    match nearest(name) {
        Some(n) => format!(
            "unknown transformer `{name}` (did you mean `{n}`?); the transformers are: {}",
            names.join(", ")
        ),
        None => format!(
            "unknown transformer `{name}`; the transformers are: {}",
            names.join(", ")
        ),
    }
}

/// Appends `n` decimal digits drawn from `rng`.
pub fn push_digits(out: &mut String, n: usize, rng: &mut impl rand::Rng) {
    let mut digits = Digits::new(rng);
    for _ in 0..n {
        out.push(char::from(b'0' + digits.below(10)));
    }
}

/// Small numbers (digits) drawn from a generator 12 at a time: the leading places of one
/// 64-bit draw read as a fraction in base `n`. Twelve places of a base up to 16 use at
/// most 48 of its bits, so any sequence of them is uniform to within 2^-16 (of base 10,
/// 2^-24). A draw per digit cost a call, a multiply and a rejection test each.
pub struct Digits<'r, R: rand::Rng> {
    rng: &'r mut R,
    x: u64,
    left: u8,
}

impl<'r, R: rand::Rng> Digits<'r, R> {
    pub fn new(rng: &'r mut R) -> Self {
        Digits { rng, x: 0, left: 0 }
    }

    /// A number in `0..n` (`n` at most 16).
    pub fn below(&mut self, n: u8) -> u8 {
        debug_assert!((1..=16).contains(&n));
        if self.left == 0 {
            self.x = self.rng.next_u64();
            self.left = 12;
        }
        self.left -= 1;
        let p = u128::from(self.x) * u128::from(n);
        self.x = p as u64;
        (p >> 64) as u8
    }
}

/// Runs an example with `key`: the golden tests and the docs use this.
pub fn run_example(spec: &Spec, ex: &Example, key: &Key) -> Result<Option<String>, String> {
    let options: toml::Table = toml::from_str(ex.options).map_err(|e| e.to_string())?;
    let mut columns: Vec<String> = ex.row.iter().map(|(c, _)| c.to_string()).collect();
    columns.push("value".into());
    let b = Build {
        key,
        domain: spec.name.to_string(),
        columns: &columns,
        column: "value",
        reals: None,
        ty: None,
    };
    let t = build(spec.name, options, &b)?;
    struct ExampleRow<'a>(&'a [(&'a str, &'a str)]);
    impl Row for ExampleRow<'_> {
        fn original(&self, i: usize) -> Option<String> {
            self.0.get(i).map(|(_, v)| v.to_string())
        }
        fn output(&self, i: usize) -> Option<String> {
            self.original(i)
        }
    }
    t.apply(ex.input, &ExampleRow(ex.row))
}

/// The key the examples and golden tests use.
pub fn example_key() -> Key {
    Key::from_secret(b"example key, not a secret")
}

/// The transformer catalog as Markdown: `docs/transformers.md` is this text, checked by
/// a test, so its example outputs are what the code produces.
pub fn catalog_markdown() -> String {
    let key = example_key();
    let mut s = String::from(
        "# Transformers\n\n\
         Each column of `anonymize.toml` names one of these, with options:\n\n\
         ```toml\n[tables.users.columns]\nemail = { transformer = \"email\", domain = \"person-email\" }\nnotes = \"lorem\"\nid = \"keep\"\n```\n\n\
         Every output is a function of (key, domain, input, mapping version; now mapping 2): \
         the same input gives the same output in every table, run and machine that shares \
         the key, the domain and the version. The \
         domain defaults to the transformer's name; give two columns one `domain` and \
         their values map alike, so joins survive. NULL stays NULL; an empty string stays \
         empty. The examples below use the key `example key, not a secret`; they are \
         generated from the code and checked by the test suite.\n\n",
    );
    for spec in ALL {
        s.push_str(&format!(
            "## `{}`\n\n{}\n\nWrites: {} (and arrays of them, element by element).\n\n",
            spec.name,
            spec.summary,
            spec.accepts.describe()
        ));
        if !spec.options.is_empty() {
            s.push_str("| option | type | default | meaning |\n| --- | --- | --- | --- |\n");
            for o in spec.options {
                s.push_str(&format!(
                    "| `{}` | {} | {} | {} |\n",
                    o.name, o.kind, o.default, o.doc
                ));
            }
            s.push('\n');
        }
        s.push_str("| options | input | output |\n| --- | --- | --- |\n");
        for ex in spec.examples {
            let out = match run_example(spec, ex, &key) {
                Ok(Some(v)) => format!("`{}`", v.replace('|', "\\|").replace('\n', "⏎")),
                Ok(None) => "NULL".into(),
                Err(e) => format!("error: {e}"),
            };
            let mut input = format!("`{}`", ex.input.replace('|', "\\|").replace('\n', "⏎"));
            if !ex.row.is_empty() {
                let row: Vec<String> = ex.row.iter().map(|(c, v)| format!("{c}={v}")).collect();
                input.push_str(&format!(" (row: {})", row.join(", ")));
            }
            let options = if ex.options.is_empty() {
                "—".to_string()
            } else {
                format!("`{}`", ex.options.replace('\n', "; ").replace('|', "\\|"))
            };
            s.push_str(&format!("| {options} | {input} | {out} |\n"));
        }
        s.push('\n');
    }
    s
}

/// What a transformer's output is expected to keep of its input column's distribution,
/// so `verify` tests what should hold and stays quiet about what should not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Keeps {
    /// The share of NULLs.
    pub null_rate: bool,
    /// The share of distinct values.
    pub distinct: bool,
    /// The values' distribution: categorical frequencies, numeric and date quantiles.
    pub values: bool,
    /// The histogram of string lengths.
    pub lengths: bool,
}

/// The declared [`Keeps`] of each registered transformer.
pub fn keeps(name: &str) -> Keeps {
    let k = |null_rate, distinct, values, lengths| Keeps {
        null_rate,
        distinct,
        values,
        lengths,
    };
    match name {
        "keep" => k(true, true, true, true),
        "null" => k(false, false, false, false),
        "hash" | "uuid" | "integer-id" | "email" => k(true, true, false, false),
        "iban" | "card-number" | "national-id" => k(true, true, false, true),
        "phone" | "lorem" | "mask" | "postal-code" => k(true, false, false, true),
        // names drawn whole from lists: their lengths are the lists', not the source's,
        // so a length check on them measures the lists (issue 14)
        "first-name" | "last-name" | "full-name" | "street" | "city" | "company" => {
            k(true, false, false, false)
        }
        "date-shift" | "timestamp-shift" | "numeric-noise" => k(true, false, true, false),
        _ => k(true, false, false, false),
    }
}
