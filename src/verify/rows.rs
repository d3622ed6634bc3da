//! A batch of COPY text cut into rows and fields for the scans: each field's raw bytes,
//! decoded only when its line holds a backslash, and its text taken without a second
//! UTF-8 check when the whole batch is valid.

use super::*;

/// A field's value: the raw bytes themselves when its line holds no backslash (`plain`:
/// no escape and no NULL), else decoded; `None` for NULL.
pub(super) fn field(raw: &[u8], plain: bool) -> Option<std::borrow::Cow<'_, [u8]>> {
    if plain {
        Some(std::borrow::Cow::Borrowed(raw))
    } else {
        copy::decode_field_cow(raw)
    }
}

/// The rows of a batch, split into fields in one pass over its bytes: tabs, line ends
/// and backslashes are found together, so a row's fields and whether it holds any
/// escape (or NULL) come at once. Each row ends in `\n`; a raw CR in COPY text is only
/// ever part of a CRLF, since COPY writes a CR in a value as `\r`.
pub(super) struct Rows<'a> {
    pub(super) batch: &'a [u8],
    pub(super) marks: memchr::Memchr3<'a>,
    pub(super) start: usize,
    /// The whole batch is valid UTF-8, so each field is (they are cut at ASCII bytes).
    pub(super) utf8: bool,
}

impl<'a> Rows<'a> {
    pub(super) fn new(batch: &'a [u8]) -> Rows<'a> {
        Rows {
            batch,
            marks: memchr::memchr3_iter(b'\t', b'\n', b'\\', batch),
            start: 0,
            utf8: std::str::from_utf8(batch).is_ok(),
        }
    }

    /// The next row's fields (still escaped) into `fields`: its line, and whether it
    /// is plain (no backslash).
    pub(super) fn next_row(&mut self, fields: &mut Vec<&'a [u8]>) -> Option<(&'a [u8], bool)> {
        let b = self.batch;
        fields.clear();
        let mut from = self.start;
        let mut plain = true;
        for at in self.marks.by_ref() {
            match b[at] {
                b'\t' => {
                    fields.push(&b[from..at]);
                    from = at + 1;
                }
                b'\\' => plain = false,
                _ => {
                    let line_start = self.start;
                    self.start = at + 1;
                    // a dump saved with CRLF line ends
                    let end = if at > from && b[at - 1] == b'\r' {
                        at - 1
                    } else {
                        at
                    };
                    if end == line_start {
                        // an empty line
                        fields.clear();
                        from = self.start;
                        plain = true;
                        continue;
                    }
                    fields.push(&b[from..end]);
                    return Some((&b[line_start..end], plain));
                }
            }
        }
        None
    }

    /// A field's value as text: as it lies when the batch is valid UTF-8 and the value
    /// needed no decoding.
    pub(super) fn text<'v>(&self, v: &'v std::borrow::Cow<'v, [u8]>) -> std::borrow::Cow<'v, str> {
        // bytea (`\x` and hex, as COPY writes it) is read as the text it holds, where it
        // holds text: an e-mail in a kept vCard is an e-mail (issue 14)
        if let Some(text) = v.strip_prefix(b"\\x").and_then(detect::bytea_text) {
            return std::borrow::Cow::Owned(text);
        }
        match v {
            std::borrow::Cow::Borrowed(raw) if self.holds_whole_chars(raw) => {
                // SAFETY: `raw` lies inside the batch, which is valid UTF-8, and starts and
                // ends on character boundaries (holds_whole_chars checked both), so it is
                // valid UTF-8 itself
                std::borrow::Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(raw) })
            }
            _ => String::from_utf8_lossy(v),
        }
    }

    /// Whether `raw` is a piece of this batch, the batch is valid UTF-8, and the piece
    /// starts and ends on character boundaries: then it is valid UTF-8 without a scan.
    /// Anything else (a slice from another batch, or cut inside a character) is decoded
    /// with a check instead.
    pub(super) fn holds_whole_chars(&self, raw: &[u8]) -> bool {
        let Some(start) = (raw.as_ptr() as usize).checked_sub(self.batch.as_ptr() as usize) else {
            return false;
        };
        let end = start + raw.len();
        // a byte that does not continue a character starts one (as str::is_char_boundary)
        let boundary = |i: usize| i == self.batch.len() || (self.batch[i] as i8) >= -0x40;
        self.utf8 && end <= self.batch.len() && boundary(start) && boundary(end)
    }
}

/// `s` case-folded, into `buf` when it has anything to fold.
pub(super) fn lower<'a>(s: &'a str, buf: &'a mut String) -> &'a str {
    // every byte looked at (no early exit), which the compiler turns into wide compares
    let foldable = s.bytes().fold(false, |any, b| {
        any | (b.wrapping_sub(b'A') < 26) | (b >= 0x80)
    });
    if foldable {
        buf.clear();
        if s.is_ascii() {
            buf.push_str(s);
            buf.make_ascii_lowercase();
        } else {
            buf.push_str(&s.to_lowercase());
        }
        buf
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_split_with_their_escapes_noticed_crlf_and_empty_lines_dropped() {
        let batch = "1\tana\tx\n\n2\t\\N\tb\\tc\r\n3\t\t\r\n\r\n4\tMaría\n".as_bytes();
        let mut rows = Rows::new(batch);
        assert!(rows.utf8);
        let mut fields = Vec::new();
        let mut got = Vec::new();
        while let Some((line, plain)) = rows.next_row(&mut fields) {
            let f: Vec<String> = fields
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            got.push((String::from_utf8_lossy(line).into_owned(), plain, f));
        }
        let row = |line: &str, plain: bool, f: &[&str]| {
            (
                line.to_string(),
                plain,
                f.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            got,
            [
                row("1\tana\tx", true, &["1", "ana", "x"]),
                row("2\t\\N\tb\\tc", false, &["2", "\\N", "b\\tc"]),
                row("3\t\t", true, &["3", "", ""]),
                row("4\tMaría", true, &["4", "María"]),
            ]
        );
        // a field of a valid batch is its own text; a batch that is not is read lossily
        let v = std::borrow::Cow::Borrowed("María".as_bytes());
        assert_eq!(rows.text(&v), "María");
        let bad = Rows::new(b"1\t\xff\n");
        assert!(!bad.utf8);
        let v = std::borrow::Cow::Borrowed(&b"\xff"[..]);
        assert_eq!(bad.text(&v), "\u{fffd}");
    }

    #[test]
    fn text_decodes_with_a_check_what_is_not_a_whole_piece_of_a_utf8_batch() {
        let batch = "María\tx\n".as_bytes();
        let rows = Rows::new(batch);
        // a piece of the batch cut inside the "í": not taken as text unchecked
        let cut = std::borrow::Cow::Borrowed(&batch[0..4]);
        assert_eq!(rows.text(&cut), "Mar\u{fffd}");
        // a slice from elsewhere, not valid UTF-8
        let elsewhere = [0xffu8, b'a'];
        let other = std::borrow::Cow::Borrowed(&elsewhere[..]);
        assert_eq!(rows.text(&other), "\u{fffd}a");
        let whole = std::borrow::Cow::Borrowed(&batch[0..6]);
        assert_eq!(rows.text(&whole), "María");
    }
}
