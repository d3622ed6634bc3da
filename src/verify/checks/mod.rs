//! The checks a verify run reports, built from what the reads found: leaks and
//! coincidences ([`leak`]), detector findings in kept columns ([`detector`]), row counts
//! and samples ([`rows`]) with each column's distribution ([`distribution`]), and
//! foreign and unique keys ([`integrity`]). Each pushes its rows in the report's order.

pub(super) mod detector;
pub(super) mod distribution;
pub(super) mod integrity;
pub(super) mod leak;
pub(super) mod rows;

use super::report::{Check, LeakHit, Status};

/// One row of the report.
pub(super) fn row(
    status: Status,
    check: &str,
    table: &str,
    column: Option<&str>,
    measured: Option<f64>,
    threshold: Option<f64>,
    detail: String,
) -> Check {
    Check {
        status,
        check: check.to_string(),
        table: table.to_string(),
        column: column.map(str::to_string),
        measured,
        threshold,
        detail,
        chart: None,
    }
}

/// The source columns a column's hits came from, for a message.
fn sources(ex: &[LeakHit]) -> String {
    ex.iter()
        .map(|h| h.source_column.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
        .join(", ")
}
