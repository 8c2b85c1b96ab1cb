//! The connection edges: HTTP/2 cleartext is refused, connections are bounded, and the client
//! address comes from `X-Forwarded-For` only through a trusted proxy.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{ADMIN_KEY, Backend, TestApp, spawn_app, with_admin_key};

/// Reads until the server closes the connection; `None` if it is still open after `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(wait, async {
        let mut buffer = [0u8; 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| received)
}

#[tokio::test]
async fn an_http2_prior_knowledge_connection_is_closed_at_once() {
    let app = spawn_app(Backend::Sqlite, &|_| {}).await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    // The client preface, then an empty SETTINGS frame (length 0, type 4, flags 0, stream 0).
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    stream
        .write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    let received = closed_within(&mut stream, Duration::from_secs(2))
        .await
        .expect("the server closes an HTTP/2 connection at once");
    // Not a single HTTP/2 frame (a server SETTINGS frame would be type 4 at byte 3).
    assert!(received.is_empty(), "answered {received:?}");

    // HTTP/1.1 is served as before.
    let live = reqwest::get(app.url("/health/live")).await.unwrap();
    assert_eq!(live.status(), 200);
}

/// A raw HTTP/1.1 GET on a fresh connection: the status line, or `None` when no answer came.
async fn raw_get(app: &TestApp, path: &str, wait: Duration) -> Option<String> {
    let mut stream = TcpStream::connect(app.address).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let answer = closed_within(&mut stream, wait).await?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    text.lines().next().map(str::to_owned)
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let app = spawn_app(Backend::Sqlite, &|settings| {
        settings.server.max_connections = 2;
    })
    .await;
    let idle_one = TcpStream::connect(app.address).await.unwrap();
    let _idle_two = TcpStream::connect(app.address).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Two idle connections hold both slots: a third call is not served.
    let third = tokio::spawn({
        let address = app.address;
        async move {
            let mut stream = TcpStream::connect(address).await.unwrap();
            stream
                .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.ok();
            String::from_utf8_lossy(&answer).into_owned()
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "a third connection was served");
    drop(idle_one);
    let answer = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Bad keys on behalf of `client`, through a proxy on loopback.
async fn bad_keys(app: &TestApp, client: &str, count: usize) {
    for _ in 0..count {
        let answer = app
            .http
            .get(app.url("/admin/products"))
            .basic_auth("not-a-valid-admin-key", None::<&str>)
            .header("x-forwarded-for", client)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
    }
}

async fn good_key_status(app: &TestApp, forwarded_for: &str) -> u16 {
    app.http
        .get(app.url("/admin/products"))
        .basic_auth(ADMIN_KEY, None::<&str>)
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn behind_a_trusted_proxy_one_client_cools_off_not_everyone() {
    let app = spawn_app(Backend::Sqlite, &|settings| {
        with_admin_key(settings);
        settings.admin.bad_key_limit = 3;
        settings.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    bad_keys(&app, "203.0.113.7", 3).await;
    assert_eq!(good_key_status(&app, "203.0.113.7").await, 429);
    // Another client behind the same proxy, and the proxy chain's right-most untrusted hop.
    assert_eq!(good_key_status(&app, "203.0.113.8").await, 200);
    assert_eq!(good_key_status(&app, "203.0.113.7, 127.0.0.2").await, 429);
    // A client cannot escape by prepending a forged address: the proxy appends the real one.
    assert_eq!(
        good_key_status(&app, "198.51.100.1, 203.0.113.7").await,
        429
    );
}

#[tokio::test]
async fn from_an_untrusted_peer_the_header_is_ignored() {
    let app = spawn_app(Backend::Sqlite, &|settings| {
        with_admin_key(settings);
        settings.admin.bad_key_limit = 3;
    })
    .await;
    bad_keys(&app, "203.0.113.7", 3).await;
    // The header named someone else, but the peer (loopback) is the one cooling off.
    assert_eq!(good_key_status(&app, "203.0.113.8").await, 429);
    assert_eq!(
        raw_get(&app, "/health/live", Duration::from_secs(5))
            .await
            .as_deref(),
        Some("HTTP/1.1 200 OK")
    );
}
