//! The catalogue of bad input: each row is one kind of bad call, answered with its documented
//! status and code, and leaving every table as it was. Slow and stalled clients are cut off.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{PASSWORD, TestApp, USER, backends_with, current_new, json, legacy_new};

const BODY_LIMIT: usize = 16 * 1024;
const MAX_QUANTITY: u32 = 5;

enum Body {
    Bytes(Vec<u8>),
    /// Sent chunked, without a Content-Length.
    Chunked(Vec<u8>),
}

struct Case {
    name: &'static str,
    content_type: Option<&'static str>,
    body: Body,
    /// `None`: accepted (200).
    refusal: Option<(u16, &'static str)>,
}

fn case(
    name: &'static str,
    body: impl Into<Vec<u8>>,
    refusal: Option<(u16, &'static str)>,
) -> Case {
    Case {
        name,
        content_type: Some("application/json"),
        body: Body::Bytes(body.into()),
        refusal,
    }
}

const INVALID: Option<(u16, &str)> = Some((400, "INVALID_REQUEST"));

/// A legacy body for `new` with `change` applied.
fn legacy(change: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut body = legacy_new("NXF-BAD", "ACME-PRO", 1);
    change(&mut body);
    body.to_string().into_bytes()
}

/// A current-generation body with `change` applied.
fn current(change: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut body = current_new("NXC-BAD", "ORD-BAD", "ACME-PRO");
    change(&mut body);
    body.to_string().into_bytes()
}

fn catalogue() -> Vec<Case> {
    let valid = legacy(|_| {});
    let oversized = legacy(|b| b["metadata"]["externalContext"] = "x".repeat(BODY_LIMIT).into());
    let nested_objects = format!(
        r#"{{"fulfillmentId":"F","product":{}1{}}}"#,
        r#"{"a":"#.repeat(1000),
        "}".repeat(1000)
    );
    let nested_arrays = format!(
        r#"{{"fulfillmentId":"F","x":{}{}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let mut invalid_utf8 = legacy(|b| b["user"]["firstName"] = "Ada-NAME".into());
    let at = invalid_utf8.windows(4).position(|w| w == b"NAME").unwrap();
    invalid_utf8[at..at + 2].copy_from_slice(&[0xC3, 0x28]);
    let raw_control = String::from_utf8(legacy(|b| b["user"]["firstName"] = "Ada-NAME".into()))
        .unwrap()
        .replace("-NAME", "\u{1}");
    vec![
        case("malformed JSON", "{not json", INVALID),
        case("empty body", "", INVALID),
        case("a JSON array, not an object", "[1,2]", INVALID),
        case("neither generation", r#"{"hello":"world"}"#, INVALID),
        Case {
            name: "wrong content type",
            content_type: Some("text/plain"),
            ..case("", valid.clone(), Some((415, "UNSUPPORTED_MEDIA_TYPE")))
        },
        Case {
            name: "missing content type",
            content_type: None,
            ..case("", valid.clone(), Some((415, "UNSUPPORTED_MEDIA_TYPE")))
        },
        case(
            "body over the limit, with a length",
            oversized.clone(),
            Some((413, "PAYLOAD_TOO_LARGE")),
        ),
        Case {
            name: "body over the limit, chunked without a length",
            body: Body::Chunked(oversized),
            ..case("", "", Some((413, "PAYLOAD_TOO_LARGE")))
        },
        case("objects nested 1000 deep", nested_objects, INVALID),
        case("arrays nested 5000 deep", nested_arrays, INVALID),
        case(
            "quantity of the wrong type",
            legacy(|b| b["product"]["quantity"] = "three".into()),
            INVALID,
        ),
        case(
            "user of the wrong type",
            legacy(|b| b["user"] = "buyer@example.com".into()),
            INVALID,
        ),
        case(
            "required id null",
            legacy(|b| b["product"]["nexwayFulfillmentId"] = Value::Null),
            INVALID,
        ),
        case(
            "missing required field",
            legacy(|b| {
                b["product"]
                    .as_object_mut()
                    .unwrap()
                    .remove("publisherProductId");
            }),
            INVALID,
        ),
        case(
            "over-long id",
            legacy(|b| b["product"]["publisherProductId"] = "P".repeat(201).into()),
            INVALID,
        ),
        case(
            "over-long text",
            legacy(|b| b["metadata"]["externalContext"] = "x".repeat(4097).into()),
            INVALID,
        ),
        case(
            "invalid e-mail",
            legacy(|b| b["user"]["email"] = "not-an-email".into()),
            INVALID,
        ),
        case(
            "missing e-mail",
            legacy(|b| {
                b["user"].as_object_mut().unwrap().remove("email");
            }),
            INVALID,
        ),
        case(
            "escaped control character in an identifier",
            legacy(|b| b["product"]["nexwayFulfillmentId"] = "NXF\u{7}".into()),
            INVALID,
        ),
        case(
            "NUL in an identifier",
            legacy(|b| b["product"]["publisherProductId"] = "ACME\u{0}PRO".into()),
            INVALID,
        ),
        case(
            "NUL in an activation code",
            legacy(|b| {
                b["product"]["licenses"] = serde_json::json!([{"activationCode": "K\u{0}1"}])
            }),
            INVALID,
        ),
        case("raw control character", raw_control, INVALID),
        case("invalid UTF-8", invalid_utf8, INVALID),
        case(
            "zero quantity",
            legacy(|b| b["product"]["quantity"] = 0.into()),
            INVALID,
        ),
        case(
            "negative quantity",
            legacy(|b| b["product"]["quantity"] = (-1).into()),
            INVALID,
        ),
        case(
            "quantity over the maximum",
            legacy(|b| b["product"]["quantity"] = (MAX_QUANTITY + 1).into()),
            INVALID,
        ),
        case(
            "quantity past 32 bits",
            legacy(|b| b["product"]["quantity"] = (1i64 << 40).into()),
            INVALID,
        ),
        case(
            "quantity 1e999",
            String::from_utf8(legacy(|b| b["product"]["quantity"] = 7.into()))
                .unwrap()
                .replace(":7", ":1e999"),
            INVALID,
        ),
        case(
            "date that does not parse",
            legacy(|b| b["product"]["startDate"] = "22/11/2026".into()),
            INVALID,
        ),
        case(
            "end date before the start",
            legacy(|b| {
                b["product"]["startDate"] = "2027-01-01".into();
                b["product"]["endDate"] = "2026-01-01".into();
            }),
            INVALID,
        ),
        case(
            "expiration timestamp before the start",
            current(|b| {
                b["product"]["startTimestamp"] = 1_800_000_000_000i64.into();
                b["product"]["expirationTimestamp"] = 1_700_000_000_000i64.into();
            }),
            INVALID,
        ),
        case(
            "timestamp out of range",
            current(|b| b["product"]["startTimestamp"] = i64::MAX.into()),
            INVALID,
        ),
        case(
            "the same key twice",
            r#"{"product":{"nexwayFulfillmentId":"A","nexwayFulfillmentId":"B","nexwayProductId":"N","publisherProductId":"P"},"user":{"email":"a@b.example"}}"#,
            INVALID,
        ),
        case(
            "the same top-level key twice",
            String::from_utf8(current(|_| {})).unwrap().replacen(
                '{',
                r#"{"fulfillmentId":"OTHER","#,
                1,
            ),
            INVALID,
        ),
        case(
            "unknown fields are accepted and ignored",
            legacy(|b| {
                b["surprise"] = json!({"deep": [1, 2, {"x": null}]});
                b["product"]["colour"] = "blue".into();
            }),
            None,
        ),
    ]
}

async fn send(app: &TestApp, case: Case) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url("/licenses/new"))
        .basic_auth(USER, Some(PASSWORD));
    if let Some(content_type) = case.content_type {
        request = request.header("content-type", content_type);
    }
    request = match case.body {
        Body::Bytes(bytes) => request.body(bytes),
        Body::Chunked(bytes) => {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                bytes.chunks(1000).map(|c| Ok(c.to_vec())).collect();
            request.body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        }
    };
    request.send().await.expect("request")
}

#[tokio::test]
async fn every_kind_of_bad_input_is_refused_with_its_code_and_nothing_stored() {
    let configure = |settings: &mut nexkey::config::Settings| {
        settings.body_limit = BODY_LIMIT;
        settings.defaults.max_quantity = MAX_QUANTITY;
    };
    for app in backends_with(configure).await {
        for case in catalogue() {
            let name = case.name;
            let expected = case.refusal;
            let before = app.row_counts().await;
            let (status, body) = json(send(&app, case).await).await;
            let after = app.row_counts().await;
            match expected {
                Some((expected_status, code)) => {
                    assert_eq!(status, expected_status, "{} / {name}: {body}", app.backend);
                    assert_eq!(
                        body["error"]["code"], code,
                        "{} / {name}: {body}",
                        app.backend
                    );
                    assert!(
                        body["error"]["message"]
                            .as_str()
                            .is_some_and(|m| !m.is_empty()),
                        "{name}: {body}"
                    );
                    assert_eq!(
                        after, before,
                        "{} / {name}: a refused call wrote rows",
                        app.backend
                    );
                    if name.contains("nested") {
                        // serde_json's recursion limit, not a stack overflow.
                        assert!(
                            body["error"]["message"]
                                .as_str()
                                .unwrap()
                                .contains("recursion limit"),
                            "{body}"
                        );
                    }
                }
                None => {
                    assert_eq!(status, 200, "{} / {name}: {body}", app.backend);
                    assert_eq!(after[2], before[2] + 1, "{name}: one license issued");
                }
            }
        }
    }
}

/// Reads until the server answers or closes; returns what it sent and how long it took.
async fn wait_for_server(stream: &mut tokio::net::TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!("the server kept a stalled connection open for 10 s"),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn stalled_clients_are_cut_off_after_the_request_timeout() {
    let configure = |settings: &mut nexkey::config::Settings| settings.request_timeout_secs = 1;
    for app in backends_with(configure).await {
        // Headers never finished.
        let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
        stream
            .write_all(b"POST /licenses/new HTTP/1.1\r\nHost: nexkey\r\nContent-Ty")
            .await
            .unwrap();
        let (answer, waited) = wait_for_server(&mut stream).await;
        assert!(
            waited < Duration::from_secs(4),
            "{}: closed after {waited:?}",
            app.backend
        );
        assert!(!answer.contains("200 OK"), "{answer}");

        // Headers complete, body stalled half-way: 408 in the documented shape (or a close).
        let before = app.row_counts().await;
        let body = legacy_new("NXF-SLOW", "ACME-PRO", 1).to_string();
        let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
        let head = format!(
            "POST /licenses/new HTTP/1.1\r\nHost: nexkey\r\nAuthorization: Basic {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            base64_credentials(),
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream
            .write_all(&body.as_bytes()[..body.len() / 2])
            .await
            .unwrap();
        let (answer, waited) = wait_for_server(&mut stream).await;
        assert!(
            waited < Duration::from_secs(4),
            "{}: closed after {waited:?}",
            app.backend
        );
        assert!(
            answer.starts_with("HTTP/1.1 408") && answer.contains(r#""code":"REQUEST_TIMEOUT""#),
            "{}: {answer}",
            app.backend
        );
        assert_eq!(app.row_counts().await, before);

        // Headers dripped one byte at a time, each well within the timeout: cut off all the same.
        let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
        let started = Instant::now();
        let head = b"POST /licenses/new HTTP/1.1\r\nHost: nexkey\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        for byte in head {
            if stream.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (_, _) = wait_for_server(&mut stream).await;
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{}: a dripping client held the connection {:?}",
            app.backend,
            started.elapsed()
        );
    }
}

fn base64_credentials() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
}
