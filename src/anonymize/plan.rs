//! The plan: the config checked against the source's tables and columns (fail closed),
//! and each table's transformers built, ready to rewrite COPY text rows.

use std::collections::BTreeMap;

use super::config::{Action, Config, ConfigError};
use super::ddl::{ForeignKey, UniqueKey};
use super::key::Key;
use super::suggest::{suggest, Suggestion};
use super::transformers::{self, Accepts, Build, Row, Transform};
use super::types::{self, ColumnType};
use crate::pg::copy;

/// A table of the source: its qualified name and its columns, in COPY order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTable {
    pub name: String,
    pub columns: Vec<String>,
    /// Column types, where the source tells them (a live database's catalog, a dump's
    /// `CREATE TABLE`).
    pub types: Vec<Option<ColumnType>>,
}

/// Why the config does not fit the source.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Coverage(String),
}

/// One table, ready.
pub struct TablePlan {
    pub name: String,
    pub action: Action,
    pub columns: Vec<String>,
    /// Per column: its transformer, or `None` for `keep` (copied byte for byte).
    transforms: Vec<Option<Box<dyn Transform>>>,
    /// Per column: the transformer's name, for reports.
    pub transformer_names: Vec<String>,
    /// Per column: its type, when known; outputs are fitted to it.
    types: Vec<Option<ColumnType>>,
    /// Per column: whether the transformer applies to each element of an array.
    elementwise: Vec<bool>,
    /// The columns to transform, those reading other outputs last.
    order: Vec<usize>,
    /// Per column: whether another column's transformer reads its output.
    read_by_others: Vec<bool>,
    /// Per column: whether outputs may be remembered (a pure transformer whose output
    /// no other column reads).
    memo_ok: Vec<bool>,
    /// Tells this plan's remembered values from another's.
    id: u64,
}

pub struct Plan {
    pub tables: BTreeMap<String, TablePlan>,
}

impl Plan {
    pub fn table(&self, qualified: &str) -> Option<&TablePlan> {
        self.tables.get(qualified)
    }

    /// Whether any column's transformer changes key values (`integer-id`), so sequences
    /// must be raised after loading.
    pub fn changes_keys(&self) -> bool {
        self.tables
            .values()
            .any(|t| t.transformer_names.iter().any(|n| n == "integer-id"))
    }
}

/// Checks that the config covers `source` exactly (every table and column named, nothing
/// named that is not there), then builds every transformer.
pub fn plan(config: &Config, key: &Key, source: &[SourceTable]) -> Result<Plan, PlanError> {
    check_coverage(config, source)?;
    check_types(config, source)?;
    let mut tables = BTreeMap::new();
    for st in source {
        let tc = &config.tables[&st.name];
        let mut transforms = Vec::with_capacity(st.columns.len());
        let mut names = Vec::with_capacity(st.columns.len());
        for col in &st.columns {
            let cc = match tc.columns.get(col) {
                Some(cc) => cc,
                None => {
                    // truncate/skip tables need no columns
                    transforms.push(None);
                    names.push("keep".to_string());
                    continue;
                }
            };
            let b = Build {
                key,
                domain: cc.domain.clone(),
                columns: &st.columns,
                column: col,
            };
            let t = transformers::build(&cc.transformer, cc.options.clone(), &b)
                .map_err(|m| config.option_err(short(&st.name), cc, col, &m))?;
            names.push(cc.transformer.clone());
            transforms.push((!t.is_keep()).then_some(t));
        }
        let mut order: Vec<usize> = (0..transforms.len())
            .filter(|&i| transforms[i].is_some())
            .collect();
        // a transformer reading other outputs runs after them (templates of templates: by depth)
        let depth = |i: usize| {
            transforms[i]
                .as_ref()
                .map_or(0, |t| usize::from(!t.reads_outputs().is_empty()))
        };
        order.sort_by_key(|&i| depth(i));
        let mut read_by_others = vec![false; transforms.len()];
        for t in transforms.iter().flatten() {
            for r in t.reads_outputs() {
                if let Some(x) = read_by_others.get_mut(r) {
                    *x = true;
                }
            }
        }
        let elementwise = st
            .columns
            .iter()
            .enumerate()
            .map(|(i, col)| {
                st.types
                    .get(i)
                    .and_then(Option::as_ref)
                    .is_some_and(|t| t.array)
                    && tc
                        .columns
                        .get(col)
                        .and_then(|cc| transformers::find(&cc.transformer))
                        .is_some_and(|spec| matches!(spec.accepts, Accepts::Only(_)))
            })
            .collect();
        let memo_ok = (0..transforms.len())
            .map(|i| !read_by_others[i] && transforms[i].as_ref().is_some_and(|t| t.pure()))
            .collect();
        tables.insert(
            st.name.clone(),
            TablePlan {
                name: st.name.clone(),
                action: tc.action,
                columns: st.columns.clone(),
                transforms,
                transformer_names: names,
                types: (0..st.columns.len())
                    .map(|i| st.types.get(i).cloned().flatten())
                    .collect(),
                elementwise,
                order,
                read_by_others,
                memo_ok,
                id: NEXT_PLAN.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            },
        );
    }
    Ok(Plan { tables })
}

/// Stops the run, before any row is read, when a transformer is paired with a column it
/// cannot write valid values into (`hash` on `inet`, `lorem` on `xml`): each such column
/// is listed with its place in the config, its type and the transformers that fit it.
pub fn check_types(config: &Config, source: &[SourceTable]) -> Result<(), PlanError> {
    let mut problems = Vec::new();
    for st in source {
        let Some(tc) = config
            .tables
            .get(&st.name)
            .filter(|t| t.action == Action::Anonymize)
        else {
            continue;
        };
        for (i, col) in st.columns.iter().enumerate() {
            let (Some(cc), Some(Some(ty))) = (tc.columns.get(col), st.types.get(i)) else {
                continue;
            };
            let Some(spec) = transformers::find(&cc.transformer) else {
                continue;
            };
            if spec.accepts.takes(ty.kind) {
                continue;
            }
            let place = column_place(config, &st.name, col);
            problems.push(format!(
                "  {} {}.{col} is {} ({}{}): `{}` writes {}; for this column use {}",
                place.trim_end(),
                st.name,
                ty.sql,
                if ty.array { "an array of " } else { "" },
                ty.kind.describe(),
                spec.name,
                spec.accepts.describe(),
                transformers::writing(ty.kind).join(", ")
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(PlanError::Coverage(format!(
        "transformers are paired with columns they cannot write, so the output would not \
         load; nothing was read:\n{}\nEvery output must be valid for its column: \
         docs/transformers.md says what each transformer writes.",
        problems.join("\n")
    )))
}

/// Stops the run, before anything is loaded, when a column under a unique key (primary
/// key, unique constraint or index) has a transformer that can give two rows one value.
pub fn check_unique(config: &Config, plan: &Plan, keys: &[UniqueKey]) -> Result<(), PlanError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut problems = Vec::new();
    for k in keys {
        let Some(t) = plan
            .table(&k.table)
            .filter(|t| t.action == Action::Anonymize)
        else {
            continue;
        };
        for col in &k.columns {
            let Some(i) = t.columns.iter().position(|c| c == col) else {
                continue;
            };
            // a distinct output cut to the column's length may no longer be distinct
            let limit = t.types[i].as_ref().and_then(|ty| ty.max_chars);
            let merges = t.transforms[i].as_ref().is_some_and(|tr| {
                !tr.keeps_distinct() || limit.is_some_and(|n| tr.max_chars().is_none_or(|m| m > n))
            });
            if !merges || !seen.insert((k.table.clone(), col.clone())) {
                continue;
            }
            let place = column_place(config, &k.table, col);
            problems.push(format!(
                "  {} {}.{col} (in unique key {}): `{}` can give two rows one value{}",
                place.trim_end(),
                k.table,
                k.name,
                t.transformer_names[i],
                match limit {
                    Some(n) => format!(" once cut to the column's {n} characters"),
                    None => String::new(),
                }
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(PlanError::Coverage(format!(
        "columns under a unique key have transformers that can merge values; nothing was \
         loaded:\n{}\nGive each a transformer that keeps distinct values distinct (keep, uuid, \
         integer-id, email, hash of 16+ characters, null), or drop the key in the target's \
         schema.",
        problems.join("\n")
    )))
}

/// How a column's values map, for comparing the two sides of a foreign key: equal
/// mappings keep equal values equal. `keep` is one mapping whatever its domain.
#[derive(Debug, PartialEq)]
enum Mapping<'a> {
    /// The table has no rows in the copy (truncated) or is not in it (skipped).
    NoRows(Action),
    Keep,
    /// Every value becomes NULL: a reference that is NULL points at nothing, and holds.
    Null,
    By {
        transformer: &'a str,
        domain: &'a str,
        options: &'a toml::Table,
    },
}

impl std::fmt::Display for Mapping<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mapping::NoRows(Action::Skip) => f.write_str("its table is skipped (not in the copy)"),
            Mapping::NoRows(_) => f.write_str("its table is truncated (no rows in the copy)"),
            Mapping::Keep => f.write_str("`keep`"),
            Mapping::Null => f.write_str("`null`"),
            Mapping::By {
                transformer,
                domain,
                options,
            } => {
                write!(f, "`{transformer}` (domain `{domain}`")?;
                if !options.is_empty() {
                    let opts: Vec<String> =
                        options.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    write!(f, ", {}", opts.join(", "))?;
                }
                f.write_str(")")
            }
        }
    }
}

fn mapping<'a>(config: &'a Config, table: &str, column: &str) -> Option<Mapping<'a>> {
    let tc = config.tables.get(table)?;
    if tc.action != Action::Anonymize {
        return Some(Mapping::NoRows(tc.action));
    }
    let cc = tc.columns.get(column)?;
    Some(match cc.transformer.as_str() {
        "keep" => Mapping::Keep,
        "null" => Mapping::Null,
        t => Mapping::By {
            transformer: t,
            domain: &cc.domain,
            options: &cc.options,
        },
    })
}

/// Stops the run, before any row is read, when the copy could not keep a foreign key of
/// the source: the referencing and the referenced column must map alike (the same
/// transformer, domain and options; `null` on the referencing side always holds), and a
/// table with rows may not reference one that has none in the copy (issue 14).
pub fn check_foreign(config: &Config, keys: &[ForeignKey]) -> Result<(), PlanError> {
    let mut problems = Vec::new();
    for k in keys {
        for (col, pcol) in k.columns.iter().zip(&k.parent_columns) {
            let (Some(child), Some(parent)) = (
                mapping(config, &k.table, col),
                mapping(config, &k.parent, pcol),
            ) else {
                continue;
            };
            let holds = match (&child, &parent) {
                (Mapping::NoRows(_) | Mapping::Null, _) => true,
                (_, Mapping::NoRows(_)) => false,
                (c, p) => c == p,
            };
            if holds {
                continue;
            }
            let place = column_place(config, &k.table, col);
            problems.push(format!(
                "  {} {}.{col} references {}.{pcol} (foreign key {}): {child} on this side, \
                 {parent} on the referenced side",
                place.trim_end(),
                k.table,
                k.parent,
                k.name
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(PlanError::Coverage(format!(
        "foreign keys of the source could not hold in the copy, so nothing was read:\n{}\n\
         Give both columns of each the same transformer, options and domain (for instance \
         `{{ transformer = \"email\", domain = \"customer-email\" }}` on each), make the \
         referencing column `null`, or truncate the referencing table too. `anonymize init` \
         writes such pairs alike.",
        problems.join("\n")
    )))
}

/// Where `table.column` is in the config, as `file:line:col:` (empty when it is not).
fn column_place(config: &Config, table: &str, column: &str) -> String {
    config
        .tables
        .get(table)
        .and_then(|tc| tc.columns.get(column))
        .map(|cc| config.err(cc.span.clone(), "").to_string())
        .unwrap_or_default()
}

/// `public.x` → `x`, as the config may write it.
fn short(name: &str) -> &str {
    name.strip_prefix("public.").unwrap_or(name)
}

/// The fail-closed check: the full list of what is missing and what is stale, with a
/// snippet to paste.
pub fn check_coverage(config: &Config, source: &[SourceTable]) -> Result<(), PlanError> {
    let mut missing_tables = Vec::new();
    let mut missing_columns: Vec<(&SourceTable, Vec<usize>)> = Vec::new();
    let mut stale = Vec::new();
    for st in source {
        match config.tables.get(&st.name) {
            None => missing_tables.push(st),
            Some(tc) if tc.action == Action::Anonymize => {
                let missing: Vec<usize> = (0..st.columns.len())
                    .filter(|&i| !tc.columns.contains_key(&st.columns[i]))
                    .collect();
                if !missing.is_empty() {
                    missing_columns.push((st, missing));
                }
                for (col, cc) in &tc.columns {
                    if !st.columns.contains(col) {
                        stale.push((
                            config.err(cc.span.clone(), "").to_string(),
                            format!("{}.{col}", st.name),
                        ));
                    }
                }
            }
            Some(_) => {}
        }
    }
    for (name, tc) in &config.tables {
        if !source.iter().any(|s| &s.name == name) {
            stale.push((
                config.err(tc.span.clone(), "").to_string(),
                format!("{name} (the whole table)"),
            ));
        }
    }
    if missing_tables.is_empty() && missing_columns.is_empty() && stale.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "{} does not match the source; nothing was read.\n",
        config.file
    );
    let listed: Vec<String> = missing_tables
        .iter()
        .map(|t| format!("{} (a whole table)", t.name))
        .chain(missing_columns.iter().flat_map(|(t, cols)| {
            cols.iter()
                .map(move |&i| format!("{}.{}", t.name, t.columns[i]))
        }))
        .collect();
    if !listed.is_empty() {
        msg.push_str(&format!(
            "Not in the config (an unmentioned column is never copied as it is):\n  {}\n",
            listed.join("\n  ")
        ));
    }
    if !stale.is_empty() {
        msg.push_str("In the config but not in the source (remove them, or check the source):\n");
        for (place, what) in &stale {
            msg.push_str(&format!("  {} {what}\n", place.trim_end()));
        }
    }
    if !listed.is_empty() {
        msg.push_str("\nAdd this to the config, after reviewing each suggestion:\n");
        for (t, cols) in &missing_columns {
            msg.push_str(&format!("\n# under [tables.{}]:\n", table_key(&t.name)));
            for &i in cols {
                msg.push_str(&column_line(t, i));
            }
        }
        for t in &missing_tables {
            msg.push_str(&table_section(t, &[]));
        }
    }
    Err(PlanError::Coverage(msg.trim_end().to_string()))
}

/// The `[tables.…]` key that reads back (through [`qualified`](super::config::qualified))
/// as the table `name` (`schema.table`): a part holding `.` or `"` is quoted as SQL quotes
/// it, so `public."a.b"` and `a.b` stay two tables and `we"ird` stays `we"ird`.
pub fn table_key(name: &str) -> String {
    let (schema, table) = name.split_once('.').unwrap_or(("public", name));
    let part = |p: &str| {
        if p.contains(['.', '"']) {
            format!("\"{}\"", p.replace('"', "\"\""))
        } else {
            p.to_string()
        }
    };
    toml_key(&if schema == "public" {
        part(table)
    } else {
        format!("{}.{}", part(schema), part(table))
    })
}

/// A TOML key, quoted when it needs to be.
pub fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        format!("\"{}\"", k.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// `columns.x = "…"   # why`, for column `i` of `t` (the fail-closed snippet).
fn column_line(t: &SourceTable, i: usize) -> String {
    line(&t.columns[i], &suggestion(t, i, &[]))
}

fn line(column: &str, s: &Suggestion) -> String {
    format!(
        "columns.{} = {}   # {}\n",
        toml_key(column),
        s.toml,
        s.reason
    )
}

/// A whole `[tables.x]` section for `t`; `samples[i]` are sampled values of column i.
pub fn table_section(t: &SourceTable, samples: &[Vec<String>]) -> String {
    section(t, &suggestions(t, samples))
}

/// A suggestion for every column of `t`; `samples[i]` are sampled values of column i.
pub fn suggestions(t: &SourceTable, samples: &[Vec<String>]) -> Vec<Suggestion> {
    (0..t.columns.len())
        .map(|i| {
            let sample: Vec<&str> = samples
                .get(i)
                .map(|v| v.iter().map(String::as_str).collect())
                .unwrap_or_default();
            suggestion(t, i, &sample)
        })
        .collect()
}

/// The suggestion for column `i` of `t`, from its name, type and samples, and one its
/// type can take.
fn suggestion(t: &SourceTable, i: usize, samples: &[&str]) -> Suggestion {
    let ty = t.types.get(i).and_then(Option::as_ref);
    let s = suggest(&t.columns[i], ty.map(|t| t.sql.as_str()), samples);
    match ty {
        Some(ty) => fit_suggestion(s, ty),
        None => s,
    }
}

/// A suggestion the column's type can take: one whose transformer cannot write the type
/// becomes `null`, saying why (issue 14: init never suggests an incompatible pair).
fn fit_suggestion(s: Suggestion, ty: &ColumnType) -> Suggestion {
    let name = toml::from_str::<toml::Table>(&format!("x = {}", s.toml))
        .ok()
        .and_then(|t| match t.get("x")? {
            toml::Value::String(n) => Some(n.clone()),
            toml::Value::Table(t) => t.get("transformer")?.as_str().map(str::to_string),
            _ => None,
        });
    let Some(spec) = name.as_deref().and_then(transformers::find) else {
        return s;
    };
    if spec.accepts.takes(ty.kind) {
        return s;
    }
    Suggestion {
        toml: "\"null\"".into(),
        reason: format!(
            "{}, but `{}` cannot write {} ({}); null clears it (on a NOT NULL column use \
             {{ transformer = \"constant\", value = \"…\" }} with a valid {})",
            s.reason,
            spec.name,
            ty.sql,
            ty.kind.describe(),
            ty.kind.describe()
        ),
    }
}

/// A `[tables.x]` section writing `suggestions[i]` for column i.
pub fn section(t: &SourceTable, suggestions: &[Suggestion]) -> String {
    let mut s = format!("\n[tables.{}]\n", table_key(&t.name));
    for (c, sg) in t.columns.iter().zip(suggestions) {
        s.push_str(&line(c, sg));
    }
    s
}

/// Gives the referencing column of every foreign key the referenced column's suggestion
/// (through chains of keys), so the config `init` writes keeps every reference.
pub fn align_foreign_keys(
    suggested: &mut BTreeMap<String, Vec<Suggestion>>,
    tables: &[SourceTable],
    keys: &[ForeignKey],
) {
    let index = |table: &str, col: &str| {
        let t = tables.iter().find(|t| t.name == table)?;
        Some((t.name.clone(), t.columns.iter().position(|c| c == col)?))
    };
    // a chain of n keys settles in n rounds; cycles settle in one more
    for _ in 0..=keys.len().min(64) {
        let mut changed = false;
        for k in keys {
            for (col, pcol) in k.columns.iter().zip(&k.parent_columns) {
                let (Some((ct, ci)), Some((pt, pi))) =
                    (index(&k.table, col), index(&k.parent, pcol))
                else {
                    continue;
                };
                let Some(parent) = suggested
                    .get(&pt)
                    .and_then(|s| s.get(pi))
                    .map(|s| s.toml.clone())
                else {
                    continue;
                };
                if let Some(child) = suggested.get_mut(&ct).and_then(|s| s.get_mut(ci)) {
                    if child.toml != parent {
                        child.toml = parent;
                        child.reason = format!(
                            "references {}.{pcol} (foreign key {}): mapped alike so the reference holds",
                            k.parent, k.name
                        );
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
}

/// A row being rewritten: raw fields in, transformed fields computed on demand.
struct LineRow<'a> {
    line: &'a [u8],
    fields: &'a [(usize, usize)],
    out: &'a [Option<Option<String>>],
}

impl Row for LineRow<'_> {
    fn original(&self, i: usize) -> Option<String> {
        let &(a, b) = self.fields.get(i)?;
        copy::decode_field(&self.line[a..b]).map(|v| String::from_utf8_lossy(&v).into_owned())
    }
    fn output(&self, i: usize) -> Option<String> {
        match self.out.get(i) {
            Some(Some(v)) => v.clone(),
            _ => self.original(i),
        }
    }
}

/// Values a column's transformer has answered, by their COPY text: names, cities and
/// statuses repeat, and a repeat then costs a lookup instead of a keyed hash and a fake.
/// A column whose values barely repeat (emails, keys) turns its memory off.
#[derive(Default)]
struct ColumnMemo {
    map: foldhash::HashMap<Box<[u8]>, Box<[u8]>>,
    lookups: u32,
    hits: u32,
    off: bool,
}

/// Values remembered per column and thread.
const MEMO_CAP: usize = 1 << 15;
/// Lookups after which a column that hits less than a quarter of the time stops looking.
const MEMO_TRIAL: u32 = 1 << 13;

/// Per-thread buffers reused from row to row, so a row allocates nothing once warm.
#[derive(Default)]
struct Scratch {
    plan: u64,
    fields: Vec<(usize, usize)>,
    computed: Vec<Option<Option<String>>>,
    encoded: Vec<Vec<u8>>,
    done: Vec<bool>,
    memo: Vec<ColumnMemo>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

static NEXT_PLAN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl TablePlan {
    /// Whether any column is transformed (otherwise lines pass untouched).
    pub fn is_passthrough(&self) -> bool {
        self.order.is_empty()
    }

    /// One line before and after, for `--dry-run`: each transformed column's name, value
    /// before and value after.
    #[allow(clippy::type_complexity)]
    pub fn preview(
        &self,
        line: &[u8],
    ) -> Result<Vec<(String, Option<String>, Option<String>)>, String> {
        let mut out = Vec::new();
        self.transform_line(line, &mut out)?;
        let after = out.strip_suffix(b"\n").unwrap_or(&out);
        let decode =
            |f: &[u8]| copy::decode_field(f).map(|b| String::from_utf8_lossy(&b).into_owned());
        Ok(copy::split_fields(line)
            .zip(copy::split_fields(after))
            .enumerate()
            .filter(|(i, _)| self.transforms[*i].is_some())
            .map(|(i, (b, a))| (self.columns[i].clone(), decode(b), decode(a)))
            .collect())
    }

    /// Runs column `i`'s transformer on one value: on each element of an array column,
    /// and fitted to the column's type (its length, its range).
    fn apply_typed(
        &self,
        i: usize,
        t: &dyn Transform,
        value: &str,
        row: &dyn Row,
    ) -> Result<Option<String>, String> {
        let Some(ty) = self.types[i].as_ref() else {
            return t.apply(value, row);
        };
        // a whole-value transformer on an array column writes a whole array: a length
        // is the elements' and is not for it to fit
        let fits = !ty.array || self.elementwise[i];
        let one = |v: &str| -> Result<Option<String>, String> {
            Ok(t.apply(v, row)?.map(|o| {
                if fits {
                    types::fit(ty, &o).unwrap_or(o)
                } else {
                    o
                }
            }))
        };
        if self.elementwise[i] {
            types::map_array(value, one).map(Some)
        } else {
            one(value)
        }
    }

    /// Rewrites one COPY text line (without its newline) into `out` (with its newline).
    /// Untouched fields are copied byte for byte; only transformed ones are decoded.
    pub fn transform_line(&self, line: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        if self.is_passthrough() {
            out.extend_from_slice(line);
            out.push(b'\n');
            return Ok(());
        }
        SCRATCH.with_borrow_mut(|s| self.transform_with(line, out, s))
    }

    fn transform_with(
        &self,
        line: &[u8],
        out: &mut Vec<u8>,
        s: &mut Scratch,
    ) -> Result<(), String> {
        let n = self.columns.len();
        if s.plan != self.id {
            *s = Scratch {
                plan: self.id,
                computed: vec![None; n],
                encoded: vec![Vec::new(); n],
                done: vec![false; n],
                memo: (0..n).map(|_| ColumnMemo::default()).collect(),
                fields: Vec::with_capacity(n),
            };
        }
        s.fields.clear();
        let mut start = 0;
        for tab in memchr::memchr_iter(b'\t', line) {
            s.fields.push((start, tab));
            start = tab + 1;
        }
        s.fields.push((start, line.len()));
        if s.fields.len() != n {
            return Err(format!(
                "expected {} fields ({}), found {}",
                n,
                self.columns.join(", "),
                s.fields.len()
            ));
        }
        s.done.iter_mut().for_each(|d| *d = false);
        for &i in &self.order {
            let (a, b) = s.fields[i];
            let raw = &line[a..b];
            let memo = &mut s.memo[i];
            let remember = self.memo_ok[i] && !memo.off;
            if remember {
                memo.lookups += 1;
                if let Some(v) = memo.map.get(raw) {
                    memo.hits += 1;
                    s.encoded[i].clear();
                    s.encoded[i].extend_from_slice(v);
                    s.done[i] = true;
                    continue;
                }
                if memo.lookups == MEMO_TRIAL && memo.hits * 4 < memo.lookups {
                    memo.off = true;
                    memo.map = Default::default();
                }
            }
            let t = self.transforms[i]
                .as_ref()
                .expect("ordered columns have transformers");
            let row = |computed| LineRow {
                line,
                fields: &s.fields,
                out: computed,
            };
            let result = match copy::decode_field_cow(raw) {
                None if !t.takes_null() => None,
                None => t
                    .apply("", &row(&s.computed))
                    .map_err(|e| format!("column {}: {e}", self.columns[i]))?,
                Some(bytes) => {
                    let text = std::str::from_utf8(&bytes).map_err(|_| {
                        format!("column {}: the value is not UTF-8", self.columns[i])
                    })?;
                    if text.is_empty() && !t.takes_null() {
                        Some(String::new())
                    } else {
                        self.apply_typed(i, t.as_ref(), text, &row(&s.computed))
                            .map_err(|e| format!("column {}: {e}", self.columns[i]))?
                    }
                }
            };
            s.encoded[i].clear();
            copy::put_field(&mut s.encoded[i], result.as_deref());
            s.done[i] = true;
            if remember && !s.memo[i].off && s.memo[i].map.len() < MEMO_CAP {
                s.memo[i]
                    .map
                    .insert(raw.into(), s.encoded[i].as_slice().into());
            }
            if self.read_by_others[i] {
                s.computed[i] = Some(result);
            }
        }
        for (i, &(a, b)) in s.fields.iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            if s.done[i] {
                out.extend_from_slice(&s.encoded[i]);
            } else {
                out.extend_from_slice(&line[a..b]);
            }
        }
        if self.order.iter().any(|&i| self.read_by_others[i]) {
            s.computed.iter_mut().for_each(|c| *c = None);
        }
        out.push(b'\n');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people_plan(secret: &[u8]) -> Plan {
        let config = Config::parse(
            "[tables.people]\ncolumns.id = \"keep\"\ncolumns.first = \"first-name\"\n\
             columns.again = \"first-name\"\n\
             columns.email = { transformer = \"template\", template = \"{again}@example.com\" }\n",
            "anonymize.toml",
        )
        .unwrap();
        let source = [SourceTable {
            name: "public.people".into(),
            columns: vec!["id".into(), "first".into(), "again".into(), "email".into()],
            types: vec![None; 4],
        }];
        plan(&config, &Key::from_secret(secret), &source).unwrap()
    }

    /// Remembered values give exactly what the transformer gives, for repeated and
    /// escaped values, and a new plan (another key) never sees the old plan's memory.
    #[test]
    fn remembered_outputs_equal_computed_ones() {
        let key = Key::from_secret(b"a test key, 16+ characters");
        let direct = transformers::build(
            "first-name",
            toml::Table::new(),
            &Build {
                key: &key,
                domain: "first-name".into(),
                columns: &["id".into(), "first".into()],
                column: "first",
            },
        )
        .unwrap();
        let plan = people_plan(b"a test key, 16+ characters");
        let t = plan.table("public.people").unwrap();
        assert!(t.memo_ok[1], "first-name is remembered");
        assert!(!t.memo_ok[2], "not where a template reads the output");
        let mut out = Vec::new();
        for row in 0..20_000 {
            let name = match row % 3 {
                0 => format!("Ana{}", row % 50),
                1 => format!("Ion\\t{}", row % 50),
                _ => "\\N".to_string(),
            };
            out.clear();
            t.transform_line(format!("{row}\t{name}\t{name}\tx").as_bytes(), &mut out)
                .unwrap();
            let line = String::from_utf8(out.clone()).unwrap();
            let fields: Vec<&str> = line.trim_end().split('\t').collect();
            let want = match copy::decode_field(name.as_bytes()) {
                None => "\\N".to_string(),
                Some(v) => {
                    let v = direct
                        .apply(std::str::from_utf8(&v).unwrap(), &transformers::NoRow)
                        .unwrap()
                        .unwrap();
                    let mut b = Vec::new();
                    copy::put_field(&mut b, Some(&v));
                    String::from_utf8(b).unwrap()
                }
            };
            assert_eq!(fields[1], want, "row {row}, remembered");
            assert_eq!(fields[2], want, "row {row}, computed");
            if want != "\\N" {
                assert_eq!(
                    fields[3],
                    format!("{want}@example.com"),
                    "the template reads it"
                );
            }
        }
        let other = people_plan(b"another key, 16+ characters");
        let mut a = Vec::new();
        let mut b = Vec::new();
        t.transform_line(b"1\tAna1\tAna1\tx", &mut a).unwrap();
        other
            .table("public.people")
            .unwrap()
            .transform_line(b"1\tAna1\tAna1\tx", &mut b)
            .unwrap();
        assert_ne!(a, b, "another key, another output");
    }

    /// The snippet a fail-closed stop prints suggests what the column's type can take,
    /// as init does: not `hash` for an inet column named like an IP address (issue 14).
    #[test]
    fn the_coverage_snippet_fits_suggestions_to_types() {
        let config =
            Config::parse("[tables.t]\ncolumns.id = \"keep\"\n", "anonymize.toml").unwrap();
        let inet = ColumnType::from_catalog("inet".into(), "inet", -1, false, false);
        let source = [SourceTable {
            name: "public.t".into(),
            columns: vec!["id".into(), "last_ip".into()],
            types: vec![None, Some(inet)],
        }];
        let e = check_coverage(&config, &source).unwrap_err().to_string();
        assert!(e.contains("columns.last_ip = \"null\""), "{e}");
        assert!(e.contains("`hash` cannot write inet"), "{e}");
    }

    /// init writes the referencing column of a foreign key like the referenced one,
    /// through a chain of keys, saying why (issue 14).
    #[test]
    fn init_maps_both_sides_of_a_foreign_key_alike() {
        let table = |name: &str, cols: &[&str]| SourceTable {
            name: name.into(),
            columns: cols.iter().map(|c| c.to_string()).collect(),
            types: vec![None; cols.len()],
        };
        let tables = [
            table("public.people", &["email"]),
            table("public.subscribers", &["contact"]),
            table("public.bounces", &["address"]),
        ];
        let fk = |t: &str, c: &str, p: &str, pc: &str| ForeignKey {
            table: t.into(),
            name: format!("{t}_fk"),
            columns: vec![c.into()],
            parent: p.into(),
            parent_columns: vec![pc.into()],
        };
        // listed child-first, so one round is not enough
        let keys = [
            fk("public.bounces", "address", "public.subscribers", "contact"),
            fk("public.subscribers", "contact", "public.people", "email"),
        ];
        let sg = |toml: &str| {
            vec![Suggestion {
                toml: toml.into(),
                reason: "by name".into(),
            }]
        };
        let mut suggested = BTreeMap::from([
            ("public.people".to_string(), sg("\"email\"")),
            ("public.subscribers".to_string(), sg("\"hash\"")),
            ("public.bounces".to_string(), sg("\"keep\"")),
        ]);
        align_foreign_keys(&mut suggested, &tables, &keys);
        for t in ["public.subscribers", "public.bounces"] {
            assert_eq!(suggested[t][0].toml, "\"email\"", "{t}");
        }
        assert!(
            suggested["public.bounces"][0]
                .reason
                .contains("references public.subscribers.contact"),
            "{:?}",
            suggested["public.bounces"][0]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// The config `init` writes reads back as the same tables, whatever their names:
        /// quotes, dots, spaces, unicode, a table named like another schema's (issue 14).
        #[test]
        fn table_keys_read_back_as_the_same_tables(
            schema in "public|[a-zA-Z_ \"ăș€-]{1,8}",
            table in "[a-zA-Z_ .\"ăș€;-]{1,12}",
        ) {
            let dotted = format!("{schema}.{table}");
            let mut names = vec![dotted.clone()];
            // the table `x.y` of public beside the table `y` of schema `x`
            if let Some((a, b)) = table.split_once('.') {
                if !a.is_empty() && !b.is_empty() {
                    names.push(format!("{a}.{b}"));
                }
            }
            names.push(format!("public.{table}"));
            names.sort();
            names.dedup();
            let text: String = names
                .iter()
                .map(|n| format!("[tables.{}]\ncolumns.x = \"keep\"\n", table_key(n)))
                .collect();
            let config = Config::parse(&text, "anonymize.toml").map_err(|e| {
                proptest::test_runner::TestCaseError::fail(format!("{e}\n{text}"))
            })?;
            let read: Vec<&String> = config.tables.keys().collect();
            proptest::prop_assert_eq!(read, names.iter().collect::<Vec<_>>(), "{}", text);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// COPY text through a plan: kept fields pass byte for byte (escapes, tabs,
        /// backslashes, multibyte, NULL, lines of hundreds of kB), and a transformed one
        /// is the transformer's output for the decoded value, encoded again.
        #[test]
        fn copy_text_round_trips_through_a_plan(
            a in proptest::option::of("\\PC*|[\\\\\t\r\n a-zăîșțâ€😀]*"),
            b in proptest::option::of("\\PC*|[\\\\\t\r\n a-zăîșțâ€😀]*"),
            repeat in 0usize..40_000,
        ) {
            let config = Config::parse(
                "[tables.t]\ncolumns.a = \"keep\"\ncolumns.b = \"hash\"\ncolumns.long = \"keep\"\n",
                "anonymize.toml",
            )
            .unwrap();
            let cols: Vec<String> = vec!["a".into(), "b".into(), "long".into()];
            let source = [SourceTable { name: "public.t".into(), columns: cols.clone(), types: vec![None; 3] }];
            let key = Key::from_secret(b"a test key, 16+ characters");
            let plan = plan(&config, &key, &source).unwrap();
            let long = "ab\\\t\nș".repeat(repeat);
            let mut line = Vec::new();
            copy::put_row(&mut line, [a.as_deref(), b.as_deref(), Some(long.as_str())]);
            line.pop();
            let mut out = Vec::new();
            plan.table("public.t").unwrap().transform_line(&line, &mut out).unwrap();
            proptest::prop_assert_eq!(out.pop(), Some(b'\n'));
            let fin: Vec<&[u8]> = copy::split_fields(&line).collect();
            let fout: Vec<&[u8]> = copy::split_fields(&out).collect();
            proptest::prop_assert_eq!(fout.len(), 3);
            proptest::prop_assert_eq!(fin[0], fout[0]);
            proptest::prop_assert_eq!(fin[2], fout[2]);
            let direct = transformers::build(
                "hash",
                toml::Table::new(),
                &Build { key: &key, domain: "hash".into(), columns: &cols, column: "b" },
            )
            .unwrap();
            let want = match &b {
                None => None,
                Some(v) if v.is_empty() => Some(String::new()),
                Some(v) => direct.apply(v, &transformers::NoRow).unwrap(),
            };
            let mut enc = Vec::new();
            copy::put_field(&mut enc, want.as_deref());
            proptest::prop_assert_eq!(fout[1], &enc[..]);
        }
    }
}
