//! Storage faults made real, against the real binary: a disk that fills up, a SIGKILL, two
//! processes on one database, a database that goes away, a held lock, a log that cannot be
//! written. Each test asserts the promise, not the path: every code answered 200 is stored, no
//! code is issued twice, every answered call replays byte for byte, and a failure is a 503 with
//! `Retry-After`, never a 200 without storage, a 500 or a dropped connection.

mod disk_full;
mod held_lock;
mod log_stream;
mod mariadb_restart;
mod postgres_restart;
mod read_only;
mod sigkill;
mod soak;
mod two_processes;

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{Database, EntityTrait};
use serde_json::Value;

use crate::binary::{Answer, Nexkey};

/// One call Nexway makes: the operation and the exact body bytes.
#[derive(Clone, Debug)]
pub struct Call {
    pub operation: &'static str,
    pub body: String,
}

impl Call {
    pub fn new(operation: &'static str, body: &Value) -> Call {
        Call {
            operation,
            body: body.to_string(),
        }
    }

    /// What identifies the call for idempotency: same key, same stored answer.
    fn key(&self) -> (&'static str, &str) {
        (self.operation, &self.body)
    }
}

/// The calls answered 200, once per distinct call, with their answer bodies. Panics when two
/// answers to the same call differ (a duplicate must replay the first answer).
pub fn answered(results: &[(Call, Result<Answer, String>)]) -> Vec<(Call, String)> {
    let mut first: BTreeMap<(&str, &str), (Call, String)> = BTreeMap::new();
    for (call, result) in results {
        let Ok(answer) = result else { continue };
        if answer.status != 200 {
            continue;
        }
        match first.get(&call.key()) {
            Some((_, body)) => assert_eq!(
                *body, answer.body,
                "two answers to the same {} call differ",
                call.operation
            ),
            None => {
                first.insert(call.key(), (call.clone(), answer.body.clone()));
            }
        }
    }
    first.into_values().collect()
}

/// The codes of an answer, at `$.licenses[*].activationCode` and `$.superseded[*]`.
fn answer_codes(answer: &Value) -> Vec<String> {
    ["licenses", "superseded"]
        .iter()
        .filter_map(|member| answer[member].as_array())
        .flatten()
        .filter_map(|license| license["activationCode"].as_str())
        .map(str::to_owned)
        .collect()
}

/// Opens the database after the server stopped and checks that what was answered is what is
/// stored: every code of every 200 answer is in `license`; no code was issued by two different
/// `new` calls; every fulfillment row holds a complete JSON answer whose codes are all stored,
/// and a `new` row has exactly the licenses its answer lists (no half rows); every license row
/// belongs to some stored answer.
pub async fn assert_stored(database_url: &str, answered: &[(Call, String)]) {
    let db = Database::connect(database_url)
        .await
        .expect("open database");
    let licenses = entity::license::Entity::find().all(&db).await.unwrap();
    let fulfillments = entity::fulfillment::Entity::find().all(&db).await.unwrap();
    db.close().await.ok();

    let stored: BTreeSet<&str> = licenses
        .iter()
        .map(|license| license.activation_code.as_str())
        .collect();
    assert_eq!(stored.len(), licenses.len(), "a code stored twice");

    let mut issued_by = BTreeMap::new();
    for (call, body) in answered {
        let answer: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("answered 200 with a body that is not JSON ({e}): {body}"));
        let codes = answer_codes(&answer);
        for code in &codes {
            assert!(
                stored.contains(code.as_str()),
                "{} answered 200 with {code}, which is not stored",
                call.operation
            );
        }
        if call.operation == "new" {
            for code in codes {
                if let Some(other) = issued_by.insert(code.clone(), call.body.clone()) {
                    panic!("{code} issued by two calls:\n{other}\n{}", call.body);
                }
            }
        }
    }

    let mut in_answers = BTreeSet::new();
    for row in &fulfillments {
        let answer: Value = serde_json::from_str(&row.answer).unwrap_or_else(|e| {
            panic!(
                "fulfillment {} holds a broken answer ({e}): {:?}",
                row.id, row.answer
            )
        });
        let codes = answer_codes(&answer);
        for code in &codes {
            assert!(
                stored.contains(code.as_str()),
                "fulfillment {} answered {code}, which is not stored",
                row.id
            );
        }
        if row.operation == entity::fulfillment::Operation::New {
            let own = licenses
                .iter()
                .filter(|license| license.fulfillment_id == row.id)
                .count();
            assert_eq!(
                own,
                answer["licenses"].as_array().map_or(0, Vec::len),
                "fulfillment {} ({}) has a half set of licenses",
                row.id,
                row.nexway_fulfillment_id
            );
        }
        in_answers.extend(codes);
    }
    for code in &stored {
        assert!(
            in_answers.contains(*code),
            "license {code} belongs to no stored answer"
        );
    }
}

/// Replays every answered call on `nexkey`: the same bytes, marked as a replay.
pub async fn assert_replayed(nexkey: &Nexkey, answered: &[(Call, String)]) {
    let replays = futures::future::join_all(
        answered
            .iter()
            .map(|(call, _)| nexkey.call(call.operation, &call.body)),
    )
    .await;
    for ((call, body), replay) in answered.iter().zip(replays) {
        let replay =
            replay.unwrap_or_else(|e| panic!("replay of {} got no answer: {e}", call.operation));
        assert_eq!(
            replay.status, 200,
            "replay of {}: {}",
            call.operation, replay.body
        );
        assert_eq!(
            replay.replayed.as_deref(),
            Some("true"),
            "replay of {} was not answered from the stored answer",
            call.operation
        );
        assert_eq!(replay.body, *body, "replay of {} differs", call.operation);
    }
}

/// SQLite's URL for the file `nexkey.db` in `dir`.
pub fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("nexkey.db").display())
}

/// The database servers of the suite, after printing why the test is skipped when none is.
pub fn shared_servers(test: &str) -> Vec<String> {
    let servers = crate::helpers::test_servers();
    if servers.is_empty() {
        eprintln!("SKIPPED {test}: NEXKEY_TEST_DATABASE_URL is not set");
    }
    servers
}

/// Every answer is either 200 or a 503 with `Retry-After` (never a 500, never another error);
/// returns how many of each plus the calls that got no answer at all.
pub fn assert_200_or_retry_later(results: &[(Call, Result<Answer, String>)]) -> (usize, usize) {
    let (mut ok, mut later) = (0, 0);
    for (call, result) in results {
        let answer = result
            .as_ref()
            .unwrap_or_else(|e| panic!("{} got no answer: {e}", call.operation));
        match answer.status {
            200 => ok += 1,
            _ if answer.is_retry_later() => later += 1,
            status => panic!(
                "{} answered {status} (retry-after {:?}): {}",
                call.operation, answer.retry_after, answer.body
            ),
        }
    }
    (ok, later)
}
