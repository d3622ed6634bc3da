//! Leaks (a source value found in the output, in its own row) and coincidences (another
//! row's source value, drawn by chance), per column of the output.

use super::{row, sources};
use crate::verify::report::{Check, Status};
use crate::verify::settings::Settings;
use crate::verify::{OutputRead, Settled, HIT_RECORDS};

/// A failed check per column where a source value survived.
pub(in crate::verify) fn leaks(checks: &mut Vec<Check>, settled: &Settled) {
    for ((table, column), (n, ex)) in &settled.leaks {
        checks.push(row(
            Status::Fail,
            "leak",
            table,
            Some(column),
            Some(*n as f64),
            Some(0.0),
            match ex.first() {
                Some(first) => format!(
                    "{n} value(s) of the source found here (from {}), e.g. row {}",
                    sources(ex),
                    first.row
                ),
                None => format!(
                "{n} value(s) of the source found here, past the {HIT_RECORDS} hits a run settles"
            ),
            },
        ));
    }
}

/// The one passing row when no column leaked.
pub(in crate::verify) fn none_found(
    checks: &mut Vec<Check>,
    settled: &Settled,
    output: &OutputRead,
) {
    if settled.leaks.is_empty() {
        checks.push(row(
            Status::Pass,
            "leak",
            "(all tables)",
            None,
            Some(0.0),
            Some(0.0),
            format!("no source value in {} output cells", output.cells),
        ));
    }
}

/// New values that equal other rows' source values, held to `coincidence_rate`.
pub(in crate::verify) fn coincidences(
    checks: &mut Vec<Check>,
    settled: &Settled,
    output: &OutputRead,
    settings: &Settings,
) {
    // new values that equal other rows' source values
    for ((table, column), (n, ex)) in &settled.coincidences {
        let rows = output.tables.get(table).map_or(0, |t| t.rows).max(1);
        let th = settings.for_column(&format!("{table}.{column}"));
        let rate = *n as f64 / rows as f64;
        checks.push(row(
        Status::of(rate, th.coincidence_rate),
        "coincidence",
        table,
        Some(column),
        Some(rate),
        Some(th.coincidence_rate),
        format!(
            "{n} of {rows} row(s) got a new value that is another row's source value (of {}), e.g. row {}: chance, for a generator with few values to draw from; none is the value its own row had",
            sources(ex),
            ex.first().map_or("", |h| h.row.as_str())
        ),
    ));
    }
}
