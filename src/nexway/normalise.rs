//! Both body generations become one [`Command`]; every check of the payload's content lives here.

use chrono::{DateTime, Datelike, NaiveDate};

use super::payload::{FulfillmentBody, LicenseRequest, NexwayRequest};
use crate::error::Error;
use crate::fulfillment::{Buyer, Command, Email, Operation, ProductRef, Trial};

/// Longest identifier or name accepted; Nexway's ids are UUIDs or short references.
const MAX_ID: usize = 200;
/// Longest free text accepted (external contexts are base64 JSON).
const MAX_TEXT: usize = 4096;

pub fn command(operation: Operation, request: NexwayRequest) -> Result<Command, Error> {
    let command = match request {
        NexwayRequest::Legacy(body) => legacy(operation, body)?,
        NexwayRequest::Current(body) => current(operation, body)?,
    };
    if let (Some(start), Some(end)) = (command.start_date, command.end_date)
        && end < start
    {
        return Err(invalid(format!(
            "the end date {end} is before the start date {start}"
        )));
    }
    Ok(command)
}

fn legacy(operation: Operation, body: LicenseRequest) -> Result<Command, Error> {
    let product = body.product;
    let metadata = body.metadata;
    let user = body.user;
    Ok(Command {
        operation,
        nexway_fulfillment_id: required_id(
            "product.nexwayFulfillmentId",
            product.nexway_fulfillment_id,
        )?,
        order_id: id(
            "metadata.order",
            metadata.as_ref().and_then(|m| m.order.clone()),
        )?,
        initial_nexway_fulfillment_id: id(
            "product.initialNexwayFulfillmentId",
            product.initial_nexway_fulfillment_id,
        )?,
        publisher_fulfillment_id: id(
            "product.publisherFulfillmentId",
            product.publisher_fulfillment_id,
        )?,
        subscription_id: None,
        product: ProductRef {
            publisher_product_id: required_id(
                "product.publisherProductId",
                product.publisher_product_id,
            )?,
            nexway_product_id: Some(required_id(
                "product.nexwayProductId",
                product.nexway_product_id,
            )?),
            name: None,
        },
        quantity: quantity(
            "product.quantity",
            product.quantity.filter(|_| counts(operation)),
        )?,
        start_date: date(
            "product.startDate",
            product.start_date.filter(|_| counts(operation)),
        )?,
        end_date: date(
            "product.endDate",
            product.end_date.filter(|_| counts(operation)),
        )?,
        activation_codes: product
            .licenses
            .unwrap_or_default()
            .into_iter()
            .filter_map(|license| license.activation_code)
            .map(|code| required_id("product.licenses[].activationCode", code))
            .collect::<Result<_, _>>()?,
        buyer: Buyer {
            email: email("user.email", user.as_ref().and_then(|u| u.email.clone()))?,
            first_name: buyer_text(
                "user.firstName",
                user.as_ref().and_then(|u| u.first_name.clone()),
                MAX_ID,
            )?,
            last_name: buyer_text(
                "user.lastName",
                user.as_ref().and_then(|u| u.last_name.clone()),
                MAX_ID,
            )?,
            company_name: buyer_text(
                "user.companyName",
                user.and_then(|u| u.company_name),
                MAX_ID,
            )?,
            nexway_user_id: None,
        },
        external_context: text(
            "metadata.externalContext",
            metadata.and_then(|m| m.external_context),
            MAX_TEXT,
        )?,
        trial: None,
        more_publisher_fulfillment_ids: Vec::new(),
    })
}

fn current(operation: Operation, body: FulfillmentBody) -> Result<Command, Error> {
    let product = body.product;
    let checkout = body.checkout;
    let user = body.user;
    let additional = body.additional_data;
    let nexway_product_id = id("product.id", product.id)?;
    let mut publisher_ids = ids(
        "additionalData.PublisherLicenseID",
        additional
            .as_ref()
            .and_then(|a| a.publisher_license_id.clone()),
    )?
    .into_iter();
    let trial = match checkout.as_ref().and_then(|c| c.trial_context.as_deref()) {
        None => None,
        Some(context) if context.eq_ignore_ascii_case("CREATION") => Some(Trial::Creation),
        Some(context) if context.eq_ignore_ascii_case("CONVERSION") => Some(Trial::Conversion),
        Some(context) if context.trim().is_empty() => None,
        Some(context) => {
            return Err(invalid(format!(
                "checkout.trialContext {:?} is neither CREATION nor CONVERSION",
                context.chars().take(MAX_ID).collect::<String>()
            )));
        }
    };
    let publisher_product_id = match id("product.publisherProductId", product.publisher_product_id)?
    {
        Some(publisher_product_id) => publisher_product_id,
        None => nexway_product_id
            .clone()
            .ok_or_else(|| invalid("product.publisherProductId or product.id is required"))?,
    };
    Ok(Command {
        operation,
        nexway_fulfillment_id: required_id("fulfillmentId", body.fulfillment_id)?,
        order_id: id(
            "checkout.orderId",
            checkout.as_ref().and_then(|c| c.order_id.clone()),
        )?,
        initial_nexway_fulfillment_id: None,
        publisher_fulfillment_id: publisher_ids.next(),
        subscription_id: id(
            "checkout.subscriptionId",
            checkout.as_ref().and_then(|c| c.subscription_id.clone()),
        )?,
        product: ProductRef {
            publisher_product_id,
            nexway_product_id,
            name: text("product.name", product.name, MAX_ID)?,
        },
        quantity: quantity(
            "product.quantity",
            product.quantity.filter(|_| counts(operation)),
        )?,
        start_date: timestamp(
            "product.startTimestamp",
            product.start_timestamp.filter(|_| counts(operation)),
        )?,
        end_date: timestamp(
            "product.expirationTimestamp",
            product.expiration_timestamp.filter(|_| counts(operation)),
        )?,
        activation_codes: ids(
            "additionalData.ActivationCode",
            additional.and_then(|a| a.activation_code),
        )?,
        buyer: Buyer {
            email: email("user.email", user.as_ref().and_then(|u| u.email.clone()))?,
            first_name: buyer_text(
                "user.firstName",
                user.as_ref().and_then(|u| u.first_name.clone()),
                MAX_ID,
            )?,
            last_name: buyer_text(
                "user.lastName",
                user.as_ref().and_then(|u| u.last_name.clone()),
                MAX_ID,
            )?,
            company_name: buyer_text(
                "user.companyName",
                user.as_ref().and_then(|u| u.company_name.clone()),
                MAX_ID,
            )?,
            nexway_user_id: id("user.id", user.and_then(|u| u.id).and_then(loose_text))?,
        },
        external_context: match checkout.and_then(|c| c.cart_external_context) {
            Some(context) => text("checkout.cartExternalContext", Some(context), MAX_TEXT)?,
            None => text(
                "product.externalContext",
                product.external_context,
                MAX_TEXT,
            )?,
        },
        trial,
        more_publisher_fulfillment_ids: publisher_ids.collect(),
    })
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidRequest(message.into())
}

/// Free text: trimmed, bounded, no control characters; empty means absent.
fn text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, Error> {
    let Some(value) = value else { return Ok(None) };
    let value = value.trim();
    if value.chars().count() > max {
        return Err(invalid(format!("{field} is longer than {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(format!("{field} contains control characters")));
    }
    Ok(Some(value.to_owned()).filter(|v| !v.is_empty()))
}

/// A buyer's name or company: a sale never fails on it, so control characters are removed, not
/// refused (the support page isolates what remains, bidirectional marks included).
fn buyer_text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, Error> {
    let cleaned = value.map(|value| value.chars().filter(|c| !c.is_control()).collect());
    text(field, cleaned, max)
}

fn id(field: &str, value: Option<String>) -> Result<Option<String>, Error> {
    text(field, value, MAX_ID)
}

/// The distinct non-empty entries of a list member, in order; at most 100 of them.
fn ids(field: &str, values: Option<Vec<String>>) -> Result<Vec<String>, Error> {
    let values = values.unwrap_or_default();
    if values.len() > 100 {
        return Err(invalid(format!("{field} lists more than 100 values")));
    }
    let mut found: Vec<String> = Vec::new();
    for value in values {
        if let Some(value) = id(field, Some(value))?
            && !found.contains(&value)
        {
            found.push(value);
        }
    }
    Ok(found)
}

/// A member Nexway may send as a string or a number: its text; anything else says nothing.
fn loose_text(value: serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn required_id(field: &str, value: String) -> Result<String, Error> {
    id(field, Some(value))?.ok_or_else(|| invalid(format!("{field} must not be empty")))
}

fn email(field: &str, value: Option<String>) -> Result<Option<Email>, Error> {
    match id(field, value)? {
        Some(value) => Email::parse(&value)
            .map(Some)
            .map_err(|reason| invalid(format!("{field}: {reason}"))),
        None => Ok(None),
    }
}

/// Whether the operation reads the call's dates and quantity: suspend and cancel set neither, so
/// whatever Nexway sends there is not read (and cannot refuse the call, which would lose it).
fn counts(operation: Operation) -> bool {
    !matches!(operation, Operation::Suspend | Operation::Cancel)
}

fn quantity(field: &str, value: Option<i32>) -> Result<u32, Error> {
    match value {
        None => Ok(1),
        Some(n) if n >= 1 => Ok(n as u32),
        Some(n) => Err(invalid(format!("{field} must be 1 or more, not {n}"))),
    }
}

/// The years a date may fall in: four digits, from the epoch on.
const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

/// An ISO 8601 calendar date with a four-digit year (`YYYY-MM-DD`); a full RFC 3339 timestamp
/// is accepted and its date kept. `27-11-23` is not the year 27: it is refused.
fn date(field: &str, value: Option<String>) -> Result<Option<NaiveDate>, Error> {
    let Some(value) = id(field, value)? else {
        return Ok(None);
    };
    let bad = || {
        invalid(format!(
            "{field} {value:?} is not an ISO 8601 date (YYYY-MM-DD, years 1970 to 9999)"
        ))
    };
    let bytes = value.as_bytes();
    if bytes.len() < 10 || !bytes[..4].iter().all(u8::is_ascii_digit) || bytes[4] != b'-' {
        return Err(bad());
    }
    let date = match bytes.len() {
        10 => NaiveDate::parse_from_str(&value, "%Y-%m-%d").ok(),
        _ => DateTime::parse_from_rfc3339(&value)
            .ok()
            .map(|t| t.date_naive()),
    };
    date.filter(|date| YEARS.contains(&date.year()))
        .map(Some)
        .ok_or_else(bad)
}

/// Epoch milliseconds, as custom templates send them; years 1970 to 9999.
fn timestamp(field: &str, value: Option<i64>) -> Result<Option<NaiveDate>, Error> {
    let Some(millis) = value else { return Ok(None) };
    DateTime::from_timestamp_millis(millis)
        .map(|t| t.date_naive())
        .filter(|date| YEARS.contains(&date.year()))
        .map(Some)
        .ok_or_else(|| {
            invalid(format!(
                "{field} {millis} is out of range (epoch milliseconds, years 1970 to 9999)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nexway::NexwayBody;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<Command, Error> {
        command(
            Operation::New,
            NexwayBody::parse(value.to_string().as_bytes()).expect("parses"),
        )
    }

    #[test]
    fn both_generations_give_the_same_command_shape() {
        let legacy = parse(json!({
            "metadata": {"order": "ORD-1", "externalContext": "ctx"},
            "product": {"nexwayFulfillmentId": "F-1", "nexwayProductId": "NX-9", "publisherProductId": "ACME",
                        "quantity": 2, "startDate": "2026-11-22", "endDate": "2027-11-22"},
            "user": {"email": "Buyer@Example.com", "firstName": "Ada"}
        }))
        .unwrap();
        assert_eq!(legacy.nexway_fulfillment_id, "F-1");
        assert_eq!(legacy.order_id.as_deref(), Some("ORD-1"));
        assert_eq!(legacy.quantity, 2);
        assert_eq!(legacy.end_date, NaiveDate::from_ymd_opt(2027, 11, 22));
        assert_eq!(
            legacy.buyer.email.as_ref().unwrap().as_str(),
            "buyer@example.com"
        );

        let current = parse(json!({
            "fulfillmentId": "F-2",
            "checkout": {"orderId": "ORD-2", "subscriptionId": "SUB-1"},
            "user": {"id": "U-1", "email": "buyer@example.com"},
            "product": {"id": "uuid-1", "publisherProductId": "ACME", "quantity": 3,
                        "startTimestamp": 1795305600000i64, "expirationTimestamp": 1826841600000i64},
            "additionalData": {"ActivationCode": "K-1", "PublisherLicenseID": "P-1"}
        }))
        .unwrap();
        assert_eq!(current.nexway_fulfillment_id, "F-2");
        assert_eq!(current.subscription_id.as_deref(), Some("SUB-1"));
        assert_eq!(current.product.nexway_product_id.as_deref(), Some("uuid-1"));
        assert_eq!(current.start_date, NaiveDate::from_ymd_opt(2026, 11, 22));
        assert_eq!(current.activation_codes, vec!["K-1".to_string()]);
        assert_eq!(current.trial, None);
        assert_eq!(current.publisher_fulfillment_id.as_deref(), Some("P-1"));
    }

    #[test]
    fn content_errors_name_the_field() {
        let base = |product: serde_json::Value| json!({"fulfillmentId": "F", "product": product});
        for (product, field) in [
            (
                json!({"publisherProductId": "P", "quantity": 0}),
                "product.quantity",
            ),
            (
                json!({"publisherProductId": "P", "quantity": -3}),
                "product.quantity",
            ),
            (json!({}), "product.publisherProductId"),
            (
                json!({"publisherProductId": "P\u{7}"}),
                "product.publisherProductId",
            ),
            (
                json!({"publisherProductId": "x".repeat(201)}),
                "product.publisherProductId",
            ),
            (
                json!({"publisherProductId": "P", "startTimestamp": 172800000, "expirationTimestamp": 86400000}),
                "before",
            ),
        ] {
            let err = parse(base(product.clone())).unwrap_err();
            assert!(
                matches!(err, Error::InvalidRequest(ref m) if m.contains(field)),
                "{product}: {err}"
            );
        }
        let err = parse(
            json!({"product": {"nexwayFulfillmentId": "F", "nexwayProductId": "N",
            "publisherProductId": "P", "endDate": "22/11/2027"}}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("product.endDate"), "{err}");
    }
}
