//! Progress bar styles shared by seed and anonymize: rates as whole numbers with
//! thousands separators (`17,456 rows/s`), not indicatif's `17456.3214/s`.

use indicatif::{ProgressState, ProgressStyle};

/// A rate as people read it: whole, grouped by thousands.
pub fn format_rate(per_sec: f64) -> String {
    let n = if per_sec.is_finite() && per_sec > 0.0 {
        per_sec.round() as u64
    } else {
        0
    };
    format!("{}/s", indicatif::HumanCount(n))
}

/// A style from `template`, where `{rate}` is the whole-number rate.
pub fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&format_rate(s.per_sec()));
        })
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn rates_are_whole_and_grouped() {
        assert_eq!(super::format_rate(17456.3214), "17,456/s");
        assert_eq!(super::format_rate(0.4), "0/s");
        assert_eq!(super::format_rate(f64::NAN), "0/s");
        assert_eq!(super::format_rate(1_234_567.8), "1,234,568/s");
    }
}
