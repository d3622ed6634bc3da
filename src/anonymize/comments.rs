//! `COMMENT ON` text: schema documentation that often names people ("Owner: Maria
//! Anders"), outside every row, so no column transformer sees it. `[comments] action`
//! says what a copy gets — `keep` (the default: comments are documentation) or `drop` —
//! and verify scans what the copy kept (issue 14). `init` writes `drop` when the source's
//! comments hold personal data.
//!
//! Also the one filter every dump path applies to SQL lines outside COPY data, so that
//! large objects and comments are handled alike wherever a dump's SQL is written.

use super::large_objects::LoAction;

/// What happens to `COMMENT ON` statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CommentAction {
    #[default]
    Keep,
    Drop,
}

impl CommentAction {
    pub fn parse(s: &str) -> Option<CommentAction> {
        match s {
            "keep" => Some(CommentAction::Keep),
            "drop" => Some(CommentAction::Drop),
            _ => None,
        }
    }
}

/// The text of a `COMMENT ON … IS '…';` statement (its literal, unquoted), if `sql` is one.
pub fn text(sql: &str) -> Option<String> {
    let rest = sql.trim_start().strip_prefix("COMMENT ON ")?;
    let start = rest.find(" IS ")? + 4;
    let lit = rest[start..].trim().trim_end_matches(';').trim();
    let lit = lit.strip_prefix('E').unwrap_or(lit);
    let inner = lit.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

/// Which lines of a dump's SQL (outside COPY data) go to the output, as the config says
/// for large objects and comments. A comment's literal may span lines: once a `COMMENT
/// ON` line is dropped, so is every line up to the one that ends the statement.
#[derive(Debug)]
pub struct SqlLines {
    objects: LoAction,
    comments: CommentAction,
    in_comment: bool,
}

impl SqlLines {
    pub fn new(objects: LoAction, comments: CommentAction) -> SqlLines {
        SqlLines {
            objects,
            comments,
            in_comment: false,
        }
    }

    pub fn passes(&mut self, line: &[u8]) -> bool {
        if self.comments == CommentAction::Drop
            && (self.in_comment || line.starts_with(b"COMMENT ON "))
        {
            let end = line.strip_suffix(b"\n").unwrap_or(line);
            let end = end.strip_suffix(b"\r").unwrap_or(end);
            // pg_dump ends the statement with the literal's quote and `;` on its last line
            self.in_comment = !(end.ends_with(b"';") || end.ends_with(b"NULL;"));
            return false;
        }
        self.objects.passes(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_text_is_read_and_a_dropped_comment_goes_whole() {
        assert_eq!(
            text("COMMENT ON TABLE crm.\"Customer\" IS 'Owner: Maria Anders (it''s hers)';")
                .as_deref(),
            Some("Owner: Maria Anders (it's hers)")
        );
        assert_eq!(text("CREATE TABLE t (id int);"), None);
        let mut keep = SqlLines::new(LoAction::Keep, CommentAction::Keep);
        assert!(keep.passes(b"COMMENT ON TABLE t IS 'x';\n"));
        let mut drop = SqlLines::new(LoAction::Keep, CommentAction::Drop);
        let lines: [&[u8]; 5] = [
            b"COMMENT ON COLUMN t.a IS 'first line\n",
            b"second line of the same comment';\n",
            b"CREATE TABLE u (id int);\n",
            b"COMMENT ON TABLE u IS 'one line';\n",
            b"ALTER TABLE u OWNER TO x;\n",
        ];
        let kept: Vec<bool> = lines.iter().map(|l| drop.passes(l)).collect();
        assert_eq!(kept, [false, false, true, false, true]);
    }

    #[test]
    fn the_config_says_keep_or_drop_at_its_place() {
        use crate::anonymize::config::Config;
        let c = Config::parse("[comments]\naction = \"drop\"\n", "a.toml").unwrap();
        assert_eq!(c.comments, CommentAction::Drop);
        let c = Config::parse("", "a.toml").unwrap();
        assert_eq!(
            c.comments,
            CommentAction::Keep,
            "comments are kept unless said"
        );
        let e = Config::parse("[comments]\naction = \"scrub\"\n", "a.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.toml:2:10: unknown comments action `scrub`; use keep or drop"
        );
    }
}
