//! `anonymize.toml`: for every table, what happens to it, and for every column, its
//! transformer. Errors point at `file:line:col`.
//!
//! ```toml
//! [key]
//! env = "DATAFORGE_KEY"            # or: file = "/run/secrets/anonymize-key"
//!
//! [tables.customer]                # a table of the public schema; "sales.orders" elsewhere
//! columns.customer_id = "keep"
//! columns.email = { transformer = "email", domain = "customer-email" }
//!
//! [tables.audit_log]
//! where = "created_at > now() - interval '90 days'"   # only these rows (live sources)
//! columns.id = "keep"
//!
//! [tables.payment_log]
//! action = "truncate"              # schema only; or "skip" (left out entirely)
//!
//! [large_objects]                  # required when the source holds any
//! action = "empty"                 # or "drop", or "keep" with reason = "…"
//!
//! [comments]
//! action = "drop"                  # COMMENT ON text left out; "keep" is the default
//!
//! [grants]
//! action = "drop"                  # GRANT/REVOKE left out; "keep" is the default (grants
//!                                  # to roles the target lacks are then noted, not failed)
//!
//! [materialized_views]
//! refresh = false                  # left unpopulated; by default each one the source
//!                                  # has populated is refreshed over the copy's rows
//! ```

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::comments::CommentAction;
use super::key::{Key, KeyError, DEFAULT_KEY_VAR};
use super::large_objects::LoAction;
use super::transformers;

/// What happens to a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Rows copied through the column transformers.
    Anonymize,
    /// Schema only, no rows.
    Truncate,
    /// Left out: neither schema nor rows.
    Skip,
}

/// One column's entry.
#[derive(Debug, Clone)]
pub struct ColumnConfig {
    pub transformer: String,
    /// The PRF domain; the transformer's name when not given.
    pub domain: String,
    pub options: toml::Table,
    /// Where the entry is, for messages.
    pub span: Range<usize>,
}

#[derive(Debug, Clone)]
pub struct TableConfig {
    pub action: Action,
    /// `where = "…"`: only rows matching this SQL condition are copied (live sources).
    pub filter: Option<Spanned<String>>,
    pub columns: BTreeMap<String, ColumnConfig>,
    pub span: Range<usize>,
}

/// Where the key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Env(String),
    File(String),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub file: String,
    pub text: String,
    pub key: KeySource,
    /// By qualified name (`public.customer`).
    pub tables: BTreeMap<String, TableConfig>,
    pub large_objects: Option<LargeObjectsConfig>,
    /// `[comments] action`: what happens to `COMMENT ON` text (keep unless said).
    pub comments: CommentAction,
    /// `[materialized_views] refresh`: whether the materialized views the source has
    /// populated are populated in the copy (by default they are).
    pub refresh_matviews: bool,
    /// `[grants] action`: whether the source's GRANT and REVOKE statements are copied
    /// (keep, the default) or left out (drop).
    pub keep_grants: bool,
    /// `[subset]`: a slice of a live source instead of all of it.
    pub subset: Option<crate::subset::config::Subset>,
}

/// A config the user must fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The message names the I/O error itself, so it is not also a source (anyhow would
    /// print it twice).
    #[error("cannot read the anonymization config {file}: {error}{hint}")]
    Read {
        file: String,
        error: std::io::Error,
        hint: &'static str,
    },
    #[error("{file}:{line}:{col}: {message}")]
    Invalid {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    key: Option<RawKey>,
    #[serde(default)]
    tables: BTreeMap<String, Spanned<RawTable>>,
    /// Read by `verify`.
    #[serde(default)]
    #[allow(dead_code)]
    verify: Option<toml::Value>,
    large_objects: Option<Spanned<RawLargeObjects>>,
    comments: Option<Spanned<RawAction>>,
    materialized_views: Option<RawMaterializedViews>,
    grants: Option<RawAction>,
    subset: Option<Spanned<crate::subset::config::RawSubset>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaterializedViews {
    refresh: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    action: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLargeObjects {
    action: Option<Spanned<String>>,
    reason: Option<String>,
}

/// `[large_objects]`: what happens to the source's large objects (fail closed: a source
/// holding any needs this section).
#[derive(Debug, Clone)]
pub struct LargeObjectsConfig {
    pub action: LoAction,
    /// Why they are kept as they are (required with `keep`).
    pub reason: Option<String>,
    pub span: Range<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    env: Option<String>,
    file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    action: Option<Spanned<String>>,
    /// A row filter (an SQL condition), applied when reading a live database.
    #[serde(rename = "where")]
    filter: Option<Spanned<String>>,
    #[serde(default)]
    columns: BTreeMap<String, Spanned<toml::Value>>,
}

/// `name` as `schema.table`, unquoted: `customer` → `public.customer`,
/// `public."Order"` → `public.Order`.
pub fn qualified(name: &str) -> String {
    let parts = split_qualified(name);
    match parts.as_slice() {
        [table] => format!("public.{table}"),
        [schema, table] => format!("{schema}.{table}"),
        _ => name.to_string(),
    }
}

/// Splits a possibly quoted, possibly qualified name on its dots.
pub fn split_qualified(name: &str) -> Vec<String> {
    split_quoted(name, '.')
}

/// Splits `s` on `sep` outside double quotes, unquoting (`""` inside quotes is `"`).
pub fn split_quoted(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == sep && !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

impl Config {
    pub fn load(path: &str) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            file: path.to_string(),
            hint: if error.kind() == std::io::ErrorKind::NotFound {
                "; `dataforge anonymize init --from SRC > anonymize.toml` writes one to review"
            } else {
                ""
            },
            error,
        })?;
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (line, col) = e
                .span()
                .map(|s| crate::seed::profile::line_col(text, s.start))
                .unwrap_or((1, 1));
            ConfigError::Invalid {
                file: file.to_string(),
                line,
                col,
                message: e.message().trim().to_string(),
            }
        })?;
        let mut cfg = Config {
            file: file.to_string(),
            text: text.to_string(),
            key: KeySource::Env(DEFAULT_KEY_VAR.to_string()),
            tables: BTreeMap::new(),
            large_objects: None,
            comments: CommentAction::Keep,
            refresh_matviews: raw.materialized_views.as_ref().is_none_or(|m| m.refresh),
            keep_grants: true,
            subset: None,
        };
        if let Some(g) = raw.grants {
            cfg.keep_grants = match g.action.get_ref().as_str() {
                "keep" => true,
                "drop" => false,
                other => {
                    return Err(cfg.err(
                        g.action.span(),
                        format!("unknown grants action `{other}`; use keep or drop"),
                    ))
                }
            };
        }
        if let Some(c) = raw.comments {
            let action = c.into_inner().action;
            cfg.comments = CommentAction::parse(action.get_ref()).ok_or_else(|| {
                cfg.err(
                    action.span(),
                    format!(
                        "unknown comments action `{}`; use keep or drop",
                        action.get_ref()
                    ),
                )
            })?;
        }
        if let Some(lo) = raw.large_objects {
            let span = lo.span();
            let lo = lo.into_inner();
            let Some(action) = lo.action else {
                return Err(cfg.err(
                    span,
                    "[large_objects] needs `action = \"empty\"` (each object kept, with no \
                     content), \"drop\" (none in the copy) or \"keep\" (with a `reason`)",
                ));
            };
            let Some(a) = LoAction::parse(action.get_ref()) else {
                return Err(cfg.err(
                    action.span(),
                    format!(
                        "unknown large-object action `{}`; use empty, drop or keep",
                        action.get_ref()
                    ),
                ));
            };
            if a == LoAction::Keep && lo.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(cfg.err(
                    action.span(),
                    "[large_objects] action = \"keep\" copies every object as it is: say why \
                     with `reason = \"…\"` (for instance \"product images, no personal data\"), \
                     or use \"empty\"",
                ));
            }
            cfg.large_objects = Some(LargeObjectsConfig {
                action: a,
                reason: lo.reason,
                span,
            });
        }
        if let Some(s) = raw.subset {
            cfg.subset = Some(crate::subset::config::Subset::parse(&cfg, s)?);
        }
        if let Some(k) = raw.key {
            cfg.key = match (k.env, k.file) {
                (Some(_), Some(_)) => {
                    return Err(cfg.err(
                        cfg.root_key("key"),
                        "[key] names both `env` and `file`; choose one",
                    ))
                }
                (Some(v), None) => KeySource::Env(v),
                (None, Some(f)) => KeySource::File(f),
                (None, None) => KeySource::Env(DEFAULT_KEY_VAR.to_string()),
            };
        }
        for (name, table) in raw.tables {
            let span = table.span();
            let table = table.into_inner();
            let action = match table.action.as_ref().map(|a| a.get_ref().as_str()) {
                None | Some("anonymize") => Action::Anonymize,
                Some("truncate") => Action::Truncate,
                Some("skip") => Action::Skip,
                Some(other) => {
                    let at = table.action.as_ref().map_or(span.clone(), |a| a.span());
                    return Err(cfg.err(
                        at,
                        format!("unknown action `{other}` for table {name}; use anonymize, truncate or skip"),
                    ));
                }
            };
            let mut columns = BTreeMap::new();
            for (column, value) in table.columns {
                let vspan = value.span();
                let (transformer, mut options) = match value.into_inner() {
                    toml::Value::String(s) => (s, toml::Table::new()),
                    toml::Value::Table(mut t) => match t.remove("transformer") {
                        Some(toml::Value::String(s)) => (s, t),
                        _ => {
                            return Err(cfg.err(
                                vspan,
                                format!("column {name}.{column}: an inline table needs `transformer = \"…\"`"),
                            ))
                        }
                    },
                    other => {
                        return Err(cfg.err(
                            vspan,
                            format!(
                                "column {name}.{column}: expected a transformer name or an inline table, found {}",
                                other.type_str()
                            ),
                        ))
                    }
                };
                if transformers::find(&transformer).is_none() {
                    return Err(cfg.err(
                        vspan,
                        format!(
                            "column {name}.{column}: {}",
                            transformers::unknown(&transformer)
                        ),
                    ));
                }
                let domain = match options.remove("domain") {
                    None => transformer.clone(),
                    Some(toml::Value::String(d)) => d,
                    Some(other) => {
                        return Err(cfg.err(
                            cfg.key_in(&vspan, "domain"),
                            format!(
                                "column {name}.{column}: `domain` must be a string, found {}",
                                other.type_str()
                            ),
                        ))
                    }
                };
                columns.insert(
                    column,
                    ColumnConfig {
                        transformer,
                        domain,
                        options,
                        span: vspan,
                    },
                );
            }
            cfg.tables.insert(
                qualified(&name),
                TableConfig {
                    action,
                    filter: table.filter,
                    columns,
                    span,
                },
            );
        }
        Ok(cfg)
    }

    /// The key, from where the config says (by default `DATAFORGE_KEY`).
    pub fn load_key(&self) -> Result<Key, KeyError> {
        match &self.key {
            KeySource::Env(v) => Key::from_env(v),
            KeySource::File(f) => {
                let dir = std::path::Path::new(&self.file)
                    .parent()
                    .unwrap_or(std::path::Path::new("."));
                let p = dir.join(f);
                Key::from_file(&p.to_string_lossy())
            }
        }
    }

    /// An error at `span` of the file.
    pub fn err(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, col) = crate::seed::profile::line_col(&self.text, span.start);
        ConfigError::Invalid {
            file: self.file.clone(),
            line,
            col,
            message: message.into(),
        }
    }

    /// The place of top-level key or table `key` (`[key]`), from toml's own spans, or
    /// the file's start.
    fn root_key(&self, key: &str) -> Range<usize> {
        crate::seed::profile::KeySpans::parse(&self.text)
            .root_key(key)
            .unwrap_or(0..0)
    }

    /// The place of option `key` inside the entry (an inline table) at `span`, from
    /// toml's own spans, or the entry itself.
    pub fn key_in(&self, span: &Range<usize>, key: &str) -> Range<usize> {
        crate::seed::profile::KeySpans::parse(&self.text)
            .key(span, key)
            .unwrap_or_else(|| span.clone())
    }

    /// The error for an option problem `message` of column `column` of `table`: placed at
    /// the option it names (`option \`x\``), else at the column's entry.
    pub fn option_err(
        &self,
        table: &str,
        column: &ColumnConfig,
        name: &str,
        message: &str,
    ) -> ConfigError {
        let at = message
            .split('`')
            .nth(1)
            .filter(|_| message.starts_with("option ") || message.starts_with("unknown option"))
            .map_or(column.span.clone(), |opt| self.key_in(&column.span, opt));
        self.err(at, format!("column {table}.{name}: {message}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any config text is a config or an error with a place, never a panic (issue 15).
        #[test]
        fn any_config_text_parses_or_fails_with_a_place(
            table in "[a-zé\\.\" ]{0,12}",
            column in "[a-zé\\.\" ]{0,8}",
            value in "(\"[a-z-]{0,12}\"|\\{ transformer = \"[a-z-]{0,10}\"(, [a-z_]{1,8} = [0-9\"a-z]{0,6})? \\}|[0-9]{1,3}|\\[\\])",
            tail in "(\\[large_objects\\]\naction = \"[a-z]{0,6}\"\n|\\[comments\\]\naction = \"[a-z]{0,5}\"\n|\\[grants\\]\naction = 1\n|\\[materialized_views\\]\nrefresh = [a-z]{0,5}\n|)",
        ) {
            let text = format!("[tables.{table:?}]\ncolumns.{column:?} = {value}\n{tail}");
            if let Err(e) = Config::parse(&text, "fuzz.toml") {
                proptest::prop_assert!(e.to_string().starts_with("fuzz.toml"), "{e}");
            }
        }
    }

    #[test]
    fn a_key_section_naming_both_sources_is_placed_at_its_header_not_a_comment() {
        let text = "# [key] env or file\n[tables.t]\ncolumns.a = \"keep\"\n\n[key]\nenv = \"K\"\nfile = \"k\"\n";
        let e = Config::parse(text, "a.toml").unwrap_err().to_string();
        assert!(e.starts_with("a.toml:5:2: [key] names both"), "{e}");
    }

    #[test]
    fn names_are_qualified_and_unquoted() {
        assert_eq!(qualified("customer"), "public.customer");
        assert_eq!(qualified("sales.\"Order\""), "sales.Order");
        assert_eq!(qualified("\"a.b\""), "public.a.b");
    }

    #[test]
    fn errors_point_at_file_line_col() {
        let text =
            "[tables.users]\ncolumns.id = \"keep\"\ncolumns.email = { transformer = \"emial\" }\n";
        let e = Config::parse(text, "anonymize.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("anonymize.toml:3:17: column users.email: unknown transformer `emial` (did you mean `email`?)"), "{e}");
        let e = Config::parse("[tables.users]\naction = \"drop\"\n", "a.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("a.toml:2:10: unknown action `drop`"), "{e}");
        let e = Config::parse("[tables.users]\ncolumns.id = 3\n", "a.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "a.toml:2:14: column users.id: expected a transformer name or an inline table, found integer");
    }
}
