//! `own_row`: a list-drawn column (names, cities, streets, postal codes) whose output kept
//! its own row's source value. The leak scan leaves those columns alone — another row's
//! "Mary" there is chance — so they are held to their own row here, on the keyed sample
//! that pairs a row with itself by its key (issue 14).

use crate::pg::copy;
use crate::pii::detect;

use super::report::{Check, Status};
use super::TableSummary;

/// Transformers that draw from lists, whose columns the leak scan leaves alone (a fake
/// "Mary" for a real one elsewhere is chance): a value equal to its own row's source
/// value is not chance, and is looked for here.
pub(super) const LIST_DRAWN: &[&str] = &[
    "first-name",
    "last-name",
    "full-name",
    "city",
    "street",
    "company",
    "postal-code",
];

/// For each column of `table` under a list-drawing transformer: the sampled rows found on
/// both sides (by their row key) whose output equals, case-folded, their own source value
/// — a survivor, and a leak (issue 14). Tables up to `sample_rows` are compared whole.
pub(super) fn checks(
    table: &str,
    tc: &crate::anonymize::config::TableConfig,
    src: &TableSummary,
    out: &TableSummary,
) -> Vec<Check> {
    let value = |line: &[u8], i: usize| {
        copy::split_fields(line)
            .nth(i)
            .and_then(copy::decode_field)
            .map(|b| String::from_utf8_lossy(&b).trim().to_lowercase())
            .filter(|v| !v.is_empty())
    };
    // the output's sampled rows by key hash; a hash two rows share pairs nothing
    let mut out_rows: foldhash::HashMap<u64, Option<&[u8]>> = foldhash::HashMap::default();
    for (h, line) in &out.lines {
        out_rows
            .entry(*h)
            .and_modify(|l| *l = None)
            .or_insert(Some(line.as_slice()));
    }
    let mut checks = Vec::new();
    for (i, c) in src.columns.iter().enumerate() {
        let transformer = tc.columns.get(c).map_or("keep", |c| c.transformer.as_str());
        let Some(j) = out.columns.iter().position(|x| x == c) else {
            continue;
        };
        if !LIST_DRAWN.contains(&transformer) {
            continue;
        }
        let (mut compared, mut kept, mut example) = (0u64, 0u64, None);
        for (h, line) in &src.lines {
            // a key held by one row on each side pairs them (NULL keys hash alike: skipped)
            let Some(other) = out_rows.get(h).copied().flatten() else {
                continue;
            };
            let (Some(a), Some(b)) = (value(line, i), value(other, j)) else {
                continue;
            };
            compared += 1;
            if a == b {
                kept += 1;
                example.get_or_insert(detect::mask(&b));
            }
        }
        if compared == 0 {
            continue;
        }
        checks.push(Check {
            status: if kept > 0 { Status::Fail } else { Status::Pass },
            check: "own_row".into(),
            table: table.to_string(),
            column: Some(c.clone()),
            measured: Some(kept as f64),
            threshold: Some(0.0),
            chart: None,
            detail: match example {
                Some(e) => format!(
                    "{transformer}: {kept} of {compared} sampled rows kept their own source value (e.g. {e})"
                ),
                None => format!(
                    "{transformer}: none of {compared} sampled rows kept its own source value"
                ),
            },
        });
    }
    checks
}
