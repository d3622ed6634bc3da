//! Row counts per table against the source (all of them, or at most them under a row
//! filter; none for a truncated table), each table's sample sizes, and then its columns.

use super::row;
use crate::anonymize::config::{Action, Config};
use crate::source::SourceTable;
use crate::verify::own_row;
use crate::verify::read_output::OutputRead;
use crate::verify::read_source::SourceRead;
use crate::verify::report::TableSample;
use crate::verify::report::{Check, Status};
use crate::verify::settings::Settings;

pub(in crate::verify) fn checks(
    checks: &mut Vec<Check>,
    samples: &mut Vec<TableSample>,
    config: &Config,
    settings: &Settings,
    src_tables: &[SourceTable],
    source: &SourceRead,
    output: &OutputRead,
) {
    for s in src_tables {
        let Some(tc) = config.tables.get(&s.name) else {
            continue;
        };
        let out_t = output.tables.get(&s.name);
        let out_rows = out_t.map_or(0, |t| t.rows);
        match tc.action {
            Action::Skip => continue,
            Action::Truncate => {
                checks.push(row(
                    if out_rows == 0 {
                        Status::Pass
                    } else {
                        Status::Fail
                    },
                    "rows",
                    &s.name,
                    None,
                    Some(out_rows as f64),
                    Some(0.0),
                    "truncated: schema only".into(),
                ));
                continue;
            }
            Action::Anonymize => {}
        }
        let Some(src_t) = source.tables.get(&s.name) else {
            continue;
        };
        let filtered = tc.filter.is_some();
        let ok = if filtered {
            out_rows <= src_t.rows
        } else {
            out_rows == src_t.rows
        };
        checks.push(row(
            if ok { Status::Pass } else { Status::Fail },
            "rows",
            &s.name,
            None,
            Some(out_rows as f64),
            Some(src_t.rows as f64),
            if filtered {
                format!("{out_rows} of {} source rows (row filter)", src_t.rows)
            } else if config.subset.is_some() {
                // the source side was read through the slice, recomputed by this run
                format!(
                    "{out_rows} rows, the subset keeps {} of the source's",
                    src_t.rows
                )
            } else {
                format!("{out_rows} rows, source {}", src_t.rows)
            },
        ));
        let Some(out_t) = out_t else { continue };
        samples.push(TableSample {
            table: s.name.clone(),
            source_rows: src_t.rows,
            output_rows: out_t.rows,
            sampled_source: src_t.sampled,
            sampled_output: out_t.sampled,
        });
        if src_t.rows == 0 || out_t.rows == 0 {
            continue;
        }
        checks.extend(own_row::checks(&s.name, tc, src_t, out_t));
        super::distribution::columns(checks, &s.name, tc, src_t, out_t, settings);
    }
}
