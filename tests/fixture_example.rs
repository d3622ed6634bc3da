//! The fixture example from the README, verbatim: if this stops compiling or passing,
//! the README is wrong too.

use dataforge::fixtures::Fixture;

#[tokio::test]
async fn open_cases_have_a_responsible_lawyer() {
    // A fresh database holding demo-firm at seed 1, cloned from a template in milliseconds.
    let db = Fixture::new("demo-firm").seed(1).create().await.unwrap();
    let client = db.connect().await.unwrap();

    let orphans: i64 = client
        .query_one(
            "SELECT count(*) FROM cases WHERE status = 'Active' AND responsible_user_id IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(orphans, 0);
    // `db` is dropped here: the database goes when the test passes and stays (its name
    // printed) when it fails.
}
