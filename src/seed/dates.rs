//! Dates and times as the generator writes and reads them: day counts since 1970 in the
//! proleptic Gregorian calendar, formatted without allocating per value.

/// Appends `n` in decimal, zero-padded to `width`.
#[inline]
pub(crate) fn push_padded(out: &mut String, n: u64, width: usize) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(n);
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(digits);
}

/// Appends `n` (below 100) as exactly two digits.
#[inline]
pub(crate) fn push_2(out: &mut String, n: u32) {
    out.push(char::from(b'0' + (n / 10 % 10) as u8));
    out.push(char::from(b'0' + (n % 10) as u8));
}

pub(crate) const UNIX_EPOCH_JULIAN: i32 = 2_440_588;

/// (year, month, day) of a day count since 1970-01-01, in the proleptic Gregorian
/// calendar (H. Hinnant's `civil_from_days`); checked against the `time` crate in tests.
#[inline]
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[inline]
pub(crate) fn push_date(out: &mut String, days: i64) {
    let (y, m, d) = civil_from_days(days);
    push_padded(out, y.max(0) as u64, 4);
    out.push('-');
    push_2(out, m);
    out.push('-');
    push_2(out, d);
}

/// Days since 1970-01-01 as `YYYY-MM-DD`.
#[inline]
pub fn format_date(days: i64) -> String {
    let mut s = String::with_capacity(10);
    push_date(&mut s, days);
    s
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS+00` (UTC, as COPY reads timestamptz).
#[inline]
pub fn format_timestamp(secs: i64) -> String {
    let mut s = String::with_capacity(22);
    push_timestamp(&mut s, secs);
    s
}

#[inline]
pub(crate) fn push_timestamp(s: &mut String, secs: i64) {
    push_date(s, secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400) as u64;
    s.push(' ');
    push_2(s, (rem / 3600) as u32);
    s.push(':');
    push_2(s, (rem % 3600 / 60) as u32);
    s.push(':');
    push_2(s, (rem % 60) as u32);
    s.push_str("+00");
}

/// Reads back a date or timestamp this module wrote, as seconds since the epoch.
#[inline]
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let date = time::Date::from_calendar_date(
        num(0..4)? as i32,
        time::Month::try_from(num(5..7)? as u8).ok()?,
        num(8..10)? as u8,
    )
    .ok()?;
    let days = i64::from(date.to_julian_day() - UNIX_EPOCH_JULIAN);
    let mut secs = days * 86_400;
    if b.len() >= 19 && (b[10] == b' ' || b[10] == b'T') {
        secs += num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?;
    }
    Some(secs)
}
