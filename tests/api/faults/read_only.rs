//! A database file that nexkey may read but not write (another owner, a mistaken chmod): calls are
//! a 503 with `Retry-After`, readiness is 503, and once the file is writable again fresh
//! connections take over without a restart. Connections opened read-only are never reused.
//!
//! Root is not bound by file permissions, so nexkey runs as `nobody` here; the test (as root)
//! changes the file's owner. Skipped, with the reason printed, when the test is not root.

use std::os::unix::fs::{PermissionsExt, chown};
use std::time::{Duration, Instant};

use crate::binary::Launch;
use crate::helpers::legacy_new;

const NOBODY: (u32, u32) = (65534, 65534);

#[tokio::test]
async fn a_read_only_database_is_503_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    if chown(dir.path(), Some(NOBODY.0), Some(NOBODY.1)).is_err() {
        eprintln!("SKIPPED a_read_only_database_is_503_and_recovers_by_itself: not root");
        return;
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let launch = || Launch::new(dir.path()).run_as(NOBODY.0, NOBODY.1);
    let first = legacy_new("NXF-RO-1", "ACME-PRO", 1).to_string();
    let nexkey = launch().start().await;
    assert_eq!(nexkey.call("new", &first).await.unwrap().status, 200);
    drop(nexkey);

    // Root's file now: nobody may read it, not write it.
    let database = dir.path().join("nexkey.db");
    chown(&database, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut nexkey = launch().spawn();
    assert!(
        nexkey.wait_ready(Duration::from_secs(3)).await.is_err(),
        "a read-only database is not ready"
    );
    assert_eq!(nexkey.ready().await, Some(503));
    let second = legacy_new("NXF-RO-2", "ACME-PRO", 1).to_string();
    let answer = nexkey.call("new", &second).await.unwrap();
    assert!(
        answer.is_retry_later(),
        "a call on a read-only database: {} {}",
        answer.status,
        answer.body
    );
    let replay = nexkey.call("new", &first).await.unwrap();
    assert_eq!(replay.status, 200, "reads still work: {}", replay.body);

    // Writable again: no restart, fresh connections.
    chown(&database, Some(NOBODY.0), Some(NOBODY.1)).unwrap();
    let started = Instant::now();
    let answer = loop {
        let answer = nexkey.call("new", &second).await.unwrap();
        if answer.status == 200 || started.elapsed() > Duration::from_secs(10) {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(answer.status, 200, "recovered: {}", answer.body);
    assert_eq!(answer.replayed.as_deref(), Some("false"));
    // A connection opened while the file was still read-only may serve one more probe; the
    // fault it meets retires it, and readiness turns green without a restart.
    assert!(
        nexkey.wait_ready(Duration::from_secs(15)).await.is_ok(),
        "readiness recovered"
    );
    assert!(nexkey.alive());
}
