//! `date-shift`: dates moved by a keyed number of days, the same for one entity.

use super::{Build, OptionDoc, Options, Row, Spec, Transform};
use crate::anonymize::key::DomainKey;

pub static SPEC: Spec = Spec {
    name: "date-shift",
    summary: "Moves a date (`YYYY-MM-DD`, as COPY writes it) by a keyed number of days between −`days` and +`days`, never zero. With `by`, the shift is chosen by that column's source value (say `customer_id`), so every date of one entity moves together and their order and spacing hold; give the columns of related tables one `domain` and the same `by` values to move them alike. `infinity` and `-infinity` stay.",
    options: &[
        OptionDoc { name: "days", kind: "integer", default: "30", doc: "the largest shift, 1 to 3650" },
        OptionDoc { name: "by", kind: "string", default: "the value itself", doc: "a column of the same row whose source value picks the shift" },
    ],
    examples: &[
        super::Example { options: "", input: "1987-06-25", row: &[] },
        super::Example { options: "days = 365\nby = \"customer_id\"", input: "2006-02-14", row: &[("customer_id", "42")] },
        super::Example { options: "days = 365\nby = \"customer_id\"", input: "2006-02-15", row: &[("customer_id", "42")] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Date, super::Kind::Text]),
    build,
};

/// The shift machinery `date-shift` and `timestamp-shift` share.
pub struct Shift {
    key: DomainKey,
    days: i64,
    by: Option<usize>,
}

impl Shift {
    pub fn build(o: &mut Options, b: &Build<'_>) -> Result<Shift, String> {
        let days = o.int_in("days", 1..=3650)?.unwrap_or(30);
        let by = match o.string("by")? {
            Some(c) => Some(b.column_index(&c)?),
            None => None,
        };
        Ok(Shift {
            key: b.domain_key(),
            days,
            by,
        })
    }

    /// The number of days `value` (in `row`) moves.
    fn days_for(&self, value: &str, row: &dyn Row) -> i64 {
        let h = match self.by {
            Some(i) => self
                .key
                .hash_u64(row.original(i).unwrap_or_default().as_bytes()),
            None => self.key.hash_u64(value.as_bytes()),
        };
        let magnitude = (h >> 1) % self.days as u64 + 1;
        if h & 1 == 0 {
            magnitude as i64
        } else {
            -(magnitude as i64)
        }
    }

    /// `value` with its leading `YYYY-MM-DD` moved; the rest (a time, a zone) kept.
    pub fn apply(&self, value: &str, row: &dyn Row) -> Result<Option<String>, String> {
        let mut out = String::with_capacity(value.len() + 1);
        self.apply_into(value, row, &mut out)?;
        Ok(Some(out))
    }

    /// [`apply`](Self::apply), appended to `out`.
    pub fn apply_into(&self, value: &str, row: &dyn Row, out: &mut String) -> Result<(), String> {
        if value == "infinity" || value == "-infinity" {
            out.push_str(value);
            return Ok(());
        }
        let b = value.as_bytes();
        let bad = || format!("`{value}` is not a date written YYYY-MM-DD");
        // the first ten bytes ASCII digits and dashes, so slicing at 10 is on a boundary
        if b.len() < 10
            || b[4] != b'-'
            || b[7] != b'-'
            || !b[..10].iter().all(|c| c.is_ascii_digit() || *c == b'-')
        {
            return Err(bad());
        }
        // four or two ASCII digits, read as they stand; anything else as `parse` reads it
        let num = |r: std::ops::Range<usize>| match b[r.clone()].iter().try_fold(0i32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i32::from(c - b'0'))
        }) {
            Some(n) => Ok(n),
            None => value[r].parse::<i32>().map_err(|_| bad()),
        };
        let month = time::Month::try_from(num(5..7)? as u8).map_err(|_| bad())?;
        let date = time::Date::from_calendar_date(num(0..4)?, month, num(8..10)? as u8)
            .map_err(|_| bad())?;
        let moved = date
            .checked_add(time::Duration::days(self.days_for(value, row)))
            .ok_or_else(bad)?;
        let year = moved.year();
        if (0..=9999).contains(&year) {
            push_padded(out, year as u32, 4);
        } else {
            use std::fmt::Write as _;
            let _ = write!(out, "{year:04}");
        }
        out.push('-');
        push_padded(out, u32::from(u8::from(moved.month())), 2);
        out.push('-');
        push_padded(out, u32::from(moved.day()), 2);
        out.push_str(&value[10..]);
        Ok(())
    }
}

/// `n` in `width` decimal digits, zero-padded (`n` has at most `width` digits).
fn push_padded(out: &mut String, n: u32, width: u32) {
    for p in (0..width).rev() {
        out.push(char::from(b'0' + (n / 10u32.pow(p) % 10) as u8));
    }
}

impl Transform for Shift {
    fn pure(&self) -> bool {
        self.by.is_none()
    }

    fn apply(&self, value: &str, row: &dyn Row) -> Result<Option<String>, String> {
        Shift::apply(self, value, row)
    }

    fn apply_into(&self, value: &str, row: &dyn Row, out: &mut String) -> Result<bool, String> {
        Shift::apply_into(self, value, row, out).map(|()| true)
    }
}

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    Ok(Box::new(Shift::build(o, b)?))
}
