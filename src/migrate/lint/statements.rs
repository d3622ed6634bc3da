//! Splitting a migration into statements with PostgreSQL's parser, and placing syntax
//! errors at their line and column.

use pg_query::NodeEnum;

/// One statement of a migration file.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Byte offset of the statement's first token in the file.
    pub offset: usize,
    /// 1-based line and column (in characters) of that token.
    pub line: usize,
    pub column: usize,
    /// The statement's text, without the leading comments and the trailing semicolon.
    pub text: String,
    /// The first keyword, upper-cased (`CREATE`, `ALTER`, `INSERT` …).
    pub keyword: String,
    /// The parse tree; `None` for statements no rule and no runner decision looks into
    /// (plain data statements, and definitions of views, functions, triggers, sequences,
    /// types, comments and grants; see [`needs_tree`]): skipping their trees keeps lint
    /// fast on migrations that carry data or whole schema dumps. [`parse_node`] parses
    /// one on demand.
    pub node: Option<NodeEnum>,
}

/// A migration PostgreSQL's grammar rejects, placed in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Statements whose trees no rule needs.
const DATA_KEYWORDS: &[&str] = &["INSERT", "COPY", "SELECT", "VALUES"];

/// What may follow `CREATE [OR REPLACE]` in a statement whose tree no rule needs: each
/// always parses to a node type the rules and the runner ignore (a view to `ViewStmt`,
/// a function to `CreateFunctionStmt` …). `MATERIALIZED VIEW` is not here: it creates a
/// table-like relation the rules track.
const SKIPPED_CREATE: &[&str] = &[
    "FUNCTION",
    "PROCEDURE",
    "VIEW",
    "TRIGGER",
    "SEQUENCE",
    "TYPE",
    "DOMAIN",
    "AGGREGATE",
    "EXTENSION",
    "RULE",
];

/// Whether any rule or runner decision reads the tree of a statement starting with
/// `keyword` (upper case) whose text is `text`.
pub fn needs_tree(keyword: &str, text: &str) -> bool {
    match keyword {
        k if DATA_KEYWORDS.contains(&k) => false,
        "COMMENT" | "GRANT" | "REVOKE" => false,
        "CREATE" => {
            let mut words = text.split_ascii_whitespace().skip(1).peekable();
            if words.peek().is_some_and(|w| w.eq_ignore_ascii_case("OR")) {
                words.next();
                words.next(); // REPLACE
            }
            !words
                .next()
                .is_some_and(|w| SKIPPED_CREATE.iter().any(|s| w.eq_ignore_ascii_case(s)))
        }
        _ => true,
    }
}

/// libpg_query points the process's stderr (fd 2) at a pipe of its own around every call
/// (`dup`, `dup2`, then back): not safe on several threads at once, where one call can
/// "restore" another's pipe and leave fd 2 writing into a closed pipe, so that every later
/// message on stderr is lost. Held around parsing on several threads, this points fd 2
/// back at the process's own stderr afterwards (as found the first time one is made,
/// before any parallel parsing).
pub(crate) struct StderrKept;

static OWN_STDERR: std::sync::OnceLock<libc::c_int> = std::sync::OnceLock::new();

impl StderrKept {
    pub(crate) fn new() -> Self {
        // SAFETY: dup of fd 2 has no memory effects; a failure gives -1, checked on use
        OWN_STDERR.get_or_init(|| unsafe { libc::dup(libc::STDERR_FILENO) });
        StderrKept
    }
}

impl Drop for StderrKept {
    fn drop(&mut self) {
        if let Some(&fd) = OWN_STDERR.get().filter(|fd| **fd >= 0) {
            // SAFETY: `fd` is our own duplicate of the original stderr, open for the whole
            // process; dup2 atomically repoints fd 2 at it
            unsafe { libc::dup2(fd, libc::STDERR_FILENO) };
        }
    }
}

/// Statements below this many are parsed on the calling thread.
const PARALLEL_FROM: usize = 256;

/// Splits `sql` into statements, each parsed. The whole file is checked by the parser
/// first, so a syntax error anywhere is reported, with its place, before anything else.
pub fn split(sql: &str) -> Result<Vec<Statement>, SyntaxError> {
    let mut out = split_plain(sql)?;
    parse_trees(&mut out);
    Ok(out)
}

/// Bytes of SQL the parser checks at once when finding statement boundaries. The parser
/// holds a whole input's tree in memory: 10 MB of DDL in one call peaked above 600 MB.
const CHUNK: usize = 128 * 1024;

/// The statements of `sql`, as the parser splits them, in chunks of about [`CHUNK`]
/// bytes: the scanner cuts the file at semicolons, and the parser checks each run of
/// pieces; a run it rejects grows (a `BEGIN ATOMIC` body holds semicolons) until it
/// parses or reaches the end of the file, where the error is real and is placed.
fn statement_pieces(sql: &str) -> Result<Vec<&str>, SyntaxError> {
    if sql.len() <= CHUNK {
        return pg_query::split_with_parser(sql).map_err(|e| locate_error(sql, &error_text(&e)));
    }
    let cuts: Vec<usize> = match pg_query::split_with_scanner(sql) {
        Ok(p) => p
            .iter()
            .map(|piece| piece.as_ptr() as usize - sql.as_ptr() as usize + piece.len())
            .collect(),
        Err(e) => return Err(locate_error(sql, &error_text(&e))),
    };
    let mut out = Vec::new();
    let mut start = 0;
    let mut next = 0; // index into cuts of the first cut after `start`
    while start < sql.len() && next < cuts.len() {
        let mut want = CHUNK;
        loop {
            // the last cut within `want` bytes of `start` (at least one piece)
            let mut end_i = next;
            while end_i + 1 < cuts.len() && cuts[end_i + 1] - start <= want {
                end_i += 1;
            }
            // the chunk runs to the cut's semicolon (and past it, for the parser)
            let end = (cuts[end_i] + 1).min(sql.len());
            let chunk = &sql[start..end];
            match pg_query::split_with_parser(chunk) {
                Ok(pieces) => {
                    out.extend(pieces);
                    start = end;
                    next = end_i + 1;
                    while next < cuts.len() && cuts[next] < start {
                        next += 1;
                    }
                    break;
                }
                Err(e) if end_i + 1 >= cuts.len() => {
                    return Err(locate_error(sql, &error_text(&e)));
                }
                Err(_) => want *= 2,
            }
        }
    }
    if start < sql.len() {
        let rest = &sql[start..];
        out.extend(
            pg_query::split_with_parser(rest).map_err(|e| locate_error(sql, &error_text(&e)))?,
        );
    }
    Ok(out)
}

/// [`split`] without the trees (`node` is `None` everywhere): for callers that fill them
/// a window at a time with [`parse_trees`].
pub fn split_plain(sql: &str) -> Result<Vec<Statement>, SyntaxError> {
    let pieces = statement_pieces(sql)?;
    let mut out = Vec::with_capacity(pieces.len());
    // Lines are counted forward from the previous statement, never from the top of the
    // file again: placing every statement stays linear in the file's size.
    let (mut at, mut line, mut line_start) = (0usize, 1usize, 0usize);
    for piece in pieces {
        let start = piece.as_ptr() as usize - sql.as_ptr() as usize;
        let lead = skip_comments(piece);
        let text = piece[lead..].trim_end().trim_end_matches(';').trim_end();
        if text.is_empty() {
            continue;
        }
        let keyword: String = text
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect::<String>()
            .to_ascii_uppercase();
        let offset = start + lead;
        let between = &sql.as_bytes()[at..offset];
        line += memchr::memchr_iter(b'\n', between).count();
        if let Some(nl) = memchr::memrchr(b'\n', between) {
            line_start = at + nl + 1;
        }
        at = offset;
        let column = sql[line_start..offset].chars().count() + 1;
        out.push(Statement {
            offset,
            line,
            column,
            text: text.to_string(),
            keyword,
            node: None,
        });
    }
    Ok(out)
}

/// Fills in the trees the rules read; on large files in parallel (the parser keeps its
/// state per thread), since turning trees into Rust values is most of lint's time.
pub fn parse_trees(statements: &mut [Statement]) {
    let fill = |chunk: &mut [Statement]| {
        for st in chunk {
            if needs_tree(&st.keyword, &st.text) {
                st.node = parse_node(&st.text);
            }
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || statements.len() < PARALLEL_FROM {
        return fill(statements);
    }
    let per = statements.len().div_ceil(threads);
    let _stderr = StderrKept::new();
    std::thread::scope(|scope| {
        for chunk in statements.chunks_mut(per) {
            scope.spawn(move || fill(chunk));
        }
    });
}

/// The tree of one statement (`None` if it does not parse on its own).
pub fn parse_node(text: &str) -> Option<NodeEnum> {
    let parsed = pg_query::parse(text, 0).ok()?;
    let raw = parsed.protobuf.stmts.into_iter().next()?;
    raw.stmt.and_then(|n| n.node)
}

fn error_text(e: &pg_query::Error) -> String {
    match e {
        pg_query::Error::Parse(m) | pg_query::Error::Split(m) | pg_query::Error::Scan(m) => {
            m.clone()
        }
        other => other.to_string(),
    }
}

/// Bytes of whitespace and comments at the start of `s`.
fn skip_comments(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b[i..].starts_with(b"--") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            // Block comments nest in PostgreSQL.
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else {
            return i;
        }
    }
}

/// 1-based line and column (in characters) of byte `offset`.
pub fn line_col(sql: &str, offset: usize) -> (usize, usize) {
    let before = &sql[..offset.min(sql.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Finds where the parser gave up. The statements are found by the (lenient) scanner; the
/// first that does not parse is searched for the shortest prefix that fails for a reason
/// other than ending early: that prefix ends at the offending token, exactly as the
/// server's parser, reading left to right, reports it.
fn locate_error(sql: &str, whole_message: &str) -> SyntaxError {
    let at = |offset: usize, message: String| {
        let (line, column) = line_col(sql, offset);
        SyntaxError {
            line,
            column,
            message,
        }
    };
    let pieces = match pg_query::split_with_scanner(sql) {
        Ok(p) => p,
        Err(e) => return at(0, error_text(&e)),
    };
    for piece in pieces {
        let start = piece.as_ptr() as usize - sql.as_ptr() as usize;
        let Err(err) = pg_query::parse(piece, 0) else {
            continue;
        };
        let message = error_text(&err);
        let tokens = match pg_query::scan(piece) {
            Ok(s) => s.tokens,
            Err(_) => return at(start + skip_comments(piece), message),
        };
        let fails_inside = |end: usize| match pg_query::parse(&piece[..end], 0) {
            Ok(_) => false,
            Err(e) => !error_text(&e).contains("at end of input"),
        };
        let (mut lo, mut hi) = (0usize, tokens.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if fails_inside(tokens[mid].end as usize) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        let offset = tokens
            .get(lo)
            .map_or(piece.trim_end().len(), |t| t.start as usize);
        return at(start + offset, message);
    }
    if whole_message.contains("at end of input") {
        return at(sql.trim_end().len(), whole_message.to_string());
    }
    at(0, whole_message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_start_at_their_first_token() {
        let sql = "-- CreateTable\nCREATE TABLE a (id int);\n\n/* x /* nested */ */ DROP TABLE b;\nINSERT INTO a VALUES (1);";
        let s = split(sql).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(line_col(sql, s[0].offset), (2, 1));
        assert_eq!(line_col(sql, s[1].offset), (4, 22));
        assert_eq!((s[1].line, s[1].column), (4, 22));
        assert_eq!((s[2].line, s[2].column), (5, 1));
        assert_eq!(s[1].text, "DROP TABLE b");
        assert!(s[2].node.is_none() && s[2].keyword == "INSERT");
    }

    #[test]
    fn trees_are_skipped_only_for_statements_nothing_reads() {
        for (sql, wanted) in [
            (
                "CREATE OR REPLACE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql",
                false,
            ),
            ("CREATE VIEW v AS SELECT 1", false),
            ("COMMENT ON TABLE a IS 'x'", false),
            ("GRANT SELECT ON a TO PUBLIC", false),
            ("CREATE MATERIALIZED VIEW m AS SELECT 1", true),
            ("CREATE UNIQUE INDEX i ON a (id)", true),
            ("CREATE TABLE a (id int)", true),
            ("ALTER FUNCTION f() RENAME TO g", true),
        ] {
            let s = split(sql).unwrap();
            assert_eq!(s[0].node.is_some(), wanted, "{sql}");
        }
    }

    #[test]
    fn large_files_parse_in_parallel_with_the_same_trees_and_places() {
        let mut sql = String::new();
        for i in 0..(PARALLEL_FROM * 2 + 3) {
            sql.push_str(&format!("ALTER TABLE t{i} ADD COLUMN c int;\n"));
        }
        let s = split(&sql).unwrap();
        assert_eq!(s.len(), PARALLEL_FROM * 2 + 3);
        for (i, st) in s.iter().enumerate() {
            assert_eq!((st.line, st.column), (i + 1, 1));
            let Some(NodeEnum::AlterTableStmt(a)) = &st.node else {
                panic!("statement {i} has no ALTER TABLE tree: {:?}", st.node);
            };
            assert_eq!(a.relation.as_ref().unwrap().relname, format!("t{i}"));
        }
    }

    #[test]
    fn a_syntax_error_is_placed_at_the_offending_token() {
        let sql = "CREATE TABLE a (id int);\nALTER TABLE a\n  ADD COLUMN b intt4 NOT NUL;\n";
        let e = split(sql).unwrap_err();
        assert_eq!((e.line, e.column), (3, 26), "{e}");
        assert!(e.message.contains("syntax error at or near \"NUL\""), "{e}");
    }

    #[test]
    fn an_unfinished_statement_is_placed_at_its_end() {
        let e = split("SELECT 1;\nCREATE TABLE a (id int").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("end of input"), "{e}");
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(line_col("ăî\nșț x", 10), (2, 4));
    }

    #[test]
    fn chunked_boundaries_match_one_parse_of_the_whole_file() {
        // Bodies with semicolons inside (BEGIN ATOMIC, rules with several actions) fall
        // across chunk boundaries somewhere in a file this size.
        let mut sql = String::new();
        let mut i = 0;
        while sql.len() < 3 * CHUNK + 1000 {
            sql.push_str(&format!(
                "CREATE TABLE t{i} (id int);\n\
                 CREATE FUNCTION f{i}() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT {i};\nEND;\n\
                 CREATE RULE r{i} AS ON INSERT TO t{i} DO ALSO (NOTIFY a; NOTIFY b);\n\
                 -- a comment; with a semicolon\nINSERT INTO t{i} VALUES ({i});\n"
            ));
            i += 1;
        }
        let ours: Vec<(usize, String)> = split_plain(&sql)
            .unwrap()
            .into_iter()
            .map(|s| (s.offset, s.text))
            .collect();
        let whole = split_plain_whole(&sql);
        assert_eq!(ours.len(), whole.len());
        assert_eq!(ours, whole);
    }

    #[test]
    fn a_syntax_error_late_in_a_large_file_is_placed() {
        let mut sql = "SELECT 1;\n".repeat(3 * CHUNK / 10);
        let line = sql.lines().count() + 1;
        sql.push_str("CREATE TABLE broken (id int,);\nSELECT 2;\n");
        let err = split_plain(&sql).unwrap_err();
        assert_eq!((err.line, err.column), (line, 29), "{err}");
        assert!(err.message.contains("syntax error"), "{err}");
    }

    /// The statements of one parse of the whole file, as `split_plain` places them.
    fn split_plain_whole(sql: &str) -> Vec<(usize, String)> {
        pg_query::split_with_parser(sql)
            .unwrap()
            .into_iter()
            .filter_map(|piece| {
                let start = piece.as_ptr() as usize - sql.as_ptr() as usize;
                let lead = skip_comments(piece);
                let text = piece[lead..].trim_end().trim_end_matches(';').trim_end();
                (!text.is_empty()).then(|| (start + lead, text.to_string()))
            })
            .collect()
    }

    #[test]
    fn stderr_is_pointed_back_after_parsing_on_several_threads() {
        let same_file = |a: libc::c_int, b: libc::c_int| {
            // SAFETY: fstat writes into the zeroed structs given, for fds we hold
            let (mut x, mut y): (libc::stat, libc::stat) =
                unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
            // SAFETY: as above
            let ok = unsafe { libc::fstat(a, &mut x) == 0 && libc::fstat(b, &mut y) == 0 };
            ok && (x.st_dev, x.st_ino) == (y.st_dev, y.st_ino)
        };
        let kept = StderrKept::new();
        let own = *OWN_STDERR.get().unwrap();
        // what a lost race in libpg_query leaves: fd 2 on a pipe nobody reads
        let mut pipe = [0 as libc::c_int; 2];
        // SAFETY: pipe fills the two fds given; dup2 repoints fd 2 at the pipe's write end
        unsafe {
            assert_eq!(libc::pipe(pipe.as_mut_ptr()), 0);
            libc::dup2(pipe[1], libc::STDERR_FILENO);
        }
        assert!(!same_file(libc::STDERR_FILENO, own));
        drop(kept);
        assert!(same_file(libc::STDERR_FILENO, own));
        // SAFETY: closing the pipe's two fds, ours alone
        unsafe {
            libc::close(pipe[0]);
            libc::close(pipe[1]);
        }
    }
}
