//! `POST /licenses/new` with both body generations.

use crate::helpers::{backends, codes, current_new, json, legacy_new};
use entity::prelude::*;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

#[tokio::test]
async fn legacy_body_issues_the_requested_number_of_codes() {
    for app in backends().await {
        let body = legacy_new("NXF-100", "ACME-PRO", 3);
        let (status, answer) = json(app.call("new", &body).await).await;
        assert_eq!(status, 200, "{}: {answer}", app.backend);
        assert_eq!(answer["operation"], "new");
        assert_eq!(answer["nexwayFulfillmentId"], "NXF-100");
        let codes = codes(&answer);
        assert_eq!(codes.len(), 3);
        for code in &codes {
            assert!(
                is_grouped_code(code),
                "{}: unexpected code format {code}",
                app.backend
            );
        }
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 3, "codes must differ");

        // Every answered code is a stored license of that fulfillment and customer.
        let rows = License::find().all(&app.db).await.unwrap();
        assert_eq!(rows.len(), 3);
        for row in &rows {
            assert!(codes.contains(&row.activation_code));
            assert_eq!(row.status.as_str(), "active");
            assert_eq!(row.publisher_product_id, "ACME-PRO");
            assert_eq!(row.nexway_fulfillment_id, "NXF-100");
            assert_eq!(row.order_id.as_deref(), Some("ORD-NXF-100"));
        }
        let customer = Customer::find()
            .one(&app.db)
            .await
            .unwrap()
            .expect("customer");
        assert_eq!(customer.email, "buyer@example.com");
        assert_eq!(LicenseEvent::find().all(&app.db).await.unwrap().len(), 3);
    }
}

#[tokio::test]
async fn quantity_defaults_to_one() {
    for app in backends().await {
        let mut body = legacy_new("NXF-101", "ACME-PRO", 1);
        body["product"].as_object_mut().unwrap().remove("quantity");
        let (status, answer) = json(app.call("new", &body).await).await;
        assert_eq!(status, 200, "{}: {answer}", app.backend);
        assert_eq!(codes(&answer).len(), 1);
    }
}

#[tokio::test]
async fn current_body_is_accepted_and_keeps_nexway_references() {
    for app in backends().await {
        let body = current_new("a1b2c3d4-0001", "ORD-2026-000123", "ACME-PRO");
        let (status, answer) = json(app.call("new", &body).await).await;
        assert_eq!(status, 200, "{}: {answer}", app.backend);
        assert_eq!(answer["nexwayFulfillmentId"], "a1b2c3d4-0001");
        let code = &codes(&answer)[0];
        let row = License::find()
            .filter(entity::license::Column::ActivationCode.eq(code))
            .one(&app.db)
            .await
            .unwrap()
            .expect("stored license");
        assert_eq!(row.order_id.as_deref(), Some("ORD-2026-000123"));
        assert_eq!(row.subscription_id.as_deref(), Some("SUB-a1b2c3d4-0001"));
        assert_eq!(row.product_name.as_deref(), Some("Acme Pro"));
    }
}

#[tokio::test]
async fn dates_are_kept_and_answered() {
    for app in backends().await {
        let mut body = legacy_new("NXF-102", "ACME-PRO", 1);
        body["product"]["startDate"] = "2026-11-22".into();
        body["product"]["endDate"] = "2027-11-22".into();
        let (status, answer) = json(app.call("new", &body).await).await;
        assert_eq!(status, 200, "{}: {answer}", app.backend);
        assert_eq!(answer["licenses"][0]["startDate"], "2026-11-22");
        assert_eq!(answer["licenses"][0]["endDate"], "2027-11-22");
        let row = License::find().one(&app.db).await.unwrap().unwrap();
        assert_eq!(
            row.end_date.map(|d| d.to_string()).as_deref(),
            Some("2027-11-22")
        );

        // Epoch-millisecond timestamps of the current body's custom templates.
        let mut body = current_new("a1b2c3d4-0002", "ORD-2", "ACME-PRO");
        body["product"]["startTimestamp"] = 1_795_392_000_000_i64.into(); // 2026-11-23
        body["product"]["expirationTimestamp"] = 1_826_928_000_000_i64.into(); // 2027-11-23
        let (status, answer) = json(app.call("new", &body).await).await;
        assert_eq!(status, 200, "{}: {answer}", app.backend);
        assert_eq!(answer["licenses"][0]["startDate"], "2026-11-23");
        assert_eq!(answer["licenses"][0]["endDate"], "2027-11-23");
    }
}

#[tokio::test]
async fn publisher_fulfillment_id_is_generated_and_stored() {
    for app in backends().await {
        let (_, first) = json(app.call("new", &legacy_new("NXF-103", "ACME-PRO", 1)).await).await;
        let (_, second) = json(app.call("new", &legacy_new("NXF-104", "ACME-PRO", 1)).await).await;
        let first_id = first["publisherFulfillmentId"].as_str().unwrap();
        let second_id = second["publisherFulfillmentId"].as_str().unwrap();
        assert_ne!(first_id, second_id);
        let stored = Fulfillment::find()
            .filter(entity::fulfillment::Column::PublisherFulfillmentId.eq(first_id))
            .one(&app.db)
            .await
            .unwrap()
            .expect("fulfillment row");
        assert_eq!(stored.nexway_fulfillment_id, "NXF-103");
    }
}

#[tokio::test]
async fn the_same_buyer_is_one_customer() {
    for app in backends().await {
        app.call("new", &legacy_new("NXF-105", "ACME-PRO", 1)).await;
        app.call("new", &current_new("a1b2-0003", "ORD-3", "ACME-PRO"))
            .await;
        assert_eq!(
            Customer::find().all(&app.db).await.unwrap().len(),
            1,
            "{}",
            app.backend
        );
    }
}

fn is_grouped_code(code: &str) -> bool {
    let groups: Vec<&str> = code.split('-').collect();
    groups.len() == 4
        && groups.iter().all(|group| {
            group.len() == 5
                && group
                    .chars()
                    .all(|c| "23456789ABCDEFGHJKMNPQRSTUVWXYZ".contains(c))
        })
}

/// Members nexkey does not use never fail a call, whatever their JSON type (templates change).
#[tokio::test]
async fn unused_members_of_any_type_are_accepted() {
    for app in backends().await {
        for (n, odd) in [
            serde_json::json!("a string"),
            serde_json::json!(42),
            serde_json::json!([1, "two"]),
            serde_json::json!({"nested": true}),
            serde_json::json!(null),
        ]
        .into_iter()
        .enumerate()
        {
            let mut body = current_new(&format!("F-UNUSED-{n}"), "ORD-1", "ACME-PRO");
            body["checkout"]["price"] = odd.clone();
            body["checkout"]["lineItemId"] = odd.clone();
            body["user"]["country"] = odd.clone();
            body["user"]["zipCode"] = odd.clone();
            body["product"]["price"] = odd.clone();
            body["product"]["variables"] = odd.clone();
            body["product"]["priceFunctionParameters"] = odd.clone();
            let (status, answer) = json(app.call("new", &body).await).await;
            assert_eq!(status, 200, "{}: {odd}: {answer}", app.backend);
            assert_eq!(codes(&answer).len(), 1);
        }
    }
}
