//! The profile file as TOML gives it (serde shapes, spans kept), before any name is
//! resolved; and positions in its text.

use super::*;

// ---------------------------------------------------------------------------------------
// The raw TOML shape

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) profile: RawMeta,
    #[serde(default)]
    pub(super) lists: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub(super) entity: Vec<RawEntity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMeta {
    pub(super) name: String,
    #[serde(default)]
    pub(super) description: String,
    pub(super) migrations: Option<Spanned<String>>,
    pub(super) anchor: Spanned<String>,
    #[serde(default = "default_locale")]
    pub(super) locale: Spanned<String>,
    #[serde(default = "default_seed")]
    pub(super) seed: u64,
}

pub(super) fn default_locale() -> Spanned<String> {
    Spanned::new(0..0, "en".to_string())
}

pub(super) fn default_seed() -> u64 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEntity {
    pub(super) name: Spanned<String>,
    pub(super) table: Option<String>,
    #[serde(default = "default_id")]
    pub(super) id: String,
    pub(super) key: Option<Spanned<String>>,
    pub(super) count: u64,
    #[serde(default)]
    pub(super) scale: f64,
    pub(super) columns: toml::Spanned<toml::Table>,
    #[serde(default)]
    pub(super) rows: Vec<Spanned<toml::Table>>,
}

pub(super) fn default_id() -> String {
    "id".into()
}

pub(super) fn parse_raw(text: &str, file: &str) -> Result<RawFile, ProfileError> {
    toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        ProfileError::Invalid {
            file: file.to_string(),
            line,
            col,
            message: e.message().trim().to_string(),
        }
    })
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// The offset of `key` written as a TOML key (`key =`, `"key" =`) in `hay`: not part of
/// a longer name. Configs use it to place messages about a key inside a table.
pub fn find_key(hay: &str, key: &str) -> Option<usize> {
    let mut search_from = 0;
    while let Some(pos) = hay[search_from..].find(key) {
        let at = search_from + pos;
        let before_ok = at == 0
            || !hay.as_bytes()[at - 1].is_ascii_alphanumeric() && hay.as_bytes()[at - 1] != b'_';
        let after = hay[at + key.len()..].trim_start_matches([' ', '"']);
        if before_ok && after.starts_with('=') && !in_comment(hay, at) {
            return Some(at);
        }
        search_from = at + key.len();
    }
    None
}

/// Whether byte `at` of `text` lies in a `#` comment: a `#` earlier on its line, outside
/// a quoted string.
pub(super) fn in_comment(text: &str, at: usize) -> bool {
    let line = &text[text[..at].rfind('\n').map_or(0, |i| i + 1)..at];
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (None, '#') => return true,
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
    }
    false
}
