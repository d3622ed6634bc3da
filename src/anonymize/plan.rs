//! The plan: the config checked against the source's tables and columns (fail closed),
//! and each table's transformers built, ready to rewrite COPY text rows.

use std::collections::BTreeMap;

use super::config::{Action, Config, ConfigError};
use super::ddl::UniqueKey;
use super::key::Key;
use super::suggest::suggest;
use super::transformers::{self, Build, Row, Transform};
use crate::pg::copy;

/// A table of the source: its qualified name and its columns, in COPY order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTable {
    pub name: String,
    pub columns: Vec<String>,
    /// SQL types, when the source knows them (a live database).
    pub types: Vec<Option<String>>,
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
    /// The columns to transform, those reading other outputs last.
    order: Vec<usize>,
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
        tables.insert(
            st.name.clone(),
            TablePlan {
                name: st.name.clone(),
                action: tc.action,
                columns: st.columns.clone(),
                transforms,
                transformer_names: names,
                order,
            },
        );
    }
    Ok(Plan { tables })
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
            let merges = t.transforms[i]
                .as_ref()
                .is_some_and(|tr| !tr.keeps_distinct());
            if !merges || !seen.insert((k.table.clone(), col.clone())) {
                continue;
            }
            let place = config
                .tables
                .get(&k.table)
                .and_then(|tc| tc.columns.get(col))
                .map(|cc| config.err(cc.span.clone(), "").to_string())
                .unwrap_or_default();
            problems.push(format!(
                "  {} {}.{col} (in unique key {}): `{}` can give two rows one value",
                place.trim_end(),
                k.table,
                k.name,
                t.transformer_names[i]
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
            msg.push_str(&format!(
                "\n# under [tables.{}]:\n",
                toml_key(short(&t.name))
            ));
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

/// `columns.x = "…"   # why`, for column `i` of `t`, from its name, type and samples.
pub fn column_line_sampled(t: &SourceTable, i: usize, samples: &[&str]) -> String {
    let s = suggest(
        &t.columns[i],
        t.types.get(i).and_then(|x| x.as_deref()),
        samples,
    );
    format!(
        "columns.{} = {}   # {}\n",
        toml_key(&t.columns[i]),
        s.toml,
        s.reason
    )
}

fn column_line(t: &SourceTable, i: usize) -> String {
    column_line_sampled(t, i, &[])
}

/// A whole `[tables.x]` section for `t`; `samples[i]` are sampled values of column i.
pub fn table_section(t: &SourceTable, samples: &[Vec<String>]) -> String {
    let mut s = format!("\n[tables.{}]\n", toml_key(short(&t.name)));
    for i in 0..t.columns.len() {
        let sample: Vec<&str> = samples
            .get(i)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default();
        s.push_str(&column_line_sampled(t, i, &sample));
    }
    s
}

/// A row being rewritten: raw fields in, transformed fields computed on demand.
struct LineRow<'a> {
    raw: &'a [&'a [u8]],
    out: &'a [Option<Option<String>>],
}

impl Row for LineRow<'_> {
    fn original(&self, i: usize) -> Option<String> {
        let raw = self.raw.get(i)?;
        copy::decode_field(raw).map(|b| String::from_utf8_lossy(&b).into_owned())
    }
    fn output(&self, i: usize) -> Option<String> {
        match self.out.get(i) {
            Some(Some(v)) => v.clone(),
            _ => self.original(i),
        }
    }
}

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

    /// Rewrites one COPY text line (without its newline) into `out` (with its newline).
    /// Untouched fields are copied byte for byte; only transformed ones are decoded.
    pub fn transform_line(&self, line: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        if self.is_passthrough() {
            out.extend_from_slice(line);
            out.push(b'\n');
            return Ok(());
        }
        let fields: Vec<&[u8]> = copy::split_fields(line).collect();
        if fields.len() != self.columns.len() {
            return Err(format!(
                "expected {} fields ({}), found {}",
                self.columns.len(),
                self.columns.join(", "),
                fields.len()
            ));
        }
        let mut computed: Vec<Option<Option<String>>> = vec![None; fields.len()];
        for &i in &self.order {
            let t = self.transforms[i]
                .as_ref()
                .expect("ordered columns have transformers");
            let value = copy::decode_field(fields[i]);
            let result = match value {
                None if !t.takes_null() => None,
                None => {
                    let row = LineRow {
                        raw: &fields,
                        out: &computed,
                    };
                    t.apply("", &row)
                        .map_err(|e| format!("column {}: {e}", self.columns[i]))?
                }
                Some(bytes) => {
                    let text = std::str::from_utf8(&bytes).map_err(|_| {
                        format!("column {}: the value is not UTF-8", self.columns[i])
                    })?;
                    if text.is_empty() && !t.takes_null() {
                        Some(String::new())
                    } else {
                        let row = LineRow {
                            raw: &fields,
                            out: &computed,
                        };
                        t.apply(text, &row)
                            .map_err(|e| format!("column {}: {e}", self.columns[i]))?
                    }
                }
            };
            computed[i] = Some(result);
        }
        let mut buf = bytes::BytesMut::new();
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            match &computed[i] {
                None => out.extend_from_slice(f),
                Some(v) => {
                    buf.clear();
                    copy::put_field(&mut buf, v.as_deref());
                    out.extend_from_slice(&buf);
                }
            }
        }
        out.push(b'\n');
        Ok(())
    }
}
