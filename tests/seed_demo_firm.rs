//! The demo-firm seed against a real PostgreSQL server: what it holds, that it is
//! reproducible and idempotent, and that failures leave the database as it was.

mod common;

use common::count;
use dataforge::fixtures::{empty_database, Fixture};
use dataforge::seed::{self, profile, ApplyOptions, SeedOptions};
use tokio_postgres::Client;

async fn strings(c: &Client, sql: &str) -> Vec<String> {
    c.query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn demo() -> (profile::Profile, SeedOptions) {
    let p = profile::resolve("demo-firm").unwrap();
    let o = SeedOptions {
        seed: p.default_seed,
        scale: 1,
        anchor: p.anchor,
    };
    (p, o)
}

/// Whether a database of that name exists on the test server.
async fn database_exists(name: &str) -> bool {
    let admin = dataforge::pg::connect(&dataforge::fixtures::server_url().unwrap())
        .await
        .unwrap();
    let n: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .unwrap()
        .get(0);
    n == 1
}

#[tokio::test]
async fn demo_firm_holds_the_specified_firm_people_and_mixes() {
    let db = Fixture::new("demo-firm").create().await.unwrap();
    let c = db.connect().await.unwrap();

    let firm = c
        .query_one("SELECT name, address, vat_id, email, phone FROM firms", &[])
        .await
        .unwrap();
    let firm: Vec<String> = (0..5).map(|i| firm.get(i)).collect();
    assert_eq!(
        firm,
        [
            "Demo Law Firm S.R.L.",
            "Strada Demo 123, Bucharest, Romania",
            "RO12345678",
            "demo@lawfirm.ro",
            "+40-123-456-789"
        ]
    );

    let users = strings(
        &c,
        "SELECT role::text || ' ' || email || ' ' || azure_ad_id FROM users ORDER BY email",
    )
    .await;
    assert_eq!(
        users,
        [
            "Associate associate1@demo.lawfirm.ro aad-assoc1-demo",
            "Associate associate2@demo.lawfirm.ro aad-assoc2-demo",
            "Paralegal paralegal1@demo.lawfirm.ro aad-para1-demo",
            "Paralegal paralegal2@demo.lawfirm.ro aad-para2-demo",
            "Partner partner@demo.lawfirm.ro aad-partner-demo",
        ]
    );

    let mix = |table: &str, col: &str| {
        format!("SELECT {col}::text || '=' || count(*) FROM {table} GROUP BY {col} ORDER BY {col}::text")
    };
    assert_eq!(
        strings(&c, &mix("cases", "status")).await,
        ["Active=4", "Archived=2", "Closed=2", "OnHold=2"]
    );
    assert_eq!(
        count(&c, "SELECT count(DISTINCT case_type) FROM cases").await,
        count(
            &c,
            "SELECT count(*) FROM unnest(enum_range(NULL::\"CaseType\"))"
        )
        .await
    );
    assert_eq!(
        count(&c, "SELECT count(DISTINCT case_number) FROM cases").await,
        10
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM cases WHERE opened_at >= timestamptz '2026-01-15' - interval '2 years' \
             AND opened_at < timestamptz '2026-01-15'"
        )
        .await,
        10
    );

    assert_eq!(
        strings(&c, &mix("documents", "status")).await,
        ["Approved=4", "Draft=8", "Filed=2", "Review=6"]
    );
    assert_eq!(
        count(&c, "SELECT count(DISTINCT document_type) FROM documents").await,
        count(
            &c,
            "SELECT count(*) FROM unnest(enum_range(NULL::\"DocumentType\"))"
        )
        .await
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM documents WHERE ai_generated").await,
        10
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM documents WHERE content_embedding IS NULL"
        )
        .await,
        20
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM documents WHERE storage_url LIKE 'https://storage.example.com/%'"
        )
        .await,
        20
    );

    assert_eq!(count(&c, "SELECT count(*) FROM tasks").await, 30);
    assert_eq!(
        count(&c, "SELECT count(DISTINCT task_type) FROM tasks").await,
        count(
            &c,
            "SELECT count(*) FROM unnest(enum_range(NULL::\"TaskType\"))"
        )
        .await
    );
    assert_eq!(
        strings(&c, &mix("tasks", "status")).await,
        ["Completed=10", "InProgress=10", "Pending=10"]
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM tasks t JOIN users u ON u.id = t.assignee_id WHERE u.role = 'Partner'").await,
        0
    );
    assert!(
        count(
            &c,
            "SELECT count(*) FROM tasks WHERE due_date < '2026-01-15' AND status <> 'Completed'"
        )
        .await
            > 0,
        "no overdue task"
    );
    assert!(
        count(
            &c,
            "SELECT count(*) FROM tasks WHERE due_date > '2026-01-15'"
        )
        .await
            > 0,
        "no upcoming task"
    );
}

#[tokio::test]
async fn demo_firm_has_its_edge_cases_and_coherent_timelines() {
    let db = Fixture::new("demo-firm").create().await.unwrap();
    let c = db.connect().await.unwrap();
    // Romanian diacritics in names and titles
    assert!(
        count(
            &c,
            "SELECT count(*) FROM users WHERE first_name || last_name ~ '[șțăîâȘȚĂÎÂ]'"
        )
        .await
            > 0
    );
    assert!(count(&c, "SELECT count(*) FROM cases WHERE title ~ '[șțăîâ]'").await > 0);
    // a title at its column's maximum length
    assert_eq!(
        count(&c, "SELECT max(char_length(title))::bigint FROM cases").await,
        count(
            &c,
            "SELECT character_maximum_length::bigint FROM information_schema.columns \
             WHERE table_name = 'cases' AND column_name = 'title'"
        )
        .await
    );
    // optional fields NULL
    assert!(count(&c, "SELECT count(*) FROM clients WHERE email IS NULL").await > 0);
    assert!(count(&c, "SELECT count(*) FROM cases WHERE description IS NULL").await > 0);
    // a case with no documents
    assert!(
        count(&c, "SELECT count(*) FROM cases k WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.case_id = k.id)").await
            > 0
    );
    // a task due on the anchor date
    assert!(
        count(
            &c,
            "SELECT count(*) FROM tasks WHERE due_date = '2026-01-15'"
        )
        .await
            >= 1
    );
    // timelines
    assert_eq!(
        count(&c, "SELECT count(*) FROM documents d JOIN cases k ON k.id = d.case_id WHERE d.created_at < k.opened_at").await,
        0
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM documents d JOIN cases k ON k.id = d.case_id WHERE d.created_at > coalesce(k.closed_at, '2026-01-15')").await,
        0
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM tasks t JOIN cases k ON k.id = t.case_id WHERE t.due_date < k.opened_at::date").await,
        0
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM cases WHERE (closed_at IS NOT NULL) <> (status IN ('Closed', 'Archived'))").await,
        0
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM cases WHERE closed_at <= opened_at"
        )
        .await,
        0
    );
    // contact data only on reserved domains and the fictional phone range
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM clients WHERE email NOT LIKE '%@example.com'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM clients WHERE phone NOT LIKE '+44 7700 900%'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_second_run_writes_nothing_and_rows_keep_their_xmin() {
    let db = Fixture::new("demo-firm").create().await.unwrap();
    let mut c = db.connect().await.unwrap();
    let xmins = "SELECT string_agg(t || ':' || x, ',' ORDER BY t, x) FROM (\
        SELECT 'firms' t, xmin::text x FROM firms UNION ALL SELECT 'users', xmin::text FROM users \
        UNION ALL SELECT 'cases', xmin::text FROM cases UNION ALL SELECT 'tasks', xmin::text FROM tasks \
        UNION ALL SELECT 'documents', xmin::text FROM documents) s";
    let before: String = c.query_one(xmins, &[]).await.unwrap().get(0);
    let (p, o) = demo();
    let outcome = seed::apply(&mut c, &p, &o, ApplyOptions::default())
        .await
        .unwrap();
    for (table, counts) in &outcome.tables {
        assert_eq!(
            (counts.inserted, counts.updated, counts.deleted),
            (0, 0, 0),
            "{table}"
        );
    }
    assert_eq!(
        outcome.tables.iter().map(|(_, c)| c.unchanged).sum::<u64>(),
        74
    );
    let after: String = c.query_one(xmins, &[]).await.unwrap().get(0);
    assert_eq!(before, after, "an unchanged row was rewritten");
}

#[tokio::test]
async fn a_row_edited_by_hand_is_restored_and_extra_rows_go_only_with_prune() {
    let db = Fixture::new("demo-firm").create().await.unwrap();
    let mut c = db.connect().await.unwrap();
    c.batch_execute(
        "UPDATE cases SET title = 'edited by hand' WHERE case_number LIKE 'DLF-%-00002';
         INSERT INTO tasks (id, case_id, assignee_id, title, task_type, status, due_date)
         SELECT gen_random_uuid(), case_id, assignee_id, 'hand-made task', task_type, status, due_date
         FROM tasks LIMIT 1;",
    )
    .await
    .unwrap();
    let (p, o) = demo();
    let outcome = seed::apply(&mut c, &p, &o, ApplyOptions::default())
        .await
        .unwrap();
    let cases = outcome.tables.iter().find(|(t, _)| t == "cases").unwrap().1;
    assert_eq!((cases.updated, cases.unchanged), (1, 9));
    let tasks = outcome.tables.iter().find(|(t, _)| t == "tasks").unwrap().1;
    assert_eq!((tasks.deleted, tasks.kept_extra), (0, 1));
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM cases WHERE title = 'edited by hand'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM tasks WHERE title = 'hand-made task'"
        )
        .await,
        1
    );

    let pruned = seed::apply(
        &mut c,
        &p,
        &o,
        ApplyOptions {
            prune: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let tasks = pruned.tables.iter().find(|(t, _)| t == "tasks").unwrap().1;
    assert_eq!(tasks.deleted, 1);
    assert_eq!(count(&c, "SELECT count(*) FROM tasks").await, 30);
}

#[tokio::test]
async fn dry_run_reports_the_plan_and_writes_nothing() {
    let db = empty_database().await.unwrap();
    let mut c = db.connect().await.unwrap();
    let (p, o) = demo();
    let outcome = seed::apply(
        &mut c,
        &p,
        &o,
        ApplyOptions {
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome.migrations_applied.len(), 2);
    assert_eq!(
        outcome.tables.iter().map(|(_, c)| c.inserted).sum::<u64>(),
        74
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        )
        .await,
        0,
        "a dry run left tables behind"
    );
}

#[tokio::test]
async fn a_constraint_violation_names_the_table_and_writes_nothing() {
    let db = Fixture::new("demo-firm").create().await.unwrap();
    let mut c = db.connect().await.unwrap();
    // A hand-made user holds an email the seed is about to give to a new user (scale 6
    // adds user6@…): the seed must fail on the unique index and change nothing.
    c.batch_execute(
        "INSERT INTO users (id, firm_id, email, first_name, last_name, role, created_at)
         SELECT gen_random_uuid(), firm_id, 'user6@demo.lawfirm.ro', 'A', 'B', 'Paralegal', now()
         FROM users LIMIT 1",
    )
    .await
    .unwrap();
    let snapshot = "SELECT md5(string_agg(x, '' ORDER BY x)) FROM (SELECT t::text x FROM users t \
                    UNION ALL SELECT t::text FROM cases t UNION ALL SELECT t::text FROM tasks t) s";
    let before: String = c.query_one(snapshot, &[]).await.unwrap().get(0);
    let (p, mut o) = demo();
    o.scale = 6;
    let err = seed::apply(&mut c, &p, &o, ApplyOptions::default())
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("loading table users"), "{msg}");
    assert!(msg.contains("users_email_key"), "{msg}");
    assert!(msg.contains("Key (email)=(user6@demo.lawfirm.ro)"), "{msg}");
    assert!(msg.contains("SQLSTATE 23505"), "{msg}");
    assert!(msg.contains("nothing was written"), "{msg}");
    let after: String = c.query_one(snapshot, &[]).await.unwrap().get(0);
    assert_eq!(before, after);
}

#[tokio::test]
async fn a_failed_first_seed_rolls_back_the_schema_too() {
    let dir = tempfile::tempdir().unwrap();
    let mig = dir.path().join("p/migrations/20250101000000_init");
    std::fs::create_dir_all(&mig).unwrap();
    std::fs::write(
        mig.join("migration.sql"),
        "CREATE TABLE things (id uuid PRIMARY KEY, n integer NOT NULL CHECK (n > 0));",
    )
    .unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(
        &file,
        "[profile]\nname = \"p\"\nmigrations = \"p/migrations\"\nanchor = \"2026-01-01\"\n\
         [[entity]]\nname = \"things\"\ncount = 3\n[entity.columns]\nn = { integer = [-5, -1] }\n",
    )
    .unwrap();
    let p = profile::load_file(&file).unwrap();
    let o = SeedOptions {
        seed: 1,
        scale: 1,
        anchor: p.anchor,
    };
    let db = empty_database().await.unwrap();
    let mut c = db.connect().await.unwrap();
    let msg = format!(
        "{:#}",
        seed::apply(&mut c, &p, &o, ApplyOptions::default())
            .await
            .unwrap_err()
    );
    assert!(msg.contains("things_n_check"), "{msg}");
    assert!(msg.contains("table things"), "{msg}");
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        )
        .await,
        0,
        "the migration applied by the failed seed was not rolled back"
    );
}

#[tokio::test]
async fn a_different_schema_is_refused_naming_what_is_missing() {
    let db = empty_database().await.unwrap();
    let mut c = db.connect().await.unwrap();
    c.batch_execute("CREATE TABLE firms (id uuid PRIMARY KEY, name text)")
        .await
        .unwrap();
    let (p, o) = demo();
    let msg = seed::apply(&mut c, &p, &o, ApplyOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("column firms.vat_id is missing"), "{msg}");
    assert!(msg.contains("table users is missing"), "{msg}");
    assert!(
        msg.contains("dataforge migrate up --dir profiles/demo-firm/migrations"),
        "{msg}"
    );
}

#[tokio::test]
async fn fixture_databases_are_independent_and_dropped_after_a_passing_test() {
    let a = Fixture::new("demo-firm").create().await.unwrap();
    let b = Fixture::new("demo-firm").create().await.unwrap();
    assert_ne!(a.name(), b.name());
    let ca = a.connect().await.unwrap();
    ca.batch_execute("DELETE FROM tasks").await.unwrap();
    let cb = b.connect().await.unwrap();
    assert_eq!(count(&cb, "SELECT count(*) FROM tasks").await, 30);
    let name = a.name().to_string();
    drop(ca);
    drop(a);
    assert!(
        !database_exists(&name).await,
        "the test database was not dropped"
    );
}

#[test]
fn a_failing_test_keeps_its_database() {
    // A test body that panics while holding a TestDb, on a thread of its own.
    let handle = std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let db = rt.block_on(Fixture::new("demo-firm").create()).unwrap();
        let name = db.name().to_string();
        std::panic::panic_any(name);
    });
    let name = *handle
        .join()
        .expect_err("the test body panicked")
        .downcast::<String>()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert!(
            database_exists(&name).await,
            "the failed test's database {name} was dropped"
        );
        let admin = dataforge::pg::connect(&dataforge::fixtures::server_url().unwrap())
            .await
            .unwrap();
        admin
            .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
            .await
            .unwrap();
    });
}
