//! Distribution profiles of a column (from the table's deterministic sample, built with
//! polars) and the statistics that compare source and output: total-variation distance
//! and PSI for categories, the Kolmogorov–Smirnov statistic for numbers and dates,
//! length histograms, and the label-free shape of categorical frequencies.

use polars::prelude::*;

/// What a column's sample looks like.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// Non-null values in the sample.
    pub sampled: usize,
    /// Distinct non-null values in the sample.
    pub distinct: usize,
    /// Numbers (or dates as days, timestamps as seconds), sorted, when every sampled
    /// value is one.
    pub numbers: Option<Vec<f64>>,
    /// Value → share of the sample, when the column is categorical.
    pub categories: Option<Vec<(String, f64)>>,
    /// Share of values of each length in characters (the last bucket: 64 and more).
    pub lengths: Vec<f64>,
    /// What `numbers` count when the values are dates or timestamps.
    pub unit: Option<Temporal>,
}

/// The unit of a date or timestamp column's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporal {
    /// Days since 1970-01-01 (dates).
    Days,
    /// Seconds since 1970-01-01 00:00:00 (timestamps).
    Seconds,
}

/// `v` as a report shows it: a number, or in a date column a date and in a timestamp
/// column a timestamp (never days or seconds since 1970).
pub fn show(v: f64, unit: Option<Temporal>) -> String {
    let date = |days: f64| {
        time::Date::from_julian_day(2_440_588 + days.floor() as i32)
            .map_or_else(|_| format!("{days} days"), |d| d.to_string())
    };
    match unit {
        None if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        None => format!("{v:.4}"),
        Some(Temporal::Days) => date(v),
        Some(Temporal::Seconds) => {
            let days = (v / 86_400.0).floor();
            let secs = (v - days * 86_400.0) as i64;
            format!(
                "{} {:02}:{:02}:{:02}",
                date(days),
                secs / 3600,
                secs % 3600 / 60,
                secs % 60
            )
        }
    }
}

/// Length buckets: one per length below 64, then eight per doubling up to 65,536
/// characters, then one for anything longer, so the histogram covers the whole range (a
/// constant 250-character text among texts of 100 to 400 stands out; with one bucket for
/// 64 and more it did not).
pub const LENGTH_BUCKETS: usize = 64 + 8 * 10 + 1;

/// The bucket of a length in characters.
pub fn length_bucket(n: usize) -> usize {
    if n < 64 {
        n
    } else {
        (64 + ((n as f64 / 64.0).log2() * 8.0) as usize).min(LENGTH_BUCKETS - 1)
    }
}

/// The shortest length a bucket holds, as a chart labels it.
pub fn length_label(b: usize) -> String {
    if b < 64 {
        b.to_string()
    } else {
        format!(
            "{}+",
            (64.0 * 2f64.powf((b - 64) as f64 / 8.0)).ceil() as u64
        )
    }
}

/// A date (`2024-01-31`) as days, or a timestamp (`2024-01-31 12:00:00+00`) as seconds
/// since 1970 (its offset ignored: a shape, not an instant, is compared).
fn temporal(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let date =
        time::Date::from_calendar_date(y as i32, time::Month::try_from(m as u8).ok()?, d as u8)
            .ok()?;
    let days = (date.to_julian_day() - 2_440_588) as f64;
    if b.len() == 10 {
        return Some(days);
    }
    if b.len() < 19 || !(b[10] == b' ' || b[10] == b'T') {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    Some(days * 86_400.0 + (h * 3600 + mi * 60 + sec) as f64)
}

/// The profile of one column's sampled values (`None` = NULL).
pub fn profile(name: &str, values: &[Option<String>], categorical_max: usize) -> Profile {
    let series = Series::new(name.into(), values);
    let sampled = series.len() - series.null_count();
    let distinct = series
        .n_unique()
        .unwrap_or(0)
        .saturating_sub(usize::from(series.null_count() > 0));
    let mut p = Profile {
        sampled,
        distinct,
        lengths: vec![0.0; LENGTH_BUCKETS],
        ..Profile::default()
    };
    if sampled == 0 {
        return p;
    }
    let strings = series.str().expect("a string series");
    for v in strings.iter().flatten() {
        p.lengths[length_bucket(v.chars().count())] += 1.0 / sampled as f64;
    }
    let as_numbers = series.cast(&DataType::Float64).ok();
    if let Some(n) = as_numbers.filter(|n| n.null_count() == series.null_count()) {
        let sorted = n.sort(SortOptions::default()).expect("sortable");
        p.numbers = Some(sorted.f64().expect("f64").iter().flatten().collect());
    } else {
        let times: Vec<f64> = strings.iter().flatten().map_while(temporal).collect();
        if times.len() == sampled {
            let mut t = times;
            t.sort_by(f64::total_cmp);
            p.numbers = Some(t);
            let first = strings.iter().flatten().next().unwrap_or("");
            p.unit = Some(if first.len() == 10 {
                Temporal::Days
            } else {
                Temporal::Seconds
            });
        }
    }
    if distinct <= categorical_max {
        let frame = DataFrame::new_infer_height(vec![series.into()]).expect("one column");
        let groups = frame.group_by([name]).expect("groupable");
        let keys = groups.keys();
        let key = keys[0]
            .as_materialized_series()
            .str()
            .expect("strings")
            .clone();
        let mut cats: Vec<(String, f64)> = groups
            .get_groups()
            .iter()
            .zip(key.iter())
            .filter_map(|(g, k)| Some((k?.to_string(), g.len() as f64 / sampled as f64)))
            .collect();
        cats.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        p.categories = Some(cats);
    }
    p
}

/// Total-variation distance between two distributions given as shares.
pub fn tvd(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| (a.get(i).copied().unwrap_or(0.0) - b.get(i).copied().unwrap_or(0.0)).abs())
        .sum::<f64>()
        / 2.0
}

/// Two categorical distributions on their union of labels, in the same order.
pub fn aligned(a: &[(String, f64)], b: &[(String, f64)]) -> (Vec<String>, Vec<f64>, Vec<f64>) {
    let mut labels: Vec<String> = a.iter().map(|(k, _)| k.clone()).collect();
    for (k, _) in b {
        if !labels.contains(k) {
            labels.push(k.clone());
        }
    }
    let share =
        |d: &[(String, f64)], k: &str| d.iter().find(|(x, _)| x == k).map_or(0.0, |(_, s)| *s);
    let (x, y) = labels.iter().map(|k| (share(a, k), share(b, k))).unzip();
    (labels, x, y)
}

/// Population stability index (shares floored at 0.0001 so an empty bin is finite).
pub fn psi(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&p, &q)| {
            let (p, q) = (p.max(1e-4), q.max(1e-4));
            (q - p) * (q / p).ln()
        })
        .sum()
}

/// The two-sample Kolmogorov–Smirnov statistic of two sorted samples.
pub fn ks(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return if a.len() == b.len() { 0.0 } else { 1.0 };
    }
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// The `q` quantile of a sorted sample (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// A histogram of two sorted samples over `bins` equal ranges spanning both, as shares.
pub fn histograms(
    a: &[f64],
    b: &[f64],
    bins: usize,
    unit: Option<Temporal>,
) -> (Vec<String>, Vec<f64>, Vec<f64>) {
    let lo = a
        .first()
        .copied()
        .unwrap_or(0.0)
        .min(b.first().copied().unwrap_or(0.0));
    let hi = a
        .last()
        .copied()
        .unwrap_or(0.0)
        .max(b.last().copied().unwrap_or(0.0));
    let width = ((hi - lo) / bins as f64).max(f64::MIN_POSITIVE);
    let hist = |s: &[f64]| {
        let mut h = vec![0.0; bins];
        for &x in s {
            h[(((x - lo) / width) as usize).min(bins - 1)] += 1.0 / s.len().max(1) as f64;
        }
        h
    };
    let labels = (0..bins)
        .map(|i| show(lo + width * i as f64, unit))
        .collect();
    (labels, hist(a), hist(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A constant 250-character text among texts of 100 to 400 characters drifts in
    /// length; with lengths of 64 and more in one bucket it looked the same.
    #[test]
    fn length_histograms_cover_the_whole_range() {
        let varied: Vec<Option<String>> = (0..300).map(|i| Some("x".repeat(100 + i))).collect();
        let constant: Vec<Option<String>> = (0..300).map(|_| Some("y".repeat(250))).collect();
        let (a, b) = (profile("a", &varied, 0), profile("b", &constant, 0));
        assert!(
            tvd(&a.lengths, &b.lengths) > 0.9,
            "{}",
            tvd(&a.lengths, &b.lengths)
        );
        assert_eq!(tvd(&a.lengths, &a.lengths), 0.0);
        for n in [0, 63, 64, 65, 127, 128, 250, 65_535, 65_536, 10_000_000] {
            let bucket = length_bucket(n);
            assert!(bucket < LENGTH_BUCKETS);
            let low: usize = length_label(bucket).trim_end_matches('+').parse().unwrap();
            assert!(
                low <= n.max(64) || n < 64,
                "{n} in bucket {bucket} labelled {low}"
            );
        }
        assert_eq!(length_label(64), "64+");
        assert_eq!(length_bucket(128), 72);
    }

    /// Quantiles and bins of dates and timestamps read as dates and timestamps.
    #[test]
    fn dates_and_timestamps_are_shown_as_such() {
        let dates: Vec<Option<String>> = (0..60)
            .map(|i| Some(format!("2024-01-{:02}", 15 + i % 3)))
            .collect();
        let p = profile("d", &dates, 0);
        assert_eq!(p.unit, Some(Temporal::Days));
        let n = p.numbers.as_deref().unwrap();
        assert_eq!(show(quantile(n, 0.5), p.unit), "2024-01-16");
        assert_eq!(show(quantile(n, 0.0), p.unit), "2024-01-15");
        let ts = [Some("2023-12-31 23:59:58+00".to_string())];
        let p = profile("t", &ts, 0);
        assert_eq!(p.unit, Some(Temporal::Seconds));
        assert_eq!(show(p.numbers.unwrap()[0], p.unit), "2023-12-31 23:59:58");
        let (labels, _, _) = histograms(&[0.0, 31.0], &[0.0], 2, Some(Temporal::Days));
        assert_eq!(labels, ["1970-01-01", "1970-01-16"]);
        assert_eq!(show(2.5, None), "2.5000");
        assert_eq!(show(7.0, None), "7");
    }

    #[test]
    fn statistics_on_known_samples() {
        assert_eq!(ks(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 0.0);
        assert_eq!(ks(&[1.0, 2.0], &[3.0, 4.0]), 1.0);
        assert!((ks(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0]) - 0.5).abs() < 1e-12);
        assert!((tvd(&[0.5, 0.5], &[1.0, 0.0]) - 0.5).abs() < 1e-12);
        assert!(psi(&[0.5, 0.5], &[0.5, 0.5]).abs() < 1e-12);
        assert!(psi(&[0.5, 0.5], &[0.9, 0.1]) > 0.25);
    }

    #[test]
    fn profiles_detect_numbers_dates_and_categories() {
        let v = |xs: &[&str]| {
            xs.iter()
                .map(|x| Some(x.to_string()))
                .chain([None])
                .collect::<Vec<_>>()
        };
        let p = profile("n", &v(&["3", "1.5", "2"]), 50);
        assert_eq!(p.numbers, Some(vec![1.5, 2.0, 3.0]));
        assert_eq!((p.sampled, p.distinct), (3, 3));
        let p = profile("d", &v(&["2024-01-02", "2024-01-01"]), 50);
        assert_eq!(p.numbers, Some(vec![19723.0, 19724.0]));
        let p = profile("s", &v(&["a", "b", "a", "a"]), 50);
        assert_eq!(
            p.categories,
            Some(vec![("a".into(), 0.75), ("b".into(), 0.25)])
        );
        assert!(profile("s", &v(&["a", "b", "c"]), 2).categories.is_none());
        let t = profile("t", &v(&["2024-01-01 00:00:10+00"]), 50);
        assert_eq!(t.numbers, Some(vec![19723.0 * 86400.0 + 10.0]));
    }
}
