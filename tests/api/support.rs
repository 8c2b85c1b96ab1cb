//! The support side: `GET /nexus/lkey/{key}` in the seed's purchase shape, the admin API keys,
//! searches, manual actions, and the page a browser gets.

use std::collections::BTreeMap;

use nexkey::config::{Money, ProductOverride, Settings};
use nexkey::fulfillment::{RenewMode, Term};
use nexkey::keygen::{GeneratorSettings, PoolSettings};
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_KEY, PASSWORD, TestApp, USER, backends_with, codes, current_new, json, legacy_new,
    with_admin_key,
};

/// The purchase object of seed `004_…txt`: every field and its JSON type.
const PURCHASE_FIELDS: &[(&str, &str)] = &[
    ("id", "int"),
    ("name", "string"),
    ("itemApp", "string"),
    ("itemType", "string"),
    ("itemId", "int"),
    ("customer", "object"),
    ("purchased", "datetime"),
    ("expires", "datetime|null"),
    ("active", "bool"),
    ("canceled", "bool"),
    ("renewalTerm", "object|null"),
    ("customFields", "object"),
    ("parent", "object|null"),
    ("show", "bool"),
    ("licenseKey", "string"),
    ("image", "string"),
    ("url", "string"),
];

/// The customer object of the seed.
const CUSTOMER_FIELDS: &[(&str, &str)] = &[
    ("id", "int"),
    ("name", "string"),
    ("title", "string"),
    ("timezone", "string"),
    ("formattedName", "string"),
    ("primaryGroup", "object|null"),
    ("secondaryGroups", "array"),
    ("email", "string"),
    ("joined", "datetime"),
    ("registrationIpAddress", "string"),
    ("warningPoints", "int"),
    ("reputationPoints", "int"),
    ("photoUrl", "string"),
    ("photoUrlIsDefault", "bool"),
    ("coverPhotoUrl", "string"),
    ("profileUrl", "string|null"),
    ("validating", "bool"),
    ("posts", "int"),
    ("lastActivity", "datetime|null"),
    ("lastVisit", "datetime|null"),
    ("lastPost", "datetime|null"),
    ("profileViews", "int"),
    ("birthday", "string"),
    ("customFields", "array"),
    ("rank", "array"),
    ("achievements_points", "int"),
    ("allowAdminEmails", "bool"),
    ("completed", "bool"),
];

fn has_type(value: &Value, expected: &str) -> bool {
    expected.split('|').any(|ty| match ty {
        "int" => value.is_i64(),
        "string" => value.is_string(),
        "bool" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        "datetime" => value
            .as_str()
            .is_some_and(|text| chrono::DateTime::parse_from_rfc3339(text).is_ok()),
        other => panic!("unknown type {other}"),
    })
}

/// Every seed field present with its type, and nothing else.
fn assert_shape(object: &Value, fields: &[(&str, &str)], what: &str) {
    let object = object
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object"));
    for (name, ty) in fields {
        let value = object
            .get(*name)
            .unwrap_or_else(|| panic!("{what}.{name} missing"));
        assert!(has_type(value, ty), "{what}.{name} = {value} is not {ty}");
    }
    let extra: Vec<_> = object
        .keys()
        .filter(|k| !fields.iter().any(|(n, _)| n == k))
        .collect();
    assert!(
        extra.is_empty(),
        "{what} has fields the seed does not: {extra:?}"
    );
}

fn assert_purchase(purchase: &Value) {
    assert_shape(purchase, PURCHASE_FIELDS, "purchase");
    assert_shape(&purchase["customer"], CUSTOMER_FIELDS, "customer");
    if purchase["parent"].is_object() {
        assert_purchase(&purchase["parent"]);
    }
}

/// ACME-SUB: yearly, renewals reissue, with a renewal price, a catalogue number and an image.
fn support_settings(settings: &mut Settings) {
    with_admin_key(settings);
    settings.admin.purchase_url = Some("https://acme.example/account/licenses/{key}".into());
    settings.admin.bad_key_limit = 3;
    settings.products = BTreeMap::from([(
        "ACME-SUB".into(),
        ProductOverride {
            name: Some("Acme Subscription".into()),
            item_id: Some(42),
            image: Some("https://acme.example/box.png".into()),
            term: Some(Term::Years(1)),
            renew: Some(RenewMode::Reissue),
            renewal_price: Some(Money {
                currency: "EUR".into(),
                amount: "29.99".into(),
            }),
            ..ProductOverride::default()
        },
    )]);
}

async fn new_code(app: &TestApp, body: &Value) -> String {
    let (status, answer) = json(app.call("new", body).await).await;
    assert_eq!(status, 200, "{answer}");
    codes(&answer).remove(0)
}

async fn lkey(app: &TestApp, key: &str) -> (u16, Value) {
    json(app.admin_get(&format!("/nexus/lkey/{key}")).await).await
}

#[tokio::test]
async fn lkey_answers_the_purchase_shape_for_every_kind_of_key() {
    for app in backends_with(support_settings).await {
        let mut body = current_new("life-A", "ORD-1", "ACME-SUB");
        body["user"]["firstName"] = "Ada".into();
        body["user"]["lastName"] = "Lovelace".into();
        body["user"]["companyName"] = "Analytical Engines".into();
        let active = new_code(&app, &body).await;

        let suspended = new_code(&app, &current_new("life-S", "ORD-1", "ACME-SUB")).await;
        app.call("suspend", &current_new("life-S", "ORD-2", "ACME-SUB"))
            .await;
        let canceled = new_code(&app, &current_new("life-C", "ORD-1", "ACME-SUB")).await;
        app.call("cancel", &current_new("life-C", "ORD-2", "ACME-SUB"))
            .await;
        let expired = new_code(&app, &legacy_new("NXF-X", "ACME-SUB", 1)).await;
        app.backdate(&expired, "2020-01-01", "2020-12-31").await;
        let original = new_code(&app, &current_new("life-R", "ORD-1", "ACME-SUB")).await;
        let (_, renewal) = json(
            app.call("renew", &current_new("life-R", "ORD-2", "ACME-SUB"))
                .await,
        )
        .await;
        let renewed = codes(&renewal).remove(0);

        let mut seen = BTreeMap::new();
        for (label, key, active_now, canceled_flag, status) in [
            ("active", &active, true, false, "active"),
            ("suspended", &suspended, false, false, "suspended"),
            ("canceled", &canceled, false, true, "canceled"),
            ("expired", &expired, false, false, "expired"),
            ("renewed", &renewed, true, false, "active"),
        ] {
            let (code, purchase) = lkey(&app, key).await;
            assert_eq!(code, 200, "{}: {purchase}", app.backend);
            assert_purchase(&purchase);
            assert_eq!(purchase["licenseKey"], key.as_str());
            assert_eq!(purchase["active"], active_now, "{status}: {purchase}");
            assert_eq!(purchase["canceled"], canceled_flag, "{status}");
            assert_eq!(purchase["customFields"]["status"], status);
            assert_eq!(purchase["itemApp"], "nexus");
            assert_eq!(purchase["itemType"], "package");
            assert_eq!(purchase["itemId"], 42);
            assert_eq!(purchase["name"], "Acme Subscription");
            assert_eq!(purchase["image"], "https://acme.example/box.png");
            assert_eq!(
                purchase["url"],
                format!("https://acme.example/account/licenses/{key}")
            );
            assert_eq!(
                purchase["renewalTerm"],
                json!({"term": "y", "unit": 1, "price": {"currency": "EUR", "amount": "29.99"}, "taxClass": null})
            );
            seen.insert(label, purchase);
        }
        let first = &seen["active"];
        assert_eq!(first["customer"]["email"], "buyer@example.com");
        assert_eq!(first["customer"]["name"], "Ada Lovelace");
        assert_eq!(
            first["customer"]["customFields"],
            json!([{"name": "Nexway", "fields": [
                {"name": "companyName", "value": "Analytical Engines"},
                {"name": "nexwayUserId", "value": "U-1"}]}])
        );
        assert_eq!(first["customFields"]["nexwayFulfillmentId"], "life-A");
        assert_eq!(first["customFields"]["order"], "ORD-1");
        assert_eq!(first["customFields"]["publisherProductId"], "ACME-SUB");
        assert_eq!(first["parent"], Value::Null);
        assert_eq!(seen["expired"]["expires"], "2020-12-31T23:59:59+00:00");

        // The renewed key's parent is the purchase it replaced.
        let renewed_purchase = &seen["renewed"];
        assert_eq!(renewed_purchase["parent"]["licenseKey"], original.as_str());
        assert_eq!(
            renewed_purchase["parent"]["customFields"]["status"],
            "superseded"
        );
        assert_eq!(renewed_purchase["parent"]["active"], false);
    }
}

#[tokio::test]
async fn keys_are_found_whatever_the_case_and_separators() {
    for app in backends_with(support_settings).await {
        let code = new_code(&app, &legacy_new("NXF-K", "ACME-SUB", 1)).await;
        let typed = code.to_lowercase().replace('-', " ");
        let (status, purchase) = lkey(&app, &typed.replace(' ', "%20")).await;
        assert_eq!(status, 200, "{}: {purchase}", app.backend);
        assert_eq!(purchase["licenseKey"], code.as_str());
        let (status, _) = lkey(&app, &code.replace('-', "")).await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn unknown_keys_and_bad_api_keys_answer_in_that_api_familys_shapes() {
    for app in backends_with(support_settings).await {
        let code = new_code(&app, &legacy_new("NXF-Z", "ACME-SUB", 1)).await;
        let (status, body) = lkey(&app, "NOPE-NOPE").await;
        assert_eq!(
            (status, body),
            (
                404,
                json!({"errorCode": "2X310/1", "errorMessage": "INVALID_KEY"})
            )
        );

        let url = app.url(&format!("/nexus/lkey/{code}"));
        let (status, body) = json(app.http.get(&url).send().await.unwrap()).await;
        assert_eq!(
            (status, body),
            (
                401,
                json!({"errorCode": "2S290/6", "errorMessage": "NO_API_KEY"})
            )
        );

        // The webhook's credentials do not open the support side.
        let nexway = app
            .http
            .get(&url)
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .unwrap();
        let (status, body) = json(nexway).await;
        assert_eq!(
            (status, body),
            (
                401,
                json!({"errorCode": "3S290/7", "errorMessage": "INVALID_API_KEY"})
            )
        );

        // ?key= works, so a URL can be pasted.
        let pasted = app
            .http
            .get(format!("{url}?key={ADMIN_KEY}"))
            .send()
            .await
            .unwrap();
        assert_eq!(pasted.status(), 200);

        // Three bad keys (the configured limit, the Nexway one included): the address cools off,
        // and even the right key is refused meanwhile.
        for _ in 0..2 {
            let bad = app
                .http
                .get(format!("{url}?key=wrong"))
                .send()
                .await
                .unwrap();
            assert_eq!(bad.status(), 401);
        }
        let cooling = app.admin_get(&format!("/nexus/lkey/{code}")).await;
        assert_eq!(
            cooling.headers()["retry-after"],
            "300",
            "the configured cooling-off"
        );
        let (status, body) = json(cooling).await;
        assert_eq!(
            (status, body),
            (
                429,
                json!({"errorCode": "1S290/A", "errorMessage": "TOO_MANY_REQUESTS_WITH_BAD_KEY"})
            )
        );
    }
}

#[tokio::test]
async fn the_admin_key_does_not_open_the_webhook_and_no_key_closes_the_admin_side() {
    for app in backends_with(with_admin_key).await {
        let call = app
            .http
            .post(app.url("/licenses/new"))
            .basic_auth(ADMIN_KEY, Some(""))
            .json(&legacy_new("NXF-W", "ACME-SUB", 1))
            .send()
            .await
            .unwrap();
        assert_eq!(call.status(), 401);
    }
    for app in backends_with(|_| {}).await {
        let (status, body) = json(app.admin_get("/admin/products").await).await;
        assert_eq!(
            (status, body["errorMessage"].as_str()),
            (401, Some("INVALID_API_KEY"))
        );
    }
}

#[tokio::test]
async fn support_searches_licenses_by_every_reference() {
    for app in backends_with(support_settings).await {
        let mut ada = legacy_new("NXF-S1", "ACME-SUB", 3);
        ada["user"]["email"] = "ada@example.com".into();
        let (_, answer) = json(app.call("new", &ada).await).await;
        let pfid = answer["publisherFulfillmentId"]
            .as_str()
            .unwrap()
            .to_owned();
        new_code(&app, &legacy_new("NXF-S2", "OTHER", 1)).await;
        app.call("cancel", &{
            let mut body = legacy_new("NXF-S3", "ACME-SUB", 1);
            body["product"]["initialNexwayFulfillmentId"] = "NXF-S2".into();
            body
        })
        .await;

        let search = |query: String| {
            let app = &app;
            async move { json(app.admin_get(&format!("/admin/licenses?{query}")).await).await }
        };
        let total = |body: &Value| body["totalResults"].as_u64().unwrap();
        let (status, all) = search(String::new()).await;
        assert_eq!(status, 200, "{}: {all}", app.backend);
        assert_eq!(total(&all), 4);
        assert_eq!(total(&search("email=ADA@example.com".into()).await.1), 3);
        assert_eq!(
            total(&search("nexwayFulfillmentId=NXF-S2".into()).await.1),
            1
        );
        assert_eq!(
            total(&search(format!("publisherFulfillmentId={pfid}")).await.1),
            3
        );
        assert_eq!(total(&search("orderId=ORD-NXF-S1".into()).await.1), 3);
        // Pasted with spaces around: the same on every backend.
        assert_eq!(
            total(&search("orderId=%20ORD-NXF-S1%20%20".into()).await.1),
            3
        );
        assert_eq!(total(&search("status=canceled".into()).await.1), 1);
        assert_eq!(
            total(&search("product=OTHER&status=canceled".into()).await.1),
            1
        );
        assert_eq!(
            total(&search("product=ACME-SUB&status=active".into()).await.1),
            3
        );

        // Pages of two.
        let (_, page2) = search("email=ada@example.com&perPage=2&page=2".into()).await;
        assert_eq!(page2["results"].as_array().unwrap().len(), 1);
        assert_eq!(
            (page2["totalPages"].as_u64(), page2["page"].as_u64()),
            (Some(2), Some(2))
        );

        let (status, body) = search("status=sleeping".into()).await;
        assert_eq!(status, 400);
        let message = body["errorMessage"].as_str().unwrap();
        assert!(
            message.starts_with("INVALID_REQUEST: ") && message.contains("status"),
            "{message}"
        );
        let (status, _) = search("perPage=1000".into()).await;
        assert_eq!(status, 400);
    }
}

#[tokio::test]
async fn support_revokes_and_reinstates_with_a_reason_in_the_history() {
    for app in backends_with(support_settings).await {
        let code = new_code(&app, &legacy_new("NXF-M", "ACME-SUB", 1)).await;
        let act = |action: &'static str, body: Value| {
            let app = &app;
            let code = code.clone();
            async move {
                let response = app
                    .http
                    .post(app.url(&format!("/admin/licenses/{code}/{action}")))
                    .basic_auth(ADMIN_KEY, None::<&str>)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                json(response).await
            }
        };
        let before = app.row_counts().await;
        let (status, body) = act("revoke", json!({"reason": "  "})).await;
        assert_eq!(
            (status, body["errorMessage"].as_str()),
            (
                400,
                Some("INVALID_REQUEST: a reason of 1 to 1000 characters is required")
            )
        );
        assert_eq!(app.row_counts().await, before);

        let (status, detail) = act("revoke", json!({"reason": "chargeback #991"})).await;
        assert_eq!(status, 200, "{}: {detail}", app.backend);
        assert_eq!(detail["purchase"]["canceled"], true);
        let (status, detail) = act("reinstate", json!({"reason": "chargeback withdrawn"})).await;
        assert_eq!(status, 200);
        assert_eq!(detail["purchase"]["active"], true);

        let (_, detail) = json(app.admin_get(&format!("/admin/licenses/{code}")).await).await;
        let history: Vec<(Value, Value, Value)> = detail["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["operation"].clone(),
                    e["toStatus"].clone(),
                    e["reason"].clone(),
                )
            })
            .collect();
        assert_eq!(
            history,
            [
                (json!("new"), json!("active"), Value::Null),
                (json!("revoke"), json!("canceled"), json!("chargeback #991")),
                (
                    json!("reinstate"),
                    json!("active"),
                    json!("chargeback withdrawn")
                ),
            ]
        );
        assert_eq!(detail["events"][0]["nexwayFulfillmentId"], "NXF-M");

        let (status, _) = json(app.admin_get("/admin/licenses/NOPE").await).await;
        assert_eq!(status, 404);
    }
}

#[tokio::test]
async fn support_lists_the_products_and_their_policies() {
    for app in backends_with(support_settings).await {
        let (status, products) = json(app.admin_get("/admin/products").await).await;
        assert_eq!(status, 200);
        assert_eq!(
            products,
            json!([{"publisherProductId": "ACME-SUB", "name": "Acme Subscription", "maxQuantity": 100,
                    "term": "1y", "renew": "reissue", "upgrade": "keep", "reactivate": "keep",
                    "generator": "random", "maxActivations": null, "stock": null}])
        );
    }
}

#[tokio::test]
async fn support_loads_a_pool_and_sees_its_stock() {
    let pooled = |settings: &mut Settings| {
        with_admin_key(settings);
        settings.products = BTreeMap::from([(
            "DR-POOL".into(),
            ProductOverride {
                generator: Some(GeneratorSettings::Pool(PoolSettings::default())),
                ..ProductOverride::default()
            },
        )]);
    };
    for app in backends_with(pooled).await {
        let csv = "code\nDRP-0001\nDRP-0002\nDRP-0001\n";
        let import = app
            .http
            .post(app.url("/admin/products/DR-POOL/pool"))
            .basic_auth(ADMIN_KEY, None::<&str>)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        let (status, report) = json(import).await;
        assert_eq!(status, 200, "{}: {report}", app.backend);
        assert_eq!(
            report,
            json!({"imported": 2, "skipped": 1, "stock": {"available": 2, "allocated": 0, "revoked": 0}})
        );

        let code = new_code(&app, &legacy_new("NXF-P", "DR-POOL", 1)).await;
        assert_eq!(code, "DRP-0001", "the oldest code first");
        let (_, products) = json(app.admin_get("/admin/products").await).await;
        assert_eq!(
            products[0]["stock"],
            json!({"available": 1, "allocated": 1, "revoked": 0})
        );
        let metrics = app
            .http
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("nexkey_pool_stock{product=\"DR-POOL\"} 1"),
            "{metrics}"
        );

        // A file with a code unfit to be an activation code is refused whole.
        let bad = app
            .http
            .post(app.url("/admin/products/DR-POOL/pool"))
            .basic_auth(ADMIN_KEY, None::<&str>)
            .header("content-type", "text/csv")
            .body("DRP-0003\nwith space\n")
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        let (_, products) = json(app.admin_get("/admin/products").await).await;
        assert_eq!(products[0]["stock"]["available"], 1);
    }
}
