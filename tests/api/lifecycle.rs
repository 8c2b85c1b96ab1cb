//! renew, upgrade, suspend, reactivate and cancel through HTTP, checking the database after
//! each step, with repeats and concurrent repeats of every step.

use std::collections::BTreeMap;

use entity::prelude::*;
use nexkey::config::{ProductOverride, Settings, UnknownProducts};
use nexkey::fulfillment::{CodeMode, RenewMode, Term};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::helpers::{TestApp, backends_with, codes, current_new, json, legacy_new};

/// ACME-PRO: yearly, renew extends. ACME-MAX: yearly, renew reissues, upgrade keeps the codes.
/// ACME-NEW: upgrade and reactivate reissue.
fn policies(settings: &mut Settings) {
    let product = |renew, upgrade, reactivate| ProductOverride {
        term: Some(Term::Years(1)),
        renew: Some(renew),
        upgrade: Some(upgrade),
        reactivate: Some(reactivate),
        ..ProductOverride::default()
    };
    settings.products = BTreeMap::from([
        (
            "ACME-PRO".into(),
            product(RenewMode::Extend, CodeMode::Keep, CodeMode::Keep),
        ),
        (
            "ACME-MAX".into(),
            product(RenewMode::Reissue, CodeMode::Keep, CodeMode::Keep),
        ),
        (
            "ACME-NEW".into(),
            product(RenewMode::Extend, CodeMode::Reissue, CodeMode::Reissue),
        ),
    ]);
}

/// Sends the same call ten times at once, then once more: every answer is the same bytes, the
/// last one a replay that wrote nothing. Returns the answer.
async fn step(app: &TestApp, operation: &str, body: &Value) -> Value {
    let calls = (0..10).map(|_| app.call(operation, body));
    let answers = futures::future::join_all(calls).await;
    let mut bodies = Vec::new();
    for answer in answers {
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap();
        assert_eq!(status, 200, "{} {operation}: {text}", app.backend);
        bodies.push(text);
    }
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "{}: {operation} answers differ",
        app.backend
    );
    let rows = app.row_counts().await;
    let repeat = app.call(operation, body).await;
    assert_eq!(repeat.headers()["idempotent-replayed"], "true");
    assert_eq!(repeat.text().await.unwrap(), bodies[0]);
    assert_eq!(
        app.row_counts().await,
        rows,
        "{}: the repeat of {operation} wrote",
        app.backend
    );
    serde_json::from_str(&bodies[0]).unwrap()
}

async fn license(app: &TestApp, code: &str) -> entity::license::Model {
    License::find()
        .filter(entity::license::Column::ActivationCode.eq(code))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{code} not stored"))
}

async fn events(app: &TestApp, code: &str) -> Vec<(Option<String>, String, String)> {
    let id = license(app, code).await.id;
    LicenseEvent::find()
        .filter(entity::license_event::Column::LicenseId.eq(id))
        .order_by_asc(entity::license_event::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|event| {
            (
                event.from_status.map(|status| status.to_string()),
                event.to_status.to_string(),
                event.operation.to_string(),
            )
        })
        .collect()
}

fn statuses(answer: &Value) -> Vec<&str> {
    answer["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect()
}

/// A legacy lifecycle call about earlier work.
fn legacy_call(fulfillment: &str, initial: &str, product: &str, named: &[String]) -> Value {
    let mut body = legacy_new(fulfillment, product, 1);
    body["product"]["initialNexwayFulfillmentId"] = initial.into();
    body["product"]["licenses"] = named
        .iter()
        .map(|code| json!({"activationCode": code}))
        .collect();
    body
}

#[tokio::test]
async fn a_license_lives_through_every_operation() {
    for app in backends_with(policies).await {
        // new: two codes, a year from the start date since the call gives no end.
        let mut body = legacy_new("NXF-1", "ACME-PRO", 2);
        body["product"]["startDate"] = "2026-01-10".into();
        let answer = step(&app, "new", &body).await;
        let first = codes(&answer);
        assert_eq!(answer["licenses"][0]["endDate"], "2027-01-10");

        // renew (extend): same codes, the current end plus the term.
        let answer = step(
            &app,
            "renew",
            &legacy_call("NXF-2", "NXF-1", "ACME-PRO", &[]),
        )
        .await;
        assert_eq!(codes(&answer), first, "{}", app.backend);
        assert_eq!(answer["licenses"][0]["endDate"], "2028-01-10");
        assert_eq!(
            license(&app, &first[0]).await.end_date.unwrap().to_string(),
            "2028-01-10"
        );

        // upgrade to ACME-MAX, keeping the codes; the end date of the call applies.
        let mut body = legacy_call("NXF-3", "NXF-1", "ACME-MAX", &[]);
        body["product"]["endDate"] = "2028-06-30".into();
        let answer = step(&app, "upgrade", &body).await;
        assert_eq!(codes(&answer), first);
        let moved = license(&app, &first[1]).await;
        assert_eq!(moved.publisher_product_id, "ACME-MAX");
        assert_eq!(moved.end_date.unwrap().to_string(), "2028-06-30");

        // renew (reissue, ACME-MAX's policy): new codes, children of the old ones, superseded.
        let answer = step(
            &app,
            "renew",
            &legacy_call("NXF-4", "NXF-1", "ACME-MAX", &first[..1]),
        )
        .await;
        let second = codes(&answer);
        assert_eq!(second.len(), 1, "only the named code is renewed");
        assert_ne!(second[0], first[0]);
        assert_eq!(answer["superseded"][0]["activationCode"], first[0].as_str());
        assert_eq!(answer["superseded"][0]["status"], "superseded");
        assert_eq!(answer["licenses"][0]["endDate"], "2029-06-30");
        let child = license(&app, &second[0]).await;
        assert_eq!(child.parent_id, Some(license(&app, &first[0]).await.id));
        assert_eq!(child.status.as_str(), "active");
        assert_eq!(license(&app, &first[0]).await.status.as_str(), "superseded");
        assert_eq!(
            license(&app, &first[1]).await.status.as_str(),
            "active",
            "unnamed code untouched"
        );

        // suspend everything of the first fulfillment: the superseded code stands for its child.
        let answer = step(
            &app,
            "suspend",
            &legacy_call("NXF-5", "NXF-1", "ACME-MAX", &[]),
        )
        .await;
        let mut current = vec![first[1].clone(), second[0].clone()];
        current.sort();
        let mut answered = codes(&answer);
        answered.sort();
        assert_eq!(answered, current, "{}", app.backend);
        assert_eq!(statuses(&answer), ["suspended", "suspended"]);

        // reactivate, keeping the codes (ACME-MAX).
        let answer = step(
            &app,
            "reactivate",
            &legacy_call("NXF-6", "NXF-1", "ACME-MAX", &[]),
        )
        .await;
        assert_eq!(statuses(&answer), ["active", "active"]);

        // cancel.
        let answer = step(
            &app,
            "cancel",
            &legacy_call("NXF-7", "NXF-1", "ACME-MAX", &[]),
        )
        .await;
        assert_eq!(statuses(&answer), ["canceled", "canceled"]);
        for code in &current {
            assert_eq!(license(&app, code).await.status.as_str(), "canceled");
        }

        // The audit trail of the kept code, every step in order.
        let trail: Vec<_> = events(&app, &first[1]).await;
        let expected = [
            (None, "active", "new"),
            (Some("active"), "active", "renew"),
            (Some("active"), "active", "upgrade"),
            (Some("active"), "suspended", "suspend"),
            (Some("suspended"), "active", "reactivate"),
            (Some("active"), "canceled", "cancel"),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(from, to, op)| (from.map(str::to_owned), to.to_string(), op.to_string()))
            .collect();
        assert_eq!(trail, expected, "{}", app.backend);
    }
}

#[tokio::test]
async fn the_current_body_names_the_whole_life_by_fulfillment_id() {
    for app in backends_with(policies).await {
        let answer = step(&app, "new", &current_new("life-1", "ORD-1", "ACME-NEW")).await;
        let first = codes(&answer);

        // Upgrade by reissue (ACME-NEW's policy is read on the product upgraded to: ACME-NEW).
        let answer = step(&app, "upgrade", &current_new("life-1", "ORD-2", "ACME-NEW")).await;
        let second = codes(&answer);
        assert_ne!(second, first);
        assert_eq!(
            license(&app, &second[0]).await.parent_id,
            Some(license(&app, &first[0]).await.id)
        );

        let answer = step(&app, "suspend", &current_new("life-1", "ORD-3", "ACME-NEW")).await;
        assert_eq!(codes(&answer), second);
        assert_eq!(statuses(&answer), ["suspended"]);

        // Reactivate by reissue: a third code, active; the suspended one superseded.
        let answer = step(
            &app,
            "reactivate",
            &current_new("life-1", "ORD-4", "ACME-NEW"),
        )
        .await;
        let third = codes(&answer);
        assert_ne!(third, second);
        assert_eq!(statuses(&answer), ["active"]);
        assert_eq!(
            license(&app, &second[0]).await.status.as_str(),
            "superseded"
        );

        // A code named in additionalData, with the PublisherLicenseID of the first answer.
        let mut body = current_new("life-1", "ORD-5", "ACME-NEW");
        body["additionalData"] = json!({"ActivationCode": third[0]});
        let answer = step(&app, "cancel", &body).await;
        assert_eq!(codes(&answer), third);
        assert_eq!(statuses(&answer), ["canceled"]);
    }
}

#[tokio::test]
async fn transitions_that_make_no_sense_are_409_and_repeats_in_effect_change_nothing() {
    for app in backends_with(policies).await {
        step(&app, "new", &current_new("life-2", "ORD-1", "ACME-PRO")).await;
        step(&app, "cancel", &current_new("life-2", "ORD-2", "ACME-PRO")).await;
        let rows = app.row_counts().await;

        for operation in ["reactivate", "renew", "upgrade", "suspend"] {
            let before = app.row_counts().await;
            let (status, body) = json(
                app.call(operation, &current_new("life-2", "ORD-X", "ACME-PRO"))
                    .await,
            )
            .await;
            assert_eq!(status, 409, "{} {operation}: {body}", app.backend);
            assert_eq!(body["error"]["code"], "INVALID_TRANSITION");
            assert_eq!(
                app.row_counts().await,
                before,
                "a refused {operation} wrote"
            );
        }

        // Canceling again succeeds and changes no license (only the call is recorded).
        let answer = step(&app, "cancel", &current_new("life-2", "ORD-3", "ACME-PRO")).await;
        assert_eq!(statuses(&answer), ["canceled"]);
        let [customers, fulfillments, licenses, events] = app.row_counts().await;
        assert_eq!([customers, fulfillments - 1, licenses, events], rows);
    }
}

#[tokio::test]
async fn calls_about_nothing_known_are_404() {
    for app in backends_with(policies).await {
        let before = app.row_counts().await;
        // A cancel or suspend may come before its `new` (see tests/api/life.rs); these may not.
        for (operation, body) in [
            ("renew", current_new("never-sold", "ORD-1", "ACME-PRO")),
            (
                "reactivate",
                legacy_call("NXF-90", "NXF-unknown", "ACME-PRO", &[]),
            ),
            (
                "upgrade",
                legacy_call("NXF-92", "NXF-unknown", "ACME-PRO", &[]),
            ),
            (
                "cancel",
                legacy_call("NXF-91", "NXF-unknown", "ACME-PRO", &["AAAAA-BBBBB".into()]),
            ),
        ] {
            let (status, answer) = json(app.call(operation, &body).await).await;
            assert_eq!(status, 404, "{} {operation}: {answer}", app.backend);
            assert_eq!(answer["error"]["code"], "UNKNOWN_FULFILLMENT");
        }
        assert_eq!(app.row_counts().await, before);
    }
}

#[tokio::test]
async fn one_customers_call_never_touches_anothers_codes() {
    for app in backends_with(policies).await {
        let ada = codes(&step(&app, "new", &legacy_new("NXF-A", "ACME-PRO", 1)).await);
        let mut grace = legacy_new("NXF-G", "ACME-PRO", 1);
        grace["user"]["email"] = "grace@example.com".into();
        step(&app, "new", &grace).await;
        let before = app.row_counts().await;

        // Grace's fulfillment, naming Ada's code: the references disagree.
        let mut body = legacy_call("NXF-G2", "NXF-G", "ACME-PRO", &ada);
        body["user"]["email"] = "grace@example.com".into();
        let (status, answer) = json(app.call("cancel", &body).await).await;
        assert_eq!(status, 409, "{}: {answer}", app.backend);
        assert_eq!(answer["error"]["code"], "REFERENCES_DISAGREE");

        // No other reference: Ada's code, but Grace as the buyer.
        let mut body = legacy_call("NXF-G3", "NXF-none", "ACME-PRO", &ada);
        body["user"]["email"] = "grace@example.com".into();
        let (status, _) = json(app.call("cancel", &body).await).await;
        assert_eq!(status, 404);

        assert_eq!(license(&app, &ada[0]).await.status.as_str(), "active");
        assert_eq!(app.row_counts().await, before);
    }
}

#[tokio::test]
async fn expiry_is_computed_and_renewal_revives() {
    for app in backends_with(policies).await {
        let answer = step(&app, "new", &legacy_new("NXF-E", "ACME-PRO", 1)).await;
        let code = &codes(&answer)[0];
        app.backdate(code, "2020-01-01", "2020-12-31").await;
        assert_eq!(
            license(&app, code).await.status.as_str(),
            "active",
            "expiry is not stored"
        );

        // Renewing a lapsed license runs a term from today.
        let answer = step(
            &app,
            "renew",
            &legacy_call("NXF-E2", "NXF-E", "ACME-PRO", &[]),
        )
        .await;
        assert_eq!(statuses(&answer), ["active"]);
        let next_year = chrono::Utc::now().date_naive() + chrono::Months::new(12);
        assert_eq!(answer["licenses"][0]["endDate"], next_year.to_string());
    }
}

#[tokio::test]
async fn unknown_products_are_refused_when_configured() {
    let refuse = |settings: &mut Settings| {
        policies(settings);
        settings.unknown_products = UnknownProducts::Refuse;
    };
    for app in backends_with(refuse).await {
        let before = app.row_counts().await;
        let (status, body) = json(app.call("new", &legacy_new("NXF-U", "MYSTERY", 1)).await).await;
        assert_eq!(status, 422, "{}: {body}", app.backend);
        assert_eq!(body["error"]["code"], "UNKNOWN_PRODUCT");
        assert_eq!(app.row_counts().await, before);

        step(&app, "new", &legacy_new("NXF-U2", "ACME-PRO", 1)).await;
        let before = app.row_counts().await;
        let (status, _) = json(
            app.call("upgrade", &legacy_call("NXF-U3", "NXF-U2", "MYSTERY", &[]))
                .await,
        )
        .await;
        assert_eq!(status, 422);
        assert_eq!(app.row_counts().await, before);
    }
}

#[tokio::test]
async fn any_answered_publisher_fulfillment_id_finds_its_licenses() {
    for app in backends_with(policies).await {
        let issued = codes(&step(&app, "new", &legacy_new("NXF-P1", "ACME-PRO", 1)).await);
        let suspended = step(
            &app,
            "suspend",
            &legacy_call("NXF-P2", "NXF-P1", "ACME-PRO", &[]),
        )
        .await;
        let suspend_id = suspended["publisherFulfillmentId"].as_str().unwrap();

        // Only the id of the suspend's answer (Nexway's PublisherLicenseID) links this call.
        let mut body = legacy_call("NXF-P3", "NXF-unrelated", "ACME-PRO", &[]);
        body["product"]["publisherFulfillmentId"] = suspend_id.into();
        let answer = step(&app, "reactivate", &body).await;
        assert_eq!(codes(&answer), issued, "{}", app.backend);
        assert_eq!(statuses(&answer), ["active"]);
    }
}

#[tokio::test]
async fn named_codes_with_no_reference_and_no_buyer_touch_nothing() {
    for app in backends_with(policies).await {
        let code = codes(&step(&app, "new", &legacy_new("NXF-N1", "ACME-PRO", 1)).await).remove(0);
        let mut body = current_new("stranger-life", "ORD-1", "ACME-PRO");
        body["user"].as_object_mut().unwrap().remove("email");
        body["additionalData"] = json!({"ActivationCode": code});
        let before = app.row_counts().await;
        let (status, answer) = json(app.call("cancel", &body).await).await;
        assert_eq!(status, 404, "{}: {answer}", app.backend);
        assert_eq!(license(&app, &code).await.status.as_str(), "active");
        assert_eq!(app.row_counts().await, before);
    }
}

#[tokio::test]
async fn a_suspension_outlives_the_end_date_and_a_renewal() {
    for app in backends_with(policies).await {
        let answer = step(&app, "new", &legacy_new("NXF-H1", "ACME-PRO", 1)).await;
        app.backdate(&codes(&answer)[0], "2020-01-01", "2020-12-31")
            .await;
        let answer = step(
            &app,
            "suspend",
            &legacy_call("NXF-H2", "NXF-H1", "ACME-PRO", &[]),
        )
        .await;
        assert_eq!(statuses(&answer), ["suspended"], "{}", app.backend);
        let answer = step(
            &app,
            "renew",
            &legacy_call("NXF-H3", "NXF-H1", "ACME-PRO", &[]),
        )
        .await;
        assert_eq!(statuses(&answer), ["suspended"], "renewal keeps the hold");
        let answer = step(
            &app,
            "reactivate",
            &legacy_call("NXF-H4", "NXF-H1", "ACME-PRO", &[]),
        )
        .await;
        assert_eq!(statuses(&answer), ["active"]);
    }
}
