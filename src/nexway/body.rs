//! The request body extractor: JSON parsed once from the bytes as received, the generation chosen
//! by the body's shape, and error messages that name the field at fault.

use poem::{Request, RequestBody};
use poem_openapi::impl_apirequest_for_payload;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde_json::Value;

use super::NexwayGate;
use super::payload::{FulfillmentBody, LicenseRequest, NexwayRequest};
use crate::error::Error;
use crate::fulfillment::Operation;

/// A Nexway call's body: either generation, documented as `oneOf` in the OpenAPI document.
/// Its signature is checked on extraction; it is typed by `request`, which knows the operation.
pub struct NexwayBody {
    bytes: Vec<u8>,
    value: Value,
}

impl NexwayBody {
    pub fn parse(bytes: &[u8]) -> Result<NexwayRequest, Error> {
        Self::parse_typed(bytes, &Self::parse_value(bytes)?)
    }

    /// The typed request for `operation`. Suspend and cancel read no dates and no quantity, so
    /// whatever Nexway put there must not refuse them (a lost cancel leaves a refunded code
    /// usable): when typing fails, it is tried again without those members.
    pub fn request(&self, operation: Operation) -> Result<NexwayRequest, Error> {
        let typed = Self::parse_typed(&self.bytes, &self.value);
        let retry = match &typed {
            Ok(_) => false,
            // A member given twice stays refused: the value below keeps only the last one.
            Err(error) => {
                matches!(operation, Operation::Suspend | Operation::Cancel)
                    && !error.to_string().contains("duplicate field")
            }
        };
        if !retry {
            return typed;
        }
        let mut value = self.value.clone();
        if let Some(product) = value.get_mut("product").and_then(Value::as_object_mut) {
            for unread in UNREAD_BY_SUSPEND_AND_CANCEL {
                product.remove(unread);
            }
        }
        // Typed from the value whose signature was checked (the bytes' typing failed already).
        let bytes = serde_json::to_vec(&value).expect("a JSON value always serialises");
        Self::parse_typed(&bytes, &value).or(typed)
    }

    /// The JSON of the bytes as received (serde_json refuses nesting deeper than 128 levels).
    pub fn parse_value(bytes: &[u8]) -> Result<Value, Error> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::InvalidRequest(format!("the body is not valid JSON: {e}")))
    }

    /// The typed request of `bytes`, whose JSON is `value`.
    fn parse_typed(bytes: &[u8], value: &Value) -> Result<NexwayRequest, Error> {
        let Value::Object(object) = &value else {
            return Err(Error::InvalidRequest(
                "the body must be a JSON object".into(),
            ));
        };
        let is_legacy = object
            .get("product")
            .and_then(Value::as_object)
            .is_some_and(|product| product.contains_key("nexwayFulfillmentId"));
        // One identity per body: with both generations' identifying members, which of them
        // identify the call would be open to choice, and a signature over one generation's
        // members could be reused for the other.
        if is_legacy && object.contains_key("fulfillmentId") {
            return Err(Error::InvalidRequest(
                "the body carries both fulfillmentId (current body) and \
                 product.nexwayFulfillmentId (LicenseRequest): send one generation"
                    .into(),
            ));
        }
        let invalid = |e: serde_json::Error| Error::InvalidRequest(format!("invalid body: {e}"));
        // Typed parsing goes back to the bytes: serde names the member at fault and refuses a
        // member given twice, where the generic value above silently kept the last one.
        if object.contains_key("fulfillmentId") {
            serde_json::from_slice::<FulfillmentBody>(bytes)
                .map(NexwayRequest::Current)
                .map_err(invalid)
        } else if is_legacy {
            serde_json::from_slice::<LicenseRequest>(bytes)
                .map(NexwayRequest::Legacy)
                .map_err(invalid)
        } else {
            Err(Error::InvalidRequest(
                "the body is neither a LicenseRequest (product.nexwayFulfillmentId) \
                 nor a current Nexway body (fulfillmentId)"
                    .into(),
            ))
        }
    }
}

/// The members of `product` that only `new`, `renew`, `upgrade` and `reactivate` read.
const UNREAD_BY_SUSPEND_AND_CANCEL: [&str; 5] = [
    "quantity",
    "startDate",
    "endDate",
    "startTimestamp",
    "expirationTimestamp",
];

impl Payload for NexwayBody {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case("application/json")
    }

    fn schema_ref() -> MetaSchemaRef {
        NexwayRequest::schema_ref()
    }

    fn register(registry: &mut Registry) {
        NexwayRequest::register(registry);
    }
}

impl ParsePayload for NexwayBody {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let bytes = body.take()?.into_vec().await?;
        // Parsed once, from the bytes as received: the signature is checked on this very value.
        let value = Self::parse_value(&bytes);
        if let Some(gate) = request.data::<NexwayGate>()
            && !gate.check_signature(request.headers(), value.as_ref().map_err(|_| ()))
        {
            return Err(poem::Error::from_status(
                poem::http::StatusCode::UNAUTHORIZED,
            ));
        }
        // The error reaches the API's bad-request handler, which keeps its message.
        value.map(|value| NexwayBody { bytes, value }).map_err(|e| {
            poem::Error::from_string(e.to_string(), poem::http::StatusCode::BAD_REQUEST)
        })
    }
}

impl_apirequest_for_payload!(NexwayBody);
