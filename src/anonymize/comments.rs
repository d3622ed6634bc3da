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

pub use crate::source::catalog::{comment_text as text, ends_statement};

/// Which lines of a dump's SQL (outside COPY data) go to the output, as the config says
/// for large objects, comments and materialized views (pg_dump's `REFRESH MATERIALIZED
/// VIEW` lines, one line each, are left out when the views stay unpopulated). A comment's literal may span lines: once a `COMMENT
/// ON` line is dropped, so is every line up to the one that ends the statement.
#[derive(Debug)]
pub struct SqlLines {
    objects: LoAction,
    comments: CommentAction,
    refresh_matviews: bool,
    keep_grants: bool,
    in_comment: bool,
    quoted: bool,
}

impl SqlLines {
    pub fn new(
        objects: LoAction,
        comments: CommentAction,
        refresh_matviews: bool,
        keep_grants: bool,
    ) -> SqlLines {
        SqlLines {
            objects,
            comments,
            refresh_matviews,
            keep_grants,
            in_comment: false,
            quoted: false,
        }
    }

    pub fn passes(&mut self, line: &[u8]) -> bool {
        if self.comments == CommentAction::Drop
            && (self.in_comment || line.starts_with(b"COMMENT ON "))
        {
            if !self.in_comment {
                self.quoted = false;
            }
            self.in_comment = !ends_statement(line, &mut self.quoted);
            return false;
        }
        if !self.refresh_matviews && line.starts_with(b"REFRESH MATERIALIZED VIEW ") {
            return false;
        }
        // pg_dump writes each GRANT and REVOKE on a line of its own
        if !self.keep_grants
            && (line.starts_with(b"GRANT ")
                || line.starts_with(b"REVOKE ")
                || line.starts_with(b"ALTER DEFAULT PRIVILEGES "))
        {
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
        let mut no_grants = SqlLines::new(LoAction::Keep, CommentAction::Keep, true, false);
        for access in [
            &b"GRANT SELECT ON TABLE public.t TO reader;\n"[..],
            b"REVOKE ALL ON SCHEMA public FROM PUBLIC;\n",
            b"ALTER DEFAULT PRIVILEGES FOR ROLE prod GRANT SELECT ON TABLES TO reader;\n",
        ] {
            assert!(
                !no_grants.passes(access),
                "{}",
                String::from_utf8_lossy(access)
            );
        }
        assert!(no_grants.passes(b"CREATE TABLE t (id int);\n"));
        let mut keep = SqlLines::new(LoAction::Keep, CommentAction::Keep, true, true);
        assert!(keep.passes(b"COMMENT ON TABLE t IS 'x';\n"));
        let mut drop = SqlLines::new(LoAction::Keep, CommentAction::Drop, true, true);
        let lines: [&[u8]; 8] = [
            b"COMMENT ON COLUMN t.a IS 'first line\n",
            b"second line of the same comment';\n",
            b"CREATE TABLE u (id int);\n",
            b"COMMENT ON TABLE u IS 'one line';\n",
            b"COMMENT ON COLUMN u.\"Paid IS\" IS 'Empty means NULL;\n",
            b"it''s Owner maria@x.example';\n",
            b"ALTER TABLE u OWNER TO x;\n",
            b"SET default_tablespace = '';\n",
        ];
        let kept: Vec<bool> = lines.iter().map(|l| drop.passes(l)).collect();
        assert_eq!(kept, [false, false, true, false, false, false, true, true]);
        assert_eq!(
            text("COMMENT ON COLUMN u.\"Paid IS\" IS 'Empty means NULL;\nit''s hers';").as_deref(),
            Some("Empty means NULL;\nit's hers"),
            "a quoted name holding ` IS `, a line ending in NULL;, a doubled quote"
        );
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
