//! `[subset]`: a consistent slice of a live source (issue 19), on pagila (real pg_dump
//! output, with partitions and foreign keys only some partitions declare) and on shapes
//! made to break a closure (a self-reference, a mutual pair).

mod common;

use std::path::{Path, PathBuf};

use common::{
    dataforge, exec, one, pagila, partitioned_config, run, shared_tempdir, stderr, stdout, KEY,
    PARTITIONED_SQL,
};
use dataforge::fixtures::{empty_database, TestDb};

/// pagila loaded into a database of its own, and `init`'s config for it with the
/// three reference columns verify needs (docs/verify.md), or `None` when the dataset is
/// absent.
async fn pagila_source(dir: &Path) -> Option<(TestDb, String)> {
    let (schema, data) = (pagila("pagila-schema.sql")?, pagila("pagila-data.sql")?);
    let src = empty_database().await.unwrap();
    for file in [schema, data] {
        // leniently: pagila's schema was dumped by PostgreSQL 17, and a few of its
        // statements (no data) fail on an older server
        let psql = dataforge::backup::find_tool("psql").expect("psql is installed");
        run(
            std::process::Command::new(psql)
                .args(["-X", "-q", "-d", src.url(), "-f"])
                .arg(file),
            0,
        );
    }
    exec(src.url(), "ANALYZE").await;
    let init = stdout(&run(
        dataforge(dir)
            .env("DATAFORGE_KEY", KEY)
            .args(["anonymize", "init", "--from", src.url()]),
        0,
    ));
    let config = init
        + "\n[verify.columns.\"address.district\"]\nreference = \"district names, some also city names\"\n\
           \n[verify.columns.\"country.country\"]\nreference = \"country names, one also a first name\"\n\
           \n[verify.columns.\"film.title\"]\nreference = \"film titles, published\"\n";
    Some((src, config))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn anonymize(dir: &Path, key: &str, args: &[&str], code: i32) -> std::process::Output {
    run(
        dataforge(dir)
            .env("DATAFORGE_KEY", key)
            .env("CI", "true")
            .arg("anonymize")
            .args(args),
        code,
    )
}

/// `anonymize --dry-run --json` of `from` under the config at `path`: its report.
fn dry_run(dir: &Path, path: &str, from: &str) -> serde_json::Value {
    let o = anonymize(
        dir,
        KEY,
        &["--config", path, "--from", from, "--dry-run", "--json"],
        0,
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The rows a dry run's report says the subset keeps of `table`.
fn kept(report: &serde_json::Value, table: &str) -> i64 {
    report["subset"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == table)
        .unwrap_or_else(|| panic!("{table} in {report}"))["rows"]
        .as_i64()
        .unwrap()
}

/// The ids `sql` lists on `url`, joined by commas (for an `IN (…)` on the other side).
async fn ids(url: &str, sql: &str) -> String {
    one::<Option<String>>(url, sql).await.unwrap_or_default()
}

const PAGILA_SUBSET: &str = "
[subset]
targets = [{ table = \"public.customer\", percent = 10 }]
children = \"all\"
passthrough = [\"public.film\"]
";

/// pagila's payment partitions for 2006 and for 2007-07 on declare no foreign key:
/// these two relations say what their columns hold.
const PAYMENT_RELATIONS: &str = "
[[subset.relations]]
from = \"public.payment.customer_id\"
to = \"public.customer.customer_id\"

[[subset.relations]]
from = \"public.payment.rental_id\"
to = \"public.rental.rental_id\"
";

/// The acceptance run: 10% of customers, every rental and payment of theirs, every row
/// those refer to, all films; every constraint of the source restored; verify passes
/// against the source's kept rows and fails on a copy missing one of them.
#[tokio::test(flavor = "multi_thread")]
async fn pagila_ten_percent_of_customers_keeps_their_rentals_payments_and_all_films() {
    let dir = shared_tempdir();
    let Some((src, config)) = pagila_source(dir.path()).await else {
        return;
    };
    let path = write(
        dir.path(),
        "anonymize.toml",
        &format!("{config}{PAGILA_SUBSET}{PAYMENT_RELATIONS}"),
    );
    let path = path.to_str().unwrap();

    // the dry run: per table, what is kept and why, before anything is copied
    let dry = anonymize(
        dir.path(),
        KEY,
        &["--config", path, "--from", src.url(), "--dry-run"],
        0,
    );
    let text = stdout(&dry);
    assert!(text.starts_with("subset: table"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("public.film ") && l.contains("passthrough (whole)")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("public.film_actor") && l.contains("not reached: schema only")),
        "{text}"
    );
    let dry = dry_run(dir.path(), path, src.url());
    let customers = kept(&dry, "public.customer");
    assert!(
        (35..=95).contains(&customers),
        "about 10% of 599 customers: {customers}"
    );
    assert_eq!(kept(&dry, "public.film"), 1000);
    assert_eq!(dry["subset"]["tables"][0]["why"], "empty", "{dry}"); // actor
                                                                     // the relation is followed: the 2006 partition's payments of kept customers are in
    assert!(kept(&dry, "public.payment_p0000_default") > 0, "{dry}");

    // into a database, verified before the swap
    let to = empty_database().await.unwrap();
    let out = anonymize(
        dir.path(),
        KEY,
        &[
            "--config",
            path,
            "--from",
            src.url(),
            "--to",
            to.url(),
            "--json",
        ],
        0,
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verify"]["passed"], true, "{report}");
    // issue 6's checks of the copy: every schema object of the source, every row read
    let checks = report["checks"].as_array().unwrap();
    assert!(
        checks.iter().any(|c| c["check"] == "schema objects")
            && checks.iter().all(|c| c["ok"] == true),
        "{report}"
    );
    assert_eq!(report["subset"]["tables"], dry["subset"]["tables"]);
    let t = to.url();
    assert_eq!(
        one::<i64>(t, "SELECT count(*) FROM customer").await,
        customers
    );
    // exactly their rentals and payments
    let kept_customers = ids(t, "SELECT string_agg(customer_id::text, ',') FROM customer").await;
    for table in ["rental", "payment"] {
        let want: i64 = one(
            src.url(),
            &format!("SELECT count(*) FROM {table} WHERE customer_id IN ({kept_customers})"),
        )
        .await;
        let got: i64 = one(t, &format!("SELECT count(*) FROM {table}")).await;
        assert_eq!(want, got, "{table} of the kept customers");
        let others: i64 = one(
            t,
            &format!("SELECT count(*) FROM {table} WHERE customer_id NOT IN ({kept_customers})"),
        )
        .await;
        assert_eq!(others, 0, "{table} of customers not kept");
    }
    // every inventory row a kept rental refers to, and no other
    let inventory = ids(
        t,
        "SELECT string_agg(DISTINCT inventory_id::text, ',') FROM rental",
    )
    .await;
    let want: i64 = one(
        src.url(),
        &format!("SELECT count(*) FROM inventory WHERE inventory_id IN ({inventory})"),
    )
    .await;
    assert_eq!(one::<i64>(t, "SELECT count(*) FROM inventory").await, want);
    assert_eq!(one::<i64>(t, "SELECT count(*) FROM film").await, 1000);
    assert_eq!(one::<i64>(t, "SELECT count(*) FROM actor").await, 0);
    // every constraint of the source, created after the rows, so checked against them
    let fks = "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated";
    let (want, got): (i64, i64) = (one(src.url(), fks).await, one(t, fks).await);
    assert!(want > 30, "pagila has its foreign keys: {want}");
    assert_eq!(want, got, "validated foreign keys");
    // a run that fails still reports the slice it computed (the target holds tables
    // and --replace was not given)
    let refused = anonymize(
        dir.path(),
        KEY,
        &["--config", path, "--from", src.url(), "--to", t, "--json"],
        2,
    );
    let refused: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert!(refused["error"].as_str().is_some(), "{refused}");
    assert_eq!(
        refused["subset"]["tables"], dry["subset"]["tables"],
        "{refused}"
    );
    // verify compares the copy with the source's kept rows: a kept rental missing fails
    exec(
        t,
        "ALTER TABLE payment DISABLE TRIGGER ALL; DELETE FROM payment WHERE payment_id = (SELECT min(payment_id) FROM payment)",
    )
    .await;
    let cut = run(
        dataforge(dir.path()).env("DATAFORGE_KEY", KEY).args([
            "verify",
            "--config",
            path,
            "--from",
            src.url(),
            "--to",
            t,
        ]),
        1,
    );
    let text = stdout(&cut);
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL") && l.contains("rows")),
        "{text}"
    );
}

/// One key, one slice: two runs give the same copy; another key, another sample.
#[tokio::test(flavor = "multi_thread")]
async fn the_sample_is_a_function_of_the_key() {
    let dir = shared_tempdir();
    let Some((src, config)) = pagila_source(dir.path()).await else {
        return;
    };
    let path = write(
        dir.path(),
        "anonymize.toml",
        &format!("{config}{PAGILA_SUBSET}"),
    );
    let path = path.to_str().unwrap();
    let copy = |key: &str, name: &str| {
        let to = dir.path().join(name);
        anonymize(
            dir.path(),
            key,
            &[
                "--config",
                path,
                "--from",
                src.url(),
                "--to",
                to.to_str().unwrap(),
                "--no-verify",
            ],
            0,
        );
        // pg_dump 15.14+ writes a random `\restrict` key into every schema section
        std::fs::read_to_string(to)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (a, b) = (copy(KEY, "a.sql"), copy(KEY, "b.sql"));
    assert!(a.contains("COPY \"public\".\"rental\""), "{a}");
    assert!(a == b, "two runs with one key differ");
    let customers = |dump: &str| -> Vec<String> {
        let block = dump.split("COPY \"public\".\"customer\" ").nth(1).unwrap();
        block
            .lines()
            .skip(1)
            .take_while(|l| *l != "\\.")
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect()
    };
    let other = copy("another key, also 16+ characters", "c.sql");
    let (mine, theirs) = (customers(&a), customers(&other));
    assert!(!mine.is_empty() && !theirs.is_empty());
    assert_ne!(mine, theirs, "another key keeps other customers");
}

/// A self-reference (each employee's manager) and a mutual pair (a department's head is
/// an employee, an employee's department a department): the closure follows both to a
/// fixed point, with no break configured, and the slice restores with its keys.
#[tokio::test(flavor = "multi_thread")]
async fn a_self_reference_and_a_mutual_pair_close_and_restore() {
    let dir = shared_tempdir();
    let src = empty_database().await.unwrap();
    exec(
        src.url(),
        "CREATE TABLE department (id int PRIMARY KEY, name text, head int);
         CREATE TABLE employee (id int PRIMARY KEY, name text,
                                manager_id int REFERENCES employee,
                                department_id int REFERENCES department);
         ALTER TABLE department ADD FOREIGN KEY (head) REFERENCES employee;
         INSERT INTO department SELECT d, 'Dept ' || d, NULL FROM generate_series(1, 20) d;
         -- a chain of managers 1 ← 2 ← … ← 300, each in a department of its own tenth
         INSERT INTO employee SELECT e, 'Person ' || e, nullif(e - 1, 0), 1 + e % 20
           FROM generate_series(1, 300) e;
         UPDATE department SET head = id * 10;
         -- and another 300 no chain reaches
         INSERT INTO employee SELECT e, 'Person ' || e, NULL, NULL FROM generate_series(301, 600) e;
         ANALYZE;",
    )
    .await;
    let config = "[tables.department]\ncolumns.id = \"keep\"\ncolumns.name = \"keep\"\ncolumns.head = \"keep\"\n\n\
                  [tables.employee]\ncolumns.id = \"keep\"\ncolumns.name = \"full-name\"\ncolumns.manager_id = \"keep\"\ncolumns.department_id = \"keep\"\n\n\
                  [subset]\ntargets = [{ table = \"employee\", where = \"id = 300\" }]\nchildren = \"none\"\n";
    let path = write(dir.path(), "anonymize.toml", config);
    let to = empty_database().await.unwrap();
    // by `snapshot import`, which shares the section
    run(
        dataforge(dir.path())
            .env("DATAFORGE_KEY", KEY)
            .env("CI", "true")
            .args(["snapshot", "import", "--no-verify", "--config"])
            .arg(&path)
            .args(["--from", src.url(), "--to", to.url()]),
        0,
    );
    // 300's managers up to 1, every department of theirs, every head of those and the
    // heads' own managers (all in the chain)
    assert_eq!(
        one::<i64>(to.url(), "SELECT count(*) FROM employee").await,
        300
    );
    assert_eq!(
        one::<i64>(to.url(), "SELECT count(*) FROM department").await,
        20
    );
    let fks = "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated";
    assert_eq!(one::<i64>(to.url(), fks).await, 3);

    // children followed from a manager: everyone below, through the self-reference
    let config = config
        .replace("where = \"id = 300\"", "where = \"id = 295\"")
        .replace("children = \"none\"", "children = \"all\"");
    let path = write(dir.path(), "anonymize.toml", &config);
    let dry = dry_run(dir.path(), path.to_str().unwrap(), src.url());
    let employees = kept(&dry, "public.employee");
    // down from 295: 296..300, and through their departments (children of nothing
    // kept by the target), then up: managers 1..294 — the whole chain
    assert_eq!(employees, 300, "{dry}");
}

/// A foreign key between two partitioned tables: the catalog lists it only at the
/// partitioned ends, which stand for their partitions, so the closure follows it from
/// every partition to every partition.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_between_partitioned_tables_is_followed() {
    let dir = shared_tempdir();
    let src = empty_database().await.unwrap();
    exec(src.url(), &format!("{PARTITIONED_SQL} ANALYZE;")).await;
    // the config names the partitions, which hold the rows; the target the partitioned
    // table
    let mut config = partitioned_config();
    config += "[subset]\ntargets = [{ table = \"invoice\", where = \"total % 10 IN (0, 3)\" }]\nchildren = \"none\"\n";
    let path = write(dir.path(), "anonymize.toml", &config);
    let to = empty_database().await.unwrap();
    anonymize(
        dir.path(),
        KEY,
        &[
            "--config",
            path.to_str().unwrap(),
            "--from",
            src.url(),
            "--to",
            to.url(),
        ],
        0,
    );
    // the invoices whose total ends in 0 or 3, in both partitions, and every account of
    // theirs
    let want: i64 = one(
        src.url(),
        "SELECT count(DISTINCT (account, region)) FROM invoice WHERE total % 10 IN (0, 3)",
    )
    .await;
    assert!(want > 2);
    assert_eq!(
        one::<i64>(to.url(), "SELECT count(*) FROM invoice").await,
        190
    );
    assert_eq!(
        one::<i64>(to.url(), "SELECT count(*) FROM account").await,
        want
    );
    for p in ["account_1", "account_2"] {
        assert!(
            one::<i64>(to.url(), &format!("SELECT count(*) FROM {p}")).await > 0,
            "{p}"
        );
    }
    let fks = "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated";
    assert_eq!(
        one::<i64>(to.url(), fks).await,
        one::<i64>(src.url(), fks).await
    );
}

/// A table with inheritance children: a query of it reads theirs too, which a TID then
/// confuses with its own; the slice reads each table alone.
#[tokio::test(flavor = "multi_thread")]
async fn an_inheritance_child_stays_in_its_own_table() {
    let dir = shared_tempdir();
    let src = empty_database().await.unwrap();
    exec(
        src.url(),
        "CREATE TABLE animal (id int PRIMARY KEY, name text);
         CREATE TABLE dog (breed text) INHERITS (animal);
         ALTER TABLE dog ADD PRIMARY KEY (id);
         INSERT INTO animal SELECT i, 'animal' || i FROM generate_series(1, 10) i;
         INSERT INTO dog SELECT i, 'dog' || i, 'lab' FROM generate_series(101, 110) i;
         ANALYZE;",
    )
    .await;
    let path = write(
        dir.path(),
        "anonymize.toml",
        "[tables.animal]\ncolumns.id = \"keep\"\ncolumns.name = \"keep\"\n\n\
         [tables.dog]\ncolumns.id = \"keep\"\ncolumns.name = \"keep\"\ncolumns.breed = \"keep\"\n\n\
         [subset]\ntargets = [{ table = \"animal\", where = \"id <= 3 OR id >= 105\" }, { table = \"dog\", percent = 50 }]\n",
    );
    let to = empty_database().await.unwrap();
    anonymize(
        dir.path(),
        KEY,
        &[
            "--config",
            path.to_str().unwrap(),
            "--from",
            src.url(),
            "--to",
            to.url(),
        ],
        0,
    );
    let names: String = one(
        to.url(),
        "SELECT string_agg(name, ',' ORDER BY id) FROM ONLY animal",
    )
    .await;
    assert_eq!(names, "animal1,animal2,animal3");
    let dogs: i64 = one(to.url(), "SELECT count(*) FROM dog").await;
    assert!(dogs > 0 && dogs < 10, "{dogs}");
}

/// Every bad input of the section: named, placed, and with what to do.
#[tokio::test(flavor = "multi_thread")]
async fn bad_subset_inputs_say_what_and_where() {
    let dir = shared_tempdir();
    let src = empty_database().await.unwrap();
    exec(
        src.url(),
        "CREATE TABLE post (id int PRIMARY KEY, body text);
         CREATE TABLE comment (id int PRIMARY KEY, entity_type text, entity_id int, body text);
         CREATE TABLE log (at timestamptz, line text);
         INSERT INTO post SELECT i, 'post ' || i FROM generate_series(1, 50) i;
         INSERT INTO comment SELECT i, CASE WHEN i % 2 = 0 THEN 'post' ELSE 'photo' END, 1 + i % 50, 'c'
           FROM generate_series(1, 200) i;
         INSERT INTO log SELECT now(), 'x' FROM generate_series(1, 10);
         CREATE FUNCTION note() RETURNS boolean LANGUAGE sql
           AS $$ INSERT INTO log VALUES (now(), 'written by a condition') RETURNING true $$;
         CREATE ROLE reader LOGIN;
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader;",
    )
    .await;
    let base = "[tables.post]\ncolumns.id = \"keep\"\ncolumns.body = \"keep\"\n\n\
                [tables.comment]\ncolumns.id = \"keep\"\ncolumns.entity_type = \"keep\"\ncolumns.entity_id = \"keep\"\ncolumns.body = \"keep\"\n\n\
                [tables.log]\ncolumns.at = \"keep\"\ncolumns.line = \"keep\"\n\n";
    let fails = |subset: &str| -> String {
        let path = write(dir.path(), "anonymize.toml", &format!("{base}{subset}"));
        let o = anonymize(
            dir.path(),
            KEY,
            &[
                "--config",
                path.to_str().unwrap(),
                "--from",
                src.url(),
                "--dry-run",
            ],
            2,
        );
        stderr(&o)
    };
    // a target table that does not exist
    let e = fails("[subset]\ntargets = [{ table = \"public.posts\", percent = 10 }]\n");
    assert!(
        e.contains("anonymize.toml:16:22: subset target public.posts: the source has no table public.posts"),
        "{e}"
    );
    // a relation's column that does not exist
    let e = fails(
        "[subset]\ntargets = [{ table = \"comment\", percent = 10 }]\n\n[[subset.relations]]\nfrom = \"comment.entity\"\nto = \"post.id\"\n",
    );
    assert!(
        e.contains("anonymize.toml:19:8: [[subset.relations]] from: public.comment has no column \"entity\"; its columns are id, entity_type, entity_id, body"),
        "{e}"
    );
    // a condition the server rejects: its message, and where in the file
    let e =
        fails("[subset]\ntargets = [{ table = \"comment\", where = \"entity_typ = 'post'\" }]\n");
    assert!(
        e.contains("anonymize.toml:16:42: subset target public.comment: the server rejects \"entity_typ = 'post'\" at character 1: column \"entity_typ\" does not exist"),
        "{e}"
    );
    // an order the server rejects: placed at the target, with what it was given
    let e = fails(
        "[subset]\ntargets = [{ table = \"log\", where = \"true\", order = \"nosuch\", limit = 5 }]\n",
    );
    assert!(
        e.contains("anonymize.toml:16:12: subset target public.log: the server rejects it (where = \"true\", order = \"nosuch\"): column \"nosuch\" does not exist"),
        "{e}"
    );
    // a condition that would write to the source: the slice reads only
    let e = fails("[subset]\ntargets = [{ table = \"comment\", where = \"note()\" }]\n");
    assert!(
        e.contains("cannot execute INSERT in a read-only transaction"),
        "{e}"
    );
    assert_eq!(one::<i64>(src.url(), "SELECT count(*) FROM log").await, 10);
    // a role that may not hold temporary tables: the grant it needs
    exec(
        src.url(),
        &format!("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC", src.name()),
    )
    .await;
    let path = write(
        dir.path(),
        "anonymize.toml",
        &format!("{base}[subset]\ntargets = [{{ table = \"comment\", percent = 10 }}]\n"),
    );
    // (the test server's URL names the `postgres` role, trusted; another server's may not)
    let reader = src.url().replacen("postgres@", "reader@", 1);
    if reader == src.url() {
        common::skip("the TEMPORARY privilege case needs the test server's own `postgres@` URL");
    } else {
        let o = anonymize(
            dir.path(),
            KEY,
            &[
                "--config",
                path.to_str().unwrap(),
                "--from",
                &reader,
                "--dry-run",
            ],
            2,
        );
        assert!(
            stderr(&o).contains("permission denied to create temporary tables")
                && stderr(&o).contains(&format!(
                    "GRANT TEMPORARY ON DATABASE \"{}\" TO \"reader\"",
                    src.name()
                )),
            "{}",
            stderr(&o)
        );
    }
    exec(
        src.url(),
        &format!("GRANT TEMPORARY ON DATABASE {} TO PUBLIC", src.name()),
    )
    .await;
    // a relation's condition the referring table cannot take: checked on it alone, placed
    let e = fails(
        "[subset]\ntargets = [{ table = \"post\", where = \"id < 5\" }]\n\n[[subset.relations]]\nfrom = \"comment.entity_id\"\nto = \"post.id\"\nwhere = \"body = 'x' AND kind = 'post'\"\n",
    );
    assert!(
        e.contains("anonymize.toml:21:25: [[subset.relations]] where: the server rejects \"body = 'x' AND kind = 'post'\" at character 16: column \"kind\" does not exist"),
        "{e}"
    );
    // a relation between columns that do not compare
    let e = fails(
        "[subset]\ntargets = [{ table = \"post\", where = \"id < 5\" }]\n\n[[subset.relations]]\nfrom = \"comment.entity_type\"\nto = \"post.id\"\n",
    );
    assert!(
        e.contains("anonymize.toml:19:8: [[subset.relations]]: public.comment.entity_type and public.post.id cannot be compared: operator does not exist: text = integer"),
        "{e}"
    );
    // a percent target without a primary key
    let e = fails("[subset]\ntargets = [{ table = \"log\", percent = 10 }]\n");
    assert!(
        e.contains("anonymize.toml:16:22: subset target public.log: `percent` samples rows by their primary key, and public.log has none. Give it one (ALTER TABLE \"public\".\"log\" ADD PRIMARY KEY (…))"),
        "{e}"
    );
    // a limit without an order
    let e = fails("[subset]\ntargets = [{ table = \"log\", where = \"true\", limit = 5 }]\n");
    assert!(
        e.contains("anonymize.toml:16:53: subset target public.log: `limit` without `order`"),
        "{e}"
    );
    // a subset of a dump
    let path = write(
        dir.path(),
        "anonymize.toml",
        &format!("{base}[subset]\ntargets = [{{ table = \"comment\", percent = 10 }}]\n"),
    );
    let dump = write(dir.path(), "dump.sql", "SELECT 1;\n");
    let o = anonymize(
        dir.path(),
        KEY,
        &[
            "--config",
            path.to_str().unwrap(),
            "--from",
            dump.to_str().unwrap(),
            "--dry-run",
        ],
        2,
    );
    assert!(
        stderr(&o).contains("anonymize.toml:15:1: [subset] needs a live source"),
        "{}",
        stderr(&o)
    );

    // and the relation, right, is followed: the posts kept comments on posts refer to
    let path = write(
        dir.path(),
        "anonymize.toml",
        &format!(
            "{base}[subset]\ntargets = [{{ table = \"comment\", where = \"id <= 20\" }}]\n\n\
             [[subset.relations]]\nfrom = \"comment.entity_id\"\nto = \"post.id\"\nwhere = \"entity_type = 'post'\"\n"
        ),
    );
    let to = empty_database().await.unwrap();
    anonymize(
        dir.path(),
        KEY,
        &[
            "--config",
            path.to_str().unwrap(),
            "--from",
            src.url(),
            "--to",
            to.url(),
            "--no-verify",
        ],
        0,
    );
    // comments 2, 4, …, 20 are on posts 3, 5, …, 21; the odd ones' entity is a photo
    let posts: String = one(
        to.url(),
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM post",
    )
    .await;
    assert_eq!(posts, "3,5,7,9,11,13,15,17,19,21");
    assert_eq!(
        one::<i64>(to.url(), "SELECT count(*) FROM comment").await,
        20
    );
    assert_eq!(one::<i64>(to.url(), "SELECT count(*) FROM log").await, 0);

    // children through the relation, all of them or at most one per post: posts 1, 3
    // and 5 have 4 comments of type post each (2 and 4 only photos')
    let comments = |children: &str| {
        let path = write(
            dir.path(),
            "anonymize.toml",
            &format!(
                "{base}[subset]\ntargets = [{{ table = \"post\", where = \"id <= 5\" }}]\nchildren = {children}\n\n\
                 [[subset.relations]]\nfrom = \"comment.entity_id\"\nto = \"post.id\"\nwhere = \"entity_type = 'post'\"\n"
            ),
        );
        kept(
            &dry_run(dir.path(), path.to_str().unwrap(), src.url()),
            "public.comment",
        )
    };
    assert_eq!(comments("\"all\""), 12);
    assert_eq!(comments("{ max = 1 }"), 3);
    assert_eq!(comments("\"none\""), 0);
}
