//! (g) The soak: minutes of mixed calls against one `serve`, printing its memory (RSS), open
//! files and database connections at intervals, so a leak shows as a slope. Ignored (minutes of
//! CI time); run it with `benches/soak.sh [seconds] [postgres-url]`, which builds the release
//! binary and passes it in `NEXKEY_SOAK_BINARY`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

use super::sqlite_url;
use crate::binary::{Launch, Nexkey};
use crate::helpers::legacy_new;

const WORKERS: usize = 16;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// One worker's endless mix on its own lives: new, a replay of it, renew, suspend, reactivate,
/// cancel, and a `new` repeated with other content (409).
async fn worker(
    nexkey: &Nexkey,
    worker: usize,
    until: Instant,
    done: &AtomicUsize,
    failed: &AtomicUsize,
) {
    let mut life = 0;
    while Instant::now() < until {
        let id = format!("SOAK-{worker}-{life}");
        let new = legacy_new(&id, "ACME-PRO", 2).to_string();
        let step = |operation: &'static str| {
            let mut body = legacy_new(&format!("{id}-{operation}"), "ACME-PRO", 2);
            body["product"]["initialNexwayFulfillmentId"] = id.clone().into();
            (operation, body.to_string())
        };
        let conflict = legacy_new(&id, "ACME-PRO", 3).to_string();
        let steps = [
            ("new", new.clone(), 200),
            ("new", new, 200),
            (step("renew").0, step("renew").1, 200),
            (step("suspend").0, step("suspend").1, 200),
            (step("reactivate").0, step("reactivate").1, 200),
            (step("cancel").0, step("cancel").1, 200),
            ("new", conflict, 409),
        ];
        for (operation, body, expected) in steps {
            match nexkey.call(operation, &body).await {
                Ok(answer) if answer.status == expected => {}
                Ok(answer) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("{operation}: {} {}", answer.status, answer.body);
                }
                Err(e) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("{operation}: no answer: {e}");
                }
            }
            done.fetch_add(1, Ordering::Relaxed);
        }
        life += 1;
    }
}

/// Connections the server holds: PostgreSQL's own count, else the open handles on the SQLite
/// files.
async fn connections(nexkey: &Nexkey, postgres: Option<&DatabaseConnection>) -> usize {
    if let Some(db) = postgres {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            ))
            .await
            .unwrap()
            .unwrap();
        return row.try_get::<i64>("", "n").unwrap() as usize;
    }
    let pid = nexkey.child.id();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
                .filter(|target| target.to_string_lossy().contains("nexkey.db"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
#[ignore = "minutes long: run with benches/soak.sh"]
async fn soak() {
    let seconds: u64 = env_or("NEXKEY_SOAK_SECS", 180);
    let interval: u64 = env_or("NEXKEY_SOAK_INTERVAL_SECS", 15);
    let dir = tempfile::tempdir().unwrap();
    let (database_url, postgres) = match std::env::var("NEXKEY_SOAK_DATABASE_URL") {
        Ok(admin) => {
            let url = crate::helpers::fresh_database(&admin).await;
            let db = Database::connect(&url).await.unwrap();
            (url, Some(db))
        }
        Err(_) => (sqlite_url(dir.path()), None),
    };
    let mut launch = Launch::new(dir.path())
        .database(&database_url)
        .env("NEXKEY_LOG", "warn");
    if let Ok(binary) = std::env::var("NEXKEY_SOAK_BINARY") {
        launch.binary = binary.into();
    }
    let mut nexkey = launch.start().await;
    let backend = if postgres.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    println!(
        "soak: {backend}, {seconds} s, {WORKERS} workers, binary {:?}",
        std::env::var("NEXKEY_SOAK_BINARY").ok()
    );
    println!(
        "{:>6} {:>9} {:>7} {:>9} {:>5} {:>5}",
        "secs", "calls", "failed", "rss_kB", "fds", "db"
    );

    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let (done, failed) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let mut samples = Vec::new();
    let sampler = async {
        loop {
            let (rss, fds) = nexkey.resources();
            let db = connections(&nexkey, postgres.as_ref()).await;
            println!(
                "{:>6} {:>9} {:>7} {:>9} {:>5} {:>5}",
                started.elapsed().as_secs(),
                done.load(Ordering::Relaxed),
                failed.load(Ordering::Relaxed),
                rss,
                fds,
                db
            );
            samples.push((rss, fds, db));
            if Instant::now() >= until {
                break;
            }
            tokio::time::sleep(Duration::from_secs(interval).min(until - Instant::now())).await;
        }
    };
    let workers =
        futures::future::join_all((0..WORKERS).map(|w| worker(&nexkey, w, until, &done, &failed)));
    tokio::join!(workers, sampler);

    let calls = done.load(Ordering::Relaxed);
    println!(
        "soak: {calls} calls in {:?} ({:.0}/s), {} failed",
        started.elapsed(),
        calls as f64 / started.elapsed().as_secs_f64(),
        failed.load(Ordering::Relaxed)
    );
    assert_eq!(failed.load(Ordering::Relaxed), 0, "calls failed");
    assert!(nexkey.alive());
    // Flat: after warm-up (the second sample), open files and connections do not grow.
    if samples.len() > 2 {
        let (_, warm_fds, warm_db) = samples[1];
        let (_, last_fds, last_db) = *samples.last().unwrap();
        assert!(
            last_fds <= warm_fds + 4,
            "open files grew: {warm_fds} -> {last_fds}"
        );
        assert!(
            last_db <= warm_db.max(16),
            "connections grew: {warm_db} -> {last_db}"
        );
    }
}
