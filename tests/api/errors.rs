//! Every refusal answers `{"error":{"code","message"}}` and leaves the database untouched.
//! The bad bodies are catalogued in `bad_input.rs`; here: credentials, routing, storage.

use crate::helpers::{PASSWORD, USER, backends, json, legacy_new};
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
