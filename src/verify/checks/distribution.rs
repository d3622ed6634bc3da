//! Each column's distribution against the source's, as far as its transformer keeps it:
//! NULL rate, distinct ratio, values (KS for numbers and dates, TVD and PSI for
//! categories), string lengths, and a categorical column's shape whatever its labels.

use super::row;
use crate::anonymize::config::TableConfig;
use crate::anonymize::transformers::keeps;
use crate::pii::detect;
use crate::verify::report::{Chart, Check, Status};
use crate::verify::sample::TableSummary;
use crate::verify::settings::Settings;
use crate::verify::stats::{self, Profile};
use crate::verify::MIN_COMPARE;

pub(in crate::verify) fn columns(
    checks: &mut Vec<Check>,
    table: &str,
    tc: &TableConfig,
    src_t: &TableSummary,
    out_t: &TableSummary,
    settings: &Settings,
) {
    for (i, c) in src_t.columns.iter().enumerate() {
        let Some(j) = out_t.columns.iter().position(|x| x == c) else {
            continue;
        };
        let transformer = tc.columns.get(c).map_or("keep", |c| c.transformer.as_str());
        let th = settings.for_column(&format!("{}.{c}", table));
        let k = keeps(transformer);
        let (a, b) = (&src_t.profiles[i], &out_t.profiles[j]);
        let mut put =
            |check: &str, measured: f64, threshold: f64, detail: String, chart: Option<Chart>| {
                let mut r = row(
                    Status::of(measured, threshold),
                    check,
                    table,
                    Some(c),
                    Some(measured),
                    Some(threshold),
                    format!("{transformer}: {detail}"),
                );
                r.chart = chart;
                checks.push(r);
            };
        if k.null_rate {
            let (x, y) = (
                src_t.nulls[i] as f64 / src_t.rows as f64,
                out_t.nulls[j] as f64 / out_t.rows as f64,
            );
            put(
                "null_rate",
                (x - y).abs(),
                th.null_rate,
                format!("NULL {:.1}% → {:.1}%", x * 100.0, y * 100.0),
                None,
            );
        }
        // a distribution of a handful of values says nothing
        if a.sampled < MIN_COMPARE || b.sampled < MIN_COMPARE {
            continue;
        }
        let ratio = |p: &Profile| p.distinct as f64 / p.sampled as f64;
        if k.distinct {
            put(
                "distinct_ratio",
                (ratio(a) - ratio(b)).abs(),
                th.distinct_ratio,
                format!("distinct {:.3} → {:.3}", ratio(a), ratio(b)),
                None,
            );
        }
        if k.values {
            if let (Some(x), Some(y)) = (&a.numbers, &b.numbers) {
                let q = |v: &[f64]| {
                    format!(
                        "{} / {} / {}",
                        stats::show(stats::quantile(v, 0.05), a.unit),
                        stats::show(stats::quantile(v, 0.5), a.unit),
                        stats::show(stats::quantile(v, 0.95), a.unit)
                    )
                };
                let (labels, hx, hy) = stats::histograms(x, y, 20, a.unit);
                put(
                    "ks",
                    stats::ks(x, y),
                    th.ks,
                    format!("p5/p50/p95 {} → {}", q(x), q(y)),
                    Some(Chart {
                        labels,
                        source: hx,
                        output: hy,
                    }),
                );
            } else if let (Some(x), Some(y)) = (&a.categories, &b.categories) {
                let (labels, px, py) = stats::aligned(x, y);
                // a label a detector recognises is shown masked, as findings are
                let labels = labels
                    .into_iter()
                    .map(|l| {
                        let mut personal = false;
                        detect::detect(&l, &mut |_, _| personal = true);
                        if personal {
                            detect::mask(&l)
                        } else {
                            l
                        }
                    })
                    .collect();
                let chart = Chart {
                    labels,
                    source: px.clone(),
                    output: py.clone(),
                };
                put(
                    "tvd",
                    stats::tvd(&px, &py),
                    th.tvd,
                    format!("{} → {} categories", x.len(), y.len()),
                    Some(chart.clone()),
                );
                put(
                    "psi",
                    stats::psi(&px, &py),
                    th.psi,
                    format!("{} → {} categories", x.len(), y.len()),
                    Some(chart),
                );
            }
        }
        if k.lengths {
            // the chart ends at the longest value of either side
            let used = (0..stats::LENGTH_BUCKETS)
                .rev()
                .find(|&i| a.lengths[i] > 0.0 || b.lengths[i] > 0.0)
                .map_or(1, |i| i + 1);
            put(
                "length_tvd",
                stats::tvd(&a.lengths, &b.lengths),
                th.length_tvd,
                "string lengths".into(),
                Some(Chart {
                    labels: (0..used).map(stats::length_label).collect(),
                    source: a.lengths[..used].to_vec(),
                    output: b.lengths[..used].to_vec(),
                }),
            );
        }
        // a categorical column must keep its categories' shape, whatever their labels
        if transformer != "keep" && transformer != "null" {
            if let Some(x) = a.categories.as_ref().filter(|x| x.len() >= 2) {
                let shares = |d: &[(String, f64)]| d.iter().map(|(_, s)| *s).collect::<Vec<f64>>();
                let ys = b.categories.as_ref().map(|y| shares(y)).unwrap_or_default();
                let (xs, n_out) = (
                    shares(x),
                    b.categories.as_ref().map_or(b.distinct, Vec::len),
                );
                let labels = (1..=xs.len().max(ys.len()))
                    .map(|n| format!("#{n}"))
                    .collect();
                put(
                    "shape_tvd",
                    stats::tvd(&xs, &ys),
                    th.shape_tvd,
                    format!("a categorical column: {} categories → {n_out}", x.len()),
                    Some(Chart {
                        labels,
                        source: xs,
                        output: ys,
                    }),
                );
            }
        }
    }
}
