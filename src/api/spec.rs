//! The OpenAPI document as the server keeps it: poem-openapi's, with what its derive cannot say
//! written in, so that a machine can hold the server to it (schemathesis in `.ci/run`) and a
//! generated client can read every answer (openapi-python-client in `.ci/run`):
//! - a member that may be absent may also be `null` (`Option` answers `null`), declared nullable;
//! - a reference to another schema is a plain `$ref` (a nullable one is `oneOf` of that `$ref`),
//!   never poem's `allOf` wrapper, which generators refuse for the recursive `parent`;
//! - admin operations require a key: no anonymous alternative in their `security`;
//! - `POST /licenses/new` requires the buyer's e-mail, in both body generations;
//! - the webhook bodies carry the bounds `nexway::normalise` enforces (the bodies are parsed with
//!   serde, so these are documentation, kept next to each other here).

use serde_json::{Map, Value, json};

/// The document poem-openapi generated, made truthful.
pub fn truthful(generated: &str) -> String {
    let mut spec: Value = serde_json::from_str(generated).expect("poem-openapi writes JSON");
    for (_, operations) in spec["paths"].as_object_mut().into_iter().flatten() {
        for (_, operation) in operations.as_object_mut().into_iter().flatten() {
            if let Some(security) = operation.get_mut("security").and_then(Value::as_array_mut) {
                security.retain(|requirement| requirement != &json!({}));
            }
        }
    }
    if let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (_, schema) in schemas.iter_mut() {
            nullable_optionals(schema);
        }
        webhook_constraints(schemas);
        new_requires_the_email(schemas);
    }
    examples(&mut spec);
    if let Some(body) = spec.pointer_mut("/paths/~1licenses~1new/post/requestBody/content") {
        for (_, media) in body.as_object_mut().into_iter().flatten() {
            media["schema"] = json!({"$ref": "#/components/schemas/NewLicenseRequest"});
        }
    }
    serde_json::to_string_pretty(&spec).expect("a JSON value serialises")
}

/// Every member outside `required` is nullable; poem's `allOf: [$ref, {description}]` wrapper
/// becomes a plain `$ref` (required) or a nullable `oneOf` of it (optional).
fn nullable_optionals(schema: &mut Value) {
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|name| name.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        let is_required = required.contains(name);
        let reference = property
            .get("allOf")
            .and_then(|all| all.get(0))
            .and_then(|first| first.get("$ref"))
            .or_else(|| property.get("$ref"))
            .cloned();
        if let Some(reference) = reference {
            let description = property.get("description").cloned();
            let mut replacement = Map::new();
            if is_required {
                replacement.insert("$ref".into(), reference);
            } else {
                replacement.insert("oneOf".into(), json!([{"$ref": reference}]));
                replacement.insert("nullable".into(), Value::Bool(true));
                if let Some(description) = description {
                    replacement.insert("description".into(), description);
                }
            }
            *property = Value::Object(replacement);
        } else if !is_required {
            property["nullable"] = Value::Bool(true);
        }
    }
}

/// Examples that work: each error answer shows the code its status carries, each webhook call a
/// body that "Try it out" in `/docs` can send as is (the renewal refers to the `new` before it).
fn examples(spec: &mut Value) {
    for (path, operations) in spec["paths"].as_object_mut().into_iter().flatten() {
        let operation_name = path.strip_prefix("/licenses/").map(str::to_owned);
        for (_, operation) in operations.as_object_mut().into_iter().flatten() {
            for (status, response) in operation["responses"].as_object_mut().into_iter().flatten() {
                for (_, media) in response["content"].as_object_mut().into_iter().flatten() {
                    let schema = media["schema"]["$ref"].as_str().unwrap_or_default();
                    let example = match schema.rsplit('/').next() {
                        Some("ErrorBody") => webhook_error(status),
                        Some("AdminErrorBody") => admin_error(status),
                        _ => None,
                    };
                    if let Some(example) = example {
                        media["example"] = example;
                    }
                }
            }
            if let Some(name) = &operation_name
                && let Some(content) = operation
                    .pointer_mut("/requestBody/content")
                    .and_then(Value::as_object_mut)
            {
                for (_, media) in content.iter_mut() {
                    media["example"] = webhook_example(name);
                }
            }
        }
    }
}

fn webhook_error(status: &str) -> Option<Value> {
    use super::HttpError;
    use crate::error::Error;
    let error: HttpError = match status {
        "400" => Error::InvalidRequest("product.quantity must be 1 or more, not 0".into()).into(),
        "401" => HttpError::Unauthorized,
        "404" => {
            Error::UnknownFulfillment("no license matches this call's references".into()).into()
        }
        "409" => Error::IdempotencyConflict.into(),
        "413" => HttpError::PayloadTooLarge,
        "415" => HttpError::UnsupportedMediaType,
        "422" => Error::UnknownProduct("ACME-UNKNOWN".into()).into(),
        "500" => Error::Internal.into(),
        "503" => Error::StorageUnavailable.into(),
        _ => return None,
    };
    use poem_openapi::types::ToJSON;
    Some(json!({"error": {"code": error.code().to_json(), "message": error.to_string()}}))
}

fn admin_error(status: &str) -> Option<Value> {
    use super::admin::AdminFailure;
    let failure = match status {
        "400" => AdminFailure::InvalidRequest("failed to parse parameter `page`".into()),
        "401" => AdminFailure::NoApiKey,
        "403" => AdminFailure::CrossSite,
        "404" => AdminFailure::InvalidKey,
        "409" => AdminFailure::InvalidTransition,
        "415" => AdminFailure::UnsupportedMediaType,
        "429" => AdminFailure::TooManyBadKeys,
        "500" => AdminFailure::Internal,
        "503" => AdminFailure::StorageUnavailable,
        _ => return None,
    };
    let body = failure.body();
    Some(json!({"errorCode": body.error_code, "errorMessage": body.error_message}))
}

/// A legacy body for `operation`: `new` issues two codes for `NXF-EXAMPLE-1`, the others act on
/// them through `initialNexwayFulfillmentId`.
fn webhook_example(operation: &str) -> Value {
    let mut product = json!({
        "nexwayFulfillmentId": format!("NXF-EXAMPLE-{operation}"),
        "nexwayProductId": "NX-1",
        "publisherProductId": "ACME-PRO",
    });
    if operation == "new" {
        product["nexwayFulfillmentId"] = json!("NXF-EXAMPLE-1");
        product["quantity"] = json!(2);
    } else {
        product["initialNexwayFulfillmentId"] = json!("NXF-EXAMPLE-1");
    }
    json!({
        "metadata": {"order": format!("ORD-EXAMPLE-{operation}")},
        "product": product,
        "user": {"email": "buyer@example.com", "firstName": "Ada", "lastName": "Lovelace"}
    })
}

/// No control character (`char::is_control`): C0, DEL, C1.
const TEXT: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";
/// The same, and not blank (an identifier is trimmed; nothing left is "missing").
const NON_BLANK: &str = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$";
/// What `Email::parse` takes: one `@`, a dotted domain, no space or control character inside
/// (surrounding spaces are trimmed).
const EMAIL: &str = r"^\s*[^@\s\x00-\x1F\x7F-\x9F]+@[^@.\s\x00-\x1F\x7F-\x9F][^@\s\x00-\x1F\x7F-\x9F]*\.[^@\s\x00-\x1F\x7F-\x9F]*[^@.\s\x00-\x1F\x7F-\x9F]\s*$";
/// The same, or blank: an empty e-mail is an absent one (every operation but `new`).
const EMAIL_OR_BLANK: &str = r"^\s*$|^\s*[^@\s\x00-\x1F\x7F-\x9F]+@[^@.\s\x00-\x1F\x7F-\x9F][^@\s\x00-\x1F\x7F-\x9F]*\.[^@\s\x00-\x1F\x7F-\x9F]*[^@.\s\x00-\x1F\x7F-\x9F]\s*$";
/// `nexway::normalise`'s bounds: identifiers, free texts.
const MAX_ID: u64 = 200;
const MAX_TEXT: u64 = 4096;

fn webhook_constraints(schemas: &mut Map<String, Value>) {
    let id = json!({"pattern": TEXT, "maxLength": MAX_ID});
    let required_id = json!({"pattern": NON_BLANK, "minLength": 1, "maxLength": MAX_ID});
    let text = json!({"pattern": TEXT, "maxLength": MAX_TEXT});
    let name = json!({"maxLength": MAX_ID});
    let email = json!({"pattern": EMAIL_OR_BLANK, "maxLength": MAX_ID});
    let quantity = json!({"minimum": 1, "maximum": crate::fulfillment::DEFAULT_MAX_QUANTITY});
    let date = json!({"format": "date"});
    // additionalData values are lists (PROTOCOL.md 2): the bounds hold for each entry.
    let id_list =
        json!({"items": {"type": "string", "pattern": TEXT, "maxLength": MAX_ID}, "maxItems": 100});
    let table: &[(&str, &[(&str, &Value)])] = &[
        (
            "LegacyProduct",
            &[
                ("nexwayFulfillmentId", &required_id),
                ("nexwayProductId", &required_id),
                ("publisherProductId", &required_id),
                ("initialNexwayFulfillmentId", &id),
                ("publisherFulfillmentId", &id),
                ("quantity", &quantity),
                ("startDate", &date),
                ("endDate", &date),
            ],
        ),
        ("LegacyLicense", &[("activationCode", &required_id)]),
        (
            "LegacyMetadata",
            &[("order", &id), ("externalContext", &text)],
        ),
        (
            "LegacyUser",
            &[
                ("email", &email),
                ("firstName", &name),
                ("lastName", &name),
                ("companyName", &name),
            ],
        ),
        ("FulfillmentBody", &[("fulfillmentId", &required_id)]),
        (
            "Checkout",
            &[
                ("orderId", &id),
                ("subscriptionId", &id),
                ("cartExternalContext", &text),
            ],
        ),
        (
            "User",
            &[
                ("id", &id),
                ("email", &email),
                ("firstName", &name),
                ("lastName", &name),
                ("companyName", &name),
            ],
        ),
        (
            "Product",
            &[
                ("id", &id),
                ("name", &id),
                ("publisherProductId", &id),
                ("externalContext", &text),
                ("quantity", &quantity),
            ],
        ),
        (
            "AdditionalData",
            &[
                ("ActivationCode", &id_list),
                ("PublisherLicenseID", &id_list),
            ],
        ),
    ];
    for (schema, members) in table {
        for (member, constraints) in *members {
            let Some(property) = schemas
                .get_mut(*schema)
                .and_then(|schema| schema.pointer_mut(&format!("/properties/{member}")))
            else {
                panic!("{schema}.{member} is not in the document");
            };
            for (key, value) in constraints.as_object().into_iter().flatten() {
                property[key] = value.clone();
            }
        }
    }
    // The current body names its product by `publisherProductId`, else by Nexway's `id`.
    if let Some(product) = schemas.get_mut("Product") {
        let named_by = |member: &str| json!({"required": [member], "properties": {member: {"type": "string", "pattern": NON_BLANK}}});
        product["anyOf"] = json!([named_by("publisherProductId"), named_by("id")]);
    }
}

/// `new` issues codes to a buyer: its body, in either generation, carries `user.email`.
fn new_requires_the_email(schemas: &mut Map<String, Value>) {
    let variants = [
        ("LicenseRequest", "LegacyUser", "NewLegacyRequest"),
        ("FulfillmentBody", "User", "NewFulfillmentBody"),
    ];
    let mut one_of = Vec::new();
    for (body, user, new_body) in variants {
        let (Some(body_schema), Some(user_schema)) =
            (schemas.get(body).cloned(), schemas.get(user).cloned())
        else {
            continue;
        };
        let new_user = format!("New{user}");
        let new_body = new_body.to_owned();
        let mut user_schema = user_schema;
        require(&mut user_schema, "email");
        user_schema["title"] = Value::String(new_user.clone());
        if let Some(email) = user_schema.pointer_mut("/properties/email") {
            email.as_object_mut().map(|email| email.remove("nullable"));
            email["pattern"] = Value::String(EMAIL.into());
        }
        let mut body_schema = body_schema;
        require(&mut body_schema, "user");
        body_schema["title"] = Value::String(new_body.clone());
        body_schema["properties"]["user"] =
            json!({"$ref": format!("#/components/schemas/{new_user}")});
        schemas.insert(new_user, user_schema);
        schemas.insert(new_body.clone(), body_schema);
        one_of.push(json!({"$ref": format!("#/components/schemas/{new_body}")}));
    }
    if let Some(request) = schemas.get("NexwayRequest").cloned() {
        let mut request = request;
        request["oneOf"] = Value::Array(one_of);
        request["description"] = Value::String(
            "A `new` call, in either generation: as the other operations' bodies, with \
             `user.email` required."
                .into(),
        );
        schemas.insert("NewLicenseRequest".into(), request);
    }
}

fn require(schema: &mut Value, name: &str) {
    let required = schema
        .as_object_mut()
        .expect("an object schema")
        .entry("required")
        .or_insert_with(|| json!([]));
    if let Some(list) = required.as_array_mut()
        && !list.iter().any(|n| n == name)
    {
        list.push(Value::String(name.into()));
    }
}
