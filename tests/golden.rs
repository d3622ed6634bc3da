//! Determinism is a contract: these pin the generated data, so a dependency bump or a
//! code change that alters any seeded value fails here, loudly. No database needed.
//!
//! When a change to generated data is intended, update the hashes below and say so in
//! the CHANGELOG: every committed seed and every test fixture changes with them.

use dataforge::seed::{self, out, profile, Dataset, SeedOptions};

fn demo(seed: u64, scale: u32) -> (profile::Profile, SeedOptions, Dataset) {
    let p = profile::resolve("demo-firm").unwrap();
    let o = SeedOptions {
        seed,
        scale,
        anchor: p.anchor,
    };
    let d = seed::generate(&p, &o).unwrap();
    (p, o, d)
}

/// blake3 of each table's CSV, as `--out` writes it.
fn table_hashes(d: &Dataset) -> Vec<(String, String)> {
    d.tables
        .iter()
        .map(|t| {
            let mut buf = Vec::new();
            out::write_table_csv(&mut buf, &t.columns, &t.rows).unwrap();
            (
                t.name.clone(),
                blake3::hash(&buf).to_hex()[..16].to_string(),
            )
        })
        .collect()
}

#[test]
fn demo_firm_seed_1_is_pinned() {
    let (_, _, d) = demo(1, 1);
    // a readable diff before the hashes: the first rows of each table's CSV
    let heads: String = d
        .tables
        .iter()
        .map(|t| {
            let mut buf = Vec::new();
            out::write_table_csv(&mut buf, &t.columns, &t.rows).unwrap();
            let text = String::from_utf8_lossy(&buf);
            let head: Vec<&str> = text.lines().take(4).collect();
            format!(
                "== {} ({} rows)\n{}\n",
                t.name,
                t.rows.len(),
                head.join("\n")
            )
        })
        .collect();
    insta::assert_snapshot!("demo_firm_seed_1_csv_heads", heads);
    let got = table_hashes(&d);
    let want = [
        ("firms", "8e22f0cf12e9a5e3"),
        ("users", "2c0edeb1907adb1e"),
        ("clients", "1f4f4eb0303bc6e0"),
        ("cases", "c5c56d64b88e6ed8"),
        ("documents", "905a230280fe1fd5"),
        ("tasks", "f68036fba7fd2f2a"),
    ];
    let got_ref: Vec<(&str, &str)> = got.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(got_ref, want, "generated demo-firm data changed");
}

#[test]
fn pinned_ids_are_uuidv5_of_the_natural_key() {
    let (_, _, d) = demo(1, 1);
    let firm = &d.table("firms").unwrap().rows[0];
    let expected = uuid::Uuid::new_v5(
        &dataforge::seed::gen::ID_NAMESPACE,
        b"demo-firm/firms/RO12345678",
    );
    assert_eq!(firm[0].as_deref(), Some(expected.to_string().as_str()));
}

#[test]
fn same_seed_same_data_other_seed_other_data() {
    let (_, _, a) = demo(1, 1);
    let (_, _, b) = demo(1, 1);
    let (_, _, c) = demo(2, 1);
    assert_eq!(a, b);
    assert_ne!(
        table_hashes(&a)[3],
        table_hashes(&c)[3],
        "seed 2 made the same cases"
    );
    // fixed rows stay fixed whatever the seed
    assert_eq!(a.table("firms"), c.table("firms"));
}

#[test]
fn scaling_keeps_the_mixes_exact_and_unique_fields_unique() {
    let (_, _, d) = demo(1, 30);
    let cases = d.table("cases").unwrap();
    assert_eq!(cases.rows.len(), 300);
    let status = cases.columns.iter().position(|c| c == "status").unwrap();
    let n = |v: &str| {
        cases
            .rows
            .iter()
            .filter(|r| r[status].as_deref() == Some(v))
            .count()
    };
    assert_eq!(
        (n("Active"), n("OnHold"), n("Closed"), n("Archived")),
        (120, 60, 60, 60)
    );
    for (table, col) in [
        ("cases", "case_number"),
        ("users", "email"),
        ("users", "azure_ad_id"),
        ("clients", "email"),
    ] {
        let t = d.table(table).unwrap();
        let ci = t.columns.iter().position(|c| c == col).unwrap();
        let mut vals: Vec<&str> = t.rows.iter().filter_map(|r| r[ci].as_deref()).collect();
        let before = vals.len();
        vals.sort_unstable();
        vals.dedup();
        assert_eq!(vals.len(), before, "{table}.{col} has duplicates");
    }
    let users = d.table("users").unwrap();
    assert_eq!(users.rows.len(), 5 + 29); // 5 + 5 x 29 x 0.2
    let email = users.columns.iter().position(|c| c == "email").unwrap();
    assert!(users
        .rows
        .iter()
        .all(|r| r[email].as_deref().unwrap().ends_with("@demo.lawfirm.ro")));
}

#[test]
fn adding_an_entity_leaves_every_other_row_unchanged() {
    let base = profile::resolve("demo-firm").unwrap();
    // a new entity in the middle of the profile, before clients
    let text = base.source_text.replace(
        "[[entity]]\nname = \"clients\"",
        "[[entity]]\nname = \"offices\"\ncount = 3\n[entity.columns]\ncity = { template = \"{fake:city}\" }\n\n\
         [[entity]]\nname = \"clients\"",
    );
    assert_ne!(
        text, base.source_text,
        "the profile text changed shape; update this test"
    );
    let grown = profile::parse(&text, "grown.toml", base.migrations.clone()).unwrap();
    let o = SeedOptions {
        seed: 1,
        scale: 1,
        anchor: base.anchor,
    };
    let a = seed::generate(&base, &o).unwrap();
    let b = seed::generate(&grown, &o).unwrap();
    assert_eq!(b.tables.len(), a.tables.len() + 1);
    for t in &a.tables {
        assert_eq!(Some(t), b.table(&t.name), "{} changed", t.name);
    }
}

#[test]
fn the_embedded_migrations_match_the_files() {
    let on_disk =
        dataforge::migrate::load_dir(std::path::Path::new("profiles/demo-firm/migrations"))
            .unwrap();
    let builtin = &profile::BUILTINS
        .iter()
        .find(|b| b.name == "demo-firm")
        .unwrap()
        .migrations;
    let names: Vec<&str> = on_disk.iter().map(|m| m.name.as_str()).collect();
    let embedded: Vec<&str> = builtin.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names, embedded,
        "register new migrations in src/seed/profile.rs BUILTINS"
    );
    let toml = std::fs::read_to_string("profiles/demo-firm.toml").unwrap();
    assert_eq!(profile::BUILTINS[0].toml, toml);
}

#[test]
fn the_committed_seed_files_are_what_the_generator_makes() {
    // seeds/demo-firm is `dataforge seed demo-firm --out seeds/demo-firm`, committed so a
    // team can load it with psql alone; it must never drift from the generator.
    let dir = tempfile::tempdir().unwrap();
    let p = profile::resolve("demo-firm").unwrap();
    let o = SeedOptions {
        seed: p.default_seed,
        scale: 1,
        anchor: p.anchor,
    };
    let (files, _) = out::write_dir(dir.path(), &p, &o).unwrap();
    // a file the generator no longer makes (a dropped table) is stale output: it fails
    let made: Vec<_> = files.iter().filter_map(|f| f.file_name()).collect();
    for entry in std::fs::read_dir("seeds/demo-firm").unwrap() {
        let name = entry.unwrap().file_name();
        assert!(
            made.contains(&name.as_os_str()),
            "seeds/demo-firm/{} is not made by the generator: delete it, or regenerate with \
             `dataforge seed demo-firm --out seeds/demo-firm`",
            name.to_string_lossy()
        );
    }
    for f in &files {
        let name = f.file_name().unwrap();
        let committed = std::path::Path::new("seeds/demo-firm").join(name);
        let want = std::fs::read_to_string(f).unwrap();
        let have = std::fs::read_to_string(&committed).unwrap_or_default();
        if have != want {
            let line = have
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| have.lines().count().min(want.lines().count()));
            panic!(
                "{} differs from the generator's output from line {}; regenerate it with \
                 `dataforge seed demo-firm --out seeds/demo-firm`",
                committed.display(),
                line + 1
            );
        }
    }
}

#[test]
fn now_moves_every_date_with_the_anchor() {
    let p = profile::resolve("demo-firm").unwrap();
    let later = p.anchor + 400;
    let o = SeedOptions {
        seed: p.default_seed,
        scale: 1,
        anchor: later,
    };
    let d = seed::generate(&p, &o).unwrap();
    let col = |t: &seed::Table, c: &str| t.columns.iter().position(|x| x == c).unwrap();
    let cases = d.table("cases").unwrap();
    let opened = col(cases, "opened_at");
    for r in &cases.rows {
        let at = seed::gen::parse_time(r[opened].as_deref().unwrap()).unwrap();
        assert!(
            at < later * 86_400 && at >= (later - 730) * 86_400,
            "{:?}",
            r[opened]
        );
    }
    let tasks = d.table("tasks").unwrap();
    let due = col(tasks, "due_date");
    assert_eq!(
        tasks.rows[0][due].as_deref(),
        Some(seed::gen::format_date(later).as_str()),
        "the first task is due on the moved anchor"
    );
}
