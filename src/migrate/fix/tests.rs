//! `lint --fix`'s rewrites, statement by statement (applied to a database in
//! tests/migrate_safety.rs).

use super::*;

fn steps(sql: &str) -> Vec<(String, String)> {
    rewrite("m", sql)
        .unwrap()
        .map(|r| {
            r.steps
                .into_iter()
                .map(|s| {
                    let body: Vec<&str> = s.sql.lines().filter(|l| !l.starts_with("--")).collect();
                    (s.name, body.join("\n").trim().to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn an_index_is_built_concurrently_in_its_own_migration() {
    assert_eq!(
        steps("CREATE TABLE a (id int);\nCREATE UNIQUE INDEX \"User_email_key\" ON \"User\"(\"email\");"),
        vec![
            ("m_01_expand".into(), "CREATE TABLE a (id int);".into()),
            (
                "m_02_concurrent_index".into(),
                "CREATE UNIQUE INDEX CONCURRENTLY \"User_email_key\" ON \"User\"(\"email\");"
                    .into()
            ),
        ]
    );
}

#[test]
fn constraints_are_added_not_valid_and_validated_later() {
    let s = steps(
        "ALTER TABLE \"Post\" ADD CONSTRAINT \"Post_authorId_fkey\" FOREIGN KEY (\"authorId\") \
         REFERENCES \"User\"(id), ADD CHECK (n > 0);",
    );
    assert_eq!(s.len(), 2, "{s:?}");
    assert!(s[0].1.contains("NOT VALID"), "{s:?}");
    assert_eq!(
        s[1].1,
        "ALTER TABLE \"Post\" VALIDATE CONSTRAINT \"Post_authorId_fkey\";\n\n\
         ALTER TABLE \"Post\" VALIDATE CONSTRAINT \"Post_n_check\";"
    );
}

#[test]
fn nothing_to_rewrite_is_none() {
    assert!(
        rewrite("m", "CREATE TABLE t (id int);\nCREATE INDEX i ON t (id);")
            .unwrap()
            .is_none()
    );
}

#[test]
fn generated_names_are_postgresql_s_and_do_not_collide() {
    let s = steps("ALTER TABLE t ADD CHECK (a > 0), ADD CHECK (a < 10), ADD CHECK (a < b);");
    let validate = &s.last().unwrap().1;
    for name in ["t_a_check", "t_a_check1", "t_check"] {
        assert!(
            validate.contains(&format!("VALIDATE CONSTRAINT {name};")),
            "{name}: {validate}"
        );
    }
    // a long name loses from its longer part, never its label
    let long = object_name(&"t".repeat(40), Some(&"c".repeat(40)), "not_null");
    assert_eq!(long.len(), 63);
    assert!(long.ends_with("_not_null"), "{long}");
}

#[test]
fn what_another_statement_needs_stays_as_written() {
    // Prisma's type change: drop and re-add the same column
    assert_eq!(
        rewrite(
            "m",
            "ALTER TABLE \"User\" DROP COLUMN \"role\", ADD COLUMN \"role\" \"Role\";"
        )
        .unwrap()
        .unwrap()
        .steps,
        vec![]
    );
    // an index a constraint is then built from
    let s = steps(
        "CREATE UNIQUE INDEX i ON t (a);\nALTER TABLE t ADD CONSTRAINT u UNIQUE USING INDEX i;\n\
         ALTER TABLE t ADD CHECK (a > 0);",
    );
    assert!(
        s[0].1.starts_with("CREATE UNIQUE INDEX i ON t (a);"),
        "{s:?}"
    );
    // a key column with a volatile default is added as written
    assert!(rewrite(
        "m",
        "ALTER TABLE t ADD COLUMN id uuid PRIMARY KEY DEFAULT gen_random_uuid();"
    )
    .unwrap()
    .unwrap()
    .steps
    .is_empty());
}

#[test]
fn session_settings_reach_every_step_and_only_and_if_exists_are_kept() {
    let s = steps(
        "SET search_path TO app;\nCREATE INDEX i ON t (a);\n\
         ALTER TABLE IF EXISTS ONLY t ALTER COLUMN a SET NOT NULL;",
    );
    assert!(
        s.iter()
            .all(|(_, sql)| sql.contains("SET search_path TO app;")),
        "{s:?}"
    );
    assert!(
        s.last()
            .unwrap()
            .1
            .contains("ALTER TABLE IF EXISTS ONLY t VALIDATE CONSTRAINT t_a_not_null;"),
        "{s:?}"
    );
}

#[test]
fn ten_steps_and_more_sort_in_order() {
    let sql: String = (0..10)
        .map(|i| format!("CREATE INDEX i{i} ON t (c{i});\n"))
        .collect();
    let names: Vec<String> = steps(&format!("{sql}ALTER TABLE t DROP COLUMN z;"))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names.last().unwrap(), "m_11_contract");
}

#[test]
fn an_index_that_a_later_statement_needs_or_changes_stays_in_place() {
    let sql = "CREATE UNIQUE INDEX \"User_email_key\" ON \"User\"(\"email\");\n\
               ALTER TABLE \"Post\" ADD CONSTRAINT \"Post_authorEmail_fkey\" FOREIGN KEY (\"authorEmail\") REFERENCES \"User\"(\"email\") NOT VALID;\n\
               CREATE INDEX \"Post_legacyBody_idx\" ON \"Post\"(\"legacyBody\");\n\
               ALTER TABLE \"Post\" RENAME COLUMN \"legacyBody\" TO \"body\";\n\
               CREATE INDEX \"Post_title_idx\" ON \"Post\"(\"title\");";
    let s = steps(sql);
    assert_eq!(s.len(), 2, "{s:?}");
    assert!(
        s[0].1.contains("CREATE UNIQUE INDEX \"User_email_key\" ON"),
        "{s:?}"
    );
    assert!(
        s[0].1.contains("CREATE INDEX \"Post_legacyBody_idx\" ON"),
        "{s:?}"
    );
    assert!(
        s[1].1
            .contains("CREATE INDEX CONCURRENTLY \"Post_title_idx\""),
        "{s:?}"
    );
    // ON ONLY a partitioned parent builds nothing and is not rewritten
    assert!(rewrite("m", "CREATE INDEX e_k ON ONLY \"Event\" (kind);")
        .unwrap()
        .is_none());
}

#[test]
fn keywords_are_quoted_and_the_backfill_command_is_one_shell_word_each() {
    let s =
        steps("ALTER TABLE \"User\" ADD COLUMN \"order\" uuid NOT NULL DEFAULT gen_random_uuid();");
    let all: String = s.iter().map(|(_, sql)| sql.as_str()).collect();
    assert!(
        all.contains("ALTER COLUMN \"order\" SET DEFAULT gen_random_uuid()"),
        "{all}"
    );
    assert!(all.contains("CHECK (\"order\" IS NOT NULL)"), "{all}");
    let r = rewrite(
        "m",
        "ALTER TABLE \"User\" ADD COLUMN \"lastSeenAt\" timestamptz DEFAULT clock_timestamp();",
    )
    .unwrap()
    .unwrap();
    let backfill = &r
        .steps
        .iter()
        .find(|s| s.name.ends_with("_backfill"))
        .unwrap()
        .sql;
    assert!(
        backfill.contains(
            "dataforge backfill --table '\"User\"' --set '\"lastSeenAt\" = clock_timestamp()' --where '\"lastSeenAt\" IS NULL'"
        ),
        "{backfill}"
    );
}
