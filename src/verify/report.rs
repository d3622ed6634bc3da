//! The verification report: every check with its measured value and threshold, as a
//! table for people, JSON for machines and a one-page HTML file for a reviewer.

use std::fmt::Write as _;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    /// Fail past the threshold, warn past half of it.
    pub fn of(measured: f64, threshold: f64) -> Status {
        if measured > threshold {
            Status::Fail
        } else if measured > threshold / 2.0 {
            Status::Warn
        } else {
            Status::Pass
        }
    }

    fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// Source and output side by side, for a chart.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub labels: Vec<String>,
    pub source: Vec<f64>,
    pub output: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub status: Status,
    /// `leak`, `detector`, `rows`, `null_rate`, `ks` …
    pub check: String,
    pub table: String,
    pub column: Option<String>,
    pub measured: Option<f64>,
    pub threshold: Option<f64>,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart: Option<Chart>,
}

/// One place a source value was found in the output.
#[derive(Debug, Clone, Serialize)]
pub struct LeakHit {
    pub table: String,
    pub column: String,
    /// The output row's key (`customer_id=5`), or its position.
    pub row: String,
    /// The anonymized source column whose value it is.
    pub source_column: String,
    /// How it was found: the whole value, a token, a JSON leaf …
    pub masked: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LeakSummary {
    /// Forms of source values searched for.
    pub source_forms: u64,
    /// `exact` or `bloom`.
    pub mode: &'static str,
    pub bloom_false_positive_rate: Option<f64>,
    pub bloom_bytes: Option<usize>,
    /// Bloom hits that the second read of the source did not confirm.
    pub unconfirmed: u64,
    /// New values equal to another row's source value of their own column (chance).
    pub coincidences: u64,
    pub cells_scanned: u64,
    pub hits: u64,
    /// The first hits (at most 20 per column).
    pub examples: Vec<LeakHit>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableSample {
    pub table: String,
    pub source_rows: u64,
    pub output_rows: u64,
    pub sampled_source: usize,
    pub sampled_output: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub source: String,
    pub output: String,
    /// The id of the key the copy was checked with (a hash, never the key).
    pub key_id: String,
    /// The mapping the copy was checked under ([`MAPPING_VERSION`]).
    ///
    /// [`MAPPING_VERSION`]: crate::anonymize::key::MAPPING_VERSION
    pub mapping_version: u32,
    pub passed: bool,
    pub failed: usize,
    pub warned: usize,
    pub leak: LeakSummary,
    pub samples: Vec<TableSample>,
    pub checks: Vec<Check>,
    pub seconds: f64,
}

impl Report {
    /// A report of `checks`: it passed when none failed.
    pub fn new(
        source: String,
        output: String,
        key_id: String,
        leak: LeakSummary,
        samples: Vec<TableSample>,
        checks: Vec<Check>,
        seconds: f64,
    ) -> Report {
        let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
        let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
        Report {
            source,
            output,
            key_id,
            mapping_version: crate::anonymize::key::MAPPING_VERSION,
            passed: failed == 0,
            failed,
            warned,
            leak,
            samples,
            checks,
            seconds,
        }
    }

    /// The table on stdout with every check: failures and warnings first, then one line
    /// per passing check (`verify --verbose`).
    pub fn text(&self) -> String {
        self.table(true)
    }

    /// The failed and warned checks, the passing ones counted by kind, and the summary
    /// (what `verify` prints by default).
    pub fn text_flagged(&self) -> String {
        self.table(false)
    }

    fn table(&self, passing: bool) -> String {
        let mut rows: Vec<&Check> = self
            .checks
            .iter()
            .filter(|c| passing || c.status != Status::Pass)
            .collect();
        rows.sort_by_key(|c| std::cmp::Reverse(c.status));
        let fmt = |v: Option<f64>| {
            v.map_or(String::new(), |v| {
                if v.fract() == 0.0 && v.abs() < 1e15 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.4}")
                }
            })
        };
        let cells: Vec<[String; 6]> = rows
            .iter()
            .map(|c| {
                [
                    c.status.word().to_string(),
                    match &c.column {
                        Some(col) => format!("{}.{col}", c.table),
                        None => c.table.clone(),
                    },
                    c.check.clone(),
                    fmt(c.measured),
                    fmt(c.threshold),
                    c.detail.clone(),
                ]
            })
            .collect();
        let head = [
            "status",
            "where",
            "check",
            "measured",
            "threshold",
            "detail",
        ];
        let mut width = head.map(str::len);
        for r in &cells {
            for (w, c) in width.iter_mut().zip(r).take(5) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, r: [&str; 6]| {
            for (i, c) in r.iter().enumerate().take(5) {
                let _ = write!(out, "{c:<w$}  ", w = width[i]);
            }
            let _ = writeln!(out, "{}", r[5]);
        };
        if !cells.is_empty() {
            line(&mut out, head);
        }
        for r in &cells {
            line(&mut out, [&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]);
        }
        if !passing {
            let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
            for c in self.checks.iter().filter(|c| c.status == Status::Pass) {
                *kinds.entry(c.check.as_str()).or_default() += 1;
            }
            let n: usize = kinds.values().sum();
            let _ = writeln!(
                out,
                "{}{n} checks passed ({}); --verbose lists them",
                if cells.is_empty() { "" } else { "\n" },
                kinds
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let _ = writeln!(
            out,
            "\nleak scan: {} source forms ({}{}), {} output cells, {} hits{}",
            self.leak.source_forms,
            self.leak.mode,
            self.leak
                .bloom_false_positive_rate
                .map_or(String::new(), |r| format!(
                    ", false-positive rate {r:.1e}, every hit confirmed against the source"
                )),
            self.leak.cells_scanned,
            self.leak.hits,
            if self.leak.coincidences > 0 {
                format!(
                    ", {} chance matches (new values equal to other rows' source values)",
                    self.leak.coincidences
                )
            } else {
                String::new()
            }
        );
        for h in &self.leak.examples {
            let _ = writeln!(
                out,
                "  {}.{} row {}: {} is a value of {}",
                h.table, h.column, h.row, h.masked, h.source_column
            );
        }
        let _ = writeln!(
            out,
            "{}: {} checks, {} failed, {} warned ({:.2}s; key id {}, mapping {})",
            if self.passed {
                "verify passed"
            } else {
                "verify FAILED"
            },
            self.checks.len(),
            self.failed,
            self.warned,
            self.seconds,
            self.key_id,
            self.mapping_version
        );
        out
    }

    /// One self-contained page: the summary, every failing or warned check with a
    /// small chart of source against output, then the full table.
    pub fn html(&self) -> String {
        let mut h = String::new();
        let _ = write!(
            h,
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>dataforge verify</title>\
             <style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:70em}}\
             table{{border-collapse:collapse}}td,th{{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left}}\
             .fail{{color:#b00020;font-weight:bold}}.warn{{color:#a15c00;font-weight:bold}}.pass{{color:#2e7d32}}\
             figure{{display:inline-block;margin:0 1em 1em 0;vertical-align:top}}\
             </style></head><body><h1>dataforge verify: {}</h1><p>{} → {}<br>key id {}, mapping {}<br>\
             {} checks, {} failed, {} warned; leak scan: {} source forms ({}), {} cells, {} hits</p>",
            if self.passed { "passed" } else { "FAILED" },
            esc(&self.source),
            esc(&self.output),
            esc(&self.key_id),
            self.mapping_version,
            self.checks.len(),
            self.failed,
            self.warned,
            self.leak.source_forms,
            self.leak.mode,
            self.leak.cells_scanned,
            self.leak.hits
        );
        let flagged: Vec<&Check> = self
            .checks
            .iter()
            .filter(|c| c.status != Status::Pass)
            .collect();
        if !flagged.is_empty() {
            h.push_str("<h2>Failed and warned</h2>");
            for c in &flagged {
                let _ = write!(
                    h,
                    "<figure><figcaption class=\"{}\">{} {}{} — {}</figcaption>",
                    c.status.word().to_lowercase(),
                    c.status.word(),
                    esc(&c.table),
                    c.column
                        .as_ref()
                        .map_or(String::new(), |col| format!(".{}", esc(col))),
                    esc(&format!("{}: {}", c.check, c.detail))
                );
                if let Some(chart) = &c.chart {
                    h.push_str(&svg(chart));
                }
                h.push_str("</figure>");
            }
        }
        h.push_str("<h2>Every check</h2><table><tr><th>status</th><th>where</th><th>check</th><th>measured</th><th>threshold</th><th>detail</th></tr>");
        for c in &self.checks {
            let _ = write!(
                h,
                "<tr><td class=\"{}\">{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                c.status.word().to_lowercase(),
                c.status.word(),
                esc(&c.table),
                c.column.as_ref().map_or(String::new(), |col| format!(".{}", esc(col))),
                esc(&c.check),
                c.measured.map_or(String::new(), |v| format!("{v:.4}")),
                c.threshold.map_or(String::new(), |v| format!("{v:.4}")),
                esc(&c.detail)
            );
        }
        h.push_str("</table></body></html>\n");
        h
    }
}

/// Paired bars: source (grey) and output (blue) per label.
/// Text made safe inside HTML and SVG, escaped once.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A bar chart of source against output: every bin, a y axis of shares with its ticks, an
/// x axis with each bin's label, and each bar's value on hover.
fn svg(c: &Chart) -> String {
    let n = c.labels.len().max(1);
    let (left, top, plot_h, bin_w) = (44.0, 8.0, 120.0, 16.0);
    let label_h = 10.0
        + 5.5
            * c.labels
                .iter()
                .map(|l| l.chars().count().min(24))
                .max()
                .unwrap_or(1) as f64;
    let plot_w = bin_w * n as f64;
    let (w, h) = (left + plot_w + 8.0, top + plot_h + label_h + 16.0);
    let max = c
        .source
        .iter()
        .chain(&c.output)
        .fold(0.0f64, |a, &b| a.max(b))
        .max(1e-12);
    let base = top + plot_h;
    let mut s = format!(
        "<svg width=\"{w:.0}\" height=\"{h:.0}\" role=\"img\" font-size=\"9\">\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{base}\" stroke=\"#333\"/>\
         <line x1=\"{left}\" y1=\"{base}\" x2=\"{:.1}\" y2=\"{base}\" stroke=\"#333\"/>",
        left + plot_w
    );
    for k in 0..=4 {
        let v = max * f64::from(k) / 4.0;
        let y = base - plot_h * f64::from(k) / 4.0;
        let _ = write!(
            s,
            "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{left}\" y2=\"{y:.1}\" stroke=\"#333\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:.1}%</text>",
            left - 3.0,
            left - 5.0,
            y + 3.0,
            v * 100.0
        );
    }
    for i in 0..n {
        let label = c.labels.get(i).map_or("", String::as_str);
        for (k, (v, color, side)) in [
            (c.source.get(i), "#9e9e9e", "source"),
            (c.output.get(i), "#1565c0", "output"),
        ]
        .into_iter()
        .enumerate()
        {
            let v = v.copied().unwrap_or(0.0);
            let bh = v / max * plot_h;
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{color}\">\
                 <title>{} — {side}: {:.2}%</title></rect>",
                left + i as f64 * bin_w + 1.0 + k as f64 * (bin_w - 2.0) / 2.0,
                base - bh,
                (bin_w - 2.0) / 2.0,
                esc(label),
                v * 100.0
            );
        }
        let shown: String = label.chars().take(24).collect();
        let x = left + (i as f64 + 0.5) * bin_w;
        let _ = write!(
            s,
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"end\" transform=\"rotate(-60 {x:.1} {:.1})\">{}</text>",
            base + 10.0,
            base + 10.0,
            esc(&shown)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{left}\" y=\"{:.1}\">share of sampled values per bin · grey: source · blue: output</text></svg>",
        h - 4.0
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: Status, check: &str, table: &str) -> Check {
        Check {
            status,
            check: check.into(),
            table: table.into(),
            column: None,
            measured: None,
            threshold: None,
            detail: format!("{check} detail"),
            chart: None,
        }
    }

    /// Every bin is drawn (a length histogram has 65), with axes, tick values, each
    /// bin's label and value, and labels escaped once.
    #[test]
    fn charts_show_every_bin_with_axes_and_escaped_labels() {
        let mut labels: Vec<String> = (0..65).map(|i| i.to_string()).collect();
        labels[3] = "<a&b>".into();
        let mut source = vec![0.0; 65];
        source[64] = 0.5;
        let chart = Chart {
            labels,
            source,
            output: vec![0.01; 65],
        };
        let s = svg(&chart);
        assert_eq!(s.matches("<rect ").count(), 130, "{s}");
        assert!(s.contains(">64</text>"), "the last bin is labelled");
        assert!(
            s.contains("&lt;a&amp;b&gt;") && !s.contains("&amp;lt;"),
            "{s}"
        );
        assert!(
            s.contains(">50.0%</text>") && s.contains(">0.0%</text>"),
            "the y axis: {s}"
        );
        assert!(s.contains("<title>64 — source: 50.00%</title>"), "{s}");
    }

    /// By default a report shows what needs a look, first, and counts the rest by kind;
    /// `--verbose` lists every check.
    #[test]
    fn failures_come_first_and_passing_checks_are_counted() {
        let report = Report {
            source: "a".into(),
            output: "b".into(),
            key_id: "0123456789abcdef".into(),
            mapping_version: 2,
            passed: false,
            failed: 1,
            warned: 1,
            leak: LeakSummary {
                source_forms: 0,
                mode: "exact",
                bloom_false_positive_rate: None,
                bloom_bytes: None,
                unconfirmed: 0,
                coincidences: 0,
                cells_scanned: 0,
                hits: 0,
                examples: Vec::new(),
            },
            samples: Vec::new(),
            checks: vec![
                check(Status::Pass, "ks", "t"),
                check(Status::Warn, "tvd", "u"),
                check(Status::Pass, "ks", "v"),
                check(Status::Fail, "leak", "w"),
                check(Status::Pass, "schema", "(schema)"),
            ],
            seconds: 1.0,
        };
        let short = report.text_flagged();
        let rows: Vec<&str> = short.lines().skip(1).take(2).collect();
        assert!(
            rows[0].starts_with("FAIL") && rows[0].contains("leak"),
            "{short}"
        );
        assert!(
            rows[1].starts_with("WARN") && rows[1].contains("tvd"),
            "{short}"
        );
        assert!(
            short.contains("\n3 checks passed (ks 2, schema 1); --verbose lists them\n"),
            "{short}"
        );
        assert!(!short.contains("ks detail"), "{short}");
        let all = report.text();
        assert_eq!(all.matches("ks detail").count(), 2, "{all}");
        assert!(all.lines().nth(1).unwrap().starts_with("FAIL"), "{all}");
    }
}
