//! The calls Nexway makes: `POST /licenses/{operation}`.

use std::sync::Arc;

use poem::{Request, RequestBody};
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Object, OpenApi,
};

use super::error::{HttpError, REALM_NEXWAY, RETRY_POOL, RETRY_STORAGE};
use super::{ApiTags, ErrorBody, StoredJson, framework_error};
use crate::error::Error;
use crate::fulfillment::{Operation, Service};
use crate::nexway::{NexwayBody, NexwayGate, normalise};

/// HTTP Basic credentials agreed with Nexway at onboarding. Written by hand rather than derived:
/// a deployment may turn Basic off while it requires the request signature, which the body
/// extractor checks (it is the one that holds the bytes as received).
pub struct NexwayAuth;

impl<'a> ApiExtractor<'a> for NexwayAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            "NexwayAuth",
            MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "HTTP Basic credentials agreed with Nexway at onboarding. When the deployment \
                     requires Nexway's request signature, the signature header (default \
                     `X-Nexway-Signature`) must also be valid.",
                ),
                name: None,
                key_in: None,
                scheme: Some("basic"),
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec!["NexwayAuth"]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _options: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        let accepted = request
            .data::<NexwayGate>()
            .is_some_and(|gate| gate.check_basic(request.headers()));
        if accepted {
            Ok(NexwayAuth)
        } else {
            Err(poem::Error::from_status(
                poem::http::StatusCode::UNAUTHORIZED,
            ))
        }
    }
}

/// The answer of a fulfillment call (documentation of the stored bytes).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct FulfillmentAnswer {
    /// nexkey's id for this fulfillment; Nexway records it as `PublisherLicenseID`.
    pub publisher_fulfillment_id: String,
    pub nexway_fulfillment_id: String,
    /// new | renew | upgrade | suspend | reactivate | cancel
    pub operation: String,
    /// Every code the call issued or touched, as it stands after the call.
    pub licenses: Vec<LicenseAnswer>,
    /// Codes the call replaced by reissue (status `superseded`); absent when none.
    pub superseded: Option<Vec<LicenseAnswer>>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct LicenseAnswer {
    pub activation_code: String,
    /// active | suspended | canceled | expired | superseded
    pub status: String,
    /// `true` for a free trial's code (`checkout.trialContext` CREATION); absent otherwise.
    pub trial: Option<bool>,
    /// ISO 8601 calendar date.
    pub start_date: Option<String>,
    /// ISO 8601 calendar date; absent for a perpetual license.
    pub end_date: Option<String>,
    /// The code's file deliverable, for products whose generator ships one.
    pub file: Option<LicenseFile>,
}

/// A file deliverable in Nexway Connect's serial shape.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct LicenseFile {
    /// The content: text as is, binary in standard base64.
    pub data: String,
    /// base64 | text
    pub encoding: String,
    /// Character set of a text file.
    pub charset: Option<String>,
    pub file_name: String,
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_request")]
pub enum FulfillmentResponse {
    /// The call is fulfilled (or was already: the same answer, byte for byte).
    #[oai(status = 200)]
    Ok(
        StoredJson<FulfillmentAnswer>,
        /// `true` when this answer is the stored answer of an earlier identical call.
        #[oai(header = "Idempotent-Replayed")]
        bool,
    ),
    /// INVALID_REQUEST: malformed JSON, missing or invalid fields. Retrying will not help.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// UNAUTHORIZED: missing or wrong credentials.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// UNKNOWN_FULFILLMENT: no license matches what the call refers to.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// IDEMPOTENCY_CONFLICT, INVALID_TRANSITION, or REFERENCES_DISAGREE (the call's codes,
    /// fulfillment ids or subscription point into different license lives). Nothing changed.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// PAYLOAD_TOO_LARGE: the body exceeds the configured limit.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// UNSUPPORTED_MEDIA_TYPE: the body is not declared as `application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// UNKNOWN_PRODUCT: the product is not configured and unknown products are refused.
    #[oai(status = 422)]
    UnknownProduct(Json<ErrorBody>),
    /// INTERNAL or KEY_GENERATION_FAILED: logged on our side; Nexway retries.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// STORAGE_UNAVAILABLE or LICENSE_POOL_EXHAUSTED: retry after the given delay.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] u32),
}

fn bad_request(error: poem::Error) -> FulfillmentResponse {
    framework_error(&error).into()
}

impl From<HttpError> for FulfillmentResponse {
    fn from(error: HttpError) -> Self {
        use FulfillmentResponse as R;
        let body = Json(ErrorBody::from(&error));
        match error {
            HttpError::Domain(domain) => match domain {
                Error::InvalidRequest(_) => R::BadRequest(body),
                Error::UnknownFulfillment(_) | Error::NotFound => R::NotFound(body),
                Error::IdempotencyConflict
                | Error::InvalidTransition(_)
                | Error::ReferencesDisagree(_) => R::Conflict(body),
                Error::UnknownProduct(_) => R::UnknownProduct(body),
                Error::Internal | Error::KeyGeneration(_) => R::Internal(body),
                Error::StorageUnavailable => R::Unavailable(body, RETRY_STORAGE),
                Error::PoolExhausted(_) => R::Unavailable(body, RETRY_POOL),
            },
            HttpError::Unauthorized => R::Unauthorized(body, REALM_NEXWAY.into()),
            HttpError::NoSuchPath => R::NotFound(body),
            HttpError::PayloadTooLarge => R::PayloadTooLarge(body),
            HttpError::UnsupportedMediaType => R::UnsupportedMediaType(body),
            // Answered by the middleware before any operation runs; never through this enum.
            HttpError::MethodNotAllowed | HttpError::RequestTimeout => R::BadRequest(body),
        }
    }
}

impl From<Error> for FulfillmentResponse {
    fn from(error: Error) -> Self {
        HttpError::from(error).into()
    }
}

pub struct WebhookApi {
    service: Arc<Service>,
}

impl WebhookApi {
    pub fn new(service: Arc<Service>) -> Self {
        WebhookApi { service }
    }

    async fn fulfil(&self, operation: Operation, body: NexwayBody) -> FulfillmentResponse {
        let command = body
            .request(operation)
            .and_then(|request| normalise::command(operation, request));
        let outcome = match command {
            Ok(command) => self.service.apply(command).await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(outcome) => {
                FulfillmentResponse::Ok(StoredJson::new(outcome.answer), outcome.replayed)
            }
            Err(error) => {
                let error = HttpError::from(error);
                // The code only: messages may name activation codes, which are worth money.
                tracing::info!(%operation, code = ?error.code(), "call refused");
                error.into()
            }
        }
    }
}

#[OpenApi(tag = "ApiTags::Fulfillment")]
impl WebhookApi {
    /// Issue licenses for a confirmed order
    ///
    /// Issues `quantity` activation codes (1 when absent) for the product and the buyer. Accepts
    /// the legacy `LicenseRequest` and Nexway's current default body. A repeat of the same call
    /// (operation, fulfillment id, order id) returns the stored answer byte for byte and issues
    /// nothing; a repeat with different content is `409 IDEMPOTENCY_CONFLICT`.
    #[oai(path = "/licenses/new", method = "post", operation_id = "licensesNew")]
    async fn licenses_new(&self, _auth: NexwayAuth, body: NexwayBody) -> FulfillmentResponse {
        self.fulfil(Operation::New, body).await
    }

    /// Renew the licenses of a renewed subscription
    ///
    /// Finds the licenses (see "Finding the licenses" in the API description) and, by the
    /// product's `renew` policy, extends them (same codes; the call's end date, else the current
    /// end plus the product's term) or reissues them (new codes under `licenses`, the old ones
    /// listed under `superseded`). A canceled license cannot be renewed: `409 INVALID_TRANSITION`.
    #[oai(
        path = "/licenses/renew",
        method = "post",
        operation_id = "licensesRenew"
    )]
    async fn licenses_renew(&self, _auth: NexwayAuth, body: NexwayBody) -> FulfillmentResponse {
        self.fulfil(Operation::Renew, body).await
    }

    /// Move the licenses to the product of a mid-term upgrade
    ///
    /// The call's `publisherProductId` is the product upgraded to. By that product's `upgrade`
    /// policy the codes are kept and moved to it, or reissued under it.
    #[oai(
        path = "/licenses/upgrade",
        method = "post",
        operation_id = "licensesUpgrade"
    )]
    async fn licenses_upgrade(&self, _auth: NexwayAuth, body: NexwayBody) -> FulfillmentResponse {
        self.fulfil(Operation::Upgrade, body).await
    }

    /// Suspend the licenses of a suspended subscription
    ///
    /// Active licenses become `suspended`; suspending a suspended license changes nothing.
    #[oai(
        path = "/licenses/suspend",
        method = "post",
        operation_id = "licensesSuspend"
    )]
    async fn licenses_suspend(&self, _auth: NexwayAuth, body: NexwayBody) -> FulfillmentResponse {
        self.fulfil(Operation::Suspend, body).await
    }

    /// Reactivate the licenses of a reactivated subscription
    ///
    /// Suspended licenses become `active` again, keeping their codes or reissued by the product's
    /// `reactivate` policy. A canceled license cannot be reactivated: `409 INVALID_TRANSITION`.
    #[oai(
        path = "/licenses/reactivate",
        method = "post",
        operation_id = "licensesReactivate"
    )]
    async fn licenses_reactivate(
        &self,
        _auth: NexwayAuth,
        body: NexwayBody,
    ) -> FulfillmentResponse {
        self.fulfil(Operation::Reactivate, body).await
    }

    /// Revoke the licenses of a canceled or refunded order
    ///
    /// The licenses become `canceled` for good; canceling a canceled license changes nothing.
    #[oai(
        path = "/licenses/cancel",
        method = "post",
        operation_id = "licensesCancel"
    )]
    async fn licenses_cancel(&self, _auth: NexwayAuth, body: NexwayBody) -> FulfillmentResponse {
        self.fulfil(Operation::Cancel, body).await
    }
}
