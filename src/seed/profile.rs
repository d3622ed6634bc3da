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
    toml: include_str!("../../profiles/demo-firm.toml"),
    migrations: &[
        (
            "20250101000000_init",
            include_str!("../../profiles/demo-firm/migrations/20250101000000_init/migration.sql"),
        ),
        (
            "20250101000100_cases_documents_tasks",
            include_str!(
                "../../profiles/demo-firm/migrations/20250101000100_cases_documents_tasks/migration.sql"
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

// ---------------------------------------------------------------------------------------
// The raw TOML shape

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    profile: RawMeta,
    #[serde(default)]
    lists: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    entity: Vec<RawEntity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    name: String,
    #[serde(default)]
    description: String,
    migrations: Option<Spanned<String>>,
    anchor: Spanned<String>,
    #[serde(default = "default_locale")]
    locale: Spanned<String>,
    #[serde(default = "default_seed")]
    seed: u64,
}

fn default_locale() -> Spanned<String> {
    Spanned::new(0..0, "en".to_string())
}

fn default_seed() -> u64 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntity {
    name: Spanned<String>,
    table: Option<String>,
    #[serde(default = "default_id")]
    id: String,
    key: Option<Spanned<String>>,
    count: u64,
    #[serde(default)]
    scale: f64,
    columns: toml::Spanned<toml::Table>,
    #[serde(default)]
    rows: Vec<Spanned<toml::Table>>,
}

fn default_id() -> String {
    "id".into()
}

fn parse_raw(text: &str, file: &str) -> Result<RawFile, ProfileError> {
    toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        ProfileError::Invalid {
            file: file.to_string(),
            line,
            col,
            message: e.message().trim().to_string(),
        }
    })
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

// ---------------------------------------------------------------------------------------
// Compiling: names resolved to indexes, every reference checked

struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, message: impl Into<String>) -> ProfileError {
        let (line, col) = line_col(self.text, span.start);
        ProfileError::Invalid {
            file: self.file.to_string(),
            line,
            col,
            message: message.into(),
        }
    }

    /// The span of `key` inside a table that starts at `table_span`: toml::Table keeps no
    /// spans for its values, so find the key's own text.
    fn key_span(&self, table_span: &Range<usize>, key: &str) -> Range<usize> {
        // A table's span may cover only part of it: search on to the next header.
        let start = table_span.start.min(self.text.len());
        let rest = &self.text[start..];
        let next_header = rest
            .match_indices("\n[")
            .map(|(i, _)| i)
            .find(|&i| i > 0)
            .unwrap_or(rest.len());
        let end = next_header
            .max(table_span.end.saturating_sub(start))
            .min(rest.len());
        match find_key(&rest[..end], key) {
            Some(at) => start + at..start + at + key.len(),
            None => table_span.clone(),
        }
    }
}

/// The offset of `key` written as a TOML key (`key =`, `"key" =`) in `hay`: not part of
/// a longer name. Configs use it to place messages about a key inside a table.
pub fn find_key(hay: &str, key: &str) -> Option<usize> {
    let mut search_from = 0;
    while let Some(pos) = hay[search_from..].find(key) {
        let at = search_from + pos;
        let before_ok = at == 0
            || !hay.as_bytes()[at - 1].is_ascii_alphanumeric() && hay.as_bytes()[at - 1] != b'_';
        let after = hay[at + key.len()..].trim_start_matches([' ', '"']);
        if before_ok && after.starts_with('=') && !in_comment(hay, at) {
            return Some(at);
        }
        search_from = at + key.len();
    }
    None
}

/// Whether byte `at` of `text` lies in a `#` comment: a `#` earlier on its line, outside
/// a quoted string.
fn in_comment(text: &str, at: usize) -> bool {
    let line = &text[text[..at].rfind('\n').map_or(0, |i| i + 1)..at];
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (None, '#') => return true,
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
    }
    false
}

fn compile(
    raw: RawFile,
    text: &str,
    file: &str,
    migrations: Vec<Migration>,
) -> Result<Profile, ProfileError> {
    let cx = Ctx { text, file };
    let anchor = parse_date(raw.profile.anchor.get_ref()).ok_or_else(|| {
        cx.err(
            raw.profile.anchor.span(),
            "anchor must be a date written YYYY-MM-DD",
        )
    })?;
    let locale = match raw.profile.locale.get_ref().as_str() {
        "en" => Locale::En,
        "ro" => Locale::Ro,
        other => {
            return Err(cx.err(
                raw.profile.locale.span(),
                format!("unknown locale `{other}`; expected one of: en, ro"),
            ))
        }
    };
    if raw.entity.is_empty() {
        return Err(cx.err(0..0, "a profile needs at least one [[entity]]"));
    }
    let mut entities: Vec<Entity> = Vec::new();
    for re in &raw.entity {
        let ename = re.name.get_ref().clone();
        if entities.iter().any(|e| e.name == ename) {
            return Err(cx.err(
                re.name.span(),
                format!("entity `{ename}` is declared twice"),
            ));
        }
        if re.scale < 0.0 || !re.scale.is_finite() {
            return Err(cx.err(
                re.name.span(),
                format!("entity `{ename}`: scale must be 0 or more"),
            ));
        }
        let table_span = re.columns.span();
        let mut columns: Vec<Column> = Vec::new();
        for (cname, value) in re.columns.get_ref() {
            let span = cx.key_span(&table_span, cname);
            if *cname == re.id {
                return Err(cx.err(
                    span,
                    format!("{ename}.{cname} is the id column: dataforge derives it (UUIDv5 of the natural key)"),
                ));
            }
            let column =
                compile_column(&cx, &raw, &entities, &columns, &ename, cname, value, span)?;
            columns.push(column);
        }
        let key = match &re.key {
            Some(k) => Some(
                columns
                    .iter()
                    .position(|c| &c.name == k.get_ref())
                    .ok_or_else(|| {
                        cx.err(
                            k.span(),
                            format!("key `{}` is not a column of {ename}", k.get_ref()),
                        )
                    })?,
            ),
            None => None,
        };
        if (re.rows.len() as u64) > re.count {
            return Err(cx.err(
                re.name.span(),
                format!(
                    "entity `{ename}` lists {} rows but count is {}",
                    re.rows.len(),
                    re.count
                ),
            ));
        }
        let mut overrides = Vec::new();
        for row in &re.rows {
            let mut m = BTreeMap::new();
            let rspan = row.span();
            for (cname, value) in row.get_ref() {
                let span = cx.key_span(&rspan, cname);
                let Some(ci) = columns.iter().position(|c| &c.name == cname) else {
                    return Err(cx.err(
                        span,
                        format!("{ename}.{cname} is not a column declared under [entity.columns]"),
                    ));
                };
                let c = compile_column(
                    &cx,
                    &raw,
                    &entities,
                    &columns[..ci],
                    &ename,
                    cname,
                    value,
                    span,
                )?;
                m.insert(ci, c);
            }
            overrides.push(m);
        }
        let entity = Entity {
            name: ename.clone(),
            table: re.table.clone().unwrap_or_else(|| ename.clone()),
            id_column: re.id.clone(),
            key,
            count: re.count,
            scale: re.scale,
            columns,
            overrides,
        };
        // `{id}` needs the key computed first
        if let Some(k) = entity.key {
            for (ci, c) in entity.columns.iter().enumerate() {
                if ci <= k && gen_uses_id(&c.gen) {
                    return Err(cx.err(
                        cx.key_span(&table_span, &c.name),
                        format!("{ename}.{}: `{{id}}` is used before the key column `{}` is defined; move it below", c.name, entity.columns[k].name),
                    ));
                }
            }
        }
        entities.push(entity);
    }
    Ok(Profile {
        name: raw.profile.name.clone(),
        description: raw.profile.description.clone(),
        origin: file.to_string(),
        anchor,
        default_seed: raw.profile.seed,
        locale,
        lists: raw.lists,
        entities,
        migrations,
        source_text: text.to_string(),
    })
}

fn gen_uses_id(g: &Gen) -> bool {
    let t_uses = |t: &Template| t.parts.iter().any(|p| matches!(p, Part::Var(Var::Id, _)));
    match g {
        Gen::Template(t) => t_uses(t),
        Gen::OneOf(ts) => ts.iter().any(t_uses),
        _ => false,
    }
}

#[allow(clippy::too_many_arguments)]
fn compile_column(
    cx: &Ctx,
    raw: &RawFile,
    entities: &[Entity],
    earlier: &[Column],
    ename: &str,
    cname: &str,
    value: &toml::Value,
    span: Range<usize>,
) -> Result<Column, ProfileError> {
    let at = |msg: String| cx.err(span.clone(), format!("{ename}.{cname}: {msg}"));
    let mut column = Column {
        name: cname.to_string(),
        gen: Gen::Null,
        nulls: None,
        when: None,
        length: None,
        max_length: None,
    };
    let table = match value {
        toml::Value::Table(t) => t,
        toml::Value::Array(_) => {
            return Err(at(
                "a list is not a value; use { one_of = [...] } or { mix = {...} }".into(),
            ))
        }
        literal => {
            column.gen = Gen::Const(literal_text(literal).map_err(at)?);
            return Ok(column);
        }
    };
    let find_col = |name: &str| -> Result<usize, ProfileError> {
        earlier.iter().position(|c| c.name == name).ok_or_else(|| {
            at(format!(
                "`{name}` is not a column defined above this one in {ename} (columns are made in the order written)"
            ))
        })
    };
    let tctx = TemplateCtx {
        raw,
        entities,
        earlier,
        ename,
    };
    let mut kinds = Vec::new();
    for (k, v) in table {
        match k.as_str() {
            "nulls" => {
                let rate = v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
                let rate = rate.filter(|r| (0.0..=1.0).contains(r)).ok_or_else(|| at("nulls must be a number from 0 to 1".into()))?;
                column.nulls = Some(rational(rate));
            }
            "when" => {
                let t = v.as_table().filter(|t| t.len() == 1).ok_or_else(|| {
                    at("when takes one column and its values, e.g. when = { status = [\"Closed\"] }".into())
                })?;
                let (wc, wv) = t.iter().next().expect("one entry");
                let idx = find_col(wc)?;
                column.when = Some((idx, string_list(wv).map_err(at)?));
            }
            "length" | "max_length" => {
                let n = v
                    .as_integer()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| at(format!("{k} must be a positive whole number")))? as usize;
                if k == "length" {
                    column.length = Some(n);
                } else {
                    column.max_length = Some(n);
                }
            }
            "null" | "value" | "template" | "one_of" | "mix" | "ref" | "date" | "timestamp" | "lorem"
            | "integer" => kinds.push(k.as_str()),
            other => {
                return Err(at(format!(
                    "unknown setting `{other}`; expected a generator (value, template, one_of, mix, ref, \
                     date, timestamp, lorem, integer, null) and options (nulls, when, length, max_length)"
                )))
            }
        }
    }
    let kind = match kinds.as_slice() {
        [k] => *k,
        [] => return Err(at("no generator given (value, template, one_of, mix, ref, date, timestamp, lorem, integer, null)".into())),
        many => return Err(at(format!("give one generator, not {}", many.join(" and ")))),
    };
    let v = &table[kind];
    column.gen = match kind {
        "null" => Gen::Null,
        "value" => Gen::Const(literal_text(v).map_err(at)?),
        "template" => Gen::Template(
            compile_template(
                v.as_str()
                    .ok_or_else(|| at("template must be a string".into()))?,
                &tctx,
            )
            .map_err(at)?,
        ),
        "one_of" => {
            let items = string_list(v).map_err(at)?;
            if items.is_empty() {
                return Err(at("one_of needs at least one template".into()));
            }
            Gen::OneOf(
                items
                    .iter()
                    .map(|s| compile_template(s, &tctx))
                    .collect::<Result<_, _>>()
                    .map_err(at)?,
            )
        }
        "mix" => {
            let t = v
                .as_table()
                .ok_or_else(|| at("mix takes a table of value = weight".into()))?;
            let mut items = Vec::new();
            for (val, w) in t {
                let w = w
                    .as_integer()
                    .filter(|w| *w > 0 && *w <= 1_000_000)
                    .ok_or_else(|| {
                        at(format!(
                            "mix weight for `{val}` must be a whole number from 1 to 1000000"
                        ))
                    })?;
                items.push((val.clone(), w as u32));
            }
            if items.is_empty() {
                return Err(at("mix needs at least one value".into()));
            }
            Gen::Mix(items)
        }
        "ref" => {
            let (target, filter, childless) = match v {
                toml::Value::String(s) => (s.clone(), None, 0),
                toml::Value::Table(t) => {
                    let target = t
                        .get("entity")
                        .and_then(|e| e.as_str())
                        .ok_or_else(|| at("ref = { entity = \"…\", where = {…}, childless = N }: entity is missing".into()))?
                        .to_string();
                    let childless = t
                        .get("childless")
                        .map(|c| {
                            c.as_integer()
                                .filter(|c| *c >= 0)
                                .ok_or_else(|| at("childless must be a whole number".into()))
                        })
                        .transpose()?
                        .unwrap_or(0) as u64;
                    let filter = t.get("where").map(|w| -> Result<(String, Vec<String>), ProfileError> {
                        let wt = w.as_table().filter(|t| t.len() == 1).ok_or_else(|| {
                            at("where takes one column and its values, e.g. where = { role = [\"Associate\"] }".into())
                        })?;
                        let (c, vals) = wt.iter().next().expect("one entry");
                        Ok((c.clone(), string_list(vals).map_err(&at)?))
                    }).transpose()?;
                    for k in t.keys() {
                        if !["entity", "where", "childless"].contains(&k.as_str()) {
                            return Err(at(format!(
                                "unknown ref setting `{k}` (entity, where, childless)"
                            )));
                        }
                    }
                    (target, filter, childless)
                }
                _ => {
                    return Err(at(
                        "ref takes an entity name or { entity, where, childless }".into(),
                    ))
                }
            };
            let entity = entities
                .iter()
                .position(|e| e.name == target)
                .ok_or_else(|| {
                    at(format!(
                        "ref to `{target}`, which is not an entity declared above this one"
                    ))
                })?;
            let filter = match filter {
                Some((c, vals)) => Some((
                    entities[entity]
                        .column_index(&c)
                        .ok_or_else(|| at(format!("{target} has no column `{c}`")))?,
                    vals,
                )),
                None => None,
            };
            Gen::Ref {
                entity,
                filter,
                childless,
            }
        }
        "date" | "timestamp" => {
            let t = v
                .as_table()
                .ok_or_else(|| at(format!("{kind} takes {{ from = \"…\", to = \"…\" }}")))?;
            let bound = |name: &str| -> Result<Bound, ProfileError> {
                let s = t.get(name).and_then(|b| b.as_str()).ok_or_else(|| {
                    at(format!(
                        "{kind}.{name} is missing (e.g. \"anchor-2y\", \"@opened_at+1d\")"
                    ))
                })?;
                compile_bound(s, &tctx).map_err(&at)
            };
            Gen::Time {
                from: bound("from")?,
                to: bound("to")?,
                kind: if kind == "date" {
                    TimeKind::Date
                } else {
                    TimeKind::Timestamp
                },
            }
        }
        "lorem" => {
            let t = v.as_table().ok_or_else(|| {
                at("lorem takes { words = [MIN, MAX] } (or sentences, paragraphs)".into())
            })?;
            let (unit_name, r) = t
                .iter()
                .next()
                .ok_or_else(|| at("lorem needs words, sentences or paragraphs".into()))?;
            let unit = match unit_name.as_str() {
                "words" => LoremUnit::Words,
                "sentences" => LoremUnit::Sentences,
                "paragraphs" => LoremUnit::Paragraphs,
                other => {
                    return Err(at(format!(
                        "unknown lorem unit `{other}` (words, sentences, paragraphs)"
                    )))
                }
            };
            let (lo, hi) = int_pair(r).map_err(at)?;
            if lo < 1 {
                return Err(at("lorem needs at least 1".into()));
            }
            Gen::Lorem {
                unit,
                range: lo as usize..hi as usize + 1,
            }
        }
        "integer" => {
            let (lo, hi) = int_pair(v).map_err(at)?;
            Gen::Integer { range: lo..hi + 1 }
        }
        _ => unreachable!("kinds are filtered above"),
    };
    Ok(column)
}

fn literal_text(v: &toml::Value) -> Result<String, String> {
    Ok(match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        _ => return Err("expected a string, number, boolean or date".into()),
    })
}

fn string_list(v: &toml::Value) -> Result<Vec<String>, String> {
    match v {
        toml::Value::Array(a) => a.iter().map(literal_text).collect(),
        other => Ok(vec![literal_text(other)?]),
    }
}

fn int_pair(v: &toml::Value) -> Result<(i64, i64), String> {
    let a = v
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or("expected [MIN, MAX]")?;
    let lo = a[0]
        .as_integer()
        .ok_or("expected whole numbers [MIN, MAX]")?;
    let hi = a[1]
        .as_integer()
        .ok_or("expected whole numbers [MIN, MAX]")?;
    if hi < lo {
        return Err(format!("[{lo}, {hi}]: MAX is below MIN"));
    }
    Ok((lo, hi))
}

/// The closest fraction to `rate` with a small denominator, so `nulls = 0.3` means exactly
/// 3 NULLs in every 10 rows.
fn rational(rate: f64) -> (u32, u32) {
    let mut best = (0u32, 1u32);
    let mut best_err = f64::MAX;
    for den in 1..=100u32 {
        let num = (rate * f64::from(den)).round() as u32;
        let err = (f64::from(num) / f64::from(den) - rate).abs();
        if err + 1e-12 < best_err {
            best = (num, den);
            best_err = err;
        }
    }
    best
}

struct TemplateCtx<'a> {
    raw: &'a RawFile,
    entities: &'a [Entity],
    earlier: &'a [Column],
    ename: &'a str,
}

impl TemplateCtx<'_> {
    fn column(&self, name: &str) -> Result<usize, String> {
        self.earlier
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| {
                format!(
                    "`{name}` is not a column defined above this one in {}",
                    self.ename
                )
            })
    }

    fn parent(&self, via: &str, column: &str) -> Result<(usize, usize), String> {
        let vi = self.column(via)?;
        let Gen::Ref { entity, .. } = &self.earlier[vi].gen else {
            return Err(format!("`{via}.{column}`: {via} is not a ref column"));
        };
        let pe = &self.entities[*entity];
        let pc = pe
            .column_index(column)
            .ok_or_else(|| format!("`{via}.{column}`: {} has no column `{column}`", pe.name))?;
        Ok((vi, pc))
    }
}

fn compile_template(s: &str, cx: &TemplateCtx) -> Result<Template, String> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Lit(rest[..open].to_string()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("template \"{s}\": `{{` without a closing `}}`"))?
            + open;
        let inner = &rest[open + 1..close];
        let mut pieces = inner.split('|');
        let head = pieces.next().unwrap_or("").trim();
        let mut mods = Vec::new();
        for m in pieces {
            mods.push(match m.trim() {
                "lower" => Modifier::Lower,
                "upper" => Modifier::Upper,
                "slug" => Modifier::Slug,
                "dotted" => Modifier::Dotted,
                "year" => Modifier::Year,
                other => return Err(format!("template \"{s}\": unknown modifier `{other}` (lower, upper, slug, dotted, year)")),
            });
        }
        let var = if head == "n" || head.starts_with("n:") {
            let width = match head.strip_prefix("n:") {
                Some(w) => w
                    .trim_start_matches('0')
                    .parse::<usize>()
                    .ok()
                    .filter(|_| w.starts_with('0'))
                    .ok_or_else(|| {
                        format!("template \"{s}\": `{{{head}}}`: write the width as n:05")
                    })?,
                None => 0,
            };
            Var::RowNumber { width }
        } else if head == "id" {
            Var::Id
        } else if let Some(name) = head.strip_prefix("list:") {
            if !cx.raw.lists.contains_key(name) {
                return Err(format!(
                    "template \"{s}\": there is no list `{name}` under [lists]"
                ));
            }
            Var::List(name.to_string())
        } else if let Some(kind) = head.strip_prefix("fake:") {
            Var::Fake(match kind {
                "first_name" => FakeKind::FirstName,
                "last_name" => FakeKind::LastName,
                "city" => FakeKind::City,
                "street" => FakeKind::Street,
                "company" => FakeKind::Company,
                "postal_code" => FakeKind::PostalCode,
                other => {
                    return Err(format!(
                        "template \"{s}\": unknown fake `{other}` (first_name, last_name, city, street, company, postal_code)"
                    ))
                }
            })
        } else if let Some(n) = head.strip_prefix("digits:") {
            Var::Digits(
                n.parse()
                    .ok()
                    .filter(|n| (1..=30).contains(n))
                    .ok_or_else(|| format!("template \"{s}\": digits:N takes N from 1 to 30"))?,
            )
        } else if let Some((via, col)) = head.split_once('.') {
            let (via, column) = cx.parent(via, col)?;
            Var::Parent { via, column }
        } else {
            Var::Column(
                cx.column(head)
                    .map_err(|e| format!("template \"{s}\": {e}"))?,
            )
        };
        parts.push(Part::Var(var, mods));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest.to_string()));
    }
    Ok(Template { parts })
}

fn compile_bound(s: &str, cx: &TemplateCtx) -> Result<Bound, String> {
    let mut alternatives = Vec::new();
    for alt in s.split('|') {
        let alt = alt.trim();
        if alt.is_empty() {
            return Err(format!(
                "`{s}`: an empty bound; a bound is `anchor` or `@column` (or `@ref.column`), \
                 with an optional offset"
            ));
        }
        // the offset's sign, after the first character (which may be any character)
        let split = alt
            .char_indices()
            .skip(1)
            .find(|&(_, c)| c == '+' || c == '-')
            .map(|(p, _)| p);
        let (base, offset) = match split {
            Some(p) => (
                &alt[..p],
                parse_offset(&alt[p..])
                    .ok_or_else(|| format!("`{alt}`: offsets look like +1d, -2y, +12h, -30m"))?,
            ),
            None => (alt, 0),
        };
        let base = if base == "anchor" {
            BoundBase::Anchor
        } else if let Some(col) = base.strip_prefix('@') {
            match col.split_once('.') {
                Some((via, c)) => {
                    let (via, column) = cx.parent(via, c)?;
                    BoundBase::Parent { via, column }
                }
                None => BoundBase::Column(cx.column(col)?),
            }
        } else {
            return Err(format!("`{alt}`: a bound is `anchor` or `@column` (or `@ref.column`), with an optional offset"));
        };
        alternatives.push((base, offset));
    }
    Ok(Bound { alternatives })
}

/// `+1d`, `-2y`, `+12h`, `-30m` in seconds; a year is 365 days.
fn parse_offset(s: &str) -> Option<i64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1i64, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let unit = rest.chars().last()?;
    let n: i64 = rest[..rest.len() - unit.len_utf8()].parse().ok()?;
    let secs = match unit {
        'y' => 365 * 86_400,
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        _ => return None,
    };
    sign.checked_mul(n)?.checked_mul(secs)
}

/// `YYYY-MM-DD` to days since 1970-01-01.
pub fn parse_date(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s.trim(), &fmt).ok()?;
    Some(
        i64::from(d.to_julian_day())
            - i64::from(time::Date::from_ordinal_date(1970, 1).ok()?.to_julian_day()),
    )
}

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
        let text = "# rows = 3 was too few\nname = \"a # b\" # rows = 9\nrows = 5\n";
        assert_eq!(find_key(text, "rows"), text.rfind("rows"));
        assert_eq!(find_key("rows = 1", "rows"), Some(0));
        assert_eq!(find_key("# rows = 1", "rows"), None);
    }
}
