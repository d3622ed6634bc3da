//! A migration's own transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`, `SET TRANSACTION`,
//! savepoints), read so that the runner applies it as psql would and says honestly what
//! stayed applied.
//!
//! Three shapes:
//! - none: the runner wraps the migration and its history row in one transaction;
//! - wrapped: the whole file is one `BEGIN … COMMIT` (savepoints inside allowed), the
//!   author's intent being exactly that transaction: the runner keeps it atomic, opening
//!   it with the file's own `BEGIN` (its isolation level) and `SET TRANSACTION` statements
//!   and adding the history row inside;
//! - own: anything else (`BEGIN; …; COMMIT; …`, a `ROLLBACK`, a `COMMIT` in the middle):
//!   run statement by statement in the file's own transactions, as psql does; what was
//!   committed before a failure is named.

use super::lint::Statement;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `BEGIN`, `START TRANSACTION`
    Begin,
    /// `COMMIT`, `END`, `COMMIT AND CHAIN`
    Commit,
    /// `ROLLBACK`, `ABORT` (not `ROLLBACK TO SAVEPOINT`)
    Rollback,
    /// `SAVEPOINT`, `RELEASE`, `ROLLBACK TO`
    Savepoint,
    /// `SET TRANSACTION …`, `SET SESSION CHARACTERISTICS AS TRANSACTION …`
    SetTransaction,
    /// `PREPARE TRANSACTION`, `COMMIT PREPARED`, `ROLLBACK PREPARED`: two-phase commit
    TwoPhase,
    Other,
}

/// What kind of transaction control `st` is, by its words.
pub fn kind(st: &Statement) -> Kind {
    let mut words = st
        .text
        .split_ascii_whitespace()
        .map(|w| w.trim_end_matches(';').to_ascii_uppercase());
    let first = words.next().unwrap_or_default();
    let second = words.next().unwrap_or_default();
    match (first.as_str(), second.as_str()) {
        ("BEGIN", _) | ("START", "TRANSACTION") => Kind::Begin,
        ("COMMIT", "PREPARED") | ("ROLLBACK", "PREPARED") | ("PREPARE", "TRANSACTION") => {
            Kind::TwoPhase
        }
        ("COMMIT", _) | ("END", _) => Kind::Commit,
        ("ROLLBACK", "TO") | ("SAVEPOINT", _) | ("RELEASE", _) => Kind::Savepoint,
        ("ROLLBACK", _) | ("ABORT", _) => Kind::Rollback,
        ("SET", "TRANSACTION") => Kind::SetTransaction,
        ("SET", "SESSION") if st.text.to_ascii_uppercase().contains("CHARACTERISTICS") => {
            Kind::SetTransaction
        }
        _ => Kind::Other,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    None,
    /// One `BEGIN … COMMIT` around everything: `opening` are the file's `BEGIN` and the
    /// `SET TRANSACTION` statements right after it, `body` the statements between.
    Wrapped {
        opening: Vec<usize>,
        body: Vec<usize>,
    },
    Own,
}

pub fn shape(statements: &[Statement]) -> Shape {
    let kinds: Vec<Kind> = statements.iter().map(kind).collect();
    if kinds.iter().all(|k| *k == Kind::Other) {
        return Shape::None;
    }
    let n = kinds.len();
    if n >= 2 && kinds[0] == Kind::Begin && kinds[n - 1] == Kind::Commit {
        let sets = kinds[1..n - 1]
            .iter()
            .take_while(|k| **k == Kind::SetTransaction)
            .count();
        let inner = &kinds[1 + sets..n - 1];
        if inner
            .iter()
            .all(|k| matches!(k, Kind::Other | Kind::Savepoint))
        {
            return Shape::Wrapped {
                opening: (0..=sets).collect(),
                body: (1 + sets..n - 1).collect(),
            };
        }
    }
    Shape::Own
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_of(sql: &str) -> Shape {
        shape(&super::super::lint::statements::split(sql).unwrap())
    }

    #[test]
    fn the_three_shapes() {
        assert_eq!(
            shape_of("CREATE TABLE a (id int); CREATE TABLE b (id int);"),
            Shape::None
        );
        assert_eq!(
            shape_of(
                "BEGIN; SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; CREATE TABLE a (id int); \
                 SAVEPOINT s; CREATE TABLE b (id int); RELEASE s; COMMIT;"
            ),
            Shape::Wrapped {
                opening: vec![0, 1],
                body: vec![2, 3, 4, 5]
            }
        );
        assert_eq!(
            shape_of("begin; create table a (id int); end;"),
            Shape::Wrapped {
                opening: vec![0],
                body: vec![1]
            }
        );
        for own in [
            "BEGIN; CREATE TABLE a (id int); COMMIT; CREATE TABLE b (id int); SELECT 1/0;",
            "CREATE TABLE a (id int); COMMIT;",
            "BEGIN; CREATE TABLE a (id int); ROLLBACK;",
            "BEGIN; CREATE TABLE a (id int); COMMIT; BEGIN; CREATE TABLE b (id int); COMMIT;",
            "BEGIN; CREATE TABLE a (id int); PREPARE TRANSACTION 'x';",
        ] {
            assert_eq!(shape_of(own), Shape::Own, "{own}");
        }
    }
}
