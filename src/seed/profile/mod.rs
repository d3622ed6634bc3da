//! Seed profiles: TOML files that declare entities, counts, enum mixes, date windows,
//! relationships and locale. The engine knows nothing of any domain; everything a
//! profile means is parsed here into a checked [`Profile`] before any row is made or any
//! connection opened, so a typo fails in milliseconds with `file:line:col`.
//!
//! The grammar is documented in `docs/profiles.md`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::migrate::Migration;

/// A profile shipped inside the binary, with its migrations.
pub struct Builtin {
    pub name: &'static str,
    pub toml: &'static str,
    pub migrations: &'static [(&'static str, &'static str)],
}

/// The profiles every dataforge binary carries.
pub const BUILTINS: &[Builtin] = &[Builtin {
    name: "demo-firm",
    toml: include_str!("../../../profiles/demo-firm.toml"),
    migrations: &[
        (
            "20250101000000_init",
            include_str!("../../../profiles/demo-firm/migrations/20250101000000_init/migration.sql"),
        ),
        (
            "20250101000100_cases_documents_tasks",
            include_str!(
                "../../../profiles/demo-firm/migrations/20250101000100_cases_documents_tasks/migration.sql"
            ),
        ),
    ],
}];

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "unknown profile `{name}`; available profiles: {available}. \
         A path to a profile .toml file works too"
    )]
    Unknown { name: String, available: String },
    #[error("cannot read profile {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{col}: {message}")]
    Invalid {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    #[error(transparent)]
    Migrations(#[from] crate::migrate::MigrateError),
}

/// A checked profile, ready to generate from.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// Where it came from: a path, or `builtin:NAME`.
    pub origin: String,
    /// Default anchor date (days since 1970-01-01); `--now` overrides.
    pub anchor: i64,
    pub default_seed: u64,
    pub locale: Locale,
    pub lists: BTreeMap<String, Vec<String>>,
    pub entities: Vec<Entity>,
    pub migrations: Vec<Migration>,
    /// The profile's own text, part of fixture template keys.
    pub source_text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    En,
    Ro,
}

#[derive(Debug, Clone)]
pub struct Entity {
    pub name: String,
    pub table: String,
    pub id_column: String,
    /// Index into `columns` of the natural key, or None for the row number.
    pub key: Option<usize>,
    pub count: u64,
    pub scale: f64,
    pub columns: Vec<Column>,
    /// Per-row overrides for the first rows: column index to the column as the row
    /// declares it (generator and options).
    pub overrides: Vec<BTreeMap<usize, Column>>,
}

impl Profile {
    /// Each entity's table and its columns (the id column first), in load order.
    pub fn tables(&self) -> Vec<(String, Vec<String>)> {
        self.entities
            .iter()
            .map(|e| {
                let mut cols = vec![e.id_column.clone()];
                cols.extend(e.columns.iter().map(|c| c.name.clone()));
                (e.table.clone(), cols)
            })
            .collect()
    }
}

impl Entity {
    /// Row count at `--scale N`: `count + round(count × (N − 1) × scale)`.
    pub fn count_at(&self, scale: u32) -> u64 {
        let extra = (self.count as f64) * f64::from(scale.saturating_sub(1)) * self.scale;
        self.count + extra.round() as u64
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub gen: Gen,
    /// Exact share of NULLs as (nulls, cycle length).
    pub nulls: Option<(u32, u32)>,
    /// NULL unless an earlier column holds one of these values.
    pub when: Option<(usize, Vec<String>)>,
    /// Pad with words or cut to exactly this many characters.
    pub length: Option<usize>,
    /// Cut to at most this many characters.
    pub max_length: Option<usize>,
}

#[derive(Debug, Clone)]
pub enum Gen {
    Null,
    Const(String),
    Template(Template),
    OneOf(Vec<Template>),
    /// Values and weights; every cycle of `sum(weights)` rows holds each value exactly
    /// `weight` times, in a seeded order.
    Mix(Vec<(String, u32)>),
    Ref {
        entity: usize,
        filter: Option<(usize, Vec<String>)>,
        childless: u64,
    },
    Time {
        from: Bound,
        to: Bound,
        kind: TimeKind,
    },
    Lorem {
        unit: LoremUnit,
        range: Range<usize>,
    },
    Integer {
        range: Range<i64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeKind {
    Date,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoremUnit {
    Words,
    Sentences,
    Paragraphs,
}

/// A point in time relative to the anchor or to another column: alternatives are tried
/// in order, the first that is not NULL wins.
#[derive(Debug, Clone)]
pub struct Bound {
    pub alternatives: Vec<(BoundBase, i64)>,
}

#[derive(Debug, Clone)]
pub enum BoundBase {
    Anchor,
    Column(usize),
    Parent { via: usize, column: usize },
}

#[derive(Debug, Clone)]
pub struct Template {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone)]
pub enum Part {
    Lit(String),
    Var(Var, Vec<Modifier>),
}

#[derive(Debug, Clone)]
pub enum Var {
    RowNumber { width: usize },
    Id,
    Column(usize),
    Parent { via: usize, column: usize },
    List(String),
    Fake(FakeKind),
    Digits(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeKind {
    FirstName,
    LastName,
    City,
    Street,
    Company,
    PostalCode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    Lower,
    Upper,
    Slug,
    Dotted,
    Year,
}

// ---------------------------------------------------------------------------------------
// Finding profiles

/// Names of the built-in profiles plus those in `./profiles/`.
pub fn available() -> Vec<String> {
    let mut names: Vec<String> = BUILTINS.iter().map(|b| b.name.to_string()).collect();
    if let Ok(rd) = std::fs::read_dir("profiles") {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) == Some("toml") {
                if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                    if !names.iter().any(|n| n == stem) {
                        names.push(stem.to_string());
                    }
                }
            }
        }
    }
    names.sort();
    names
}

/// Finds a profile by name or path: a path to a `.toml` file, else `profiles/NAME.toml`
/// in the current directory, else a built-in profile.
pub fn resolve(name_or_path: &str) -> Result<Profile, ProfileError> {
    let as_path = Path::new(name_or_path);
    if name_or_path.ends_with(".toml") || name_or_path.contains('/') {
        return load_file(as_path);
    }
    let local = Path::new("profiles").join(format!("{name_or_path}.toml"));
    if local.is_file() {
        return load_file(&local);
    }
    if let Some(b) = BUILTINS.iter().find(|b| b.name == name_or_path) {
        let migrations = b
            .migrations
            .iter()
            .map(|(n, sql)| Migration::new(*n, *sql, None))
            .collect();
        return parse(b.toml, &format!("builtin:{}", b.name), migrations);
    }
    Err(ProfileError::Unknown {
        name: name_or_path.to_string(),
        available: available().join(", "),
    })
}

/// Loads a profile file; its migrations folder is resolved relative to the file.
pub fn load_file(path: &Path) -> Result<Profile, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file = path.display().to_string();
    let raw = parse_raw(&text, &file)?;
    let migrations = match &raw.profile.migrations {
        Some(dir) => {
            let dir = path.parent().unwrap_or(Path::new(".")).join(dir.get_ref());
            crate::migrate::load_dir(&dir)?
        }
        None => Vec::new(),
    };
    compile(raw, &text, &file, migrations)
}

/// Parses profile text. `file` names it in error messages.
pub fn parse(text: &str, file: &str, migrations: Vec<Migration>) -> Result<Profile, ProfileError> {
    let raw = parse_raw(text, file)?;
    compile(raw, text, file, migrations)
}

mod compile;
mod raw;
mod template;

use compile::*;
use raw::*;
pub use raw::{line_col, KeySpans};
pub use template::parse_date;
use template::*;

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of(text: &str) -> String {
        parse(text, "p.toml", Vec::new()).unwrap_err().to_string()
    }

    const HEAD: &str = "[profile]\nname = \"t\"\nanchor = \"2026-01-15\"\n";

    #[test]
    fn malformed_toml_points_at_line_and_column() {
        let e = err_of("[profile]\nname = \"t\"\nanchor = 2026-01-15x\n");
        assert!(e.starts_with("p.toml:3:"), "{e}");
    }

    #[test]
    fn unknown_key_is_named_with_its_place() {
        let e = err_of(&format!("{HEAD}colour = 1\n"));
        assert!(e.starts_with("p.toml:"), "{e}");
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn reference_to_a_later_column_is_refused_with_location() {
        let text = format!(
            "{HEAD}[[entity]]\nname = \"a\"\ncount = 1\n[entity.columns]\nx = {{ template = \"{{y}}\" }}\ny = \"1\"\n"
        );
        let e = err_of(&text);
        assert!(e.starts_with("p.toml:8:1: a.x:"), "{e}");
        assert!(e.contains("`y` is not a column defined above"), "{e}");
    }

    /// Any text as a date bound is a value or an error naming it, never a panic (issue 15,
    /// §7: `from = ""` panicked).
    #[test]
    fn odd_bounds_are_errors_not_panics() {
        for bound in [
            "",
            " ",
            "é",
            "éanchor",
            "+",
            "-1d",
            "anchor|",
            "|",
            "@",
            "@.",
            "anchor+é",
        ] {
            let text = format!(
                "{HEAD}[[entity]]\nname = \"a\"\ncount = 1\n[entity.columns]\nd = {{ date = {{ from = {bound:?}, to = \"anchor\" }} }}\n"
            );
            let r = std::panic::catch_unwind(|| parse(&text, "p.toml", Vec::new()));
            let e = r
                .unwrap_or_else(|_| panic!("{bound:?} panicked"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("p.toml:"), "{bound:?}: {e}");
        }
        assert!(err_of(&format!(
            "{HEAD}[[entity]]\nname = \"a\"\ncount = 1\n[entity.columns]\nd = {{ date = {{ from = \"\", to = \"anchor\" }} }}\n"
        ))
        .contains("an empty bound"));
    }

    #[test]
    fn ref_to_unknown_entity_and_bad_bound() {
        let text = format!(
            "{HEAD}[[entity]]\nname = \"a\"\ncount = 1\n[entity.columns]\np = {{ ref = \"nope\" }}\n"
        );
        assert!(err_of(&text).contains("ref to `nope`"));
        let text = format!(
            "{HEAD}[[entity]]\nname = \"a\"\ncount = 1\n[entity.columns]\nd = {{ date = {{ from = \"yesterday\", to = \"anchor\" }} }}\n"
        );
        assert!(err_of(&text).contains("a bound is `anchor`"));
    }

    #[test]
    fn nulls_become_exact_fractions() {
        assert_eq!(rational(0.3), (3, 10));
        assert_eq!(rational(0.25), (1, 4));
        assert_eq!(rational(0.0), (0, 1));
    }

    #[test]
    fn dates_and_offsets() {
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("2026-02-30"), None);
        assert_eq!(parse_offset("-2y"), Some(-2 * 365 * 86_400));
        assert_eq!(parse_offset("+1d"), Some(86_400));
        assert_eq!(parse_offset("1d"), None);
    }

    #[test]
    fn builtin_profile_compiles() {
        let p = resolve("demo-firm").unwrap();
        assert_eq!(p.name, "demo-firm");
        assert_eq!(p.migrations.len(), 2);
    }

    #[test]
    fn unknown_profile_lists_available_ones() {
        let e = resolve("no-such-profile").unwrap_err().to_string();
        assert!(e.contains("unknown profile `no-such-profile`"), "{e}");
        assert!(e.contains("demo-firm"), "{e}");
    }

    #[test]
    fn keys_in_comments_are_not_taken_for_the_key() {
        let text = "# rows = 3 was too few\nname = \"a # b rows = 2\" # rows = 9\nrows = 5\n";
        let whole = toml::de::DeTable::parse(text).unwrap().span();
        let at = KeySpans::parse(text).key(&whole, "rows").unwrap();
        assert_eq!(at.start, text.rfind("rows").unwrap());
        let root = |t: &str| toml::de::DeTable::parse(t).unwrap().span();
        assert_eq!(
            KeySpans::parse("rows = 1").key(&root("rows = 1"), "rows"),
            Some(0..4)
        );
        assert_eq!(
            KeySpans::parse("# rows = 1\n").key(&root("# rows = 1\n"), "rows"),
            None
        );
    }

    #[test]
    fn keys_are_placed_from_tomls_own_spans() {
        let text = BUILTINS[0].toml;
        let raw = parse_raw(text, "demo-firm.toml").unwrap();
        let spans = KeySpans::parse(text);
        let mut n = 0;
        for e in &raw.entity {
            for table in std::iter::once(&e.columns).chain(&e.rows) {
                for key in table.get_ref().keys() {
                    let at = spans.key(&table.span(), key);
                    let at = at.unwrap_or_else(|| panic!("{}.{key}: no span", e.name.get_ref()));
                    let written = text[at.clone()].trim_matches('"');
                    assert_eq!(written, key, "{}.{key} at {at:?}", e.name.get_ref());
                    n += 1;
                }
            }
        }
        assert!(n > 50, "{n} keys looked at");
        // a key named in a comment is not taken for it; an inline table's key is found
        let text = "[a]\n# b = 0\nx = { b = 1 }\n";
        let root = toml::de::DeTable::parse(text).unwrap();
        let x = root.get_ref().get("a").unwrap();
        let inner = match x.get_ref() {
            toml::de::DeValue::Table(t) => t.get("x").unwrap().span(),
            _ => unreachable!(),
        };
        assert_eq!(KeySpans::parse(text).key(&inner, "b"), Some(18..19));
    }
}
