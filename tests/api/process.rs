//! The real binary: `serve` on its embedded SQLite default, restarted over the same data.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::{PASSWORD, USER, codes, legacy_new};

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) async fn start(data_dir: &std::path::Path, envs: &[(&str, &str)]) -> Server {
    let address = format!("127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_nexkey"))
        .arg("serve")
        .current_dir(data_dir)
        .env_clear()
        .env("NEXKEY_BIND", &address)
        .env("NEXKEY_DATA_DIR", data_dir)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nexkey");
    let server = Server { child, address };
    for _ in 0..200 {
        if std::net::TcpStream::connect(&server.address).is_ok() {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nexkey did not start listening on {}", server.address);
}

#[tokio::test]
async fn codes_survive_a_restart_and_are_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = [
        ("NEXKEY_NEXWAY_USER", USER),
        ("NEXKEY_NEXWAY_PASSWORD", PASSWORD),
    ];
    let body = legacy_new("NXF-400", "ACME-PRO", 2);
    let http = reqwest::Client::new();
    let call = |address: String| {
        http.post(format!("http://{address}/licenses/new"))
            .basic_auth(USER, Some(PASSWORD))
            .json(&body)
            .send()
    };

    let server = start(dir.path(), &credentials).await;
    let first = call(server.address.clone()).await.unwrap();
    assert_eq!(first.status(), 200);
    let first = first.text().await.unwrap();
    drop(server);

    let server = start(dir.path(), &credentials).await;
    let again = call(server.address.clone()).await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    // Every code and buyer is in these files: the owner's only, whatever the umask.
    #[cfg(unix)]
    for name in ["nexkey.db", "nexkey.db-wal", "nexkey.db-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name} is owner-only");
    }
    assert_eq!(again.text().await.unwrap(), first);
    let answer: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(codes(&answer).len(), 2);
    assert!(
        dir.path().join("nexkey.db").exists(),
        "the SQLite file lives in the data directory"
    );
}

#[tokio::test]
async fn without_credentials_the_first_start_generates_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), &[]).await;
    let file = dir.path().join("nexway-credentials");
    let stored = std::fs::read_to_string(&file).expect("credentials file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "owner-only permissions");
    }
    let (user, password) = stored.trim().split_once(':').expect("user:password");
    assert!(password.len() >= 24, "a strong password");

    // The generated credential opens the door; no credential does not.
    let http = reqwest::Client::new();
    let url = format!("http://{}/licenses/new", server.address);
    let body = legacy_new("NXF-401", "ACME-PRO", 1);
    let refused = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let accepted = http
        .post(&url)
        .basic_auth(user, Some(password))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);

    // It was printed once, on stdout, for the operator.
    server.child.kill().ok();
    let output = printed(&mut server.child);
    assert!(
        output.contains(password),
        "the password is printed at first start"
    );
}

/// What a killed server printed on stdout.
fn printed(child: &mut Child) -> String {
    use std::io::Read;
    child.wait().ok();
    let mut out = String::new();
    if let Some(stdout) = child.stdout.as_mut() {
        stdout.read_to_string(&mut out).ok();
    }
    out
}

#[tokio::test]
async fn two_processes_sharing_a_database_server_issue_one_set_of_codes() {
    let servers = crate::helpers::test_servers();
    if servers.is_empty() {
        eprintln!("skipped: NEXKEY_TEST_DATABASE_URL is not set");
    }
    for server in servers {
        two_processes_issue_one_set_of_codes(&server).await;
    }
}

async fn two_processes_issue_one_set_of_codes(server: &str) {
    let database_url = crate::helpers::fresh_database(server).await;
    let dir = tempfile::tempdir().unwrap();
    let envs = [
        ("NEXKEY_NEXWAY_USER", USER),
        ("NEXKEY_NEXWAY_PASSWORD", PASSWORD),
        ("NEXKEY_DATABASE_URL", database_url.as_str()),
    ];
    // The first migrates; the second finds the schema current.
    let first = start(dir.path(), &envs).await;
    let second = start(dir.path(), &envs).await;

    let http = reqwest::Client::new();
    let body = legacy_new("NXF-402", "ACME-PRO", 3);
    let calls = (0..40).map(|i| {
        let address = if i % 2 == 0 {
            &first.address
        } else {
            &second.address
        };
        http.post(format!("http://{address}/licenses/new"))
            .basic_auth(USER, Some(PASSWORD))
            .json(&body)
            .send()
    });
    let mut answers = Vec::new();
    for response in futures::future::join_all(calls).await {
        let response = response.unwrap();
        assert_eq!(response.status(), 200);
        answers.push(response.text().await.unwrap());
    }
    assert!(answers.iter().all(|answer| *answer == answers[0]));

    use sea_orm::{EntityTrait, PaginatorTrait};
    let db = nexkey::store::connect(&database_url).await.unwrap();
    assert_eq!(
        entity::prelude::License::find().count(&db).await.unwrap(),
        3
    );
    assert_eq!(
        entity::prelude::Fulfillment::find()
            .count(&db)
            .await
            .unwrap(),
        1
    );
}
