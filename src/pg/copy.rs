//! The COPY text format codec: the bytes PostgreSQL itself speaks for `COPY … FROM STDIN`
//! and `COPY … TO STDOUT` (tab-separated, `\N` for NULL, backslash escapes).
//!
//! Rows travel through dataforge in this form, so loaders never build SQL per row and a
//! field that nothing touches is never decoded.

use bytes::BufMut;

/// Appends one field to `buf` in COPY text form: NULL as `\N`; backslash, tab, newline
/// and carriage return escaped.
pub fn put_field(buf: &mut impl BufMut, value: Option<&str>) {
    let Some(v) = value else {
        buf.put_slice(b"\\N");
        return;
    };
    let bytes = v.as_bytes();
    // most fields hold nothing to escape: told without a branch a byte, written at once
    if !any_word(bytes, |x| below(x, 0x20) | holds(x, b'\\')) {
        buf.put_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        buf.put_slice(&bytes[start..i]);
        buf.put_slice(esc);
        start = i + 1;
    }
    buf.put_slice(&bytes[start..]);
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes of `x` is below `n` (`n` at most 128).
fn below(x: u64, n: u8) -> bool {
    x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS != 0
}

/// Whether any of the eight bytes of `x` is `b`.
fn holds(x: u64, b: u8) -> bool {
    let y = x ^ (ONES * u64::from(b));
    y.wrapping_sub(ONES) & !y & HIGHS != 0
}

/// Whether `test` finds something in any eight-byte word of `bytes`, the last one padded
/// with `a`s: a field is searched a word at a time, without memchr's set-up cost, which
/// outweighs the search in fields of a few bytes (most of them).
fn any_word(bytes: &[u8], test: impl Fn(u64) -> bool) -> bool {
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        if test(u64::from_le_bytes(w.try_into().expect("eight bytes"))) {
            return true;
        }
    }
    let rest = words.remainder();
    let mut last = [b'a'; 8];
    last[..rest.len()].copy_from_slice(rest);
    test(u64::from_le_bytes(last))
}

/// Appends a whole row (fields joined by tabs, ended by a newline).
pub fn put_row<'a>(buf: &mut impl BufMut, fields: impl IntoIterator<Item = Option<&'a str>>) {
    let mut first = true;
    for f in fields {
        if !first {
            buf.put_u8(b'\t');
        }
        first = false;
        put_field(buf, f);
    }
    buf.put_u8(b'\n');
}

/// Decodes one COPY text field (without its separators). `\N` alone is NULL.
/// Returns `None` for NULL. Octal (`\123`) and hex (`\x41`) escapes are honoured, as the
/// server accepts them.
pub fn decode_field(raw: &[u8]) -> Option<Vec<u8>> {
    if raw == b"\\N" {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' || i + 1 == raw.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let n = raw[i + 1];
        i += 2;
        match n {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = (n - b'0') as u32;
                let mut k = 0;
                while k < 2 && i < raw.len() && (b'0'..=b'7').contains(&raw[i]) {
                    v = v * 8 + (raw[i] - b'0') as u32;
                    i += 1;
                    k += 1;
                }
                out.push(v as u8);
            }
            b'x' if i < raw.len() && raw[i].is_ascii_hexdigit() => {
                let mut v = 0u32;
                let mut k = 0;
                while k < 2 && i < raw.len() && raw[i].is_ascii_hexdigit() {
                    v = v * 16 + (raw[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    k += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// [`decode_field`] without a copy when the field holds no escape (most do).
pub fn decode_field_cow(raw: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    if !any_word(raw, |x| holds(x, b'\\')) {
        return Some(std::borrow::Cow::Borrowed(raw));
    }
    decode_field(raw).map(std::borrow::Cow::Owned)
}

/// Splits one COPY text line (without its newline) into raw fields.
pub fn split_fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    field_bounds(line).map(move |(start, end)| &line[start..end])
}

/// Where each field of a COPY text row is: `(start, end)` byte offsets, in order. The
/// one row splitter; [`split_fields`] gives the fields themselves.
#[inline]
pub fn field_bounds(line: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut start = 0;
    memchr::memchr_iter(b'\t', line)
        .chain(std::iter::once(line.len()))
        .map(move |end| {
            let bounds = (start, end);
            start = end + 1;
            bounds
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use proptest::prelude::*;

    #[test]
    fn null_and_escapes() {
        let mut b = BytesMut::new();
        put_row(&mut b, [Some("a\tb"), None, Some("c\\d\ne"), Some("")]);
        assert_eq!(&b[..], b"a\\tb\t\\N\tc\\\\d\\ne\t\n");
    }

    #[test]
    fn octal_and_hex_escapes_decode() {
        assert_eq!(decode_field(b"\\101\\x42c").unwrap(), b"ABc");
        assert_eq!(decode_field(b"\\N"), None);
        assert_eq!(decode_field(b"\\\\N").unwrap(), b"\\N");
    }

    proptest! {
        /// Any bytes decode or are NULL, never a panic, and split into fields.
        #[test]
        fn any_field_bytes_decode(v in proptest::collection::vec(any::<u8>(), 0..60)) {
            let _ = decode_field(&v);
            let _ = decode_field_cow(&v);
            prop_assert_eq!(split_fields(&v).count(), v.iter().filter(|&&b| b == b'\t').count() + 1);
        }

        /// The word-at-a-time search finds exactly what a byte loop finds.
        #[test]
        fn word_search_matches_a_byte_loop(v in proptest::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(
                any_word(&v, |x| below(x, 0x20) | holds(x, b'\\')),
                v.iter().any(|&b| b < 0x20 || b == b'\\')
            );
            prop_assert_eq!(any_word(&v, |x| holds(x, b'\\')), v.contains(&b'\\'));
        }

        #[test]
        fn decode_inverts_encode(s in "\\PC*|[\\\\\t\r\n a-z]*") {
            let mut b = BytesMut::new();
            put_field(&mut b, Some(&s));
            prop_assert!(!b.contains(&b'\t') && !b.contains(&b'\n'));
            prop_assert_eq!(decode_field(&b).unwrap(), s.as_bytes().to_vec());
        }
    }
}
