//! A call identified by (operation, fulfillment id, order id) is answered once, then replayed.

use crate::helpers::{backends, codes, current_new, json, legacy_new, one_answer};

#[tokio::test]
async fn a_repeat_returns_the_stored_answer_byte_for_byte_and_writes_nothing() {
    for app in backends().await {
        let body = legacy_new("NXF-300", "ACME-PRO", 2);
        let first = app.call("new", &body).await;
        assert_eq!(first.status(), 200);
        assert_eq!(first.headers()["idempotent-replayed"], "false");
        let first = first.bytes().await.unwrap();
        let rows = app.row_counts().await;

        // Key order and whitespace differ: same call.
        let reordered = serde_json::to_string_pretty(&body).unwrap();
        let repeat = app.post("new", reordered).await;
        assert_eq!(repeat.status(), 200);
        assert_eq!(repeat.headers()["idempotent-replayed"], "true");
        assert_eq!(repeat.bytes().await.unwrap(), first, "{}", app.backend);
        assert_eq!(
            app.row_counts().await,
            rows,
            "{}: a replay wrote rows",
            app.backend
        );
    }
}

#[tokio::test]
async fn a_repeat_with_different_content_is_409() {
    for app in backends().await {
        app.call("new", &legacy_new("NXF-301", "ACME-PRO", 2)).await;
        let rows = app.row_counts().await;
        for changed in [
            legacy_new("NXF-301", "ACME-PRO", 3),
            legacy_new("NXF-301", "ACME-LITE", 2),
        ] {
            let (status, body) = json(app.call("new", &changed).await).await;
            assert_eq!(status, 409, "{}: {body}", app.backend);
            assert_eq!(body["error"]["code"], "IDEMPOTENCY_CONFLICT");
        }
        assert_eq!(app.row_counts().await, rows);
    }
}

#[tokio::test]
async fn each_order_of_a_current_fulfillment_is_its_own_call() {
    for app in backends().await {
        let (_, first) = json(
            app.call("new", &current_new("F-1", "ORD-1", "ACME-PRO"))
                .await,
        )
        .await;
        let (status, second) = json(
            app.call("new", &current_new("F-1", "ORD-2", "ACME-PRO"))
                .await,
        )
        .await;
        assert_eq!(status, 200, "{}: {second}", app.backend);
        assert_ne!(codes(&first), codes(&second));
    }
}

#[tokio::test]
async fn concurrent_duplicates_produce_one_set_of_codes() {
    for app in backends().await {
        let body = legacy_new("NXF-302", "ACME-PRO", 3);
        let calls = (0..50).map(|_| app.post("new", body.to_string()));
        one_answer(app.backend, calls).await;
        // One fulfillment, three licenses, one customer: 50 calls, one effect.
        assert_eq!(app.row_counts().await, [1, 1, 3, 3], "{}", app.backend);
    }
}

#[tokio::test]
async fn two_servers_sharing_a_database_answer_concurrent_duplicates_once() {
    for app in backends().await {
        let twin = app.twin().await;
        let body = current_new("F-SHARED", "ORD-9", "ACME-PRO").to_string();
        let calls =
            (0..40).map(|i| if i % 2 == 0 { &app } else { &twin }.post("new", body.clone()));
        one_answer(app.backend, calls).await;
        assert_eq!(app.row_counts().await, [1, 1, 1, 1], "{}", app.backend);
    }
}
