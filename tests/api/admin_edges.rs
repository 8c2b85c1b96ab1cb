//! The support side's edges: bad parameters are 400s naming them (before the database, on every
//! backend), every error is in the admin shape, browsers cannot drive it from another site, and
//! nothing carrying codes or buyer data is cached.

use std::collections::BTreeMap;

use nexkey::config::{ProductOverride, Settings};
use nexkey::keygen::{GeneratorSettings, PoolSettings};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, TestApp, backends_with, codes, json, legacy_new, with_admin_key};

fn settings(settings: &mut Settings) {
    with_admin_key(settings);
    settings.products = BTreeMap::from([
        (
            "DR-POOL".into(),
            ProductOverride {
                generator: Some(GeneratorSettings::Pool(PoolSettings::default())),
                ..ProductOverride::default()
            },
        ),
        ("ACME-PRO".into(), ProductOverride::default()),
    ]);
}

async fn issued(app: &TestApp, fulfillment: &str) -> String {
    let (status, answer) = json(
        app.call("new", &legacy_new(fulfillment, "ACME-PRO", 1))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    codes(&answer).remove(0)
}

/// An admin error answer: its status, `errorCode` and `errorMessage`.
async fn admin_error(response: reqwest::Response) -> (u16, String, String) {
    let (status, body) = json(response).await;
    let keys: Vec<&String> = body.as_object().expect("an object").keys().collect();
    assert_eq!(
        keys,
        ["errorCode", "errorMessage"],
        "the admin shape: {body}"
    );
    (
        status,
        body["errorCode"].as_str().unwrap().to_owned(),
        body["errorMessage"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn bad_numbers_and_control_characters_are_400s_naming_the_parameter() {
    for app in backends_with(settings).await {
        let code = issued(&app, "NXF-PARAMS").await;
        let backend = app.backend;
        for (path, parameter) in [
            ("/admin/licenses?page=18446744073709551615", "page"),
            ("/admin/licenses?page=100001", "page"),
            ("/admin/licenses?page=-1", "page"),
            ("/admin/licenses?page=0", "page"),
            ("/admin/licenses?perPage=101", "perPage"),
            ("/admin/licenses?perPage=99999999999999999999999", "perPage"),
            ("/admin/licenses?email=a%00b", "email"),
            (
                "/admin/licenses?nexwayFulfillmentId=N%00",
                "nexwayFulfillmentId",
            ),
            (
                "/admin/licenses?publisherFulfillmentId=%01",
                "publisherFulfillmentId",
            ),
            ("/admin/licenses?orderId=O%0A1", "orderId"),
            ("/admin/licenses?product=A%00", "product"),
            ("/admin/licenses?status=lost", "status"),
            ("/nexus/lkey/K%00", "key"),
            ("/admin/licenses/K%00", "key"),
        ] {
            let (status, error_code, message) = admin_error(app.admin_get(path).await).await;
            assert_eq!(status, 400, "{backend} {path}");
            assert_eq!(error_code, "1N290/1", "{backend} {path}");
            assert!(
                message.starts_with("INVALID_REQUEST") && message.contains(parameter),
                "{backend} {path}: {message}"
            );
        }
        // A bad UTF-8 path segment, and a NUL in the reason of a manual action.
        let (status, _, message) = admin_error(app.admin_get("/admin/licenses/%FF").await).await;
        assert_eq!(status, 400, "{backend}: {message}");
        let before = app.row_counts().await;
        let revoke = app
            .http
            .post(app.url(&format!("/admin/licenses/{code}/revoke")))
            .basic_auth(ADMIN_KEY, None::<&str>)
            .json(&json!({"reason": "fraud\u{0}"}))
            .send()
            .await
            .unwrap();
        let (status, _, message) = admin_error(revoke).await;
        assert_eq!(status, 400, "{backend}");
        assert!(message.contains("reason"), "{backend}: {message}");
        assert_eq!(app.row_counts().await, before, "{backend}: nothing stored");
        // The page refuses the same key, before the database.
        let page = app
            .http
            .get(app.url("/nexus/lkey/K%00"))
            .basic_auth(ADMIN_KEY, None::<&str>)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 400, "{backend}");
    }
}

#[tokio::test]
async fn framework_refusals_on_the_support_side_use_its_shape_and_405_says_allow() {
    let app = backends_with(settings).await.remove(0);
    let wrong_method = app.admin_get("/admin/licenses/K7QX/revoke").await;
    assert_eq!(wrong_method.headers()["allow"], "POST");
    let (status, error_code, message) = admin_error(wrong_method).await;
    assert_eq!(
        (status, error_code.as_str(), message.as_str()),
        (405, "1N290/5", "METHOD_NOT_ALLOWED")
    );

    let unknown = app.admin_get("/admin/nothing-here").await;
    assert_eq!(admin_error(unknown).await.0, 404);

    let too_large = app
        .http
        .post(app.url("/admin/licenses/K7QX/revoke"))
        .basic_auth(ADMIN_KEY, None::<&str>)
        .header("content-type", "application/json")
        .body(format!(r#"{{"reason":"{}"}}"#, "x".repeat(100_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(admin_error(too_large).await.0, 413);

    // The webhook side keeps its own shape, with Allow too.
    let get_new = app.http.get(app.url("/licenses/new")).send().await.unwrap();
    assert_eq!(get_new.headers()["allow"], "POST");
    let (status, body) = json(get_new).await;
    assert_eq!(status, 405);
    assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
}

async fn import(
    app: &TestApp,
    product: &str,
    content_type: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url(&format!("/admin/products/{product}/pool")))
        .basic_auth(ADMIN_KEY, None::<&str>)
        .header("content-type", content_type);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.body("code\nATTACKER-1\n").send().await.unwrap()
}

async fn available(app: &TestApp) -> Value {
    let (_, products) = json(app.admin_get("/admin/products").await).await;
    products
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["publisherProductId"] == "DR-POOL")
        .unwrap()["stock"]["available"]
        .clone()
}

#[tokio::test]
async fn a_hostile_page_cannot_load_codes_or_revoke_through_the_agents_browser() {
    let app = backends_with(settings).await.remove(0);
    // text/plain is what a page can send cross-site without a preflight: refused.
    let (status, _, message) = admin_error(import(&app, "DR-POOL", "text/plain", &[]).await).await;
    assert_eq!((status, message.as_str()), (415, "UNSUPPORTED_MEDIA_TYPE"));
    // Found by attack: writes with no body (retry an event, remove an activation) took form
    // types too. Every support write refuses them.
    for (method, path) in [
        (reqwest::Method::POST, "/admin/events/1/retry"),
        (
            reqwest::Method::DELETE,
            "/admin/licenses/NOPE/activations/1",
        ),
    ] {
        for content_type in [
            "application/x-www-form-urlencoded",
            "text/plain; charset=utf-8",
        ] {
            let response = app
                .http
                .request(method.clone(), app.url(path))
                .basic_auth(ADMIN_KEY, None::<&str>)
                .header("content-type", content_type)
                .body("a=b")
                .send()
                .await
                .unwrap();
            let (status, _, message) = admin_error(response).await;
            assert_eq!(
                (status, message.as_str()),
                (415, "UNSUPPORTED_MEDIA_TYPE"),
                "{path}"
            );
        }
    }
    // Even with the right type, a browser saying the call comes from another site is refused.
    for headers in [
        [
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ],
        [("origin", "https://evil.example"), ("x-none", "")],
    ] {
        let (status, error_code, _) =
            admin_error(import(&app, "DR-POOL", "text/csv", &headers).await).await;
        assert_eq!((status, error_code.as_str()), (403, "1N290/3"));
    }
    assert_eq!(available(&app).await, 0, "nothing was imported");
    let code = issued(&app, "NXF-CSRF").await;
    let revoke = app
        .http
        .post(app.url(&format!("/admin/licenses/{code}/revoke")))
        .basic_auth(ADMIN_KEY, None::<&str>)
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"reason": "hostile"}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 403);
    let (_, purchase) = json(app.admin_get(&format!("/nexus/lkey/{code}")).await).await;
    assert_eq!(purchase["active"], true, "still active");

    // The support page itself (same origin) and scripts (no browser headers) still work.
    let same_origin = import(
        &app,
        "DR-POOL",
        "text/csv; charset=utf-8",
        &[("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(same_origin.status(), 200);
    assert_eq!(available(&app).await, 1);

    // A NUL in a CSV code is refused whole, never truncated into a shorter code.
    let nul = app
        .http
        .post(app.url("/admin/products/DR-POOL/pool"))
        .basic_auth(ADMIN_KEY, None::<&str>)
        .header("content-type", "text/csv")
        .body("code\nGOOD-CODE-2\nBAD\u{0}CODE\n")
        .send()
        .await
        .unwrap();
    let (status, _, message) = admin_error(nul).await;
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("line 3"), "{message}");
    assert_eq!(
        available(&app).await,
        1,
        "nothing of that file was imported"
    );
    // A product that is not a pool takes no codes.
    let (status, _, message) = admin_error(import(&app, "ACME-PRO", "text/csv", &[]).await).await;
    assert_eq!((status, message.as_str()), (404, "NOT_FOUND"));
    let (status, _, _) = admin_error(import(&app, "UNKNOWN", "text/csv", &[]).await).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn answers_with_codes_or_buyer_data_are_never_cached() {
    let app = backends_with(settings).await.remove(0);
    let new = app
        .call("new", &legacy_new("NXF-CACHE", "ACME-PRO", 1))
        .await;
    assert_eq!(new.headers()["cache-control"], "no-store");
    let code = codes(&json(new).await.1).remove(0);
    let refused = app.post("new", "{".into()).await;
    assert_eq!(refused.headers()["cache-control"], "no-store");
    for path in [
        format!("/nexus/lkey/{code}"),
        format!("/admin/licenses/{code}"),
        "/admin/licenses".to_owned(),
        "/admin/products".to_owned(),
    ] {
        let answer = app.admin_get(&path).await;
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(answer.headers()["cache-control"], "no-store", "{path}");
        assert_eq!(
            answer.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
    }

    let page = app
        .http
        .get(app.url(&format!("/nexus/lkey/{code}")))
        .basic_auth(ADMIN_KEY, None::<&str>)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let headers = page.headers();
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(policy.contains("default-src 'none'"), "{policy}");
}

#[tokio::test]
async fn a_buyers_control_characters_are_removed_and_bidi_text_is_isolated() {
    for app in backends_with(settings).await {
        let mut body = legacy_new("NXF-BIDI", "ACME-PRO", 1);
        body["user"]["firstName"] = "Ada\u{0}\u{7}".into();
        body["user"]["lastName"] = "\u{202E}ecalevoL".into();
        body["user"]["companyName"] = "Acme\u{1b}[31m Ltd".into();
        let (status, answer) = json(app.call("new", &body).await).await;
        assert_eq!(
            status, 200,
            "{}: a sale never fails on a name: {answer}",
            app.backend
        );
        let code = codes(&answer).remove(0);
        let (_, purchase) = json(app.admin_get(&format!("/nexus/lkey/{code}")).await).await;
        assert_eq!(
            purchase["customer"]["name"], "Ada \u{202E}ecalevoL",
            "{}",
            app.backend
        );
        let company = &purchase["customer"]["customFields"][0]["fields"];
        assert!(
            company.to_string().contains("Acme[31m Ltd"),
            "{}: {company}",
            app.backend
        );
        let page = app
            .http
            .get(app.url(&format!("/nexus/lkey/{code}")))
            .basic_auth(ADMIN_KEY, None::<&str>)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("<bdi>Ada \u{202E}ecalevoL</bdi>"),
            "the name is isolated: {page}"
        );
        assert!(page.contains("unicode-bidi:isolate"));
    }
}
