//! Where in the config a server error about its SQL belongs: a position inside a
//! `where` string becomes its line and column.

use crate::anonymize::config::Config;
use crate::pg;

/// Where in `condition` the server's error `e` points, as a character index: the
/// statement is `head`, `(`, the condition, then the rest.
pub(super) fn position(e: &tokio_postgres::Error, head: &str, condition: &str) -> Option<usize> {
    e.as_db_error()
        .and_then(|d| match d.position() {
            Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p as usize),
            _ => None,
        })
        // 1-based, and the condition follows the head's `(`
        .and_then(|p| p.checked_sub(head.chars().count() + 2))
        .filter(|&i| i < condition.chars().count())
}

/// An error of the server about a `where` the config gives (in `span`, a quoted
/// string), placed at the character it points to (exact for a condition without
/// escapes), or at the string.
pub(super) fn placed(
    config: &Config,
    span: &std::ops::Range<usize>,
    what: &str,
    head: &str,
    condition: &str,
    e: tokio_postgres::Error,
) -> anyhow::Error {
    let offset = position(&e, head, condition);
    let at = span.start
        + 1
        + offset.map_or(0, |i| {
            condition
                .char_indices()
                .nth(i)
                .map_or(condition.len(), |(b, _)| b)
        });
    anyhow::Error::new(config.err(
        at..at,
        format!(
            "{what}: the server rejects {condition:?}{}: {}",
            offset.map_or(String::new(), |i| format!(" at character {}", i + 1)),
            pg::describe(&e)
        ),
    ))
}

/// An error of the server about a target's statement: placed in its `where` when it
/// points there, else at the target, quoting what it was given.
pub(super) fn rejected(
    config: &Config,
    target: &super::config::Target,
    head: &str,
    e: tokio_postgres::Error,
) -> anyhow::Error {
    let what = format!("subset target {}", target.table);
    let condition = target.filter.as_deref().unwrap_or("true");
    if let Some(span) = &target.filter_span {
        if !head.is_empty() && position(&e, head, condition).is_some() {
            return placed(config, span, &what, head, condition, e);
        }
    }
    let mut given = Vec::new();
    if let Some(f) = &target.filter {
        given.push(format!("where = {f:?}"));
    }
    if let Some(o) = &target.order {
        given.push(format!("order = {o:?}"));
    }
    anyhow::Error::new(config.err(
        target.span.clone(),
        format!(
            "{what}: the server rejects it{}: {}",
            if given.is_empty() {
                String::new()
            } else {
                format!(" ({})", given.join(", "))
            },
            pg::describe(&e)
        ),
    ))
}
