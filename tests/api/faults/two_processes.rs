//! (c) Two `serve` processes on one PostgreSQL or MariaDB/MySQL database: started together on an empty database both
//! migrate and both become ready (the migrations applied once); given the same calls at once they
//! issue one set of codes.

use std::time::Instant;

use migration::MigratorTrait;
use sea_orm::{ConnectionTrait, Database};

use super::{Call, answered, assert_replayed, assert_stored, shared_servers};
use crate::binary::{Answer, Launch};
use crate::helpers::{backend_name, fresh_database, legacy_new};

#[tokio::test]
async fn two_processes_start_together_on_an_empty_database_server_and_share_it() {
    for server in shared_servers("two_processes") {
        start_together_and_share(&server).await;
    }
}

async fn start_together_and_share(admin_url: &str) {
    let backend = backend_name(admin_url);
    let started = Instant::now();
    let database_url = fresh_database(admin_url).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    // Both spawned at once on the empty database: both migrate, neither dies.
    let mut a = Launch::new(dir_a.path()).database(&database_url).spawn();
    let mut b = Launch::new(dir_b.path()).database(&database_url).spawn();
    let limit = std::time::Duration::from_secs(30);
    let (ready_a, ready_b) = tokio::join!(a.wait_ready(limit), b.wait_ready(limit));
    ready_a.unwrap_or_else(|e| panic!("{backend}: the first process: {e}"));
    ready_b.unwrap_or_else(|e| panic!("{backend}: the second process: {e}"));

    let db = Database::connect(&database_url).await.unwrap();
    let applied = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n, COUNT(DISTINCT version) AS d FROM seaql_migrations",
        ))
        .await
        .unwrap()
        .unwrap();
    let (rows, distinct): (i64, i64) = (
        applied.try_get("", "n").unwrap(),
        applied.try_get("", "d").unwrap(),
    );
    assert_eq!(rows, distinct, "a migration recorded twice");
    assert_eq!(
        rows as usize,
        migration::Migrator::migrations().len(),
        "every migration applied"
    );
    db.close().await.ok();

    // The same 30 calls sent to both, four times each, all at once.
    let calls: Vec<Call> = (0..30)
        .map(|n| Call::new("new", &legacy_new(&format!("NXF-TWO-{n}"), "ACME-PRO", 3)))
        .collect();
    let sends = calls
        .iter()
        .cycle()
        .take(calls.len() * 4)
        .enumerate()
        .map(|(i, call)| {
            let nexkey = if i % 2 == 0 { &a } else { &b };
            async move { (call.clone(), nexkey.call(call.operation, &call.body).await) }
        });
    let results: Vec<(Call, Result<Answer, String>)> = futures::future::join_all(sends).await;
    for (call, result) in &results {
        let answer = result.as_ref().expect("an answer");
        assert_eq!(
            answer.status, 200,
            "{backend}: {}: {}",
            call.body, answer.body
        );
    }
    // `answered` checks that the four answers of each call are the same bytes.
    let answered = answered(&results);
    assert_eq!(answered.len(), calls.len());
    assert_replayed(&b, &answered).await;
    a.stop(std::time::Duration::from_secs(10)).await;
    b.stop(std::time::Duration::from_secs(10)).await;
    assert_stored(&database_url, &answered).await;

    let db = Database::connect(&database_url).await.unwrap();
    use sea_orm::{EntityTrait, PaginatorTrait};
    assert_eq!(
        entity::license::Entity::find().count(&db).await.unwrap(),
        3 * calls.len() as u64,
        "one set of codes per call"
    );
    eprintln!("two_processes {backend}: {:?}", started.elapsed());
}
