//! The two body generations Nexway sends, as documented in PROTOCOL.md section 2.
//!
//! These types are the wire format: parsed with serde (unknown members are ignored, a member
//! given twice is refused) and shown in the OpenAPI document through poem-openapi. [`super::normalise`] turns either into one `Command`.

use poem_openapi::{Object, Union};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A member Nexway's templates carry that nexkey does not use: any JSON value, never a reason
/// to refuse a call (templates change).
pub type Unused = serde_json::Value;

/// Either generation; the body's shape decides which (`fulfillmentId` marks the current one).
#[derive(Debug, Clone, Union)]
#[oai(one_of)]
// Parsed once per call and moved straight into normalisation: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum NexwayRequest {
    Legacy(LicenseRequest),
    Current(FulfillmentBody),
}

/// A. The legacy `LicenseRequest`.
#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct LicenseRequest {
    pub metadata: Option<LegacyMetadata>,
    pub product: LegacyProduct,
    pub user: Option<LegacyUser>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct LegacyMetadata {
    /// The external context given in the cart URL.
    pub external_context: Option<String>,
    /// The order number.
    pub order: Option<String>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct LegacyProduct {
    /// Identifies this fulfillment in Nexway's system.
    pub nexway_fulfillment_id: String,
    /// The first fulfillment of this license's life (renew, cancel, …).
    pub initial_nexway_fulfillment_id: Option<String>,
    pub nexway_product_id: String,
    pub publisher_product_id: String,
    /// The `publisherFulfillmentId` nexkey answered earlier.
    pub publisher_fulfillment_id: Option<String>,
    /// Number of licenses asked for; 1 when absent.
    pub quantity: Option<i32>,
    /// ISO 8601 calendar date.
    pub start_date: Option<String>,
    /// ISO 8601 calendar date.
    pub end_date: Option<String>,
    /// The codes concerned by the call.
    pub licenses: Option<Vec<LegacyLicense>>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct LegacyLicense {
    pub activation_code: Option<String>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct LegacyUser {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
}

/// B. Nexway's current default template body.
#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentBody {
    /// Names the whole license life: create, renew and cancel share it.
    pub fulfillment_id: String,
    pub checkout: Option<Checkout>,
    pub user: Option<User>,
    pub product: Product,
    /// Added by custom templates: what nexkey answered earlier.
    pub additional_data: Option<AdditionalData>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct Checkout {
    /// Each renewal is a new order.
    pub order_id: Option<String>,
    /// Not used by nexkey: any JSON.
    pub line_item_id: Option<Unused>,
    pub subscription_id: Option<String>,
    /// Base64 JSON given in the cart URL.
    pub cart_external_context: Option<String>,
    /// `CREATION` (the order starts a free trial) or `CONVERSION` (a trial became a paid order),
    /// in any case; empty means neither. Anything else is a 400.
    #[oai(validator(
        pattern = "^([Cc][Rr][Ee][Aa][Tt][Ii][Oo][Nn]|[Cc][Oo][Nn][Vv][Ee][Rr][Ss][Ii][Oo][Nn]|[ \\t\\n\\r]*)$"
    ))]
    pub trial_context: Option<String>,
    /// Not used by nexkey: any JSON.
    pub price: Option<Unused>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Nexway's id of the buyer: a string or a number.
    pub id: Option<Value>,
    pub email: Option<String>,
    /// Not used by nexkey: any JSON.
    pub country: Option<Unused>,
    /// Not used by nexkey: any JSON.
    pub locale: Option<Unused>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    /// Not used by nexkey: any JSON.
    pub company_identifier: Option<Unused>,
    /// Not used by nexkey: any JSON.
    pub city: Option<Unused>,
    /// Not used by nexkey: any JSON.
    pub zip_code: Option<Unused>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct Product {
    /// Nexway's product id (a UUID).
    pub id: Option<String>,
    pub name: Option<String>,
    /// The publisher's product id; the product policy is chosen by it (by `id` when absent).
    pub publisher_product_id: Option<String>,
    pub external_context: Option<String>,
    /// Not used by nexkey: any JSON.
    pub price_function_parameters: Option<Unused>,
    /// Not used by nexkey: any JSON.
    pub variables: Option<Unused>,
    /// Not used by nexkey: any JSON.
    pub price: Option<Unused>,
    /// Custom templates only; 1 when absent.
    pub quantity: Option<i32>,
    /// Custom templates only: epoch milliseconds.
    pub start_timestamp: Option<i64>,
    /// Custom templates only: epoch milliseconds.
    pub expiration_timestamp: Option<i64>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct AdditionalData {
    /// The codes nexkey answered earlier, one entry per code (a bare string is accepted too).
    #[oai(rename = "ActivationCode")]
    #[serde(rename = "ActivationCode", default, deserialize_with = "one_or_many")]
    pub activation_code: Option<Vec<String>>,
    /// The `publisherFulfillmentId` nexkey answered earlier (a list, or a bare string).
    #[oai(rename = "PublisherLicenseID")]
    #[serde(
        rename = "PublisherLicenseID",
        default,
        deserialize_with = "one_or_many"
    )]
    pub publisher_license_id: Option<Vec<String>>,
}

/// Nexway types `additionalData` as map(string → list of strings); hand-written templates send
/// a bare string.
fn one_or_many<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(
        match Option::<OneOrMany>::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom("expected a string or a list of strings"))?
        {
            None => None,
            Some(OneOrMany::One(value)) => Some(vec![value]),
            Some(OneOrMany::Many(values)) => Some(values),
        },
    )
}
