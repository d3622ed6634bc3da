//! The plan: the config checked against the source's tables and columns (fail closed,
//! in `guard`), and each table's transformers built, ready to rewrite COPY text rows.

use std::collections::BTreeMap;

use super::config::{Action, Config, ConfigError};
use super::guard::{check_coverage, check_types, column_place};
use super::key::Key;
use super::large_objects::LoAction;
use super::memo::ColumnMemo;
use super::transformers::{self, Accepts, Build, Row, Transform};
use super::types::{self, ColumnType};
use crate::pg::copy;
use crate::source::catalog::UniqueKey;

use crate::source::SourceTable;

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
    /// What happens to large objects (`keep` when the config has no section: the
    /// source then holds none, or `guard::check_large_objects` stopped the run).
    pub large_objects: LoAction,
    /// What happens to `COMMENT ON` text.
    pub comments: super::comments::CommentAction,
    /// Whether materialized views are populated in the copy.
    pub refresh_matviews: bool,
    /// Whether GRANT and REVOKE statements are copied.
    pub keep_grants: bool,
}

impl Plan {
    /// The filter every dump path applies to SQL lines outside COPY data.
    pub fn sql_lines(&self) -> super::comments::SqlLines {
        super::comments::SqlLines::new(
            self.large_objects,
            self.comments,
            self.refresh_matviews,
            self.keep_grants,
        )
    }
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
/// `real`: the source's own identifying values by domain, which the transformers drawing
/// such values never write ([`super::real`]).
pub fn plan(
    config: &Config,
    key: &Key,
    source: &[SourceTable],
    real: &super::real::RealSets,
) -> Result<Plan, PlanError> {
    check_coverage(config, source)?;
    check_types(config, source)?;
    let mut tables = BTreeMap::new();
    for st in source {
        let tc = &config.tables[&st.name];
        let mut transforms = Vec::with_capacity(st.columns.len());
        let mut names = Vec::with_capacity(st.columns.len());
        for (i, col) in st.columns.iter().enumerate() {
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
                reals: Some(real),
                ty: st.types.get(i).and_then(Option::as_ref),
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
    Ok(Plan {
        tables,
        large_objects: config
            .large_objects
            .as_ref()
            .map_or(LoAction::Keep, |l| l.action),
        comments: config.comments,
        refresh_matviews: config.refresh_matviews,
        keep_grants: config.keep_grants,
    })
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
         integer-id, email, ip-address, mac-address, hash of 16+ characters, null), or drop the key in the target's \
         schema.",
        problems.join("\n")
    )))
}

/// `public.x` → `x`, as the config may write it.
fn short(name: &str) -> &str {
    name.strip_prefix("public.").unwrap_or(name)
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

/// Per-thread buffers reused from row to row, so a row allocates nothing once warm.
#[derive(Default)]
struct Scratch {
    plan: u64,
    fields: Vec<(usize, usize)>,
    computed: Vec<Option<Option<String>>>,
    /// The value a transformer is writing.
    value: String,
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

    /// [`apply_typed`](Self::apply_typed), written into `out`: whether it wrote a value
    /// (`false`: NULL). A column without a type, or of a scalar type, is written in
    /// place; an array's elements go through `apply_typed`.
    fn apply_typed_into(
        &self,
        i: usize,
        t: &dyn Transform,
        value: &str,
        row: &dyn Row,
        out: &mut String,
    ) -> Result<bool, String> {
        match self.types[i].as_ref() {
            None => t.apply_into(value, row, out),
            Some(ty) if !ty.array => {
                let start = out.len();
                let written = t.apply_into(value, row, out)?;
                types::fit_in_place(ty, out, start);
                Ok(written)
            }
            Some(_) => Ok(match self.apply_typed(i, t, value, row)? {
                Some(v) => {
                    out.push_str(&v);
                    true
                }
                None => false,
            }),
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
                value: String::new(),
            };
        }
        s.fields.clear();
        s.fields.extend(crate::pg::copy::field_bounds(line));
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
            let h = if self.memo_ok[i] {
                ColumnMemo::hash(raw)
            } else {
                0
            };
            let remember = self.memo_ok[i] && s.memo[i].wanted(h);
            if remember {
                if let Some(v) = s.memo[i].get(h, raw) {
                    s.encoded[i].clear();
                    s.encoded[i].extend_from_slice(v);
                    s.done[i] = true;
                    s.memo[i].counted(true);
                    continue;
                }
                s.memo[i].counted(false);
            }
            let t = self.transforms[i]
                .as_ref()
                .expect("ordered columns have transformers");
            let row = |computed| LineRow {
                line,
                fields: &s.fields,
                out: computed,
            };
            // the output is written into one buffer reused from row to row
            let value = &mut s.value;
            value.clear();
            let written = match copy::decode_field_cow(raw) {
                None if !t.takes_null() => false,
                None => t
                    .apply_into("", &row(&s.computed), value)
                    .map_err(|e| format!("column {}: {e}", self.columns[i]))?,
                Some(bytes) => {
                    let text = std::str::from_utf8(&bytes).map_err(|_| {
                        format!("column {}: the value is not UTF-8", self.columns[i])
                    })?;
                    if text.is_empty() && !t.takes_null() {
                        true
                    } else {
                        self.apply_typed_into(i, t.as_ref(), text, &row(&s.computed), value)
                            .map_err(|e| format!("column {}: {e}", self.columns[i]))?
                    }
                }
            };
            s.encoded[i].clear();
            copy::put_field(&mut s.encoded[i], written.then_some(s.value.as_str()));
            s.done[i] = true;
            if remember {
                s.memo[i].put(h, raw, &s.encoded[i]);
            }
            if self.read_by_others[i] {
                s.computed[i] = Some(written.then(|| s.value.clone()));
            }
        }
        // untouched runs of fields, their tabs with them, are copied whole
        let mut copied = 0;
        for (i, &(a, b)) in s.fields.iter().enumerate() {
            if s.done[i] {
                out.extend_from_slice(&line[copied..a]);
                out.extend_from_slice(&s.encoded[i]);
                copied = b;
            }
        }
        out.extend_from_slice(&line[copied..]);
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
        plan(
            &config,
            &Key::from_secret(secret),
            &source,
            &Default::default(),
        )
        .unwrap()
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
                reals: None,
                ty: None,
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
            let plan = plan(&config, &key, &source, &Default::default()).unwrap();
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
                &Build { key: &key, domain: "hash".into(), columns: &cols, column: "b", reals: None, ty: None },
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
