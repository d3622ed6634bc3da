//! Integrity: orphans and fan-out from the ordered walk of each foreign key's hashes,
//! and duplicates of each unique key.

use super::row;
use crate::source::catalog::{ForeignKey, UniqueKey};
use crate::verify::keys::SortedKeys;
use crate::verify::report::{Chart, Check, Status};
use crate::verify::settings::Settings;
use crate::verify::stats;
use crate::verify::FANOUT_SAMPLE;

/// Orphans and fan-out per foreign key: `source_children` are the source's child-key
/// walks, `children` and `parents` the output's, one per key in `fks`' order.
pub(in crate::verify) fn foreign_keys(
    checks: &mut Vec<Check>,
    fks: &[ForeignKey],
    source_children: Vec<SortedKeys>,
    children: Vec<SortedKeys>,
    parents: Vec<SortedKeys>,
    settings: &Settings,
) -> anyhow::Result<()> {
    let fanout = |keys: SortedKeys| -> anyhow::Result<Vec<f64>> {
        let mut walk = keys.counted()?;
        let mut v = Vec::new();
        while let Some((_, n)) = walk.next_run()? {
            if v.len() == FANOUT_SAMPLE {
                break;
            }
            v.push(n as f64);
        }
        v.sort_by(f64::total_cmp);
        Ok(v)
    };
    let mut source_children = source_children.into_iter();
    let walks = children.into_iter().zip(parents);
    for (fk, (children, parents)) in fks.iter().zip(walks) {
        let mut kids = children.counted()?;
        let mut parents = parents.counted()?;
        let mut parent = parents.next_run()?;
        let (mut orphans, mut y) = (0u64, Vec::new());
        while let Some((k, n)) = kids.next_run()? {
            while parent.is_some_and(|(p, _)| p < k) {
                parent = parents.next_run()?;
            }
            if parent.is_none_or(|(p, _)| p != k) {
                orphans += n;
            }
            if y.len() < FANOUT_SAMPLE {
                y.push(n as f64);
            }
        }
        y.sort_by(f64::total_cmp);
        let parent_cols = fk.parent_columns.join(", ");
        checks.push(row(
        if orphans == 0 {
            Status::Pass
        } else {
            Status::Fail
        },
        "foreign_key",
        &fk.table,
        Some(&fk.columns.join(",")),
        Some(orphans as f64),
        Some(0.0),
        if orphans == 0 {
            format!("{}: every row refers to a {} row", fk.name, fk.parent)
        } else {
            {
                // names quoted, so the SQL runs for `"Billing Dept"."Invoice Lines"` too
                let q = |cs: &[String], prefix: &str| {
                    cs.iter()
                        .map(|c| format!("{prefix}{}", crate::pg::quote_ident(c)))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                format!(
                    "{}: {orphans} row(s) refer to no {}({parent_cols}); list them with SELECT {} FROM {} c WHERE ({}) IS NOT NULL AND NOT EXISTS (SELECT FROM {} p WHERE ({}) = ({}))",
                    fk.name,
                    fk.parent,
                    q(&fk.columns, ""),
                    crate::pg::quote_qualified(&fk.table),
                    q(&fk.columns, "c."),
                    crate::pg::quote_qualified(&fk.parent),
                    q(&fk.parent_columns, "p."),
                    q(&fk.columns, "c."),
                )
            }
        },
    ));
        let x = match source_children.next() {
            Some(keys) => fanout(keys)?,
            None => Vec::new(),
        };
        if !x.is_empty() && !y.is_empty() {
            let (labels, hx, hy) = stats::histograms(&x, &y, 20, None);
            let ks = stats::ks(&x, &y);
            let mut r = row(
                Status::of(ks, settings.thresholds.fanout_ks),
                "fanout_ks",
                &fk.table,
                Some(&fk.columns.join(",")),
                Some(ks),
                Some(settings.thresholds.fanout_ks),
                format!(
                    "{}: children per parent, median {} → {}",
                    fk.name,
                    stats::quantile(&x, 0.5),
                    stats::quantile(&y, 0.5)
                ),
            );
            r.chart = Some(Chart {
                labels,
                source: hx,
                output: hy,
            });
            checks.push(r);
        }
    }
    Ok(())
}

/// Duplicates per unique key of the output.
pub(in crate::verify) fn unique_keys(
    checks: &mut Vec<Check>,
    keys: &[UniqueKey],
    duplicates: &std::collections::BTreeMap<String, u64>,
) {
    for k in keys {
        let id = format!("{}.{}", k.table, k.name);
        let n = duplicates.get(&id).copied().unwrap_or_default();
        let cols = k.columns.join(", ");
        checks.push(row(
        if n == 0 { Status::Pass } else { Status::Fail },
        "unique",
        &k.table,
        Some(&k.columns.join(",")),
        Some(n as f64),
        Some(0.0),
        if n == 0 {
            format!("{}: no duplicates", k.name)
        } else {
            format!(
                "{}: {n} row(s) repeat another's key; list them with SELECT {cols}, count(*) FROM {} GROUP BY {cols} HAVING count(*) > 1",
                k.name, k.table
            )
        },
    ));
    }
}
