//! Nexway's request signature: signed calls accepted, unsigned, forged, stale and rotated-out
//! ones refused with the same 401 and nothing written.

use hmac::{Hmac, Mac};
use nexkey::config::{Settings, SignatureMode};
use serde_json::Value;
use sha2::Sha256;

use crate::helpers::{PASSWORD, TestApp, USER, backends_with, json};

const OLD_SECRET: &str = "old-signing-secret";
const NEW_SECRET: &str = "new-signing-secret";
const HEADER: &str = "X-Nexway-Signature";

fn signed(settings: &mut Settings) {
    let nexway = &mut settings.nexway;
    nexway.signature = SignatureMode::Required;
    nexway.signing_secrets = vec![OLD_SECRET.to_string().into(), NEW_SECRET.to_string().into()];
    nexway.signed_fields = [
        "$.fulfillmentId",
        "$.checkout.orderId",
        "$.product.publisherProductId",
        "$.product.quantity",
        "$.checkout.price.grossPrice",
        "$.additionalData.RequestTimestamp",
    ]
    .map(String::from)
    .to_vec();
    nexway.timestamp_field = Some("$.additionalData.RequestTimestamp".into());
    nexway.replay_window_secs = 300;
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A current-generation body; the price is written `29.90`, as Nexway may write it.
fn body(fulfillment: &str, timestamp: i64) -> String {
    format!(
        r#"{{"fulfillmentId":"{fulfillment}","checkout":{{"orderId":"ORD-{fulfillment}","price":{{"grossPrice":29.90,"currency":"EUR"}}}},
            "user":{{"email":"buyer@example.com"}},
            "product":{{"publisherProductId":"ACME-PRO","quantity":2}},
            "additionalData":{{"RequestTimestamp":{timestamp}}}}}"#
    )
}

/// The signature Nexway computes: written out here by hand, independently of nexkey's code.
fn signature(secret: &str, fulfillment: &str, timestamp: i64) -> String {
    let canonical = format!(
        r#"{{"$.additionalData.RequestTimestamp":"{timestamp}","$.checkout.orderId":"ORD-{fulfillment}","$.checkout.price.grossPrice":"29.9","$.fulfillmentId":"{fulfillment}","$.product.publisherProductId":"ACME-PRO","$.product.quantity":"2"}}"#
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(canonical.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn post(app: &TestApp, body: String, signature: Option<&str>) -> reqwest::RequestBuilder {
    let request = app
        .http
        .post(app.url("/licenses/new"))
        .basic_auth(USER, Some(PASSWORD))
        .header("content-type", "application/json")
        .body(body);
    match signature {
        Some(signature) => request.header(HEADER, signature),
        None => request,
    }
}

async fn refused(app: &TestApp, request: reqwest::RequestBuilder) -> Value {
    let before = app.row_counts().await;
    let (status, body) = json(request.send().await.unwrap()).await;
    assert_eq!(status, 401, "{}: {body}", app.backend);
    assert_eq!(body["error"]["code"], "UNAUTHORIZED", "{body}");
    assert_eq!(
        app.row_counts().await,
        before,
        "{}: rows written",
        app.backend
    );
    body
}

#[tokio::test]
async fn signed_calls_are_accepted_with_either_secret_of_a_rotation() {
    for app in backends_with(signed).await {
        let now = now_millis();
        for (fulfillment, secret) in [("SIG-1", OLD_SECRET), ("SIG-2", NEW_SECRET)] {
            let sig = signature(secret, fulfillment, now);
            let (status, answer) = json(
                post(&app, body(fulfillment, now), Some(&sig))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200, "{}: {answer}", app.backend);
            assert_eq!(answer["licenses"].as_array().unwrap().len(), 2);
        }
    }
}

#[tokio::test]
async fn unsigned_forged_tampered_stale_and_rotated_out_calls_are_the_same_401() {
    for app in backends_with(signed).await {
        let now = now_millis();
        let good = signature(NEW_SECRET, "SIG-10", now);
        let missing = refused(&app, post(&app, body("SIG-10", now), None)).await;
        let forged = refused(&app, post(&app, body("SIG-10", now), Some(&"0".repeat(64)))).await;
        assert_eq!(
            missing, forged,
            "no oracle between a missing and a wrong signature"
        );
        refused(&app, post(&app, body("SIG-10", now), Some("not hex"))).await;
        // The signature of another call: the signed order id differs.
        refused(&app, post(&app, body("SIG-11", now), Some(&good))).await;
        // Signed with a secret that was rotated out.
        let rotated_out = signature("retired-signing-secret", "SIG-10", now);
        refused(&app, post(&app, body("SIG-10", now), Some(&rotated_out))).await;
        // Correctly signed, but captured long ago (or dated in the future).
        for timestamp in [now - 301_000, now + 301_000] {
            let sig = signature(NEW_SECRET, "SIG-12", timestamp);
            refused(&app, post(&app, body("SIG-12", timestamp), Some(&sig))).await;
        }
        // A signature does not stand in for Basic while Basic is on.
        let request = app
            .http
            .post(app.url("/licenses/new"))
            .header("content-type", "application/json")
            .header(HEADER, &good)
            .body(body("SIG-10", now));
        refused(&app, request).await;
        // Bytes that are not JSON cannot be verified: 401, not a parser's opinion.
        refused(&app, post(&app, "{not json".into(), Some(&good))).await;

        let (status, _) = json(
            post(&app, body("SIG-10", now), Some(&good))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "the genuine call still goes through");
    }
}

#[tokio::test]
async fn with_basic_turned_off_the_signature_alone_opens_the_door_under_its_configured_header() {
    let configure = |settings: &mut Settings| {
        signed(settings);
        settings.nexway.basic = false;
        settings.nexway.signature_header = "X-Other-Signature".into();
    };
    for app in backends_with(configure).await {
        let now = now_millis();
        let sig = signature(OLD_SECRET, "SIG-20", now);
        let unsigned = app
            .http
            .post(app.url("/licenses/new"))
            .header("content-type", "application/json")
            .body(body("SIG-20", now));
        refused(&app, unsigned).await;
        let old_header = app
            .http
            .post(app.url("/licenses/new"))
            .header("content-type", "application/json")
            .header(HEADER, &sig)
            .body(body("SIG-20", now));
        refused(&app, old_header).await;
        let request = app
            .http
            .post(app.url("/licenses/new"))
            .header("content-type", "application/json")
            .header("x-other-signature", &sig)
            .body(body("SIG-20", now));
        let (status, answer) = json(request.send().await.unwrap()).await;
        assert_eq!(status, 200, "{}: {answer}", app.backend);
    }
}

#[tokio::test]
async fn the_signature_covers_the_bytes_as_received_not_a_reserialised_copy() {
    for app in backends_with(signed).await {
        // Unusual but valid spacing and escapes: the signed values are what the JSON says.
        let now = now_millis();
        let raw = format!(
            "{{ \"fulfillmentId\" : \"SIG-30\",\n\"checkout\":{{\"price\":{{\"grossPrice\":2.990e1}},\"orderId\":\"ORD-\\u0053IG-30\"}},\
             \"user\":{{\"email\":\"buyer@example.com\"}},\
             \"product\":{{\"quantity\":2,\"publisherProductId\":\"ACME-PRO\"}},\
             \"additionalData\":{{\"RequestTimestamp\":{now}}} }}"
        );
        let sig = signature(NEW_SECRET, "SIG-30", now);
        let (status, answer) = json(post(&app, raw, Some(&sig)).send().await.unwrap()).await;
        assert_eq!(status, 200, "{}: {answer}", app.backend);
    }
}
