//! `dataforge anonymize` and `snapshot import` with real databases on both ends: a live
//! source read inside one snapshot, a target loaded beside itself and swapped in, and
//! every way that can go wrong leaving the target as it was.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use common::{dataforge, exec, one, pagila, run, shared_tempdir, stderr, stdout, KEY};
use dataforge::fixtures::{empty_database, TestDb};

/// pagila's schema and data in one plain dump, as `pg_dump` without `--data-only` writes.
fn pagila_full(dir: &Path) -> Option<PathBuf> {
    let (schema, data) = (pagila("pagila-schema.sql")?, pagila("pagila-data.sql")?);
    let mut text = std::fs::read(schema).unwrap();
    text.extend(std::fs::read(data).unwrap());
    let p = dir.join("pagila-full.sql");
    std::fs::write(&p, text).unwrap();
    Some(p)
}

/// Loads `file` with psql, leniently: pagila's schema was dumped by PostgreSQL 17 and a
/// few of its statements fail on an older server (they hold no data).
fn psql_file(db: &TestDb, file: &Path) {
    let psql = dataforge::backup::find_tool("psql").expect("psql is installed");
    run(
        std::process::Command::new(psql)
            .args(["-X", "-q", "-d", db.url(), "-f"])
            .arg(file),
        0,
    );
}

/// Restores a plain SQL file with psql, stopping at the first error.
fn restore_strict(db: &TestDb, file: &Path) {
    let psql = dataforge::backup::find_tool("psql").expect("psql is installed");
    run(
        std::process::Command::new(psql)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db.url(), "-f"])
            .arg(file),
        0,
    );
}

fn anonymize(dir: &Path, args: &[&str], code: i32) -> std::process::Output {
    run(
        dataforge(dir)
            .env("DATAFORGE_KEY", KEY)
            .env("CI", "true")
            .arg("anonymize")
            // these tests are about moving rows; `verify` (tests/verify.rs) has its own,
            // and pagila's init config anonymizes reference data it would rightly flag
            .args(if args.first() == Some(&"init") {
                &[][..]
            } else {
                &["--no-verify"][..]
            })
            .args(args),
        code,
    )
}

/// Databases loaded beside `db` and left behind (by a failure).
async fn leftovers(db: &TestDb) -> i64 {
    let c = dataforge::pg::connect(db.url()).await.unwrap();
    c.query_one(
        "SELECT count(*) FROM pg_database WHERE starts_with(datname, $1 || '_dataforge_')",
        &[&db.name()],
    )
    .await
    .unwrap()
    .get(0)
}

/// pagila loaded into a database of its own, and `anonymize.toml` in `dir` written by
/// `init` from it (which reads the live catalog and samples).
async fn pagila_source(dir: &Path) -> Option<(PathBuf, TestDb)> {
    let full = pagila_full(dir)?;
    let src = empty_database().await.unwrap();
    psql_file(&src, &full);
    exec(src.url(), "ANALYZE").await;
    let config = stdout(&anonymize(dir, &["init", "--from", src.url()], 0));
    assert!(config.contains("[tables.customer]"), "{config}");
    assert!(
        config.contains("columns.email = \"email\""),
        "init suggests email for customer.email: {config}"
    );
    std::fs::write(dir.join("anonymize.toml"), &config).unwrap();
    Some((full, src))
}

#[tokio::test(flavor = "multi_thread")]
async fn live_to_live_keeps_foreign_keys_and_no_customer_pii() {
    let dir = shared_tempdir();
    let Some((_, src)) = pagila_source(dir.path()).await else {
        return;
    };

    // two targets: one by a single connection, one by two with tables cut in page ranges
    let a = empty_database().await.unwrap();
    let b = empty_database().await.unwrap();
    anonymize(
        dir.path(),
        &["--from", src.url(), "--to", a.url(), "--jobs", "1"],
        0,
    );
    let report = anonymize(
        dir.path(),
        &[
            "--from",
            src.url(),
            "--to",
            b.url(),
            "--jobs",
            "2",
            "--split-pages",
            "2",
            "--json",
        ],
        0,
    );
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let rental = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "public.rental")
        .unwrap();
    assert_eq!(rental["rows"], 16044, "{report}");

    for target in [&a, &b] {
        for table in ["rental", "payment", "customer", "address", "film_actor"] {
            let sql = format!("SELECT count(*) FROM public.{table}");
            let (want, got): (i64, i64) =
                (one(src.url(), &sql).await, one(target.url(), &sql).await);
            assert_eq!(want, got, "rows of {table}");
        }
        // every foreign key of the source exists in the copy (created after the data,
        // so the server checked every row against it)
        let fks = "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated";
        let (want, got): (i64, i64) = (one(src.url(), fks).await, one(target.url(), fks).await);
        assert!(want > 30, "pagila has its foreign keys: {want}");
        assert_eq!(want, got, "validated foreign keys");
        // the same rentals per customer
        let fan = "SELECT string_agg(customer_id || ':' || n, ',' ORDER BY customer_id)
                   FROM (SELECT customer_id, count(*) n FROM rental GROUP BY 1) s";
        let (want, got): (String, String) =
            (one(src.url(), fan).await, one(target.url(), fan).await);
        assert_eq!(want, got, "rentals per customer");
        // no customer's email or name survives
        let pii = "SELECT string_agg(email || '|' || first_name || '|' || last_name, ',' ORDER BY customer_id) FROM customer";
        let (before, after): (String, String) =
            (one(src.url(), pii).await, one(target.url(), pii).await);
        let before: std::collections::HashSet<&str> = before.split([',', '|']).collect();
        let leaked: Vec<&str> = after
            .split(',')
            .filter(|row| {
                let email = row.split('|').next().unwrap();
                before.contains(email)
            })
            .collect();
        assert!(leaked.is_empty(), "source emails in the copy: {leaked:?}");
        // the sequence hands out keys above the loaded ones
        let next: i64 = one(
            target.url(),
            "SELECT nextval('public.rental_rental_id_seq')",
        )
        .await;
        let max: i32 = one(target.url(), "SELECT max(rental_id) FROM rental").await;
        assert!(next > max as i64, "nextval {next} > max {max}");
    }
    // one key, one output: the two copies hold the same anonymized people
    let people = "SELECT string_agg(email || first_name || phone, ',' ORDER BY customer_id)
                  FROM customer JOIN address USING (address_id)";
    let (x, y): (String, String) = (one(a.url(), people).await, one(b.url(), people).await);
    assert_eq!(x, y, "deterministic across runs and job counts");
    assert_eq!(leftovers(&a).await + leftovers(&b).await, 0);
}

/// A small source: two tables joined by a foreign key, and a config for them.
async fn small_source(dir: &Path) -> TestDb {
    let src = empty_database().await.unwrap();
    exec(
        src.url(),
        "CREATE TABLE people (id serial PRIMARY KEY, email text UNIQUE, name text);
         CREATE TABLE orders (id serial PRIMARY KEY, person integer REFERENCES people, total numeric);
         INSERT INTO people (email, name)
           SELECT 'p' || i || '@firm.ro', 'Person ' || i FROM generate_series(1, 500) i;
         INSERT INTO orders (person, total) SELECT 1 + i % 500, i FROM generate_series(1, 2000) i;",
    )
    .await;
    std::fs::write(
        dir.join("anonymize.toml"),
        "[tables.people]\ncolumns.id = \"keep\"\ncolumns.email = \"email\"\ncolumns.name = \"full-name\"\n\n\
         [tables.orders]\ncolumns.id = \"keep\"\ncolumns.person = \"keep\"\ncolumns.total = \"keep\"\n\n\
         # the fixture's names are `Person N`, no real name's length: verify's length check\n\
         # is widened for them, every other check of the import's verify holds\n\
         [verify.columns.\"people.name\"]\nlength_tvd = 1.0\n",
    )
    .unwrap();
    src
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_midway_leaves_the_target_as_it_was() {
    let dir = shared_tempdir();
    let src = small_source(dir.path()).await;
    // the last table read has a value its transformer refuses
    exec(
        src.url(),
        "CREATE TABLE tickets (id integer PRIMARY KEY, ref integer);
         INSERT INTO tickets SELECT i, CASE WHEN i = 900 THEN -5 ELSE i END FROM generate_series(1, 1000) i;",
    )
    .await;
    let mut config = std::fs::read_to_string(dir.path().join("anonymize.toml")).unwrap();
    config.push_str("\n[tables.tickets]\ncolumns.id = \"keep\"\ncolumns.ref = \"integer-id\"\n");
    std::fs::write(dir.path().join("anonymize.toml"), config).unwrap();

    let target = empty_database().await.unwrap();
    exec(
        target.url(),
        "CREATE TABLE earlier (note text); INSERT INTO earlier VALUES ('kept');",
    )
    .await;

    // without --replace a target holding tables is refused outright
    let e = stderr(&anonymize(
        dir.path(),
        &["--from", src.url(), "--to", target.url()],
        2,
    ));
    assert!(
        e.contains("already holds 1 table; nothing was done. Pass --replace"),
        "{e}"
    );
    // with it, the load fails on the bad row and the target stays as it was
    let e = stderr(&anonymize(
        dir.path(),
        &["--from", src.url(), "--to", target.url(), "--replace"],
        2,
    ));
    assert!(e.contains("public.tickets"), "{e}");
    assert!(e.contains("column ref"), "{e}");
    assert!(e.contains("nothing was loaded"), "{e}");
    let kept: String = one(target.url(), "SELECT note FROM earlier").await;
    assert_eq!(kept, "kept");
    let tables: i64 = one(
        target.url(),
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
    )
    .await;
    assert_eq!(tables, 1, "only the target's own table");
    assert_eq!(
        leftovers(&target).await,
        0,
        "the half-loaded copy was dropped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_import_checks_the_copy_before_swapping_it_in() {
    let dir = shared_tempdir();
    let src = small_source(dir.path()).await;
    let target = empty_database().await.unwrap();
    exec(target.url(), "CREATE TABLE earlier (note text);").await;
    let out = run(
        dataforge(dir.path()).env("DATAFORGE_KEY", KEY).args([
            "snapshot",
            "import",
            "--from",
            src.url(),
            "--to",
            target.url(),
            "--replace",
        ]),
        0,
    );
    let e = stderr(&out);
    assert!(
        e.contains("check row counts: 2 tables hold every row read"),
        "{e}"
    );
    assert!(e.contains("check schema objects: all"), "{e}");
    let orders: i64 = one(
        target.url(),
        "SELECT count(*) FROM orders o JOIN people p ON p.id = o.person",
    )
    .await;
    assert_eq!(orders, 2000, "every order still joins its person");
    let earlier: i64 = one(
        target.url(),
        "SELECT count(*) FROM pg_tables WHERE tablename = 'earlier'",
    )
    .await;
    assert_eq!(earlier, 0, "the target was replaced");
    let leaked: i64 = one(
        target.url(),
        "SELECT count(*) FROM people WHERE email LIKE '%@firm.ro'",
    )
    .await;
    assert_eq!(leaked, 0);
    // serial keys continue above the loaded ones
    let next: i32 = one(target.url(), "SELECT nextval('people_id_seq')::int").await;
    assert_eq!(next, 501);

    // a row filter that leaves orders without their people: the foreign key cannot be
    // created in the copy, so the copy is incomplete (exit 2) and the target keeps what
    // it had
    let config = std::fs::read_to_string(dir.path().join("anonymize.toml")).unwrap();
    std::fs::write(
        dir.path().join("filtered.toml"),
        config.replace(
            "[tables.people]\n",
            "[tables.people]\nwhere = \"id > 10\"\n",
        ),
    )
    .unwrap();
    let e = stderr(&run(
        dataforge(dir.path()).env("DATAFORGE_KEY", KEY).args([
            "snapshot",
            "import",
            "--config",
            "filtered.toml",
            "--from",
            src.url(),
            "--to",
            target.url(),
            "--replace",
        ]),
        2,
    ));
    assert!(e.contains("is not a complete copy of the source"), "{e}");
    assert!(
        e.contains("orders_person_fkey"),
        "the refused constraint is named: {e}"
    );
    assert!(e.contains("is as it was"), "{e}");
    let people: i64 = one(target.url(), "SELECT count(*) FROM people").await;
    assert_eq!(people, 500, "the earlier import is still there");
    assert_eq!(leftovers(&target).await, 0);

    // a target marked production is never replaced
    run(
        dataforge(dir.path()).args(["mark", "production", "--database-url", target.url()]),
        0,
    );
    let e = stderr(&run(
        dataforge(dir.path()).env("DATAFORGE_KEY", KEY).args([
            "snapshot",
            "import",
            "--from",
            src.url(),
            "--to",
            target.url(),
            "--replace",
        ]),
        2,
    ));
    assert!(e.contains("refusing to load anonymized data into"), "{e}");
    assert!(e.contains("marked production"), "{e}");

    // the source and the target cannot be one database
    let e = stderr(&run(
        dataforge(dir.path()).env("DATAFORGE_KEY", KEY).args([
            "snapshot",
            "import",
            "--from",
            src.url(),
            "--to",
            src.url(),
            "--replace",
        ]),
        2,
    ));
    assert!(
        e.contains("the source and the target are the same database"),
        "{e}"
    );
    // however the URL spells the server: `localhost` for `127.0.0.1`
    let aliased = if src.url().contains("@127.0.0.1:") {
        src.url().replacen("@127.0.0.1:", "@localhost:", 1)
    } else {
        src.url().replacen("@localhost:", "@127.0.0.1:", 1)
    };
    assert_ne!(
        aliased,
        src.url(),
        "the test server is reached over TCP by name or address"
    );
    let e = stderr(&run(
        dataforge(dir.path()).env("DATAFORGE_KEY", KEY).args([
            "snapshot",
            "import",
            "--from",
            src.url(),
            "--to",
            &aliased,
            "--replace",
        ]),
        2,
    ));
    assert!(
        e.contains("the source and the target are the same database"),
        "{e}"
    );
    assert!(!e.contains("loaded"), "nothing was loaded: {e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_filter_reads_only_matching_rows_of_a_live_source() {
    let dir = shared_tempdir();
    let src = small_source(dir.path()).await;
    let config = std::fs::read_to_string(dir.path().join("anonymize.toml")).unwrap();
    let config = config.replace(
        "[tables.orders]\n",
        "[tables.orders]\nwhere = \"total <= 100\"\n",
    );
    std::fs::write(dir.path().join("anonymize.toml"), config).unwrap();
    let target = empty_database().await.unwrap();
    anonymize(dir.path(), &["--from", src.url(), "--to", target.url()], 0);
    let n: i64 = one(target.url(), "SELECT count(*) FROM orders").await;
    assert_eq!(n, 100);

    // a dump's rows cannot be filtered: the config says where the filter is
    let dump = dir.path().join("in.sql");
    std::fs::write(
        &dump,
        "CREATE TABLE public.orders (id int, person int, total numeric);\n\
         CREATE TABLE public.people (id int, email text, name text);\n\
         COPY public.orders (id, person, total) FROM stdin;\n1\t1\t5\n\\.\n\
         COPY public.people (id, email, name) FROM stdin;\n1\ta@b.ro\tAna\n\\.\n",
    )
    .unwrap();
    let e = stderr(&anonymize(
        dir.path(),
        &["--from", "in.sql", "--to", "out.sql"],
        2,
    ));
    assert!(
        e.contains(
            "anonymize.toml:7:9: table public.orders: `where` filters the rows of a live database"
        ),
        "{e}"
    );
    assert!(!dir.path().join("out.sql").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dump_from_a_newer_server_fails_on_a_lost_object_and_notes_a_lost_setting() {
    let dir = shared_tempdir();
    let Some((full, src)) = pagila_source(dir.path()).await else {
        return;
    };

    let server: i32 = one(
        src.url(),
        "SELECT current_setting('server_version_num')::int",
    )
    .await;
    let target = empty_database().await.unwrap();
    exec(
        target.url(),
        "CREATE TABLE earlier (note text); INSERT INTO earlier VALUES ('kept');",
    )
    .await;
    // A statement no server of any version knows, in a view (a lost object): the run
    // fails naming it, and the target keeps what it had. On servers before 17, pagila's
    // own view over JSON_TABLE is refused the same way (issue 14).
    let text = std::fs::read_to_string(&full).unwrap();
    let at = text
        .find("\n\n--\n")
        .expect("a blank line after the header's settings")
        + 2;
    let line = text[..at].lines().count() + 1;
    let with_line = |insert: &str, name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{}{insert}\n{}", &text[..at], &text[at..])).unwrap();
        path
    };
    let newer = with_line(
        "CREATE VIEW public.from_a_newer_server AS SELECT 1 FROM public.actor WITH FUTURE;",
        "pagila-newer.sql",
    );
    let e = stderr(&anonymize(
        dir.path(),
        &[
            "--from",
            newer.to_str().unwrap(),
            "--to",
            target.url(),
            "--replace",
        ],
        2,
    ));
    assert!(e.contains("is not a complete copy of the source"), "{e}");
    assert!(
        e.contains(&format!(
            "pagila-newer.sql:{line}: CREATE VIEW public.from_a_newer_server"
        )),
        "the statement and its place: {e}"
    );
    assert!(e.contains("SQLSTATE 42601"), "the server's diagnostic: {e}");
    assert!(e.contains("is as it was"), "{e}");
    if server < 170000 {
        assert!(
            e.contains("CREATE VIEW public.films_per_customer_rental"),
            "pagila's own JSON_TABLE view, refused before PostgreSQL 17: {e}"
        );
    }
    let kept: String = one(target.url(), "SELECT note FROM earlier").await;
    assert_eq!(kept, "kept");
    assert_eq!(leftovers(&target).await, 0);

    // the same dump without that view: only a session setting is unknown, which loses
    // nothing, so the run goes on with a note naming it
    let start = text
        .find("CREATE VIEW public.films_per_customer_rental")
        .expect("pagila has the view");
    let owner = "ALTER VIEW public.films_per_customer_rental OWNER TO postgres;\n";
    let end = text.find(owner).expect("and its owner") + owner.len();
    let trimmed = dir.path().join("pagila-trimmed.sql");
    // and a setting no server knows, where pagila's header sets its own
    std::fs::write(
        &trimmed,
        format!(
            "{}SET setting_from_a_newer_server = 0;\n{}{}",
            &text[..at],
            &text[at..start],
            &text[end..]
        ),
    )
    .unwrap();
    let out = anonymize(
        dir.path(),
        &[
            "--from",
            trimmed.to_str().unwrap(),
            "--to",
            target.url(),
            "--replace",
        ],
        0,
    );
    let e = stderr(&out);
    assert!(
        e.contains(&format!(
            "pagila-trimmed.sql:{line}: SET setting_from_a_newer_server = 0"
        )),
        "the statement and its place: {e}"
    );
    assert!(
        e.contains("unrecognized configuration parameter \"setting_from_a_newer_server\""),
        "the server's message: {e}"
    );
    assert!(e.contains("session setting"), "{e}");
    if server < 170000 {
        assert!(
            e.contains("pagila-trimmed.sql:11: SET transaction_timeout = 0"),
            "the statement and its place: {e}"
        );
        assert!(
            e.contains("unrecognized configuration parameter \"transaction_timeout\""),
            "the server's message: {e}"
        );
        assert!(e.contains("session setting"), "{e}");
    }
    for table in ["rental", "payment", "customer"] {
        let sql = format!("SELECT count(*) FROM public.{table}");
        let (want, got): (i64, i64) = (one(src.url(), &sql).await, one(target.url(), &sql).await);
        assert_eq!(want, got, "rows of {table}");
    }

    // a data-only dump has no schema to build the new database from
    let data = pagila("pagila-data.sql").unwrap();
    let empty = empty_database().await.unwrap();
    let e = stderr(&anonymize(
        dir.path(),
        &["--from", data.to_str().unwrap(), "--to", empty.url()],
        2,
    ));
    assert!(e.contains("no CREATE TABLE for"), "{e}");
    assert!(e.contains("public.actor"), "{e}");
    assert!(e.contains("--data-only"), "{e}");
    assert_eq!(leftovers(&empty).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_format_archives_are_read_through_pg_restore() {
    let dir = shared_tempdir();
    let src = small_source(dir.path()).await;
    let pg_dump = dataforge::backup::find_tool("pg_dump").unwrap();
    let archive = dir.path().join("prod.dump");
    let st = std::process::Command::new(pg_dump)
        .args(["-Fc", "-f"])
        .arg(&archive)
        .arg(src.url())
        .status()
        .unwrap();
    assert!(st.success());
    let out = anonymize(
        dir.path(),
        &["--from", "prod.dump", "--to", "dev.sql", "--json"],
        0,
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["values_by_transformer"]["email"], 500, "{report}");
    let text = std::fs::read_to_string(dir.path().join("dev.sql")).unwrap();
    assert!(text.contains("COPY public.people (id, email, name) FROM stdin;"));
    assert!(!text.contains("@firm.ro"), "no source email in the output");
    // it restores
    let target = empty_database().await.unwrap();
    restore_strict(&target, &dir.path().join("dev.sql"));
    let n: i64 = one(target.url(), "SELECT count(*) FROM orders").await;
    assert_eq!(n, 2000);

    // a damaged archive: pg_restore's own message, and no output file
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(dir.path().join("cut.dump"), bytes).unwrap();
    let e = stderr(&anonymize(
        dir.path(),
        &["--from", "cut.dump", "--to", "cut.sql"],
        2,
    ));
    assert!(e.contains("pg_restore failed"), "{e}");
    assert!(!dir.path().join("cut.sql").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn live_to_file_restores_with_psql_and_is_the_same_at_any_job_count() {
    let dir = shared_tempdir();
    let src = small_source(dir.path()).await;
    for (jobs, file) in [("1", "one.sql"), ("2", "two.sql")] {
        let out = anonymize(
            dir.path(),
            &["--from", src.url(), "--to", file, "--jobs", jobs, "--json"],
            0,
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["values_by_transformer"]["email"], 500, "{report}");
    }
    // pg_dump's schema carries a random \restrict key per run; the data is the same
    let data = |f: &str| -> Vec<String> {
        std::fs::read_to_string(dir.path().join(f))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(data("one.sql"), data("two.sql"));
    let text = std::fs::read_to_string(dir.path().join("one.sql")).unwrap();
    assert!(!text.contains("@firm.ro"), "no source email in the file");
    assert!(text.contains("SELECT pg_catalog.setval('public.people_id_seq', 500, true);"));

    let target = empty_database().await.unwrap();
    restore_strict(&target, &dir.path().join("one.sql"));
    let joined: i64 = one(
        target.url(),
        "SELECT count(*) FROM orders o JOIN people p ON p.id = o.person",
    )
    .await;
    assert_eq!(joined, 2000);
    let fk: i64 = one(
        target.url(),
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f'",
    )
    .await;
    assert_eq!(fk, 1);
}

/// A generated phone or e-mail is never one the source holds — neither this row's own
/// nor another customer's real one (issue 14). 4,000 numbers in a space of 9,000: a keyed
/// draw alone would hit a real number about 1,800 times; every hit must be drawn again.
#[tokio::test(flavor = "multi_thread")]
async fn generated_identifying_values_are_never_the_sources_own() {
    let dir = shared_tempdir();
    let src = empty_database().await.unwrap();
    exec(
        src.url(),
        "CREATE TABLE people (id int PRIMARY KEY, phone text, email text);
         INSERT INTO people
           SELECT i, '+40 721 ' || (1000 + 2 * i), 'p' || i || '@x.example'
           FROM generate_series(0, 3999) i;",
    )
    .await;
    std::fs::write(
        dir.path().join("anonymize.toml"),
        "[tables.people]\ncolumns.id = \"keep\"\n\
         columns.phone = { transformer = \"phone\", keep_prefix = 5 }\n\
         columns.email = { transformer = \"email\", domain_name = \"x.example\" }\n",
    )
    .unwrap();
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let values = |rows: Vec<tokio_postgres::Row>| -> (HashSet<String>, HashSet<String>) {
        rows.iter()
            .map(|r| (digits(r.get(0)), r.get::<_, String>(1).to_lowercase()))
            .unzip()
    };
    let read = |url: String| async move {
        let c = dataforge::pg::connect(&url).await.unwrap();
        values(
            c.query("SELECT phone, email FROM people", &[])
                .await
                .unwrap(),
        )
    };
    let (phones, emails) = read(src.url().to_string()).await;
    assert_eq!(phones.len(), 4000);

    // live → live, and the same source as a plain dump → live
    let dump = dir.path().join("people.sql");
    let pg_dump = dataforge::backup::find_tool("pg_dump").unwrap();
    let ok = std::process::Command::new(pg_dump)
        .args(["-d", src.url(), "-f"])
        .arg(&dump)
        .status()
        .unwrap();
    assert!(ok.success());
    for from in [src.url().to_string(), dump.to_string_lossy().into_owned()] {
        let target = empty_database().await.unwrap();
        anonymize(dir.path(), &["--from", &from, "--to", target.url()], 0);
        let (out_phones, out_emails) = read(target.url().to_string()).await;
        assert!(
            out_phones
                .iter()
                .all(|p| p.starts_with("40721") && p.len() == 9),
            "{from}: prefix and length kept"
        );
        let real: Vec<&String> = out_phones.intersection(&phones).collect();
        assert!(
            real.is_empty(),
            "{from}: {} real numbers written",
            real.len()
        );
        assert!(
            out_emails.is_disjoint(&emails),
            "{from}: a real address written"
        );
    }
}

/// `--to` in libpq's key=value form loads into that database, as psql would connect —
/// not into a file named after the string (which held the password).
#[tokio::test(flavor = "multi_thread")]
async fn a_key_value_connection_string_is_a_database() {
    let dir = shared_tempdir();
    let src = small_source(dir.path()).await;
    let dst = empty_database().await.unwrap();
    // postgresql://postgres@127.0.0.1:PORT/NAME → host=… port=… dbname=… user=…
    let rest = dst.url().split_once("@").unwrap().1;
    let (hostport, db) = rest.split_once('/').unwrap();
    let (host, port) = hostport.split_once(':').unwrap();
    let conninfo = format!("host={host} port={port} dbname={db} user=postgres");
    anonymize(dir.path(), &["--from", src.url(), "--to", &conninfo], 0);
    assert_eq!(
        one::<i64>(dst.url(), "SELECT count(*) FROM people").await,
        500
    );
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains('='))
        .collect();
    assert!(files.is_empty(), "{files:?}");
}
