//! Schema parity: the output has every table, index, constraint, trigger, view,
//! materialized view, policy, rule, sequence and extension of the source, with the same
//! definitions, and the large objects the config asked for. Each side is read as it is:
//! a dump file's own DDL, a live database as pg_dump writes it, so a file is compared
//! with a database as readily as with another file.

use std::collections::BTreeSet;

use super::report::{Check, Status};
use crate::anonymize::config::{Action, Config};
use crate::source::schema_objects::{SchemaObject, SchemaObjects};
use crate::source::{Source, SourceTable};

/// Differences shown in full; past them, counted.
const SHOWN: usize = 20;

async fn objects(s: &Source, config: &Config) -> anyhow::Result<BTreeSet<SchemaObject>> {
    Ok(match s {
        Source::Dump(_, scan) => scan.ddl.objects.objects.clone(),
        Source::Live(live) => {
            let mut script = live.schema("pre-data", config).await?;
            script.push_str(&live.schema("post-data", config).await?);
            SchemaObjects::of(&script)
        }
    })
}

/// The schema and large-object checks of `dst` against `src`.
pub async fn parity(config: &Config, src: &Source, dst: &Source) -> anyhow::Result<Vec<Check>> {
    let skipped = |table: &str| {
        config
            .tables
            .get(table)
            .is_some_and(|t| t.action == Action::Skip)
    };
    let want: BTreeSet<SchemaObject> = objects(src, config)
        .await?
        .into_iter()
        .filter(|o| !skipped(&o.table))
        .collect();
    // a dump's skipped table may still have its DDL in the output (its rows are gone)
    let have: BTreeSet<SchemaObject> = objects(dst, config)
        .await?
        .into_iter()
        .filter(|o| !skipped(&o.table))
        .collect();
    let missing: Vec<String> = want
        .difference(&have)
        .map(|o| {
            match have
                .iter()
                .find(|h| (h.kind, &h.table, &h.name) == (o.kind, &o.table, &o.name))
            {
                Some(h) => format!(
                    "{o}: defined differently ({} in the source, {} in the output)",
                    o.definition, h.definition
                ),
                None => format!("{o}: missing ({})", o.definition),
            }
        })
        .collect();
    let extra: Vec<String> = have
        .difference(&want)
        .filter(|h| {
            !want
                .iter()
                .any(|o| (o.kind, &o.table, &o.name) == (h.kind, &h.table, &h.name))
        })
        .map(|h| format!("{h}: not in the source ({})", h.definition))
        .collect();
    let differences: Vec<String> = missing.into_iter().chain(extra).collect();
    let mut checks = vec![Check {
        status: if differences.is_empty() {
            Status::Pass
        } else {
            Status::Fail
        },
        check: "schema".into(),
        table: "(schema)".into(),
        column: None,
        measured: Some(differences.len() as f64),
        threshold: Some(0.0),
        detail: if differences.is_empty() {
            format!(
                "all {} tables, indexes, constraints, triggers, views, materialized views, \
                 policies, rules, sequences and extensions of the source are in the output with \
                 the same definitions",
                want.len()
            )
        } else {
            let n = differences.len();
            let mut shown = differences[..n.min(SHOWN)].join("; ");
            if n > SHOWN {
                shown.push_str(&format!("; and {} more", n - SHOWN));
            }
            format!("{n} difference(s) from the source's schema: {shown}")
        },
        chart: None,
    }];
    let (src_objects, _) = src.large_objects();
    let (dst_objects, _) = dst.large_objects();
    if src_objects + dst_objects > 0 {
        let action = config.large_objects.as_ref().map(|l| l.action);
        let want = action.map_or(src_objects, |a| a.expected(src_objects));
        checks.push(Check {
            status: if dst_objects == want {
                Status::Pass
            } else {
                Status::Fail
            },
            check: "large_object_count".into(),
            table: "(large objects)".into(),
            column: None,
            measured: Some(dst_objects as f64),
            threshold: Some(want as f64),
            detail: format!(
                "{dst_objects} in the output for {src_objects} in the source; [large_objects] \
                 action = \"{}\" wants {want}",
                action.map_or("(none)", |a| a.name())
            ),
            chart: None,
        });
    }
    Ok(checks)
}

/// Tables and columns of SRC that the output should have (all but skipped ones) against
/// what DST has.
pub(super) fn schema_differences(
    config: &Config,
    src: &[SourceTable],
    dst: &[SourceTable],
) -> Vec<String> {
    let mut out = Vec::new();
    for s in src {
        let action = config.tables.get(&s.name).map(|t| t.action);
        if action == Some(Action::Skip) {
            continue;
        }
        match dst.iter().find(|d| d.name == s.name) {
            None if action == Some(Action::Truncate) => {}
            None => out.push(format!(
                "table {} is in the source but not in the output",
                s.name
            )),
            Some(d) => {
                for c in &s.columns {
                    if !d.columns.contains(c) {
                        out.push(format!(
                            "column {}.{c} is in the source but not in the output",
                            s.name
                        ));
                    }
                }
                for c in &d.columns {
                    if !s.columns.contains(c) {
                        out.push(format!(
                            "column {}.{c} is in the output but not in the source",
                            s.name
                        ));
                    }
                }
            }
        }
    }
    for d in dst {
        if !src.iter().any(|s| s.name == d.name) {
            out.push(format!(
                "table {} is in the output but not in the source",
                d.name
            ));
        }
    }
    out
}

/// SRC and DST do not have the same tables and columns.
#[derive(Debug, thiserror::Error)]
#[error("{src} and {dst} differ in schema, so they cannot be compared; nothing was checked:\n  {}", .differences.join("\n  "))]
pub struct SchemaMismatch {
    pub src: String,
    pub dst: String,
    pub differences: Vec<String>,
}
