//! Detector findings (e-mail, phone, IBAN, card number, CNP) in the columns the config
//! keeps, and the ones a config allows with a reason.

use super::row;
use crate::verify::read_output::OutputRead;
use crate::verify::report::{Check, Status};
use crate::verify::settings::Settings;

pub(in crate::verify) fn checks(checks: &mut Vec<Check>, output: &OutputRead, settings: &Settings) {
    for ((table, column, d), f) in &output.findings {
        checks.push(row(
        Status::Fail,
        "detector",
        table,
        Some(column),
        Some(f.count as f64),
        Some(0.0),
        format!(
            "{} {d} value(s) in a kept column, e.g. {}; anonymize the column, or allow it under [verify.columns.\"{table}.{column}\"] with a reason",
            f.count,
            f.samples.join(", ")
        ),
    ));
    }
    for (col, s) in &settings.columns {
        if !s.allow.is_empty() {
            let (t, c) = col.rsplit_once('.').unwrap_or((col, ""));
            checks.push(row(
                Status::Pass,
                "detector",
                t,
                Some(c),
                None,
                None,
                format!(
                    "allowed: {} ({})",
                    s.allow.join(", "),
                    s.reason.as_deref().unwrap_or("")
                ),
            ));
        }
    }
    if output.findings.is_empty() {
        checks.push(row(
            Status::Pass,
            "detector",
            "(kept columns)",
            None,
            Some(0.0),
            Some(0.0),
            "no e-mail, phone, IBAN, card number or CNP in kept columns".into(),
        ));
    }
}
