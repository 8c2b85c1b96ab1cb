//! (a) SQLite on a small file system that fills up during a run of `new` calls and is then
//! grown: never a 200 whose codes were not stored, 503 with `Retry-After` and readiness red while
//! full, recovery without a restart once there is room, and every answer replayed byte for byte
//! after a restart.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{
    Call, answered, assert_200_or_retry_later, assert_replayed, assert_stored, sqlite_url,
};
use crate::binary::{Answer, Launch, Nexkey};
use crate::helpers::legacy_new;

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("data");
        std::fs::create_dir(&path).map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "nexkey-fault"])
            .arg(&path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs refused: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Tmpfs { path, _dir: dir })
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(status.success(), "remount to {size}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status()
            .ok();
    }
}

/// Writes zeros to `path` until the file system refuses: no byte of room is left.
fn fill(path: &Path) {
    let mut file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let chunk = vec![0u8; 16 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let small = [0u8; 512];
    while file.write_all(&small).is_ok() {}
    file.sync_all().ok();
}

/// A `new` of 20 codes with a bulky context, so a few dozen calls fill what room is left.
fn call(n: usize) -> Call {
    let mut body = legacy_new(&format!("NXF-FULL-{n}"), "ACME-PRO", 20);
    body["metadata"]["externalContext"] = "x".repeat(3000).into();
    Call::new("new", &body)
}

/// Fresh calls in one round: enough that SQLite's group commit holds more than its page cache
/// (about 2 MB) in one transaction, which a full disk then makes SQLite roll back by itself.
const FRESH: usize = 24;

/// One round of concurrent calls: FRESH fresh, 2 duplicates of them, one repeat of an older one.
async fn batch(
    nexkey: &Nexkey,
    next: &mut usize,
    results: &mut Vec<(Call, Result<Answer, String>)>,
) -> Vec<(Call, Result<Answer, String>)> {
    let first = *next;
    *next += FRESH;
    let mut calls: Vec<Call> = (first..first + FRESH).map(call).collect();
    calls.push(call(first));
    calls.push(call(first + 1));
    if first > 0 {
        calls.push(call(first / 2));
    }
    let answers =
        futures::future::join_all(calls.iter().map(|c| nexkey.call(c.operation, &c.body))).await;
    let batch: Vec<_> = calls.into_iter().zip(answers).collect();
    results.extend(batch.iter().cloned());
    batch
}

#[tokio::test]
async fn sqlite_disk_full_then_grown_loses_nothing_and_recovers() {
    let tmpfs = match Tmpfs::mount("16m") {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            eprintln!("SKIPPED sqlite_disk_full: {reason}");
            return;
        }
    };
    let dir = tmpfs.path.clone();
    let database_url = sqlite_url(&dir);
    // Reporting to the DMP on (an endpoint nobody answers): its sender's claims go through the
    // same writer as the calls, every second, full disk or not.
    let launch = || {
        Launch::new(&dir)
            .database(&database_url)
            .env("NEXKEY_REQUEST_TIMEOUT", "10")
            .env("NEXKEY_DMP_URL", "http://127.0.0.1:9/event")
            .env("NEXKEY_DMP_USER", "dmp")
            .env("NEXKEY_DMP_PASSWORD", "dmp-password")
    };
    let mut nexkey = launch().start().await;
    let started = Instant::now();
    let mut results = Vec::new();
    let mut next = 0;

    // Room to spare: everything succeeds.
    for _ in 0..5 {
        batch(&nexkey, &mut next, &mut results).await;
    }
    let (ok, later) = assert_200_or_retry_later(&results);
    assert_eq!((ok, later), (results.len(), 0), "with room to spare");

    // Leave about 512 kB, then call until the disk is full (calls refused for want of room).
    fill(&dir.join("filler"));
    let filler = std::fs::File::options()
        .write(true)
        .open(dir.join("filler"))
        .unwrap();
    let size = filler.metadata().unwrap().len();
    filler.set_len(size.saturating_sub(512 * 1024)).unwrap();
    let mut full = false;
    for _ in 0..40 {
        let batch = batch(&nexkey, &mut next, &mut results).await;
        assert_200_or_retry_later(&batch);
        if batch
            .iter()
            .any(|(_, answer)| matches!(answer, Ok(a) if a.status == 503))
        {
            full = true;
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "bounded");
    }
    assert!(full, "the disk never filled up");

    // While full (no byte left): 503 with Retry-After or a stored 200, and readiness red.
    fill(&dir.join("filler"));
    let mut refused = 0;
    for round in 0..10 {
        let batch = batch(&nexkey, &mut next, &mut results).await;
        refused += assert_200_or_retry_later(&batch).1;
        assert_eq!(
            nexkey.ready().await,
            Some(503),
            "/health/ready while the disk is full (after batch {round} of the full period)"
        );
    }
    assert!(refused > 0, "nothing was refused while the disk was full");

    // Grown: calls succeed again without a restart.
    tmpfs.resize("64m");
    let recovered = Instant::now();
    loop {
        let batch = batch(&nexkey, &mut next, &mut results).await;
        let (ok, _) = assert_200_or_retry_later(&batch);
        if ok == batch.len() {
            break;
        }
        assert!(
            recovered.elapsed() < Duration::from_secs(20),
            "no recovery 20 s after the disk was grown"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..10 {
        let batch = batch(&nexkey, &mut next, &mut results).await;
        let (ok, _) = assert_200_or_retry_later(&batch);
        assert_eq!(ok, batch.len(), "after the disk was grown");
    }
    assert_eq!(nexkey.ready().await, Some(200), "ready once there is room");

    // Stopped: every code answered is stored; restarted: every answer replays.
    nexkey.stop(Duration::from_secs(15)).await;
    let answered = answered(&results);
    assert_stored(&database_url, &answered).await;
    let nexkey = launch().start().await;
    assert_replayed(&nexkey, &answered).await;
    eprintln!(
        "sqlite_disk_full: {} calls, {} answered 200, {:?}",
        results.len(),
        answered.len(),
        started.elapsed()
    );
}
