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

/// Where keys are written in a TOML text, from toml's own parse (so a key named in a
/// comment or inside a string is never taken for one): parsed once, asked for by the
/// span the deserializer gave a `Spanned` table.
pub struct KeySpans<'a>(Option<Spanned<toml::de::DeValue<'a>>>);

impl<'a> KeySpans<'a> {
    pub fn parse(text: &'a str) -> KeySpans<'a> {
        KeySpans(toml::de::DeTable::parse(text).ok().map(|root| {
            let span = root.span();
            Spanned::new(span, toml::de::DeValue::Table(root.into_inner()))
        }))
    }

    /// Where top-level `key` is written (a `[key]` header's name, or `key = …`).
    pub fn root_key(&self, key: &str) -> Option<Range<usize>> {
        match self.0.as_ref()?.get_ref() {
            toml::de::DeValue::Table(t) => t
                .iter()
                .find(|(k, _)| k.get_ref().as_ref() == key)
                .map(|(k, _)| k.span()),
            _ => None,
        }
    }

    /// Where `key` is written in the table (or inline table, or array-of-tables entry)
    /// whose value spans `table`; `None` when no such table holds it.
    pub fn key(&self, table: &Range<usize>, key: &str) -> Option<Range<usize>> {
        fn find(
            v: &Spanned<toml::de::DeValue<'_>>,
            table: &Range<usize>,
            key: &str,
        ) -> Option<Range<usize>> {
            match v.get_ref() {
                toml::de::DeValue::Table(t) => {
                    if v.span() == *table {
                        if let Some((k, _)) = t.iter().find(|(k, _)| k.get_ref().as_ref() == key) {
                            return Some(k.span());
                        }
                    }
                    t.values().find_map(|x| find(x, table, key))
                }
                toml::de::DeValue::Array(a) => a.iter().find_map(|x| find(x, table, key)),
                _ => None,
            }
        }
        find(self.0.as_ref()?, table, key)
    }
}
