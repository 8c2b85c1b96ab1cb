//! Graceful shutdown of the real binary: SIGTERM while calls are in flight loses none of them.
//!
//! Each call is a raw HTTP/1.1 exchange with `Expect: 100-continue`: the server sends
//! `100 Continue` only when the handler starts reading the body, so once every connection has
//! received it, every call is provably inside nexkey when the signal is sent. The bodies follow
//! after the signal.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{PASSWORD, USER, codes, legacy_new};

const CALLS: usize = 40;

fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// `nexkey serve` over `database_url` (else SQLite in `dir`), JSON logs written to
/// `dir/stderr.log`, ready to answer.
async fn serve(
    dir: &std::path::Path,
    database_url: Option<&str>,
    shutdown_timeout: &str,
) -> (Child, String) {
    let address = free_address();
    let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_nexkey"));
    command.env_clear();
    if let Some(url) = database_url {
        command.env("NEXKEY_DATABASE_URL", url);
    }
    let mut child = command
        .arg("serve")
        .current_dir(dir)
        .env("NEXKEY_BIND", &address)
        .env("NEXKEY_DATA_DIR", dir)
        .env("NEXKEY_NEXWAY_USER", USER)
        .env("NEXKEY_NEXWAY_PASSWORD", PASSWORD)
        .env("NEXKEY_LOG_FORMAT", "json")
        .env("NEXKEY_SHUTDOWN_TIMEOUT", shutdown_timeout)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn nexkey");
    for _ in 0..200 {
        let ready = Command::new(env!("CARGO_BIN_EXE_nexkey"))
            .args(["health", "--address", &address])
            .env_clear()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        if ready.success() {
            return (child, address);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().ok();
    child.wait().ok();
    panic!("nexkey did not become ready on {address}");
}

pub(crate) fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

pub(crate) async fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            panic!("nexkey did not exit within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends the head of a `POST /licenses/new` and waits for `100 Continue`.
async fn start_call(address: &str, body_len: usize) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let credentials = base64_basic(USER, PASSWORD);
    let head = format!(
        "POST /licenses/new HTTP/1.1\r\nHost: {address}\r\nAuthorization: Basic {credentials}\r\n\
         Content-Type: application/json\r\nContent-Length: {body_len}\r\n\
         Expect: 100-continue\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        let read = stream.read(&mut byte).await.unwrap();
        assert_eq!(read, 1, "connection closed before 100 Continue");
        interim.push(byte[0]);
    }
    let interim = String::from_utf8(interim).unwrap();
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    stream
}

/// Sends the body and reads the whole answer: (status, body).
async fn finish_call(mut stream: TcpStream, body: &[u8]) -> (u16, String) {
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a complete answer");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

#[tokio::test]
async fn sigterm_lets_every_call_in_flight_finish_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("nexkey.db").display()
    );
    sigterm_with_calls_in_flight(dir.path(), &sqlite).await;
    for server in crate::helpers::test_servers() {
        let dir = tempfile::tempdir().unwrap();
        let database_url = crate::helpers::fresh_database(&server).await;
        sigterm_with_calls_in_flight(dir.path(), &database_url).await;
    }
}

async fn sigterm_with_calls_in_flight(dir: &std::path::Path, database_url: &str) {
    let (mut child, address) = serve(dir, Some(database_url), "30").await;

    let bodies: Vec<Vec<u8>> = (0..CALLS)
        .map(|i| {
            legacy_new(&format!("NXF-SHUTDOWN-{i}"), "ACME-PRO", 2)
                .to_string()
                .into_bytes()
        })
        .collect();
    let streams =
        futures::future::join_all(bodies.iter().map(|body| start_call(&address, body.len()))).await;

    sigterm(&child);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "nexkey must wait for the calls in flight"
    );
    assert!(
        TcpStream::connect(&address).await.is_err(),
        "after SIGTERM no new connection is accepted"
    );

    let answers = futures::future::join_all(
        streams
            .into_iter()
            .zip(&bodies)
            .map(|(stream, body)| finish_call(stream, body)),
    )
    .await;
    let status = wait_exit(&mut child, Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status:?}");

    // The process is gone: what it answered must be in the database.
    let db = sea_orm::Database::connect(database_url).await.unwrap();
    for (i, (status, body)) in answers.iter().enumerate() {
        assert_eq!(*status, 200, "call {i}: {body}");
        let answer: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(answer["nexwayFulfillmentId"], format!("NXF-SHUTDOWN-{i}"));
        let answered = codes(&answer);
        assert_eq!(answered.len(), 2);
        let stored = entity::license::Entity::find()
            .filter(entity::license::Column::ActivationCode.is_in(answered.clone()))
            .count(&db)
            .await
            .unwrap();
        assert_eq!(stored, 2, "call {i}: the codes answered are stored");
    }
    assert_eq!(
        entity::fulfillment::Entity::find()
            .count(&db)
            .await
            .unwrap(),
        CALLS as u64
    );
    assert_eq!(
        entity::license::Entity::find().count(&db).await.unwrap(),
        2 * CALLS as u64
    );

    // One JSON log line per call, with its request id and fulfillment id; none for the probes,
    // and no secret anywhere.
    let logs = std::fs::read_to_string(dir.join("stderr.log")).unwrap();
    assert!(!logs.contains(PASSWORD));
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let answered: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["fields"]["message"] == "request answered")
        .collect();
    assert_eq!(answered.len(), CALLS, "the health probes are not logged");
    for line in &answered {
        let span = &line["span"];
        assert_eq!(span["operation"], "new");
        assert_eq!(span["outcome"], "ok");
        assert!(uuid::Uuid::parse_str(span["request_id"].as_str().unwrap()).is_ok());
        assert!(
            span["fulfillment_id"]
                .as_str()
                .unwrap()
                .starts_with("NXF-SHUTDOWN-")
        );
    }
    assert_eq!(lines.last().unwrap()["fields"]["message"], "nexkey stopped");
}

#[tokio::test]
async fn the_shutdown_limit_bounds_the_wait_for_a_stuck_call() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, address) = serve(dir.path(), None, "1").await;
    // A call whose body never comes.
    let _stuck = start_call(&address, 100).await;
    let signalled = Instant::now();
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(15)).await;
    let waited = signalled.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        waited >= Duration::from_millis(900),
        "waited {waited:?} before giving up on the call"
    );
}
