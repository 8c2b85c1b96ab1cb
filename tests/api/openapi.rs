//! The committed spec in openapi/ is what the code generates.

use crate::helpers::backends;

#[test]
fn committed_spec_matches_the_code() {
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("openapi/openapi.json"),
    )
    .expect("committed spec is JSON");
    let generated: serde_json::Value = serde_json::from_str(&nexkey::app::openapi_json()).unwrap();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `cargo run -- openapi -o openapi/openapi.json`"
    );
}

#[tokio::test]
async fn the_server_serves_its_spec_and_the_swagger_ui() {
    let app = backends().await.remove(0);
    let spec: serde_json::Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new = &spec["paths"]["/licenses/new"]["post"];
    assert_eq!(new["operationId"], "licensesNew");
    for status in ["200", "400", "401", "409", "413", "415", "503"] {
        assert!(
            new["responses"][status].is_object(),
            "status {status} undocumented"
        );
    }
    let codes = spec["components"]["schemas"]["ErrorCode"]["enum"].to_string();
    for code in [
        "INVALID_REQUEST",
        "UNAUTHORIZED",
        "IDEMPOTENCY_CONFLICT",
        "STORAGE_UNAVAILABLE",
    ] {
        assert!(codes.contains(code), "{code} undocumented");
    }
    assert!(spec["components"]["securitySchemes"]["NexwayAuth"].is_object());
    // The documented answer has the member names of the bytes sent (PROTOCOL.md section 4).
    let answer = &spec["components"]["schemas"]["FulfillmentAnswer"]["properties"];
    for member in [
        "publisherFulfillmentId",
        "nexwayFulfillmentId",
        "operation",
        "licenses",
    ] {
        assert!(
            answer[member].is_object(),
            "FulfillmentAnswer.{member} undocumented"
        );
    }
    let license = &spec["components"]["schemas"]["LicenseAnswer"]["properties"];
    for member in ["activationCode", "status", "trial", "startDate", "endDate"] {
        assert!(
            license[member].is_object(),
            "LicenseAnswer.{member} undocumented"
        );
    }
    let docs = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
}

/// What the document promises about answers and access holds for the real answers.
#[tokio::test]
async fn the_document_says_what_the_answers_are() {
    let spec: serde_json::Value = serde_json::from_str(&nexkey::app::openapi_json()).unwrap();
    let schemas = &spec["components"]["schemas"];
    // Members answered as null are declared nullable.
    for (schema, member) in [
        ("PurchaseDto", "expires"),
        ("PurchaseDto", "renewalTerm"),
        ("PurchaseDto", "parent"),
        ("RenewalTermDto", "price"),
        ("RenewalTermDto", "taxClass"),
        ("CustomerDto", "primaryGroup"),
        ("CustomerDto", "profileUrl"),
        ("CustomerDto", "lastActivity"),
        ("EventDto", "fromStatus"),
        ("ProductDto", "stock"),
    ] {
        assert_eq!(
            schemas[schema]["properties"][member]["nullable"], true,
            "{schema}.{member}"
        );
    }
    // The recursion is a plain reference generators take, not poem's allOf wrapper.
    assert_eq!(
        schemas["PurchaseDto"]["properties"]["parent"]["oneOf"],
        serde_json::json!([{"$ref": "#/components/schemas/PurchaseDto"}])
    );
    assert!(!spec.to_string().contains("allOf"), "no allOf wrapper left");
    // Admin operations require a key; `new` requires the buyer's e-mail in both generations.
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            if let Some(security) = operation["security"].as_array() {
                assert!(
                    security.iter().all(|s| s != &serde_json::json!({})),
                    "{method} {path} declares anonymous access"
                );
            }
        }
    }
    for body in ["NewLegacyRequest", "NewFulfillmentBody"] {
        assert!(
            schemas[body]["required"].to_string().contains("user"),
            "{body}"
        );
    }
    assert!(schemas["NewUser"]["required"].to_string().contains("email"));
    // Bounds the server enforces are in the schema.
    let product = &schemas["LegacyProduct"]["properties"];
    assert_eq!(product["nexwayFulfillmentId"]["minLength"], 1);
    assert_eq!(product["quantity"]["minimum"], 1);
    assert_eq!(product["quantity"]["maximum"], 100);
}

/// "Try it out" with the shown examples works: every webhook example, in the order of a
/// license's life, is answered 200; error examples carry the code of their status.
#[tokio::test]
async fn the_documented_examples_work() {
    let spec: serde_json::Value = serde_json::from_str(&nexkey::app::openapi_json()).unwrap();
    for app in backends().await {
        for operation in ["new", "renew", "upgrade", "suspend", "reactivate", "cancel"] {
            let path = format!("/licenses/{operation}");
            let content = &spec["paths"][&path]["post"]["requestBody"]["content"];
            let example = content.as_object().unwrap().values().next().unwrap()["example"].clone();
            assert!(example.is_object(), "{path} has an example");
            let (status, answer) = crate::helpers::json(app.call(operation, &example).await).await;
            assert_eq!(status, 200, "{}: {path}: {answer}", app.backend);
        }
        // The Swagger UI shows this very document.
        let docs = app.http.get(app.url("/docs")).send().await.unwrap();
        assert!(docs.text().await.unwrap().contains("NewLicenseRequest"));
    }
    let new = &spec["paths"]["/licenses/new"]["post"]["responses"];
    for (status, code) in [
        ("400", "INVALID_REQUEST"),
        ("401", "UNAUTHORIZED"),
        ("409", "IDEMPOTENCY_CONFLICT"),
        ("422", "UNKNOWN_PRODUCT"),
        ("503", "STORAGE_UNAVAILABLE"),
    ] {
        let example = &new[status]["content"]["application/json; charset=utf-8"]["example"];
        assert_eq!(example["error"]["code"], code, "{status}");
    }
    let lkey = &spec["paths"]["/nexus/lkey/{key}"]["get"]["responses"];
    let example = &lkey["404"]["content"]["application/json; charset=utf-8"]["example"];
    assert_eq!(example["errorMessage"], "INVALID_KEY");
}
