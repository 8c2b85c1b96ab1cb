//! What nexkey writes to its log (stderr) never carries a password, a signing secret or an
//! Authorization header: the real binary, at the most verbose level, on failed and good calls.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::helpers::{PASSWORD, USER};

const SECRET: &str = "signing-secret-never-logged";
const WRONG_PASSWORD: &str = "wrong-password-never-logged";
const ADMIN_KEY: &str = "admin-key-never-logged-0123";
const BAD_ADMIN_KEY: &str = "bad-admin-key-never-logged";

#[tokio::test]
async fn the_log_of_failed_and_successful_calls_holds_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_nexkey"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("NEXKEY_LOG", "trace")
        .env("NEXKEY_BIND", &address)
        .env("NEXKEY_DATA_DIR", dir.path())
        .env("NEXKEY_NEXWAY_USER", USER)
        .env("NEXKEY_NEXWAY_PASSWORD", PASSWORD)
        .env("NEXKEY_NEXWAY_SIGNATURE", "required")
        .env("NEXKEY_NEXWAY_SIGNING_SECRETS", SECRET)
        .env("NEXKEY_NEXWAY_SIGNED_FIELDS", "$.fulfillmentId")
        .env("NEXKEY_ADMIN_KEYS", ADMIN_KEY)
        .env("NEXKEY_TRUSTED_PROXIES", "127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nexkey");
    for _ in 0..200 {
        if std::net::TcpStream::connect(&address).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let body = r#"{"fulfillmentId":"LOG-1","checkout":{"orderId":"ORD-LOG-1"},"user":{"email":"buyer@example.com"},"product":{"publisherProductId":"ACME-PRO"}}"#;
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(br#"{"$.fulfillmentId":"LOG-1"}"#);
    let signature = hex::encode(mac.finalize().into_bytes());
    let http = reqwest::Client::new();
    let call = |password: &str, signature: &str| {
        http.post(format!("http://{address}/licenses/new"))
            .basic_auth(USER, Some(password))
            .header("content-type", "application/json")
            .header("x-nexway-signature", signature)
            .body(body)
            .send()
    };
    let wrong_password = call(WRONG_PASSWORD, &signature).await.unwrap();
    assert_eq!(wrong_password.status(), 401);
    let forged = call(PASSWORD, &"ab".repeat(32)).await.unwrap();
    assert_eq!(forged.status(), 401);
    let good = call(PASSWORD, &signature).await.unwrap();
    assert_eq!(good.status(), 200);
    let answer: serde_json::Value = good.json().await.unwrap();
    let code = answer["licenses"][0]["activationCode"]
        .as_str()
        .unwrap()
        .to_owned();

    // Support pastes URLs carrying the admin key; neither a good nor a bad one is logged.
    for key in [ADMIN_KEY, BAD_ADMIN_KEY] {
        let url = format!("http://{address}/nexus/lkey/{code}?key={key}");
        // Through the trusted proxy (loopback here), on behalf of a client it names.
        let lookup = http
            .get(url)
            .header("x-forwarded-for", "203.0.113.9")
            .send()
            .await
            .unwrap();
        assert_eq!(lookup.status(), if key == ADMIN_KEY { 200 } else { 401 });
    }

    child.kill().ok();
    child.wait().ok();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();

    assert!(
        log.contains("Nexway call refused"),
        "the refusals are logged:\n{log}"
    );
    // Every refused call names its client: the peer, or whom the trusted proxy spoke for.
    let refused: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("request answered") && line.contains("\"status\":401"))
        .collect();
    assert_eq!(refused.len(), 3, "three refused calls:\n{log}");
    assert!(
        refused[..2]
            .iter()
            .all(|line| line.contains(r#""client":"127.0.0.1""#)),
        "{refused:?}"
    );
    assert!(
        refused[2].contains(r#""client":"203.0.113.9""#),
        "{refused:?}"
    );
    let encode = |password: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"))
    };
    for secret in [
        PASSWORD,
        WRONG_PASSWORD,
        SECRET,
        &encode(PASSWORD),
        &encode(WRONG_PASSWORD),
        ADMIN_KEY,
        BAD_ADMIN_KEY,
    ] {
        assert!(!log.contains(secret), "{secret:?} is in the log:\n{log}");
    }
    assert!(
        !log.to_ascii_lowercase().contains("authorization: basic"),
        "an Authorization header is in the log:\n{log}"
    );
}
