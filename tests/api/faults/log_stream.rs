//! (f) A log that cannot be written (a full disk: /dev/full; a reader that went away: a closed
//! pipe): every call still gets its whole answer, and `serve` keeps running.

use std::process::Stdio;
use std::time::Duration;

use super::{Call, answered, assert_stored, sqlite_url};
use crate::binary::{Launch, Nexkey};
use crate::helpers::legacy_new;

/// Fresh calls, replays and a refused call: each answered in full, the process still up.
async fn calls_are_answered(nexkey: &mut Nexkey, label: &str) -> Vec<(Call, String)> {
    let calls: Vec<Call> = (0..20)
        .map(|n| {
            Call::new(
                "new",
                &legacy_new(&format!("NXF-LOG-{label}-{n}"), "ACME-PRO", 1),
            )
        })
        .collect();
    let mut results = Vec::new();
    for round in 0..2 {
        let answers =
            futures::future::join_all(calls.iter().map(|c| nexkey.call(c.operation, &c.body)))
                .await;
        for (call, answer) in calls.iter().zip(answers) {
            let answer = answer.unwrap_or_else(|e| panic!("{label}: no answer: {e}"));
            assert_eq!(answer.status, 200, "{label}: {}", answer.body);
            assert_eq!(
                answer.replayed.as_deref(),
                Some(if round == 0 { "false" } else { "true" })
            );
            assert!(
                answer.body.contains("activationCode"),
                "{label}: {}",
                answer.body
            );
            results.push((call.clone(), Ok(answer)));
        }
    }
    let refused = nexkey.call("new", "{not json").await.unwrap();
    assert_eq!(refused.status, 400, "{label}: {}", refused.body);
    assert!(refused.body.contains("INVALID_REQUEST"), "{label}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(nexkey.alive(), "{label}: serve exited");
    assert_eq!(nexkey.ready().await, Some(200), "{label}");
    answered(&results)
}

#[tokio::test]
async fn a_full_log_device_takes_no_call_down() {
    let dir = tempfile::tempdir().unwrap();
    let Ok(full) = std::fs::File::options().write(true).open("/dev/full") else {
        eprintln!("SKIPPED a_full_log_device: no /dev/full");
        return;
    };
    let database_url = sqlite_url(dir.path());
    // Verbose, so every request writes to the log.
    let mut nexkey = Launch::new(dir.path())
        .database(&database_url)
        .env("NEXKEY_LOG", "debug")
        .stderr(full)
        .start()
        .await;
    let answered = calls_are_answered(&mut nexkey, "dev-full").await;
    nexkey.stop(Duration::from_secs(10)).await;
    assert_stored(&database_url, &answered).await;
}

#[tokio::test]
async fn a_log_reader_that_went_away_takes_no_call_down() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = sqlite_url(dir.path());
    let mut nexkey = Launch::new(dir.path())
        .database(&database_url)
        .env("NEXKEY_LOG", "debug")
        .stderr(Stdio::piped())
        .start()
        .await;
    // The reader of the log goes away: every write to stderr now fails (EPIPE).
    drop(nexkey.child.stderr.take());
    let answered = calls_are_answered(&mut nexkey, "closed-pipe").await;
    nexkey.stop(Duration::from_secs(10)).await;
    assert_stored(&database_url, &answered).await;
}
