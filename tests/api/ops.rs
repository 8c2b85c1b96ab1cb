//! Probes, metrics and request ids, as an orchestrator and a Prometheus scraper see them.

use migration::{Migrator, MigratorTrait};
use serde_json::json;

use crate::helpers::{TestApp, backends, backends_with, json, legacy_new};

/// The value of one sample line (`name{labels} value`) of a Prometheus text exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn liveness_and_readiness_answer_ok_on_a_migrated_database() {
    for app in backends().await {
        for path in ["/health/live", "/health/ready"] {
            let (status, body) = json(app.http.get(app.url(path)).send().await.unwrap()).await;
            assert_eq!((status, &body), (200, &json!({"status": "ok"})), "{path}");
        }
    }
}

#[tokio::test]
async fn readiness_is_503_while_migrations_are_pending_or_the_database_is_gone() {
    for app in backends().await {
        let backend = app.backend;
        Migrator::down(&app.db, Some(1)).await.unwrap();
        let response = app.http.get(app.url("/health/ready")).send().await.unwrap();
        assert_eq!(response.headers()["retry-after"], "5", "{backend}");
        let (status, body) = json(response).await;
        assert_eq!(status, 503, "{backend}");
        assert_eq!(body["error"]["code"], "STORAGE_UNAVAILABLE", "{backend}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("migration"),
            "{body}"
        );
        // Liveness does not care: restarting the process would not help.
        let live = app.http.get(app.url("/health/live")).send().await.unwrap();
        assert_eq!(live.status(), 200, "{backend}");

        Migrator::up(&app.db, None).await.unwrap();
        let ready = app.http.get(app.url("/health/ready")).send().await.unwrap();
        assert_eq!(ready.status(), 200, "{backend}");

        // A migration this binary does not know (a newer nexkey applied it): not ready either.
        use sea_orm::ConnectionTrait;
        app.db
            .execute_unprepared(
                "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m29991231_000001_future', 0)",
            )
            .await
            .unwrap();
        let (status, body) =
            json(app.http.get(app.url("/health/ready")).send().await.unwrap()).await;
        assert_eq!(status, 503, "{backend}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("newer"),
            "{body}"
        );
        app.db
            .execute_unprepared(
                "DELETE FROM seaql_migrations WHERE version = 'm29991231_000001_future'",
            )
            .await
            .unwrap();

        // The server shares this pool: closed, the database is unreachable for it too.
        let unavailable = "nexkey_database_errors_total{kind=\"contention\"}";
        let before = sample(&scrape(&app).await, unavailable).unwrap();
        app.db.clone().close().await.unwrap();
        let (status, body) =
            json(app.http.get(app.url("/health/ready")).send().await.unwrap()).await;
        assert_eq!(status, 503, "{backend}");
        assert_eq!(body["error"]["code"], "STORAGE_UNAVAILABLE", "{backend}");
        // A call now is refused with "retry", and counted as a database error.
        let (status, body) = json(
            app.call("new", &legacy_new("NXF-DOWN", "ACME-PRO", 1))
                .await,
        )
        .await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (503, &json!("STORAGE_UNAVAILABLE")),
            "{backend}"
        );
        let after = sample(&scrape(&app).await, unavailable).unwrap();
        assert!(after >= before + 2.0, "{backend}: {before} -> {after}");
    }
}

#[tokio::test]
async fn metrics_count_requests_codes_replays_and_refusals() {
    // A configured product of its own, so this test's codes are counted apart from the others'.
    let product = format!("METRICS-{}", uuid::Uuid::new_v4().simple());
    let configure = |settings: &mut nexkey::config::Settings| {
        settings
            .products
            .insert(product.clone(), nexkey::config::ProductOverride::default());
    };
    for app in backends_with(configure).await {
        let backend = app.backend;
        let before = scrape(&app).await;
        let count = |text: &str, series: &str| sample(text, series).unwrap_or(0.0);

        let body = legacy_new(&format!("NXF-{product}"), &product, 3);
        assert_eq!(app.call("new", &body).await.status(), 200);
        assert_eq!(app.call("new", &body).await.status(), 200);
        let conflicting = legacy_new(&format!("NXF-{product}"), &product, 4);
        assert_eq!(app.call("new", &conflicting).await.status(), 409);
        let unauthenticated = app
            .http
            .post(app.url("/licenses/new"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(unauthenticated.status(), 401);

        // A product nobody configured is counted under `other`, never as a label of its own.
        let unconfigured = format!("UNCONFIGURED-{}", uuid::Uuid::new_v4().simple());
        let body = legacy_new(&format!("NXF-{unconfigured}"), &unconfigured, 1);
        assert_eq!(app.call("new", &body).await.status(), 200);

        let after = scrape(&app).await;
        // The product's series is this test's alone (one per backend, in this process's metrics).
        let issued =
            format!("nexkey_codes_issued_total{{generator=\"random\",product=\"{product}\"}}");
        assert_eq!(
            count(&after, &issued) - count(&before, &issued),
            3.0,
            "{backend}: three codes, issued once"
        );
        assert!(
            !after.contains(&unconfigured),
            "{backend}: an unbounded label"
        );
        let other = "nexkey_codes_issued_total{generator=\"random\",product=\"other\"}";
        assert!(
            count(&after, other) >= count(&before, other) + 1.0,
            "{backend}"
        );
        // Other tests run alongside in this process: their calls can only add to these.
        let grew_by = |series: &str| count(&after, series) - count(&before, series);
        assert!(grew_by("nexkey_requests_total{operation=\"new\",status=\"200\"}") >= 2.0);
        assert!(grew_by("nexkey_requests_total{operation=\"new\",status=\"409\"}") >= 1.0);
        assert!(grew_by("nexkey_idempotent_replays_total{operation=\"new\"}") >= 1.0);
        assert!(
            grew_by("nexkey_refused_total{operation=\"new\",reason=\"IDEMPOTENCY_CONFLICT\"}")
                >= 1.0
        );
        assert!(grew_by("nexkey_refused_total{operation=\"new\",reason=\"UNAUTHORIZED\"}") >= 1.0);
        assert!(grew_by("nexkey_request_duration_seconds_count{operation=\"new\"}") >= 4.0);
        assert!(
            after.contains("nexkey_request_duration_seconds_bucket{operation=\"new\",le=\"0.1\"}")
        );
        assert!(after.contains("nexkey_database_errors_total{kind=\"contention\"}"));
        // Probes and scrapes are not requests worth counting.
        assert!(
            !after.contains("operation=\"unknown\",status=\"200\""),
            "{after}"
        );
    }
}

#[tokio::test]
async fn a_configured_metrics_token_is_required_as_a_bearer_token() {
    const TOKEN: &str = "scrape-token-0123456789";
    for app in
        backends_with(|settings| settings.metrics_token = Some(TOKEN.to_string().into())).await
    {
        let url = app.url("/metrics");
        let (status, body) = json(app.http.get(&url).send().await.unwrap()).await;
        assert_eq!(status, 401);
        assert_eq!(body["error"]["code"], "UNAUTHORIZED");
        let wrong = app
            .http
            .get(&url)
            .bearer_auth("scrape-token-012345678")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        let right = app.http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(right.status(), 200);
        assert!(
            right
                .text()
                .await
                .unwrap()
                .contains("# TYPE nexkey_database_errors_total counter")
        );
        // The probes stay open.
        let ready = app.http.get(app.url("/health/ready")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
    }
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    for app in backends().await {
        let sent = app
            .http
            .post(app.url("/licenses/new"))
            .header("x-request-id", "nexway-req-42")
            .json(&legacy_new("NXF-RID", "ACME-PRO", 1))
            .send()
            .await
            .unwrap();
        // Refused (no credentials), and still tagged with the caller's id.
        assert_eq!(sent.status(), 401);
        assert_eq!(sent.headers()["x-request-id"], "nexway-req-42");

        for header in [None, Some("has spaces and ; semicolons")] {
            let mut request = app.http.post(app.url("/licenses/new"));
            if let Some(value) = header {
                request = request.header("x-request-id", value);
            }
            let response = request.body("{").send().await.unwrap();
            let id = response.headers()["x-request-id"].to_str().unwrap();
            assert!(uuid::Uuid::parse_str(id).is_ok(), "{header:?} gave {id}");
        }
        let unknown = app.http.get(app.url("/no/such/path")).send().await.unwrap();
        assert_eq!(unknown.status(), 404);
        assert!(unknown.headers().contains_key("x-request-id"));
    }
}

#[tokio::test]
async fn every_migration_rolls_back_and_applies_again() {
    for app in backends().await {
        let backend = app.backend;
        // Step by step, as `nexkey migrate down` does, to the empty schema and back.
        let applied = Migrator::get_applied_migrations(&app.db)
            .await
            .unwrap()
            .len();
        for step in 0..applied {
            Migrator::down(&app.db, Some(1))
                .await
                .unwrap_or_else(|e| panic!("{backend}: down step {step}: {e}"));
        }
        assert!(
            Migrator::get_applied_migrations(&app.db)
                .await
                .unwrap()
                .is_empty()
        );
        Migrator::up(&app.db, None)
            .await
            .unwrap_or_else(|e| panic!("{backend}: up again: {e}"));
        let (status, answer) = json(app.call("new", &legacy_new("NXF-MIG", "PRD", 1)).await).await;
        assert_eq!(status, 200, "{backend}: {answer}");
    }
}
