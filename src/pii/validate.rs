//! The check digits that make a value a real card number, IBAN or Romanian CNP: what the
//! transformers compute for the values they write, and what init's suggestions and
//! verify's detectors test, from one definition.

/// Whether `digits` passes the Luhn check.
pub fn luhn_valid(digits: &str) -> bool {
    luhn_sum(digits, false).is_multiple_of(10)
}

/// The Luhn sum; `pending` when a check digit is still to be appended.
pub fn luhn_sum(digits: &str, pending: bool) -> u32 {
    digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            let double = if pending { i % 2 == 0 } else { i % 2 == 1 };
            if double {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum()
}

const WEIGHTS: [u32; 12] = [2, 7, 9, 1, 4, 6, 3, 5, 8, 2, 7, 9];

/// The CNP check digit of the first 12 digits.
pub fn cnp_check(first12: &str) -> u32 {
    let sum: u32 = first12
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    match sum % 11 {
        10 => 1,
        r => r,
    }
}

/// Whether `s` is a CNP with a valid check digit.
pub fn cnp_valid(s: &str) -> bool {
    s.len() == 13
        && s.bytes().all(|b| b.is_ascii_digit())
        && cnp_check(&s[..12]) == u32::from(s.as_bytes()[12] - b'0')
}

/// The IBAN remainder mod 97 of `compact` (country, check digits, account).
pub fn mod97(compact: &str) -> Option<u32> {
    if compact.len() < 5 || !compact.is_ascii() {
        return None;
    }
    let rearranged = compact[4..].chars().chain(compact[..4].chars());
    let mut r: u32 = 0;
    for c in rearranged {
        let v = c.to_digit(36)?;
        r = if v >= 10 {
            (r * 100 + v) % 97
        } else {
            (r * 10 + v) % 97
        };
    }
    Some(r)
}
