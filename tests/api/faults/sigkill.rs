//! (b) SIGKILL in the middle of a few hundred concurrent calls (new, renew, suspend, cancel, with
//! duplicates): after a restart every call answered 200 before the kill replays byte for byte,
//! each code is stored once and no row is half written.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;

use super::{Call, answered, assert_replayed, assert_stored, sqlite_url};
use crate::binary::Launch;
use crate::helpers::legacy_new;

const LIVES: usize = 60;

/// A legacy lifecycle call of life `n`: its own fulfillment id, the life's first as initial.
fn lifecycle(operation: &'static str, n: usize) -> Call {
    let mut body: Value = legacy_new(&format!("NXF-KILL-{n}-{operation}"), "ACME-PRO", 2);
    body["product"]["initialNexwayFulfillmentId"] = format!("NXF-KILL-{n}").into();
    Call::new(operation, &body)
}

/// Every life's new, renew, suspend and cancel, in that order but overlapping, plus duplicates
/// of one call in three: about 320 calls.
fn calls() -> Vec<Call> {
    let mut calls = Vec::new();
    for n in 0..LIVES {
        calls.push(Call::new(
            "new",
            &legacy_new(&format!("NXF-KILL-{n}"), "ACME-PRO", 2),
        ));
        if n >= 2 {
            calls.push(lifecycle("renew", n - 2));
        }
        if n >= 4 {
            calls.push(lifecycle("suspend", n - 4));
        }
        if n >= 6 {
            calls.push(lifecycle("cancel", n - 6));
        }
        if n % 3 == 0 {
            let duplicate = calls[calls.len() / 2].clone();
            calls.push(duplicate);
        }
        let duplicate = calls[calls.len() - 1].clone();
        calls.push(duplicate);
    }
    calls
}

async fn sigkill_mid_run(dir: &std::path::Path, database_url: &str) {
    let launch = || Launch::new(dir).database(database_url);
    let mut nexkey = launch().start().await;
    let calls = calls();
    let started = Instant::now();

    // 24 calls at a time; the kill lands once half of them have been answered.
    let mut results = Vec::new();
    {
        let mut answers = futures::stream::iter(calls.iter().cloned())
            .map(|call| {
                let nexkey = &nexkey;
                async move {
                    let answer = nexkey.call(call.operation, &call.body).await;
                    (call, answer)
                }
            })
            .buffer_unordered(24);
        while let Some(result) = answers.next().await {
            results.push(result);
            if results.len() == calls.len() / 2 {
                break;
            }
        }
    }
    nexkey.sigkill();
    for (call, result) in &results {
        if let Ok(answer) = result {
            assert!(
                // 404 or 409: a lifecycle call overtook the call it follows.
                answer.status == 200
                    || ((answer.status == 404 || answer.status == 409)
                        && answer.body.contains("\"error\""))
                    || answer.is_retry_later(),
                "{} answered {}: {}",
                call.operation,
                answer.status,
                answer.body
            );
        }
    }

    let answered = answered(&results);
    assert!(
        answered.len() > 50,
        "only {} calls answered",
        answered.len()
    );
    assert_stored(database_url, &answered).await;
    let nexkey = launch().start().await;
    assert_replayed(&nexkey, &answered).await;
    eprintln!(
        "sigkill: {} calls sent, {} answered 200 before the kill, {:?}",
        results.len(),
        answered.len(),
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(120), "bounded");
}

#[tokio::test]
async fn sigkill_during_concurrent_calls_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    sigkill_mid_run(dir.path(), &sqlite_url(dir.path())).await;
    for server in crate::helpers::test_servers() {
        let dir = tempfile::tempdir().unwrap();
        let database_url = crate::helpers::fresh_database(&server).await;
        sigkill_mid_run(dir.path(), &database_url).await;
    }
}
