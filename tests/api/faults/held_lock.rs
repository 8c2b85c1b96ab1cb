//! (e) A lock held by someone else (an operator's `LOCK TABLE`, a migration, another writer on
//! the SQLite file): a `new` gets 503 with `Retry-After` inside the request deadline, with a log
//! line, instead of hanging until the connection is dropped, and calls arriving together get
//! theirs together; once the lock goes, the same call succeeds.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, TransactionTrait};

use super::{shared_servers, sqlite_url};
use crate::binary::Launch;
use crate::helpers::{backend_name, fresh_database, legacy_new};

const DEADLINE: Duration = Duration::from_secs(6);

/// Starts nexkey with a short deadline, takes the lock with `lock` (statements run in one open
/// transaction on a separate connection), calls, releases, calls again.
async fn call_against_a_held_lock(backend: &str, database_url: &str, lock: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let nexkey = Launch::new(dir.path())
        .database(database_url)
        .env("NEXKEY_REQUEST_TIMEOUT", &DEADLINE.as_secs().to_string())
        .log_to(&log)
        .start()
        .await;
    let body = legacy_new("NXF-LOCKED", "ACME-PRO", 2).to_string();

    let db = Database::connect(database_url).await.unwrap();
    let holder = db.begin().await.unwrap();
    for statement in lock {
        holder.execute_unprepared(statement).await.unwrap();
    }
    // Calls arriving together under the lock each get their 503 after about one lock wait (a
    // quarter of the deadline), not one lock wait after another.
    let started = Instant::now();
    let others: Vec<String> = (0..9)
        .map(|i| legacy_new(&format!("NXF-LOCKED-{i}"), "ACME-PRO", 1).to_string())
        .collect();
    let answers = futures::future::join_all(
        std::iter::once(&body)
            .chain(&others)
            .map(|body| async { (nexkey.call("new", body).await, started.elapsed()) }),
    )
    .await;
    let mut waited = Duration::ZERO;
    for (answer, took) in answers {
        let answer =
            answer.unwrap_or_else(|e| panic!("{backend}: no answer under a held lock: {e}"));
        assert!(
            answer.is_retry_later(),
            "{backend}: under a held lock: {} {:?} {}",
            answer.status,
            answer.retry_after,
            answer.body
        );
        assert!(
            took < DEADLINE / 2,
            "{backend}: a 503 came after {took:?}, more than about one lock wait"
        );
        waited = waited.max(took);
    }
    holder.rollback().await.unwrap();

    let answer = nexkey.call("new", &body).await.unwrap();
    assert_eq!(
        answer.status, 200,
        "{backend}: lock released: {}",
        answer.body
    );
    assert_eq!(answer.replayed.as_deref(), Some("false"));

    let logs = std::fs::read_to_string(&log).unwrap();
    let logged = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .any(|line| {
            line["fields"]["message"] == "request answered" && line["fields"]["status"] == 503
        });
    assert!(logged, "{backend}: no log line for the 503:\n{logs}");
    db.close().await.ok();
    eprintln!("held_lock {backend}: 503 after {waited:?}");
}

#[tokio::test]
async fn a_held_server_lock_is_a_503_inside_the_deadline() {
    for server in shared_servers("held_lock on a database server") {
        let database_url = fresh_database(&server).await;
        let backend = backend_name(&server);
        let lock: &[&str] = match backend {
            // Every row and gap of the call table, as a long report or a backup would hold them
            // (REPEATABLE READ, the holder's default, locks the gaps too): the call's first
            // insert waits.
            "mysql" => &["SELECT COUNT(*) FROM fulfillment FOR UPDATE"],
            _ => &["LOCK TABLE license IN ACCESS EXCLUSIVE MODE"],
        };
        call_against_a_held_lock(backend, &database_url, lock).await;
    }
}

#[tokio::test]
async fn a_held_sqlite_write_lock_is_a_503_inside_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = sqlite_url(dir.path());
    // A write statement takes SQLite's write lock until the transaction ends.
    call_against_a_held_lock(
        "sqlite",
        &database_url,
        &["UPDATE fulfillment SET answer = answer WHERE id = -1"],
    )
    .await;
}

/// The migration lock held by another session (a process migrating): `nexkey migrate up` waits
/// for it, changing nothing meanwhile, and migrates once it is released.
#[tokio::test]
async fn a_held_migration_lock_makes_migrate_wait_then_migrate() {
    for server in shared_servers("held migration lock") {
        let backend = backend_name(&server);
        let database_url = fresh_database(&server).await;
        let db = Database::connect(&database_url).await.unwrap();
        // One transaction pins one connection: the session that holds the lock.
        let holder = db.begin().await.unwrap();
        let (take, release, waiting, migrated) = match backend {
            "mysql" => (
                "DO GET_LOCK(CONCAT('nexkey-migrate-', SHA1(DATABASE())), 0)",
                "DO RELEASE_LOCK(CONCAT('nexkey-migrate-', SHA1(DATABASE())))",
                "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST \
                 WHERE DB = DATABASE() AND ID <> CONNECTION_ID() AND INFO LIKE '%GET_LOCK%'",
                "SELECT COUNT(*) AS n FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'license'",
            ),
            _ => (
                "SELECT pg_advisory_lock(7394620471)",
                "SELECT pg_advisory_unlock(7394620471)",
                "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                "SELECT COUNT(*) AS n FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'license'",
            ),
        };
        holder.execute_unprepared(take).await.unwrap();
        let count = |sql: &'static str| {
            let db = &db;
            async move {
                let row = db
                    .query_one_raw(sea_orm::Statement::from_string(
                        db.get_database_backend(),
                        sql,
                    ))
                    .await
                    .unwrap()
                    .unwrap();
                row.try_get::<i64>("", "n").unwrap()
            }
        };

        let mut migrate = std::process::Command::new(env!("CARGO_BIN_EXE_nexkey"))
            .args(["migrate", "up"])
            .env("NEXKEY_DATABASE_URL", &database_url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while count(waiting).await == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{backend}: migrate never waited for the lock"
            );
            assert!(
                migrate.try_wait().unwrap().is_none(),
                "{backend}: migrate ended while the lock was held"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            count(migrated).await,
            0,
            "{backend}: migrated under the lock"
        );

        holder.execute_unprepared(release).await.unwrap();
        let released = Instant::now();
        let status = loop {
            if let Some(status) = migrate.try_wait().unwrap() {
                break status;
            }
            if released.elapsed() > Duration::from_secs(60) {
                migrate.kill().ok();
                panic!("{backend}: migrate still waiting after the release");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(status.success(), "{backend}: migrate failed: {status}");
        assert_eq!(count(migrated).await, 1, "{backend}: not migrated");
        holder.rollback().await.unwrap();
        db.close().await.ok();
    }
}
