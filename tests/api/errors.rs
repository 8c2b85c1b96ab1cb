//! Every refusal answers `{"error":{"code","message"}}` and leaves the database untouched.

use crate::helpers::{PASSWORD, USER, backends, backends_with, json, legacy_new};
use serde_json::Value;

/// Sends `request`, checks status and error code, and that no row was written.
async fn assert_refused(
    app: &crate::helpers::TestApp,
    request: reqwest::RequestBuilder,
    status: u16,
    code: &str,
) -> Value {
    let before = app.row_counts().await;
    let (actual, body) = json(request.send().await.expect("request")).await;
    assert_eq!(actual, status, "{}: {body}", app.backend);
    assert_eq!(body["error"]["code"], code, "{}: {body}", app.backend);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(
        app.row_counts().await,
        before,
        "{}: a refused call wrote rows",
        app.backend
    );
    body
}

fn post(app: &crate::helpers::TestApp) -> reqwest::RequestBuilder {
    app.http
        .post(app.url("/licenses/new"))
        .header("content-type", "application/json")
}

#[tokio::test]
async fn missing_and_wrong_credentials_are_the_same_401() {
    for app in backends().await {
        let body = legacy_new("NXF-200", "ACME-PRO", 1).to_string();
        let missing = post(&app).body(body.clone()).send().await.unwrap();
        assert_eq!(
            missing.headers()["www-authenticate"],
            "Basic realm=\"nexkey\""
        );
        let missing =
            assert_refused(&app, post(&app).body(body.clone()), 401, "UNAUTHORIZED").await;
        let wrong = assert_refused(
            &app,
            post(&app)
                .basic_auth(USER, Some("not-the-password"))
                .body(body.clone()),
            401,
            "UNAUTHORIZED",
        )
        .await;
        assert_eq!(
            missing, wrong,
            "no oracle between a missing and a wrong credential"
        );
        assert_refused(
            &app,
            post(&app).basic_auth("someone", Some(PASSWORD)).body(body),
            401,
            "UNAUTHORIZED",
        )
        .await;
    }
}

#[tokio::test]
async fn malformed_bodies_are_400_invalid_request() {
    for app in backends().await {
        let authed = || post(&app).basic_auth(USER, Some(PASSWORD));
        assert_refused(&app, authed().body("{not json"), 400, "INVALID_REQUEST").await;
        assert_refused(&app, authed().body(""), 400, "INVALID_REQUEST").await;
        assert_refused(
            &app,
            authed().body(r#"{"hello":"world"}"#),
            400,
            "INVALID_REQUEST",
        )
        .await;

        // A missing required field is named in the message.
        let mut body = legacy_new("NXF-201", "ACME-PRO", 1);
        body["product"]
            .as_object_mut()
            .unwrap()
            .remove("publisherProductId");
        let refusal = assert_refused(
            &app,
            authed().body(body.to_string()),
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert!(
            refusal["error"]["message"]
                .as_str()
                .unwrap()
                .contains("publisherProductId")
        );

        // A field of the wrong type.
        let mut body = legacy_new("NXF-202", "ACME-PRO", 1);
        body["product"]["quantity"] = "three".into();
        assert_refused(
            &app,
            authed().body(body.to_string()),
            400,
            "INVALID_REQUEST",
        )
        .await;

        // The same key twice.
        let twice = r#"{"product":{"nexwayFulfillmentId":"A","nexwayFulfillmentId":"B","nexwayProductId":"N","publisherProductId":"P"},"user":{"email":"a@b.example"}}"#;
        assert_refused(&app, authed().body(twice), 400, "INVALID_REQUEST").await;
    }
}

#[tokio::test]
async fn quantity_must_be_between_one_and_the_maximum() {
    for app in backends_with(|settings| settings.defaults.max_quantity = 5).await {
        let authed = || post(&app).basic_auth(USER, Some(PASSWORD));
        for quantity in [0, -1] {
            let body = legacy_new("NXF-210", "ACME-PRO", quantity).to_string();
            assert_refused(&app, authed().body(body), 400, "INVALID_REQUEST").await;
        }
        let body = legacy_new("NXF-211", "ACME-PRO", 6).to_string();
        assert_refused(&app, authed().body(body), 400, "INVALID_REQUEST").await;
        let (status, _) = json(app.call("new", &legacy_new("NXF-212", "ACME-PRO", 5)).await).await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn the_buyer_needs_a_valid_email() {
    for app in backends().await {
        let authed = || post(&app).basic_auth(USER, Some(PASSWORD));
        let mut body = legacy_new("NXF-220", "ACME-PRO", 1);
        body["user"]["email"] = "not-an-email".into();
        assert_refused(
            &app,
            authed().body(body.to_string()),
            400,
            "INVALID_REQUEST",
        )
        .await;
        let mut body = legacy_new("NXF-221", "ACME-PRO", 1);
        body["user"].as_object_mut().unwrap().remove("email");
        assert_refused(
            &app,
            authed().body(body.to_string()),
            400,
            "INVALID_REQUEST",
        )
        .await;
    }
}

#[tokio::test]
async fn dates_must_parse_and_end_after_they_start() {
    for app in backends().await {
        let authed = || post(&app).basic_auth(USER, Some(PASSWORD));
        let mut body = legacy_new("NXF-230", "ACME-PRO", 1);
        body["product"]["startDate"] = "22/11/2026".into();
        assert_refused(
            &app,
            authed().body(body.to_string()),
            400,
            "INVALID_REQUEST",
        )
        .await;
        let mut body = legacy_new("NXF-231", "ACME-PRO", 1);
        body["product"]["startDate"] = "2027-01-01".into();
        body["product"]["endDate"] = "2026-01-01".into();
        assert_refused(
            &app,
            authed().body(body.to_string()),
            400,
            "INVALID_REQUEST",
        )
        .await;
    }
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    for app in backends().await {
        let request = app
            .http
            .post(app.url("/licenses/new"))
            .basic_auth(USER, Some(PASSWORD))
            .header("content-type", "text/plain")
            .body(legacy_new("NXF-240", "ACME-PRO", 1).to_string());
        assert_refused(&app, request, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_with_or_without_a_length() {
    for app in backends_with(|settings| settings.body_limit = 1024).await {
        let mut body = legacy_new("NXF-250", "ACME-PRO", 1);
        body["metadata"]["externalContext"] = "x".repeat(2000).into();
        let body = body.to_string();
        let authed = || post(&app).basic_auth(USER, Some(PASSWORD));
        assert_refused(&app, authed().body(body.clone()), 413, "PAYLOAD_TOO_LARGE").await;

        // Chunked, with no Content-Length to trust.
        let chunks: Vec<Result<String, std::io::Error>> = body
            .as_bytes()
            .chunks(100)
            .map(|c| Ok(String::from_utf8(c.to_vec()).unwrap()))
            .collect();
        let stream = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
        assert_refused(&app, authed().body(stream), 413, "PAYLOAD_TOO_LARGE").await;
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_in_the_same_shape() {
    for app in backends().await {
        let request = app
            .http
            .get(app.url("/licenses/new"))
            .basic_auth(USER, Some(PASSWORD));
        assert_refused(&app, request, 405, "METHOD_NOT_ALLOWED").await;
        let request = app.http.get(app.url("/no/such/thing"));
        assert_refused(&app, request, 404, "NOT_FOUND").await;
    }
}

#[tokio::test]
async fn an_unreachable_database_is_503_with_retry_after() {
    for app in backends().await {
        app.db.clone().close().await.ok();
        let response = app.call("new", &legacy_new("NXF-260", "ACME-PRO", 1)).await;
        assert_eq!(response.status().as_u16(), 503, "{}", app.backend);
        assert!(response.headers().contains_key("retry-after"));
        let (_, body) = json(response).await;
        assert_eq!(
            body["error"]["code"], "STORAGE_UNAVAILABLE",
            "{}: {body}",
            app.backend
        );
    }
}
