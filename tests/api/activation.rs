//! The activation API the publisher's software calls, on every backend: activate (idempotent
//! per machine, seats counted under the product's `max_activations`), validate, deactivate, the
//! refusals by license status, the rate limit, the DMP event written with the activation, and
//! what support sees and may remove.

use entity::prelude::{Activation, License, OutboxEvent};
use nexkey::config::{ProductOverride, Settings};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel, PaginatorTrait};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, TestApp, backends_with, codes, json, legacy_new, with_admin_key};

/// ACME-PRO allows two machines; other products are unlimited.
fn two_seats(settings: &mut Settings) {
    settings.products.insert(
        "ACME-PRO".into(),
        ProductOverride {
            name: Some("Acme Pro".into()),
            max_activations: Some(2),
            ..ProductOverride::default()
        },
    );
    with_admin_key(settings);
}

/// Reporting on, towards a port nobody listens on: events are recorded (no sender runs here).
fn reporting(settings: &mut Settings) {
    two_seats(settings);
    settings.dmp.url = Some("http://127.0.0.1:9/event".into());
    settings.dmp.user = Some("publisher".into());
    settings.dmp.password = Some("dmp-password".to_string().into());
    settings.dmp.salesunit_id = Some("123".into());
}

impl TestApp {
    async fn activation(&self, operation: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(&format!("/activation/{operation}")))
            .json(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, body)
    }

    /// A fresh license of `product`; its key.
    async fn license(&self, fulfillment: &str, product: &str) -> String {
        let (status, answer) =
            json(self.call("new", &legacy_new(fulfillment, product, 1)).await).await;
        assert_eq!(status, 200, "{}: {answer}", self.backend);
        codes(&answer).remove(0)
    }

    async fn counts(&self) -> (u64, u64) {
        (
            Activation::find().count(&self.db).await.unwrap(),
            OutboxEvent::find().count(&self.db).await.unwrap(),
        )
    }
}

fn activate(key: &str, fingerprint: &str) -> Value {
    json!({"licenseKey": key, "fingerprint": fingerprint, "name": "laptop"})
}

#[tokio::test]
async fn a_machine_is_activated_once_and_seats_are_counted() {
    for app in backends_with(two_seats).await {
        let backend = app.backend;
        let key = app.license("NXF-ACT-1", "ACME-PRO").await;

        let (status, first) = app
            .activation("activate", &activate(&key, "machine-A"))
            .await;
        assert_eq!(status, 201, "{backend}: {first}");
        assert_eq!(first["licenseKey"], key.as_str());
        assert_eq!(first["fingerprint"], "machine-A");
        assert_eq!(first["name"], "laptop");
        assert!(
            first["id"].is_i64() && first["activatedAt"].is_string(),
            "{first}"
        );
        let license = &first["license"];
        assert_eq!(license["status"], "active");
        assert_eq!(license["product"], "ACME-PRO");
        assert_eq!(license["trial"], false);
        assert_eq!(license["maxActivations"], 2);
        assert_eq!(license["activations"], 1);
        assert!(license["expires"].is_null(), "perpetual: {license}");

        // The same machine again, the key typed as people type it: the same activation.
        let typed = key.replace('-', " ").to_lowercase();
        let (status, again) = app
            .activation("activate", &activate(&typed, "machine-A"))
            .await;
        assert_eq!(status, 200, "{backend}: {again}");
        assert_eq!(again["id"], first["id"]);
        assert_eq!(again["activatedAt"], first["activatedAt"]);
        assert_eq!(again["license"]["activations"], 1);

        let (status, second) = app
            .activation("activate", &activate(&key, "machine-B"))
            .await;
        assert_eq!(status, 201, "{backend}: {second}");
        assert_eq!(second["license"]["activations"], 2);
        let (status, full) = app
            .activation("activate", &activate(&key, "machine-C"))
            .await;
        assert_eq!(status, 409, "{backend}: {full}");
        assert_eq!(full["error"]["code"], "TOO_MANY_ACTIVATIONS");
        assert_eq!(app.counts().await.0, 2, "{backend}: nothing stored for C");
        // Found by attack: answers carrying the key and the machine are never cached.
        let response = app
            .http
            .post(app.url("/activation/validate"))
            .json(&json!({"licenseKey": key, "fingerprint": "machine-A"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["cache-control"], "no-store", "{backend}");

        // Freeing a seat lets another machine in.
        let deactivate = json!({"licenseKey": key, "fingerprint": "machine-B"});
        let (status, body) = app.activation("deactivate", &deactivate).await;
        assert_eq!((status, &body), (204, &Value::Null), "{backend}");
        let (status, body) = app.activation("deactivate", &deactivate).await;
        assert_eq!(status, 404, "{backend}: {body}");
        assert_eq!(body["error"]["code"], "NOT_ACTIVATED");
        let (status, _) = app
            .activation("activate", &activate(&key, "machine-C"))
            .await;
        assert_eq!(status, 201, "{backend}");

        // Products without a limit take any number of machines.
        let open = app.license("NXF-ACT-2", "OTHER").await;
        for machine in 0..5 {
            let (status, body) = app
                .activation("activate", &activate(&open, &format!("m{machine}")))
                .await;
            assert_eq!(status, 201, "{backend}: {body}");
            assert!(body["license"]["maxActivations"].is_null());
            assert_eq!(body["license"]["trial"], false);
        }
        // Reporting is off here: no event recorded.
        assert_eq!(app.counts().await, (7, 0), "{backend}");
    }
}

#[tokio::test]
async fn unknown_keys_and_bad_input_are_refused_and_store_nothing() {
    for app in backends_with(two_seats).await {
        let backend = app.backend;
        let key = app.license("NXF-ACT-3", "ACME-PRO").await;
        for operation in ["activate", "validate", "deactivate"] {
            let (status, body) = app
                .activation(operation, &activate("NOPE-NOPE-NOPE", "machine-A"))
                .await;
            assert_eq!(status, 404, "{backend} {operation}: {body}");
            assert_eq!(body["error"]["code"], "UNKNOWN_LICENSE");
        }
        for bad in [
            json!({"licenseKey": key, "fingerprint": ""}),
            json!({"licenseKey": key, "fingerprint": "   "}),
            json!({"licenseKey": key, "fingerprint": "a\u{0}b"}),
            json!({"licenseKey": key, "fingerprint": "x".repeat(256)}),
            json!({"licenseKey": key, "fingerprint": "ok", "name": "n".repeat(256)}),
            json!({"licenseKey": key}),
            json!({"fingerprint": "ok"}),
            json!({"licenseKey": ["K"], "fingerprint": "ok"}),
            json!({"licenseKey": "K".repeat(300), "fingerprint": "ok"}),
        ] {
            let (status, body) = app.activation("activate", &bad).await;
            assert_eq!(status, 400, "{backend}: {bad} -> {body}");
            assert_eq!(body["error"]["code"], "INVALID_REQUEST", "{body}");
            assert!(body["error"]["message"].is_string(), "{body}");
        }
        let malformed = app
            .http
            .post(app.url("/activation/activate"))
            .header("content-type", "application/json")
            .body("{\"licenseKey\":")
            .send()
            .await
            .unwrap();
        let (status, body) = json(malformed).await;
        assert_eq!(status, 400, "{backend}: {body}");
        assert_eq!(body["error"]["code"], "INVALID_REQUEST");
        assert_eq!(app.counts().await, (0, 0), "{backend}");
    }
}

/// Puts the license of `key` in a state, as Nexway's calls or the calendar would.
async fn set_state(app: &TestApp, key: &str, status: &str, end_date: Option<chrono::NaiveDate>) {
    use sea_orm::{ColumnTrait, QueryFilter};
    let license = License::find()
        .filter(entity::license::Column::ActivationCode.eq(key))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let mut row = license.into_active_model();
    row.status = Set(status.parse().expect("a status word"));
    row.end_date = Set(end_date);
    row.update(&app.db).await.unwrap();
}

#[tokio::test]
async fn an_unusable_license_is_refused_with_a_code_saying_why() {
    for app in backends_with(reporting).await {
        let backend = app.backend;
        let key = app.license("NXF-ACT-4", "ACME-PRO").await;
        let (status, _) = app
            .activation("activate", &activate(&key, "machine-A"))
            .await;
        assert_eq!(status, 201, "{backend}");
        let validate = |fingerprint: Option<&str>| {
            let mut body = json!({"licenseKey": key});
            if let Some(fingerprint) = fingerprint {
                body["fingerprint"] = fingerprint.into();
            }
            body
        };
        let (status, body) = app.activation("validate", &validate(None)).await;
        assert_eq!(status, 200, "{backend}: {body}");
        assert_eq!(
            (body["valid"].clone(), body["code"].clone()),
            (json!(true), json!("VALID"))
        );
        assert!(body["activation"].is_null());
        let (_, body) = app
            .activation("validate", &validate(Some("machine-A")))
            .await;
        assert_eq!(
            (body["valid"].clone(), body["code"].clone()),
            (json!(true), json!("VALID"))
        );
        assert_eq!(body["activation"]["fingerprint"], "machine-A");
        let (_, body) = app
            .activation("validate", &validate(Some("machine-Z")))
            .await;
        assert_eq!(
            (body["valid"].clone(), body["code"].clone()),
            (json!(false), json!("NOT_ACTIVATED")),
            "{backend}"
        );

        let past = chrono::NaiveDate::from_ymd_opt(2020, 1, 1);
        for (status, end, code) in [
            ("suspended", None, "SUSPENDED"),
            ("canceled", None, "CANCELED"),
            ("superseded", None, "SUPERSEDED"),
            ("active", past, "EXPIRED"),
        ] {
            set_state(&app, &key, status, end).await;
            // A new machine and the machine already activated alike.
            for machine in ["machine-B", "machine-A"] {
                let (answer, body) = app.activation("activate", &activate(&key, machine)).await;
                assert_eq!(answer, 403, "{backend} {code} {machine}: {body}");
                assert_eq!(body["error"]["code"], code, "{backend}");
                let (answer, body) = app.activation("validate", &validate(Some(machine))).await;
                assert_eq!(answer, 200, "{backend}");
                assert_eq!(body["valid"], false, "{backend} {code}");
                assert_eq!(body["code"], code, "{backend}");
            }
            let (_, body) = app.activation("validate", &validate(None)).await;
            assert_eq!(body["code"], code, "{backend}");
        }
        // One machine, one event: the refusals recorded nothing.
        assert_eq!(app.counts().await, (1, 1), "{backend}");
        // A seat is freed whatever the status.
        let deactivate = json!({"licenseKey": key, "fingerprint": "machine-A"});
        assert_eq!(
            app.activation("deactivate", &deactivate).await.0,
            204,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn the_first_activation_records_its_dmp_event_in_the_same_transaction() {
    for app in backends_with(reporting).await {
        let backend = app.backend;
        let key = app.license("NXF-ACT-5", "ACME-PRO").await;
        for _ in 0..3 {
            app.activation("activate", &activate(&key, "machine-A"))
                .await;
        }
        let (status, _) = app
            .activation("activate", &activate(&key, "machine-B"))
            .await;
        assert_eq!(status, 201);
        let events = OutboxEvent::find().all(&app.db).await.unwrap();
        assert_eq!(
            events.len(),
            2,
            "{backend}: one per new machine, none per repeat"
        );
        let event = &events[0];
        assert_eq!(event.state, "pending");
        assert_eq!(event.action, "register licences");
        assert_eq!(event.attempts, 0);
        let payload: Value = serde_json::from_str(&event.payload).unwrap();
        let at = payload["actionTime"].as_i64().expect("epoch seconds");
        assert!(
            (at - chrono::Utc::now().timestamp()).abs() < 60,
            "{payload}"
        );
        assert_eq!(
            payload,
            json!({
                "_meta": {"dataAcquisitionTime": at, "nexwaySalesunitID": "123"},
                "action": "register licences",
                "actionTime": at,
                "registrations": [{
                    "licenceNumber": key,
                    "product": {"name": "Acme Pro", "nexwayID": "NX-1", "uniqueReference": "ACME-PRO"}
                }],
                "user": {"email": "buyer@example.com", "firstName": "Ada", "lastName": "Lovelace"}
            }),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn concurrent_activations_never_exceed_the_seats() {
    for app in backends_with(reporting).await {
        let backend = app.backend;
        let key = app.license("NXF-ACT-6", "ACME-PRO").await;
        let twin = app.twin_with(reporting).await;
        let calls = (0..12).map(|i| {
            let target = if i % 2 == 0 { &app } else { &twin };
            // Six machines, each twice.
            target.activation("activate", activate_owned(&key, i / 2))
        });
        let answers = futures::future::join_all(calls).await;
        let created = answers.iter().filter(|(status, _)| *status == 201).count();
        let repeated = answers.iter().filter(|(status, _)| *status == 200).count();
        let refused = answers.iter().filter(|(status, _)| *status == 409).count();
        assert_eq!(created, 2, "{backend}: {answers:?}");
        assert_eq!(created + repeated + refused, 12, "{backend}: {answers:?}");
        assert_eq!(app.counts().await, (2, 2), "{backend}");
    }
}

fn activate_owned(key: &str, machine: usize) -> &'static Value {
    Box::leak(Box::new(activate(key, &format!("machine-{machine}"))))
}

#[tokio::test]
async fn calls_are_rate_limited_per_client_address() {
    let limited = |settings: &mut Settings| settings.activation.rate_limit_per_minute = 3;
    for app in backends_with(limited).await {
        let backend = app.backend;
        let body = json!({"licenseKey": "NOPE", "fingerprint": "m"});
        for _ in 0..3 {
            assert_eq!(app.activation("validate", &body).await.0, 404, "{backend}");
        }
        let response = app
            .http
            .post(app.url("/activation/activate"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        let (status, body) = json(response).await;
        assert_eq!(status, 429, "{backend}: {body}");
        assert_eq!(body["error"]["code"], "TOO_MANY_REQUESTS");
    }
}

#[tokio::test]
async fn support_sees_the_activations_and_may_remove_one() {
    for app in backends_with(two_seats).await {
        let backend = app.backend;
        let key = app.license("NXF-ACT-7", "ACME-PRO").await;
        for machine in ["machine-A", "machine-B"] {
            app.activation("activate", &activate(&key, machine)).await;
        }
        let (status, detail) = json(app.admin_get(&format!("/admin/licenses/{key}")).await).await;
        assert_eq!(status, 200, "{backend}: {detail}");
        let machines = detail["activations"].as_array().unwrap();
        assert_eq!(machines.len(), 2);
        assert_eq!(machines[0]["fingerprint"], "machine-A");
        assert_eq!(machines[0]["name"], "laptop");
        let id = machines[0]["id"].as_i64().unwrap();

        let page = app
            .http
            .get(app.url(&format!("/nexus/lkey/{key}")))
            .header("accept", "text/html")
            .basic_auth(ADMIN_KEY, None::<&str>)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("Activations (2)") && page.contains("machine-B"),
            "{page}"
        );

        let lookup = crate::cli::nexkey(
            &["lookup", &key],
            &[("NEXKEY_DATABASE_URL", &app.database_url)],
        );
        let printed = String::from_utf8(lookup.stdout).unwrap();
        let machines_printed = printed.split_once("activations (2)\n").expect(&printed).1;
        assert!(
            machines_printed.contains(&format!("#{id}  "))
                && machines_printed.contains("machine-A  laptop")
                && machines_printed.contains("machine-B  laptop"),
            "{backend}: {printed}"
        );

        let remove = |id: i64| {
            app.http
                .delete(app.url(&format!("/admin/licenses/{key}/activations/{id}")))
                .basic_auth(ADMIN_KEY, None::<&str>)
                .send()
        };
        let (status, detail) = json(remove(id).await.unwrap()).await;
        assert_eq!(status, 200, "{backend}: {detail}");
        assert_eq!(detail["activations"].as_array().unwrap().len(), 1);
        assert_eq!(detail["activations"][0]["fingerprint"], "machine-B");
        let (status, body) = json(remove(id).await.unwrap()).await;
        assert_eq!(status, 404, "{backend}: {body}");
        assert_eq!(body["errorMessage"], "NOT_FOUND");
        // The freed seat takes a new machine.
        let (status, _) = app
            .activation("activate", &activate(&key, "machine-C"))
            .await;
        assert_eq!(status, 201, "{backend}");
        let unauthorized = app
            .http
            .delete(app.url(&format!("/admin/licenses/{key}/activations/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(unauthorized.status(), 401);
    }
}

#[tokio::test]
async fn a_signed_product_validates_with_a_token_checked_offline() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    use nexkey::keygen::{GeneratorSettings, KeyPair, SignedSettings};

    let pair = KeyPair::generate();
    let public_key = pair.public_key.clone();
    let generator = GeneratorSettings::Signed(SignedSettings {
        private_key: pair.private_key,
        encoding: Default::default(),
        prefix: String::new(),
        file_name: None,
    });
    let configure = move |settings: &mut Settings| {
        settings.products.insert(
            "SG-PRO".into(),
            ProductOverride {
                generator: Some(generator.clone()),
                ..ProductOverride::default()
            },
        );
    };
    let verifying = VerifyingKey::from_bytes(
        &URL_SAFE_NO_PAD
            .decode(&public_key)
            .unwrap()
            .try_into()
            .unwrap(),
    )
    .unwrap();
    // What the software does offline: check the signature, then read the claims.
    let check = |token: &str| -> Value {
        let (claims, signature) = token.split_once('.').expect("two parts");
        let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
        verifying
            .verify(format!("nexkey-validation.{claims}").as_bytes(), &signature)
            .expect("a genuine token");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap()
    };
    for app in backends_with(configure).await {
        let backend = app.backend;
        let key = app.license("NXF-ACT-8", "SG-PRO").await;
        app.activation("activate", &activate(&key, "machine-A"))
            .await;
        let (status, body) = app
            .activation(
                "validate",
                &json!({"licenseKey": key, "fingerprint": "machine-A"}),
            )
            .await;
        assert_eq!(status, 200, "{backend}: {body}");
        let token = body["token"].as_str().expect("a token");
        let claims = check(token);
        let issued = claims["issuedAt"].as_i64().unwrap();
        assert_eq!(
            claims,
            json!({"licenseKey": key, "fingerprint": "machine-A", "product": "SG-PRO",
                   "valid": true, "code": "VALID", "expires": null, "issuedAt": issued}),
            "{backend}"
        );
        let (_, other) = app
            .activation(
                "validate",
                &json!({"licenseKey": key, "fingerprint": "machine-B"}),
            )
            .await;
        let claims = check(other["token"].as_str().unwrap());
        assert_eq!(
            (claims["valid"].clone(), claims["code"].clone()),
            (json!(false), json!("NOT_ACTIVATED"))
        );

        // Found by attack: without a fingerprint a VALID token stood for no seat at all. A
        // token is a machine's: none without one.
        let (status, keyless) = app
            .activation("validate", &json!({"licenseKey": key}))
            .await;
        assert_eq!(status, 200, "{backend}: {keyless}");
        assert!(keyless["token"].is_null(), "{backend}: {keyless}");

        // A tampered token does not verify.
        let (first, signature) = token.split_once('.').unwrap();
        let forged_claims = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(first).unwrap())
                .unwrap()
                .replace("machine-A", "machine-B"),
        );
        let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
        assert!(
            verifying
                .verify(
                    format!("nexkey-validation.{forged_claims}").as_bytes(),
                    &signature
                )
                .is_err()
        );

        // A product whose generator holds no key: no token.
        let plain = app.license("NXF-ACT-9", "ACME-PRO").await;
        let (_, body) = app
            .activation("validate", &json!({"licenseKey": plain}))
            .await;
        assert!(body["token"].is_null(), "{backend}: {body}");
    }
}
