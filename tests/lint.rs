//! `dataforge migrate lint`: every rule's examples, with the messages pinned as snapshots,
//! the docs kept in step with the rules, and the CLI's output and exit codes.

mod common;

use std::fs;

use common::{dataforge, run, shared_tempdir, stderr, stdout};
use dataforge::migrate::lint::{self, rules};

/// Every rule's bad example and the findings it produces, as a user reads them.
#[test]
fn every_rule_message_is_pinned() {
    let mut out = String::new();
    for rule in rules::ALL {
        out.push_str(&format!(
            "== {} ({} risk)\n{}\n--\n",
            rule.name, rule.risk, rule.bad
        ));
        for f in lint::lint_sql(rule.bad).unwrap() {
            out.push_str(&format!("{f}\n"));
        }
        let good = lint::lint_sql(rule.good).unwrap();
        assert!(
            good.iter().all(|f| f.rule != rule.name),
            "{}: {good:?}",
            rule.name
        );
    }
    insta::assert_snapshot!("lint_messages", out);
}

/// `fixtures/lint/cases.sql`: several cases per rule (quoted and qualified names, several
/// subcommands, DO blocks), each linted as a migration of its own; every finding pinned.
#[test]
fn every_rule_fires_on_its_cases_and_not_on_its_good_ones() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/lint/cases.sql");
    let text = fs::read_to_string(path).unwrap();
    // (rule, "bad"/"good", description, sql)
    let mut cases: Vec<(String, String, String, String)> = Vec::new();
    let mut rule = String::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("-- == ") {
            rule = name.trim().to_string();
        } else if let Some((kind, what)) = line
            .strip_prefix("-- bad: ")
            .map(|w| ("bad", w))
            .or_else(|| line.strip_prefix("-- good: ").map(|w| ("good", w)))
        {
            assert!(!rule.is_empty(), "{path}: a case before the first rule");
            cases.push((rule.clone(), kind.into(), what.into(), String::new()));
        } else if let Some(case) = cases.last_mut() {
            case.3.push_str(line);
            case.3.push('\n');
        }
    }
    let mut out = String::new();
    for r in rules::ALL {
        let count = |kind: &str| {
            cases
                .iter()
                .filter(|c| c.0 == r.name && c.1 == kind)
                .count()
        };
        assert!(
            count("bad") >= 2 && count("good") >= 1,
            "{path}: {} needs two bad cases and a good one",
            r.name
        );
    }
    let mut wrong = Vec::new();
    for (rule, kind, what, sql) in &cases {
        assert!(
            rules::ALL.iter().any(|r| r.name == rule),
            "{path}: no rule {rule}"
        );
        let sql = sql.trim_end();
        let findings = lint::lint_sql(sql).unwrap_or_else(|e| panic!("{rule} / {what}: {e}"));
        if findings.iter().any(|f| f.rule == rule) != (kind == "bad") {
            wrong.push(format!("{rule} / {kind}: {what}"));
        }
        out.push_str(&format!("== {rule} / {kind}: {what}\n{sql}\n--\n"));
        for f in &findings {
            // Every statement here takes a lock without a timeout: that rule's findings
            // are pinned under its own cases only.
            if f.rule != "missing-lock-timeout" || rule == "missing-lock-timeout" {
                out.push_str(&format!(
                    "{}:{}: {} [{}]\n",
                    f.line, f.column, f.message, f.rule
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{path}: wrong verdicts:\n{}",
        wrong.join("\n")
    );
    insta::assert_snapshot!("lint_cases", out);
}

#[test]
fn docs_describe_every_rule_and_no_other() {
    let docs = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/lint-rules.md"))
        .expect("docs/lint-rules.md");
    let documented: Vec<&str> = docs
        .lines()
        .filter_map(|l| l.strip_prefix("## `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let names: Vec<&str> = rules::ALL.iter().map(|r| r.name).collect();
    let mut a = documented.clone();
    let mut b = names.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "docs/lint-rules.md headings vs rules");
    for rule in rules::ALL {
        let section = docs
            .split(&format!("## `{}`", rule.name))
            .nth(1)
            .unwrap()
            .split("\n## ")
            .next()
            .unwrap();
        assert!(
            section.contains(&format!("Risk: **{}**", rule.risk)),
            "{}: the docs give another risk",
            rule.name
        );
        assert!(
            section.contains(rule.bad),
            "{}: bad example not in the docs",
            rule.name
        );
        assert!(
            section.contains(rule.good),
            "{}: good example not in the docs",
            rule.name
        );
    }
}

#[test]
fn lint_cli_reports_findings_with_file_line_col_and_exit_codes() {
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    fs::create_dir_all(dir.join("20240101000000_a")).unwrap();
    fs::write(
        dir.join("20240101000000_a/migration.sql"),
        "-- CreateTable\nCREATE TABLE a (id int);\nCREATE INDEX a_id ON a (id);\n",
    )
    .unwrap();
    fs::create_dir_all(dir.join("20240102000000_b")).unwrap();
    fs::write(
        dir.join("20240102000000_b/migration.sql"),
        "SET lock_timeout = '5s';\n\nALTER TABLE a DROP COLUMN id;\n",
    )
    .unwrap();
    let out = run(dataforge(tmp.path()).args(["migrate", "lint"]), 1);
    let text = stdout(&out);
    assert!(
        text.contains(
            "migrations/20240102000000_b/migration.sql:3:15: high risk: drops column a.id and \
             its data [drop-column]"
        ),
        "{text}"
    );
    assert!(text.contains("  fix: expand-contract"), "{text}");
    assert!(!text.contains("20240101000000_a"), "{text}");
    assert!(stderr(&out).contains("2 file(s) checked, highest unapproved risk: high"));

    // a medium finding alone informs and exits 0; --json carries the same findings
    let medium = tmp.path().join("medium.sql");
    fs::write(
        &medium,
        "SET lock_timeout = '1s';\nCREATE INDEX b ON a (id);\n",
    )
    .unwrap();
    let out = run(
        dataforge(tmp.path())
            .args(["migrate", "lint", "--json"])
            .arg(&medium),
        0,
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let f = &v["files"][0]["findings"][0];
    assert_eq!(f["rule"], "index-without-concurrently");
    assert_eq!(f["risk"], "medium");
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(v["files"][0]["risk"], "medium");
}

#[test]
fn a_syntax_error_is_reported_with_file_line_col_and_the_parser_message() {
    let tmp = shared_tempdir();
    let file = tmp.path().join("broken.sql");
    fs::write(
        &file,
        "CREATE TABLE a (id int);\nALTER TABLE a ADD COLUMN b int NOT NUL;\n",
    )
    .unwrap();
    let out = run(
        dataforge(tmp.path()).args(["migrate", "lint"]).arg(&file),
        2,
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}:2:36: syntax error at or near \"NUL\"",
            file.display()
        )),
        "{err}"
    );
}

#[test]
fn a_migration_folder_without_migration_sql_is_named() {
    let tmp = shared_tempdir();
    fs::create_dir_all(tmp.path().join("migrations/20240101000000_empty")).unwrap();
    let out = run(dataforge(tmp.path()).args(["migrate", "lint"]), 2);
    let err = stderr(&out);
    assert!(
        err.contains("migrations/20240101000000_empty/migration.sql is missing"),
        "{err}"
    );
}

/// Real pg_dump output parses: the parser is PostgreSQL's own.
#[test]
fn the_pagila_schema_dump_parses_statement_by_statement() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/datasets/pagila/pagila-schema.sql"
    );
    let Ok(sql) = fs::read_to_string(path) else {
        common::skip(&format!(
            "{path} is absent (the shared datasets are not on this machine)"
        ));
        return;
    };
    let statements = lint::split(&sql).expect("pagila's schema parses");
    assert!(statements.len() > 200, "{}", statements.len());
    assert!(statements
        .iter()
        .any(|s| s.keyword == "CREATE" && s.text.contains("FUNCTION")));
}

/// `missing-lock-timeout` is for other runners: dataforge sets the timeout itself, so
/// `lint` reports it only with `--for psql` or `--for prisma`; one broken file is reported
/// and the others are still linted (issue 16, §3).
#[test]
fn lock_timeout_findings_are_for_other_runners_and_a_broken_file_stops_nothing() {
    let tmp = shared_tempdir();
    let dir = tmp.path().join("migrations");
    for (name, sql) in [
        ("20240101000000_a", "ALTER TABLE a ADD COLUMN b int;"),
        ("20240102000000_broken", "ALTER TABLE a ADD COLUMN;"),
        ("20240103000000_c", "ALTER TABLE a DROP COLUMN b;"),
    ] {
        fs::create_dir_all(dir.join(name)).unwrap();
        fs::write(dir.join(name).join("migration.sql"), sql).unwrap();
    }
    let lint = |extra: &[&str]| {
        let mut c = dataforge(tmp.path());
        c.args(["migrate", "lint"]).args(extra);
        c.output().unwrap()
    };
    let out = lint(&[]);
    assert_eq!(out.status.code(), Some(2), "a broken file is an error");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("missing-lock-timeout"), "{text}");
    assert!(
        text.contains("20240103000000_c/migration.sql:1:15: high risk: drops column a.b"),
        "the file after the broken one is linted: {text}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("20240102000000_broken/migration.sql:1:"),
        "{err}"
    );
    let out = lint(&["--for", "psql"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("[missing-lock-timeout]"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// libpg_query repoints stderr around every parse, which is not safe on several threads:
/// lint parses a large file on every core and must leave stderr working after it.
#[test]
fn stderr_still_works_after_a_large_file_is_linted_on_every_core() {
    let tmp = shared_tempdir();
    let file = tmp.path().join("large.sql");
    let sql: String = (0..4000)
        .map(|i| format!("ALTER TABLE t{i} ADD COLUMN c int;\nCREATE INDEX i{i} ON t{i} (c);\n"))
        .collect();
    fs::write(&file, sql).unwrap();
    for _ in 0..3 {
        let out = run(
            dataforge(tmp.path()).args(["migrate", "lint"]).arg(&file),
            0,
        );
        assert!(
            stderr(&out).contains("1 file(s) checked, highest unapproved risk: medium"),
            "{}",
            stderr(&out)
        );
        assert_eq!(
            stdout(&out).matches("[index-without-concurrently]").count(),
            4000
        );
    }
}
