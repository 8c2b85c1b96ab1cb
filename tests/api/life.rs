//! The rules of PROTOCOL.md 2b over HTTP, each one a hole that was open: which life a call
//! reaches, one identity per body, additionalData lists, tolerance, trials, calls out of order,
//! repeats of suspend and reactivate, dates, and buyers kept per purchase.

use std::collections::BTreeMap;

use chrono::{Days, Months, Utc};
use nexkey::config::{ProductOverride, Settings};
use nexkey::fulfillment::{RenewMode, Term};
use nexkey::keygen::{GeneratorSettings, KeyPair, SignedSettings};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, backends_with, codes, current_new, json, legacy_new, with_admin_key,
};

/// ACME-PRO: yearly, renew extends. ACME-MAX: yearly, renew reissues. SG: signed codes.
fn settings(settings: &mut Settings) {
    with_admin_key(settings);
    let yearly = |renew| ProductOverride {
        term: Some(Term::Years(1)),
        renew: Some(renew),
        ..ProductOverride::default()
    };
    settings.products = BTreeMap::from([
        ("ACME-PRO".into(), yearly(RenewMode::Extend)),
        ("ACME-MAX".into(), yearly(RenewMode::Reissue)),
        (
            "SG".into(),
            ProductOverride {
                generator: Some(GeneratorSettings::Signed(SignedSettings {
                    private_key: KeyPair::generate().private_key,
                    encoding: Default::default(),
                    prefix: String::new(),
                    file_name: None,
                })),
                ..ProductOverride::default()
            },
        ),
    ]);
}

async fn ok(app: &TestApp, operation: &str, body: &Value) -> Value {
    let (status, answer) = json(app.call(operation, body).await).await;
    assert_eq!(status, 200, "{} {operation}: {answer}", app.backend);
    answer
}

/// A refused call: its status and error code, and nothing written.
async fn refused(app: &TestApp, operation: &str, body: &Value, status: u16, code: &str) {
    let before = app.row_counts().await;
    let (got, answer) = json(app.call(operation, body).await).await;
    assert_eq!(got, status, "{} {operation}: {answer}", app.backend);
    assert_eq!(answer["error"]["code"], code, "{answer}");
    assert_eq!(
        app.row_counts().await,
        before,
        "a refused {operation} wrote"
    );
}

fn statuses(answer: &Value) -> Vec<&str> {
    answer["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect()
}

async fn lkey(app: &TestApp, code: &str) -> Value {
    let response = app.admin_get(&format!("/nexus/lkey/{code}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn grace(mut body: Value) -> Value {
    body["user"]["email"] = "grace@example.com".into();
    body
}

#[tokio::test]
async fn a_reference_into_another_life_is_refused_and_changes_nothing() {
    for app in backends_with(settings).await {
        let ada = codes(&ok(&app, "new", &current_new("life-ada", "ORD-1", "ACME-PRO")).await);
        let answer = ok(
            &app,
            "new",
            &grace(current_new("life-grace", "ORD-1", "ACME-PRO")),
        )
        .await;
        let grace_code = codes(&answer);
        let grace_id = answer["publisherFulfillmentId"]
            .as_str()
            .unwrap()
            .to_owned();

        // Ada's life, with an (unsigned) PublisherLicenseID naming Grace's fulfillment.
        let mut body = current_new("life-ada", "ORD-2", "ACME-PRO");
        body["additionalData"] = json!({"PublisherLicenseID": [grace_id]});
        refused(&app, "cancel", &body, 409, "REFERENCES_DISAGREE").await;
        // Ada's life naming Grace's code.
        let mut body = current_new("life-ada", "ORD-3", "ACME-PRO");
        body["additionalData"] = json!({"ActivationCode": grace_code});
        refused(&app, "suspend", &body, 409, "REFERENCES_DISAGREE").await;
        // Codes of two lives in one call.
        let mut body = current_new("life-ada", "ORD-4", "ACME-PRO");
        body["additionalData"] = json!({"ActivationCode": [ada[0], grace_code[0]]});
        refused(&app, "cancel", &body, 409, "REFERENCES_DISAGREE").await;

        for code in [&ada[0], &grace_code[0]] {
            assert_eq!(lkey(&app, code).await["customFields"]["status"], "active");
        }
    }
}

#[tokio::test]
async fn a_body_with_both_generations_identities_is_refused() {
    for app in backends_with(settings).await {
        let mut body = legacy_new("NXF-B", "ACME-PRO", 1);
        body["fulfillmentId"] = "life-other".into();
        refused(&app, "new", &body, 400, "INVALID_REQUEST").await;
        let mut body = current_new("life-b", "ORD-1", "ACME-PRO");
        body["product"]["nexwayFulfillmentId"] = "NXF-B".into();
        refused(&app, "cancel", &body, 400, "INVALID_REQUEST").await;
    }
}

#[tokio::test]
async fn additional_data_lists_act_on_every_code_named() {
    for app in backends_with(settings).await {
        let mut body = current_new("life-multi", "ORD-1", "ACME-PRO");
        body["product"]["quantity"] = 3.into();
        let answer = ok(&app, "new", &body).await;
        let issued = codes(&answer);
        let id = answer["publisherFulfillmentId"].clone();

        // As Nexway's `$.licenses[*].activationCode+` extractor captures them: a list.
        let mut cancel = current_new("life-multi", "ORD-2", "ACME-PRO");
        cancel["additionalData"] = json!({
            "ActivationCode": [issued[0], issued[1]],
            "PublisherLicenseID": [id],
            "SomethingElse": {"nested": [1, 2]}
        });
        let answer = ok(&app, "cancel", &cancel).await;
        assert_eq!(codes(&answer), issued[..2], "{}", app.backend);
        assert_eq!(statuses(&answer), ["canceled", "canceled"]);
        assert_eq!(
            lkey(&app, &issued[2]).await["customFields"]["status"],
            "active"
        );

        // A bare string is a list of one.
        let mut suspend = current_new("life-multi", "ORD-3", "ACME-PRO");
        suspend["additionalData"] = json!({"ActivationCode": issued[2]});
        assert_eq!(codes(&ok(&app, "suspend", &suspend).await), issued[2..]);

        // A list of something else is a clear 400.
        let mut bad = current_new("life-multi", "ORD-4", "ACME-PRO");
        bad["additionalData"] = json!({"ActivationCode": [1, 2]});
        refused(&app, "cancel", &bad, 400, "INVALID_REQUEST").await;
    }
}

#[tokio::test]
async fn members_nexkey_does_not_use_never_fail_a_call() {
    for app in backends_with(settings).await {
        let mut body = current_new("life-loose", "ORD-1", "ACME-PRO");
        body["checkout"]["lineItemId"] = 12.into();
        body["checkout"]["price"] = json!({"grossPrice": "29.99", "currency": null});
        body["user"]["id"] = 4242.into();
        body["user"]["zipCode"] = 75001.into();
        body["user"]["country"] = json!({"code": "FR"});
        body["product"]["priceFunctionParameters"] = json!({"seats": 5, "tiers": [1, 2]});
        body["product"]["variables"] = json!(["EU"]);
        body["product"]["price"] = "29.99".into();
        body["somethingNew"] = json!({"x": true});
        let answer = ok(&app, "new", &body).await;
        let purchase = lkey(&app, &codes(&answer)[0]).await;
        assert_eq!(
            purchase["customer"]["customFields"][0]["fields"],
            json!([{"name": "nexwayUserId", "value": "4242"}]),
            "{}",
            app.backend
        );
    }
}

#[tokio::test]
async fn a_trial_is_a_trial_until_converted() {
    for app in backends_with(settings).await {
        let today = Utc::now().date_naive();
        let mut body = current_new("life-trial", "ORD-1", "ACME-PRO");
        body["checkout"]["trialContext"] = "CREATION".into();
        let answer = ok(&app, "new", &body).await;
        let code = codes(&answer).remove(0);
        let license = &answer["licenses"][0];
        assert_eq!(license["trial"], true, "{}: {answer}", app.backend);
        let trial_end = (today + Days::new(14)).to_string();
        assert_eq!(
            license["endDate"],
            trial_end.as_str(),
            "the default trial term"
        );
        let purchase = lkey(&app, &code).await;
        assert_eq!(purchase["customFields"]["trial"], "true");

        // A trial with an end date of its own ends then.
        let mut short = current_new("life-trial-2", "ORD-1", "ACME-PRO");
        short["checkout"]["trialContext"] = "CREATION".into();
        let end = today + Days::new(3);
        short["product"]["expirationTimestamp"] = (end
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis())
        .into();
        let answer = ok(&app, "new", &short).await;
        assert_eq!(answer["licenses"][0]["endDate"], end.to_string());

        // The paid order: the same code, ordinary, the product's term from today.
        let mut paid = current_new("life-trial", "ORD-2", "ACME-PRO");
        paid["checkout"]["trialContext"] = "CONVERSION".into();
        let answer = ok(&app, "new", &paid).await;
        assert_eq!(codes(&answer), [code.as_str()], "{}: {answer}", app.backend);
        assert_eq!(answer["licenses"][0].get("trial"), None);
        assert_eq!(
            answer["licenses"][0]["endDate"],
            (today + Months::new(12)).to_string()
        );
        assert_eq!(lkey(&app, &code).await["customFields"].get("trial"), None);

        // A conversion with no trial to convert issues ordinary codes.
        let mut paid = current_new("life-paid", "ORD-1", "ACME-PRO");
        paid["checkout"]["trialContext"] = "CONVERSION".into();
        let answer = ok(&app, "new", &paid).await;
        assert_eq!(answer["licenses"][0].get("trial"), None);

        let mut odd = current_new("life-odd", "ORD-1", "ACME-PRO");
        odd["checkout"]["trialContext"] = "FOREVER".into();
        refused(&app, "new", &odd, 400, "INVALID_REQUEST").await;
    }
}

#[tokio::test]
async fn a_cancel_or_suspend_before_its_new_is_recorded_and_the_new_honours_it() {
    for app in backends_with(settings).await {
        let answer = ok(
            &app,
            "cancel",
            &current_new("life-late", "ORD-1", "ACME-PRO"),
        )
        .await;
        assert_eq!(answer["licenses"], json!([]), "{}", app.backend);
        let answer = ok(&app, "new", &current_new("life-late", "ORD-1", "ACME-PRO")).await;
        assert_eq!(statuses(&answer), ["canceled"], "never usable");

        // The legacy body refers to the life by initialNexwayFulfillmentId.
        let mut suspend = legacy_new("NXF-L2", "ACME-PRO", 1);
        suspend["product"]["initialNexwayFulfillmentId"] = "NXF-L1".into();
        assert_eq!(ok(&app, "suspend", &suspend).await["licenses"], json!([]));
        let answer = ok(&app, "new", &legacy_new("NXF-L1", "ACME-PRO", 2)).await;
        assert_eq!(statuses(&answer), ["suspended", "suspended"]);
        // The reactivate Nexway sends next lifts the hold as usual.
        let mut reactivate = legacy_new("NXF-L3", "ACME-PRO", 1);
        reactivate["product"]["initialNexwayFulfillmentId"] = "NXF-L1".into();
        assert_eq!(
            statuses(&ok(&app, "reactivate", &reactivate).await),
            ["active", "active"]
        );
    }
}

#[tokio::test]
async fn a_call_waiting_for_its_new_binds_only_the_same_buyer() {
    for app in backends_with(settings).await {
        // Another buyer's cancel waits for the life; the purchase that comes is not theirs.
        let cancel = grace(current_new("life-bound", "ORD-1", "ACME-PRO"));
        assert_eq!(ok(&app, "cancel", &cancel).await["licenses"], json!([]));
        // A cancel naming no buyer cannot be bound to a purchase: not recorded, 404 (retried).
        let mut anonymous = current_new("life-bound", "ORD-2", "ACME-PRO");
        anonymous.as_object_mut().unwrap().remove("user");
        refused(&app, "cancel", &anonymous, 404, "UNKNOWN_FULFILLMENT").await;
        let answer = ok(&app, "new", &current_new("life-bound", "ORD-1", "ACME-PRO")).await;
        assert_eq!(statuses(&answer), ["active"], "{}", app.backend);
        let code = codes(&answer).remove(0);
        assert_eq!(lkey(&app, &code).await["active"], true);
    }
}

/// Support's action on one code, with a reason.
async fn support(app: &TestApp, code: &str, action: &str) {
    let response = app
        .http
        .post(app.url(&format!("/admin/licenses/{code}/{action}")))
        .basic_auth(crate::helpers::ADMIN_KEY, None::<&str>)
        .json(&json!({"reason": "by hand"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{action}");
}

#[tokio::test]
async fn a_new_never_joins_another_buyers_life() {
    for app in backends_with(settings).await {
        let victim = codes(&ok(&app, "new", &legacy_new("VICT-1", "ACME-PRO", 1)).await);
        // A stranger's new claiming the victim's life as its first fulfillment is refused.
        let mut joining = grace(legacy_new("ATT-1", "ACME-PRO", 1));
        joining["product"]["initialNexwayFulfillmentId"] = "VICT-1".into();
        refused(&app, "new", &joining, 409, "REFERENCES_DISAGREE").await;
        // And so is one reusing the victim's fulfillment id under another order.
        let mut reusing = grace(current_new("VICT-1", "ORD-X", "ACME-PRO"));
        reusing["checkout"]["subscriptionId"] = "SUB-X".into();
        refused(&app, "new", &reusing, 409, "REFERENCES_DISAGREE").await;
        assert_eq!(lkey(&app, &victim[0]).await["active"], true);
    }
}

#[tokio::test]
async fn refusals_never_name_another_buyers_code() {
    for app in backends_with(settings).await {
        let victim = codes(&ok(&app, "new", &current_new("life-v5", "O1", "ACME-PRO")).await);
        let mut renew = grace(current_new("unknown-life", "O2", "ACME-PRO"));
        renew["checkout"]["subscriptionId"] = "SUB-life-v5".into();
        let (status, answer) = json(app.call("renew", &renew).await).await;
        assert_eq!(status, 404, "{answer}");
        assert!(!answer.to_string().contains(&victim[0]), "{answer}");
    }
}

#[tokio::test]
async fn one_subscription_across_two_lives_blocks_neither() {
    for app in backends_with(settings).await {
        let mut first = current_new("SB1", "O1", "ACME-PRO");
        first["checkout"]["subscriptionId"] = "SUB-SAME".into();
        let first_codes = codes(&ok(&app, "new", &first).await);
        let mut second = current_new("SB2", "O2", "ACME-MAX");
        second["checkout"]["subscriptionId"] = "SUB-SAME".into();
        let second_codes = codes(&ok(&app, "new", &second).await);
        // The call's own fulfillment id names its life; the shared subscription does not veto it.
        let mut cancel = current_new("SB2", "O4", "ACME-MAX");
        cancel["checkout"]["subscriptionId"] = "SUB-SAME".into();
        assert_eq!(statuses(&ok(&app, "cancel", &cancel).await), ["canceled"]);
        assert_eq!(lkey(&app, &second_codes[0]).await["canceled"], true);
        // A subscription alone that spans two lives is ambiguous: refused, nothing changes.
        let mut alone = current_new("SB-OTHER", "O5", "ACME-PRO");
        alone["checkout"]["subscriptionId"] = "SUB-SAME".into();
        refused(&app, "renew", &alone, 409, "REFERENCES_DISAGREE").await;
        // A suspend of a life not known yet waits for its own `new`, whatever the subscription.
        assert_eq!(ok(&app, "suspend", &alone).await["licenses"], json!([]));
        assert_eq!(lkey(&app, &first_codes[0]).await["active"], true);
    }
}

#[tokio::test]
async fn one_canceled_seat_does_not_block_the_rest_of_the_life() {
    for app in backends_with(settings).await {
        let seats = codes(&ok(&app, "new", &legacy_new("RV1", "ACME-PRO", 2)).await);
        support(&app, &seats[0], "revoke").await;
        let mut suspend = legacy_new("RV1-S", "ACME-PRO", 1);
        suspend["product"]["initialNexwayFulfillmentId"] = "RV1".into();
        assert_eq!(
            statuses(&ok(&app, "suspend", &suspend).await),
            ["suspended"]
        );
        assert_eq!(
            lkey(&app, &seats[1]).await["customFields"]["status"],
            "suspended"
        );
        assert_eq!(
            lkey(&app, &seats[0]).await["canceled"],
            true,
            "stays canceled"
        );
    }
}

#[tokio::test]
async fn a_suspend_repeated_after_support_lifted_it_suspends_again() {
    for app in backends_with(settings).await {
        let code = codes(&ok(&app, "new", &current_new("RI1", "O1", "ACME-PRO")).await).remove(0);
        let suspend = current_new("RI1", "O1", "ACME-PRO");
        ok(&app, "suspend", &suspend).await;
        support(&app, &code, "reinstate").await;
        ok(&app, "reactivate", &suspend).await; // already active: nothing to do
        assert_eq!(
            statuses(&ok(&app, "suspend", &suspend).await),
            ["suspended"]
        );
        assert_eq!(
            lkey(&app, &code).await["customFields"]["status"],
            "suspended"
        );

        // A reactivate that found nothing to do, repeated after a suspend, lifts it.
        let code = codes(&ok(&app, "new", &current_new("SR2", "O1", "ACME-PRO")).await).remove(0);
        let call = current_new("SR2", "O1", "ACME-PRO");
        ok(&app, "reactivate", &call).await;
        ok(&app, "suspend", &call).await;
        assert_eq!(statuses(&ok(&app, "reactivate", &call).await), ["active"]);
        assert_eq!(lkey(&app, &code).await["active"], true, "{}", app.backend);
    }
}

#[tokio::test]
async fn a_cancel_is_never_refused_over_dates_or_a_quantity_it_does_not_use() {
    for app in backends_with(settings).await {
        let code = codes(&ok(&app, "new", &legacy_new("CD1", "ACME-PRO", 1)).await).remove(0);
        let mut cancel = legacy_new("CD1", "ACME-PRO", 0);
        cancel["product"]["endDate"] = "27-11-23".into();
        assert_eq!(statuses(&ok(&app, "cancel", &cancel).await), ["canceled"]);
        assert_eq!(lkey(&app, &code).await["canceled"], true);

        // Nor over the JSON type of what it does not read; a `new` that reads them still refuses.
        let mut new = current_new("CD2", "O1", "ACME-PRO");
        let code = codes(&ok(&app, "new", &new).await).remove(0);
        new["product"]["quantity"] = "1".into();
        new["product"]["expirationTimestamp"] = 1.5e300.into();
        assert_eq!(statuses(&ok(&app, "suspend", &new).await), ["suspended"]);
        assert_eq!(statuses(&ok(&app, "cancel", &new).await), ["canceled"]);
        assert_eq!(lkey(&app, &code).await["canceled"], true);
        new["checkout"]["orderId"] = "O2".into();
        refused(&app, "new", &new, 400, "INVALID_REQUEST").await;
        refused(&app, "renew", &new, 400, "INVALID_REQUEST").await;
        // A member given twice is still refused (which value counts must not be open to choice).
        let twice = new
            .to_string()
            .replacen('{', r#"{"fulfillmentId":"OTHER","#, 1);
        let (status, answer) = json(app.post("suspend", twice).await).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], "INVALID_REQUEST");
    }
}

#[tokio::test]
async fn support_searches_read_a_suspension_past_its_end_as_suspended() {
    for app in backends_with(settings).await {
        let new = current_new("SUS-PAST", "O1", "ACME-PRO");
        let code = codes(&ok(&app, "new", &new).await).remove(0);
        ok(&app, "suspend", &current_new("SUS-PAST", "O1", "ACME-PRO")).await;
        // Its end date passes while suspended.
        app.db
            .execute_unprepared("UPDATE license SET end_date = '2020-01-01'")
            .await
            .unwrap();
        let found = |status: &'static str| {
            let app = &app;
            async move {
                let response = app
                    .admin_get(&format!("/admin/licenses?status={status}"))
                    .await;
                let list: Value = response.json().await.unwrap();
                list["results"].as_array().unwrap().len()
            }
        };
        assert_eq!(found("suspended").await, 1, "{code}");
        assert_eq!(found("expired").await, 0);
    }
}

#[tokio::test]
async fn suspend_reactivate_suspend_in_one_order_leaves_it_suspended() {
    for app in backends_with(settings).await {
        let code = codes(&ok(&app, "new", &current_new("life-rep", "ORD-1", "ACME-PRO")).await);
        let hold = current_new("life-rep", "ORD-2", "ACME-PRO");
        let first = app.call("suspend", &hold).await;
        assert_eq!(first.headers()["idempotent-replayed"], "false");
        let first: Value = first.json().await.unwrap();
        assert_eq!(statuses(&first), ["suspended"]);
        assert_eq!(statuses(&ok(&app, "reactivate", &hold).await), ["active"]);

        let again = app.call("suspend", &hold).await;
        assert_eq!(
            again.headers()["idempotent-replayed"],
            "false",
            "{}",
            app.backend
        );
        let again: Value = again.json().await.unwrap();
        assert_eq!(statuses(&again), ["suspended"]);
        assert_eq!(
            lkey(&app, &code[0]).await["customFields"]["status"],
            "suspended"
        );

        // A retry of that second suspend is a retry: the same bytes, nothing written.
        let rows = app.row_counts().await;
        let retry = app.call("suspend", &hold).await;
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        assert_eq!(retry.json::<Value>().await.unwrap(), again);
        assert_eq!(app.row_counts().await, rows);

        // And the reactivate after it is new again.
        assert_eq!(statuses(&ok(&app, "reactivate", &hold).await), ["active"]);
        assert_eq!(
            lkey(&app, &code[0]).await["customFields"]["status"],
            "active"
        );
    }
}

#[tokio::test]
async fn a_new_retried_after_a_later_cancel_is_still_a_retry() {
    for app in backends_with(settings).await {
        let body = current_new("life-retry", "ORD-1", "ACME-PRO");
        let first = app.call("new", &body).await.text().await.unwrap();
        ok(
            &app,
            "cancel",
            &current_new("life-retry", "ORD-2", "ACME-PRO"),
        )
        .await;
        let rows = app.row_counts().await;
        let retry = app.call("new", &body).await;
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        assert_eq!(retry.text().await.unwrap(), first, "{}", app.backend);
        assert_eq!(app.row_counts().await, rows);
    }
}

#[tokio::test]
async fn dates_are_real_four_digit_calendar_dates_and_nothing_is_issued_expired() {
    for app in backends_with(settings).await {
        let yesterday = Utc::now().date_naive() - Days::new(1);
        for end in [
            "27-11-23",
            "+10000-01-01",
            "0027-11-23",
            "2027-02-30",
            yesterday.to_string().as_str(),
        ] {
            let mut body = legacy_new("NXF-D", "ACME-PRO", 1);
            body["product"]["endDate"] = end.into();
            refused(&app, "new", &body, 400, "INVALID_REQUEST").await;
        }
        // A start in the past with a term that has run out already.
        let mut body = legacy_new("NXF-D", "ACME-PRO", 1);
        body["product"]["startDate"] = "2020-01-01".into();
        refused(&app, "new", &body, 400, "INVALID_REQUEST").await;
        for millis in [253_402_300_800_000i64, -86_400_000] {
            let mut body = current_new("life-d", "ORD-1", "ACME-PRO");
            body["product"]["expirationTimestamp"] = millis.into();
            refused(&app, "new", &body, 400, "INVALID_REQUEST").await;
        }
        // A signed code carries its end date in 16 bits of days: checked before, a 400.
        let mut body = legacy_new("NXF-SG", "SG", 1);
        body["product"]["endDate"] = "2200-01-01".into();
        refused(&app, "new", &body, 400, "INVALID_REQUEST").await;
        body["product"]["endDate"] = "2100-01-01".into();
        ok(&app, "new", &body).await;
    }
}

#[tokio::test]
async fn each_purchase_keeps_its_buyer_as_its_call_gave_them() {
    for app in backends_with(settings).await {
        let mut first = legacy_new("NXF-BUY1", "ACME-PRO", 1);
        first["user"]["companyName"] = "Analytical Engines".into();
        let first = codes(&ok(&app, "new", &first).await).remove(0);
        let mut second = legacy_new("NXF-BUY2", "ACME-PRO", 1);
        second["user"] = json!({"email": "BUYER@example.com", "firstName": "Augusta",
                                "lastName": "King", "companyName": "Babbage & Co"});
        let second = codes(&ok(&app, "new", &second).await).remove(0);

        let old = lkey(&app, &first).await;
        assert_eq!(old["customer"]["name"], "Ada Lovelace", "{}", app.backend);
        assert_eq!(
            old["customer"]["customFields"][0]["fields"][0]["value"],
            "Analytical Engines"
        );
        let new = lkey(&app, &second).await;
        assert_eq!(new["customer"]["name"], "Augusta King");
        assert_eq!(
            new["customer"]["customFields"][0]["fields"][0]["value"],
            "Babbage & Co"
        );
        assert_eq!(new["customer"]["email"], "buyer@example.com");

        // A reissue keeps the buyer of the purchase it continues.
        let mut renew = legacy_new("NXF-BUY3", "ACME-MAX", 1);
        renew["product"]["initialNexwayFulfillmentId"] = "NXF-BUY2".into();
        renew["product"]["licenses"] = json!([{"activationCode": second}]);
        ok(&app, "upgrade", &renew).await;
        let mut renew = legacy_new("NXF-BUY4", "ACME-MAX", 1);
        renew["product"]["initialNexwayFulfillmentId"] = "NXF-BUY2".into();
        let child = codes(&ok(&app, "renew", &renew).await).remove(0);
        assert_ne!(child, second);
        assert_eq!(lkey(&app, &child).await["customer"]["name"], "Augusta King");
    }
}

#[tokio::test]
async fn a_stored_status_nexkey_does_not_know_is_an_error_not_active() {
    use sea_orm::ConnectionTrait;
    for app in backends_with(settings).await {
        let code = codes(&ok(&app, "new", &current_new("life-odd", "ORD-1", "ACME-PRO")).await);
        app.db
            .execute_unprepared("UPDATE license SET status = 'paused'")
            .await
            .unwrap();
        // Read as active, a suspend would apply; unknown, it is refused and nothing changes.
        refused(
            &app,
            "suspend",
            &current_new("life-odd", "ORD-2", "ACME-PRO"),
            500,
            "INTERNAL",
        )
        .await;
        let response = app.admin_get(&format!("/nexus/lkey/{}", code[0])).await;
        assert_eq!(response.status(), 500, "{}", app.backend);
    }
}

/// Found by attack: a call with a fresh fulfillment id of its own reached another buyer's life
/// through any one reference (publisher id, initial id, subscription).
#[tokio::test]
async fn a_reference_alone_never_reaches_another_buyers_licenses() {
    for app in backends_with(settings).await {
        let answer = ok(&app, "new", &current_new("life-own", "ORD-1", "ACME-MAX")).await;
        let own = codes(&answer);
        let publisher_id = answer["publisherFulfillmentId"]
            .as_str()
            .unwrap()
            .to_owned();

        let mut body = grace(current_new("life-evil-1", "ORD-E1", "ACME-MAX"));
        body["additionalData"] = json!({"PublisherLicenseID": [publisher_id]});
        refused(&app, "cancel", &body, 404, "UNKNOWN_FULFILLMENT").await;
        let mut body = grace(current_new("life-evil-2", "ORD-E2", "ACME-MAX"));
        body["checkout"]["subscriptionId"] = "SUB-life-own".into();
        refused(&app, "renew", &body, 404, "UNKNOWN_FULFILLMENT").await;
        let mut body = grace(legacy_new("NXF-EVIL-3", "ACME-MAX", 1));
        body["product"]["initialNexwayFulfillmentId"] = "life-own".into();
        refused(&app, "cancel", &body, 404, "UNKNOWN_FULFILLMENT").await;
        assert_eq!(
            lkey(&app, &own[0]).await["customFields"]["status"],
            "active"
        );

        // The same references from the buyer's own calls still work.
        let mut body = current_new("life-own-2", "ORD-2", "ACME-MAX");
        body["additionalData"] = json!({"PublisherLicenseID": [publisher_id]});
        assert_eq!(statuses(&ok(&app, "suspend", &body).await), ["suspended"]);
    }
}

/// Found by attack: on PostgreSQL a cancel racing its own `new` could miss it and be recorded
/// as waiting while the `new` issued usable codes. Whatever the order, the codes end canceled.
#[tokio::test]
async fn a_cancel_racing_its_new_always_wins() {
    for app in backends_with(settings).await {
        for round in 0..12 {
            let body = current_new(&format!("life-race-{round}"), "ORD-1", "ACME-PRO");
            let (cancel, new) = tokio::join!(app.call("cancel", &body), app.call("new", &body));
            assert_eq!(cancel.status(), 200, "{}", app.backend);
            assert_eq!(new.status(), 200, "{}", app.backend);
            let code = codes(&json(app.call("new", &body).await).await.1)[0].clone();
            assert_eq!(
                lkey(&app, &code).await["customFields"]["status"],
                "canceled",
                "{} round {round}: a cancel answered 200 was lost",
                app.backend
            );
        }
    }
}

/// Found by attack: a term that carried the end date past 9999 was issued as `+10000-…`.
#[tokio::test]
async fn no_end_date_past_the_year_9999() {
    for app in backends_with(settings).await {
        let mut body = legacy_new("NXF-Y10K", "ACME-PRO", 1);
        body["product"]["startDate"] = "9999-12-31".into();
        refused(&app, "new", &body, 400, "INVALID_REQUEST").await;
    }
}

#[tokio::test]
async fn a_cancel_before_its_new_waits_for_it_and_never_goes_by_the_subscription() {
    for app in backends_with(settings).await {
        // Two lives of one buyer under one subscription; the second's cancel comes first.
        let first = ok(&app, "new", &current_new("life-s1", "ORD-1", "ACME-PRO")).await;
        let mut second = current_new("life-s2", "ORD-2", "ACME-PRO");
        second["checkout"]["subscriptionId"] = "SUB-life-s1".into();
        assert_eq!(ok(&app, "cancel", &second).await["licenses"], json!([]));
        let code = codes(&first).remove(0);
        assert_eq!(lkey(&app, &code).await["active"], true, "{}", app.backend);
        let answer = ok(&app, "new", &second).await;
        assert_eq!(statuses(&answer), ["canceled"], "never usable");
    }
}

#[tokio::test]
async fn a_conversion_gives_the_paid_seats_and_honours_a_refund_that_came_first() {
    for app in backends_with(settings).await {
        let trial = |fulfillment: &str, order: &str, context: &str, quantity: i64| {
            let mut body = current_new(fulfillment, order, "ACME-PRO");
            body["checkout"]["trialContext"] = context.into();
            body["product"]["quantity"] = quantity.into();
            body
        };
        // One trial seat, five paid: five ordinary codes.
        ok(&app, "new", &trial("conv-a", "ORD-1", "CREATION", 1)).await;
        let answer = ok(&app, "new", &trial("conv-a", "ORD-2", "CONVERSION", 5)).await;
        assert_eq!(
            statuses(&answer),
            ["active"; 5],
            "{}: {answer}",
            app.backend
        );
        assert!(
            answer["licenses"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l.get("trial").is_none())
        );
        // Three trial seats, one paid: one ordinary code, never three.
        ok(&app, "new", &trial("conv-b", "ORD-1", "CREATION", 3)).await;
        let answer = ok(&app, "new", &trial("conv-b", "ORD-2", "CONVERSION", 1)).await;
        assert_eq!(statuses(&answer), ["active"]);
        assert_eq!(answer["licenses"][0].get("trial"), None);
        // A trial support revoked: the paid order still gets its code.
        let revoked = codes(&ok(&app, "new", &trial("conv-c", "ORD-1", "CREATION", 1)).await);
        support(&app, &revoked[0], "revoke").await;
        let answer = ok(&app, "new", &trial("conv-c", "ORD-2", "CONVERSION", 1)).await;
        assert_eq!(statuses(&answer), ["active"]);
        assert_ne!(codes(&answer), revoked);
        // The paid order's refund came before its conversion: nothing usable comes out.
        ok(&app, "new", &trial("conv-d", "ORD-1", "CREATION", 1)).await;
        ok(&app, "cancel", &trial("conv-d", "ORD-2", "CONVERSION", 1)).await;
        let answer = ok(&app, "new", &trial("conv-d", "ORD-2", "CONVERSION", 1)).await;
        assert_eq!(statuses(&answer), ["canceled"], "{}: {answer}", app.backend);
        // Three trial seats, one paid by renewal: one converted, the others stay trials; the
        // next ordinary renewal extends the paid seat only.
        ok(&app, "new", &trial("conv-e", "ORD-1", "CREATION", 3)).await;
        let answer = ok(&app, "renew", &trial("conv-e", "ORD-2", "CONVERSION", 1)).await;
        assert_eq!(statuses(&answer), ["active"], "{}: {answer}", app.backend);
        let paid = codes(&answer);
        let answer = ok(&app, "renew", &current_new("conv-e", "ORD-3", "ACME-PRO")).await;
        assert_eq!(codes(&answer), paid, "{}: {answer}", app.backend);
    }
}

#[tokio::test]
async fn a_refund_that_came_first_is_honoured_for_its_own_order_only() {
    for app in backends_with(settings).await {
        // Legacy: the cancel of order O2 reached the life's first code before O2's `new`.
        let life = |fulfillment: &str, order: &str| {
            let mut body = legacy_new(fulfillment, "ACME-PRO", 1);
            body["product"]["initialNexwayFulfillmentId"] = "REF-1".into();
            body["metadata"]["order"] = order.into();
            body
        };
        ok(&app, "new", &legacy_new("REF-1", "ACME-PRO", 1)).await;
        ok(&app, "cancel", &life("REF-3", "O2")).await;
        let answer = ok(&app, "new", &life("REF-2", "O2")).await;
        assert_eq!(statuses(&answer), ["canceled"], "{}: {answer}", app.backend);
        let answer = ok(&app, "new", &life("REF-4", "O4")).await;
        assert_eq!(statuses(&answer), ["active"], "another order of the life");

        // A cancel under another life's ids, naming a buyer's own code, refunds nobody else.
        let own = codes(&ok(&app, "new", &grace(current_new("REF-X", "OX", "ACME-PRO"))).await);
        let mut planted = grace(current_new("REF-V", "OV", "ACME-PRO"));
        planted["additionalData"] = json!({"ActivationCode": own});
        assert_eq!(statuses(&ok(&app, "cancel", &planted).await), ["canceled"]);
        let answer = ok(&app, "new", &current_new("REF-V", "OV", "ACME-PRO")).await;
        assert_eq!(statuses(&answer), ["active"], "{}: {answer}", app.backend);
    }
}

#[tokio::test]
async fn a_new_never_takes_over_another_lifes_fulfillment_id() {
    for app in backends_with(settings).await {
        let victim = codes(&ok(&app, "new", &legacy_new("NXF-V", "ACME-PRO", 1)).await);
        let mut squatter = grace(legacy_new("NXF-V", "ACME-PRO", 1));
        squatter["metadata"]["order"] = "ORD-OTHER".into();
        squatter["product"]["initialNexwayFulfillmentId"] = "NXF-INVENTED".into();
        refused(&app, "new", &squatter, 409, "REFERENCES_DISAGREE").await;
        // The victim's life answers its own calls as before.
        let mut cancel = legacy_new("NXF-V-C", "ACME-PRO", 1);
        cancel["product"]["initialNexwayFulfillmentId"] = "NXF-V".into();
        assert_eq!(statuses(&ok(&app, "cancel", &cancel).await), ["canceled"]);
        assert_eq!(lkey(&app, &victim[0]).await["canceled"], true);
    }
}
