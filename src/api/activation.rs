//! The activation API the publisher's software calls: `POST /activation/{activate, validate,
//! deactivate}`. The license key is the only credential, so calls are counted per client
//! address; errors come in the webhook's shape `{"error":{"code","message"}}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::ApiTags;
use super::rate_limit::RateLimiter;
use crate::activation::{ActivationError, Activations, Code, LicenseFacts};
use crate::error::Error;

/// The stable codes of an activation error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActivationErrorCode {
    /// 400: the body is malformed or a field invalid.
    InvalidRequest,
    /// 404: no license has this key.
    UnknownLicense,
    /// 404: deactivate: the license is not activated on this machine.
    NotActivated,
    /// 403: the license is past its end date.
    Expired,
    /// 403: the license is on hold.
    Suspended,
    /// 403: the license was revoked.
    Canceled,
    /// 403: the license was replaced by a new code.
    Superseded,
    /// 409: every machine the product allows is activated.
    TooManyActivations,
    /// 429: too many calls from this address; retry after `Retry-After` seconds.
    TooManyRequests,
    /// 500: an unexpected failure, logged.
    Internal,
    /// 503: the database is unavailable; retry.
    StorageUnavailable,
}

/// Every activation error: `{"error":{"code":"…","message":"…"}}`.
#[derive(Debug, Object)]
pub struct ActivationErrorBody {
    pub error: ActivationErrorDetail,
}

#[derive(Debug, Object)]
pub struct ActivationErrorDetail {
    pub code: ActivationErrorCode,
    /// For people: what was wrong.
    pub message: String,
}

/// A failed call: its body (whose code decides the status) and, for 429 and 503, its
/// Retry-After.
struct Failure {
    body: Json<ActivationErrorBody>,
    retry_after: u64,
}

impl Failure {
    fn new(code: ActivationErrorCode, message: impl Into<String>) -> Self {
        Failure {
            body: Json(ActivationErrorBody {
                error: ActivationErrorDetail {
                    code,
                    message: message.into(),
                },
            }),
            retry_after: 5,
        }
    }

    fn code(&self) -> ActivationErrorCode {
        self.body.error.code
    }

    fn too_many_requests(retry_after: u64) -> Self {
        Failure {
            retry_after,
            ..Failure::new(
                ActivationErrorCode::TooManyRequests,
                "too many calls from this address",
            )
        }
    }
}

impl From<ActivationError> for Failure {
    fn from(error: ActivationError) -> Self {
        use ActivationErrorCode as C;
        let message = error.to_string();
        let code = match error {
            ActivationError::InvalidRequest(_) => C::InvalidRequest,
            ActivationError::UnknownLicense => C::UnknownLicense,
            ActivationError::NotActivated => C::NotActivated,
            ActivationError::TooManyActivations(_) => C::TooManyActivations,
            ActivationError::Unusable(code) => match code {
                Code::Expired => C::Expired,
                Code::Suspended => C::Suspended,
                Code::Canceled => C::Canceled,
                Code::Superseded => C::Superseded,
                Code::Valid | Code::NotActivated => C::Internal,
            },
            ActivationError::Storage(Error::StorageUnavailable) => C::StorageUnavailable,
            ActivationError::Storage(_) => C::Internal,
        };
        if code == C::Internal {
            return Failure::new(code, "internal error");
        }
        Failure::new(code, message)
    }
}

/// The framework's refusals (malformed JSON, missing fields, wrong content type).
fn invalid(error: poem::Error) -> Failure {
    Failure::new(ActivationErrorCode::InvalidRequest, error.to_string())
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ActivateRequest {
    /// The license key the buyer typed (case, spaces and dashes do not matter).
    #[oai(validator(max_length = 256))]
    pub license_key: String,
    /// What identifies the machine, computed by the software (1 to 255 characters, compared
    /// exactly).
    #[oai(validator(max_length = 1024))]
    pub fingerprint: String,
    /// A label for people, e.g. the host name (at most 255 characters).
    #[oai(validator(max_length = 1024))]
    pub name: Option<String>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ValidateRequest {
    #[oai(validator(max_length = 256))]
    pub license_key: String,
    /// When given, `valid` also requires the license to be activated on this machine.
    #[oai(validator(max_length = 1024))]
    pub fingerprint: Option<String>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct DeactivateRequest {
    #[oai(validator(max_length = 256))]
    pub license_key: String,
    #[oai(validator(max_length = 1024))]
    pub fingerprint: String,
}

/// The license as the software needs it.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ActivationLicense {
    /// The license key as issued.
    pub license_key: String,
    /// active | suspended | canceled | expired | superseded, as read today.
    pub status: String,
    /// The product (`publisherProductId`).
    pub product: String,
    pub product_name: Option<String>,
    /// The last day the license is valid (ISO 8601); null for a perpetual license.
    pub expires: Option<chrono::NaiveDate>,
    /// Whether the license is a free trial's.
    pub trial: bool,
    /// Machines the license may be activated on; null: unlimited.
    pub max_activations: Option<u32>,
    /// Machines it is activated on now.
    pub activations: u64,
}

impl From<LicenseFacts> for ActivationLicense {
    fn from(facts: LicenseFacts) -> Self {
        ActivationLicense {
            license_key: facts.license_key,
            status: facts.status.as_str().to_owned(),
            product: facts.publisher_product_id,
            product_name: facts.product_name,
            expires: facts.expires,
            trial: facts.trial,
            max_activations: facts.max_activations,
            activations: facts.activations,
        }
    }
}

/// A machine activated on a license.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ActivationDto {
    pub id: i64,
    pub license_key: String,
    pub fingerprint: String,
    pub name: Option<String>,
    pub activated_at: chrono::DateTime<chrono::Utc>,
}

impl ActivationDto {
    pub fn new(activation: entity::activation::Model, license_key: &str) -> Self {
        ActivationDto {
            id: activation.id,
            license_key: license_key.to_owned(),
            fingerprint: activation.fingerprint,
            name: activation.name,
            activated_at: activation.created_at,
        }
    }
}

/// An activation with the license it is on.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ActivationAnswer {
    pub id: i64,
    pub license_key: String,
    pub fingerprint: String,
    pub name: Option<String>,
    pub activated_at: chrono::DateTime<chrono::Utc>,
    pub license: ActivationLicense,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ValidationAnswer {
    /// True only for a usable license and, when a fingerprint was given, an activated machine.
    pub valid: bool,
    pub code: Code,
    pub license: ActivationLicense,
    /// The machine's activation, when a fingerprint was given and it is activated.
    pub activation: Option<ActivationDto>,
    /// For a product with a `signed` generator: this verdict signed with the product's key, to
    /// be checked offline with its public key (see the README); null otherwise.
    pub token: Option<String>,
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "activate_bad_request")]
pub enum ActivateResponse {
    /// The machine is activated now.
    #[oai(status = 201)]
    Created(Json<ActivationAnswer>),
    /// The machine was already activated: the same activation.
    #[oai(status = 200)]
    Ok(Json<ActivationAnswer>),
    /// INVALID_REQUEST.
    #[oai(status = 400)]
    BadRequest(Json<ActivationErrorBody>),
    /// EXPIRED, SUSPENDED, CANCELED or SUPERSEDED: the license is not usable.
    #[oai(status = 403)]
    Forbidden(Json<ActivationErrorBody>),
    /// UNKNOWN_LICENSE.
    #[oai(status = 404)]
    NotFound(Json<ActivationErrorBody>),
    /// TOO_MANY_ACTIVATIONS: deactivate another machine first.
    #[oai(status = 409)]
    Conflict(Json<ActivationErrorBody>),
    /// TOO_MANY_REQUESTS.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ActivationErrorBody>,
        #[oai(header = "Retry-After")] u64,
    ),
    /// INTERNAL.
    #[oai(status = 500)]
    Internal(Json<ActivationErrorBody>),
    /// STORAGE_UNAVAILABLE: retry.
    #[oai(status = 503)]
    Unavailable(
        Json<ActivationErrorBody>,
        #[oai(header = "Retry-After")] u64,
    ),
}

fn activate_bad_request(error: poem::Error) -> ActivateResponse {
    invalid(error).into()
}

impl From<Failure> for ActivateResponse {
    fn from(failure: Failure) -> Self {
        use ActivationErrorCode::*;
        let retry_after = failure.retry_after;
        match failure.code() {
            InvalidRequest => ActivateResponse::BadRequest(failure.body),
            Expired | Suspended | Canceled | Superseded => {
                ActivateResponse::Forbidden(failure.body)
            }
            UnknownLicense => ActivateResponse::NotFound(failure.body),
            TooManyActivations => ActivateResponse::Conflict(failure.body),
            TooManyRequests => ActivateResponse::TooManyRequests(failure.body, retry_after),
            StorageUnavailable => ActivateResponse::Unavailable(failure.body, retry_after),
            // NotActivated is deactivate's; here it would be a bug.
            NotActivated | Internal => ActivateResponse::Internal(failure.body),
        }
    }
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "validate_bad_request")]
pub enum ValidateResponse {
    /// The verdict, whatever it is.
    #[oai(status = 200)]
    Ok(Json<Box<ValidationAnswer>>),
    /// INVALID_REQUEST.
    #[oai(status = 400)]
    BadRequest(Json<ActivationErrorBody>),
    /// UNKNOWN_LICENSE.
    #[oai(status = 404)]
    NotFound(Json<ActivationErrorBody>),
    /// TOO_MANY_REQUESTS.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ActivationErrorBody>,
        #[oai(header = "Retry-After")] u64,
    ),
    /// INTERNAL.
    #[oai(status = 500)]
    Internal(Json<ActivationErrorBody>),
    /// STORAGE_UNAVAILABLE: retry.
    #[oai(status = 503)]
    Unavailable(
        Json<ActivationErrorBody>,
        #[oai(header = "Retry-After")] u64,
    ),
}

fn validate_bad_request(error: poem::Error) -> ValidateResponse {
    invalid(error).into()
}

impl From<Failure> for ValidateResponse {
    fn from(failure: Failure) -> Self {
        use ActivationErrorCode::*;
        let retry_after = failure.retry_after;
        match failure.code() {
            InvalidRequest => ValidateResponse::BadRequest(failure.body),
            UnknownLicense => ValidateResponse::NotFound(failure.body),
            TooManyRequests => ValidateResponse::TooManyRequests(failure.body, retry_after),
            StorageUnavailable => ValidateResponse::Unavailable(failure.body, retry_after),
            // Validate answers a license's state as a 200 verdict, never as a failure.
            NotActivated | Expired | Suspended | Canceled | Superseded | TooManyActivations
            | Internal => ValidateResponse::Internal(failure.body),
        }
    }
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "deactivate_bad_request")]
pub enum DeactivateResponse {
    /// The seat is free.
    #[oai(status = 204)]
    NoContent,
    /// INVALID_REQUEST.
    #[oai(status = 400)]
    BadRequest(Json<ActivationErrorBody>),
    /// UNKNOWN_LICENSE, or NOT_ACTIVATED on this machine.
    #[oai(status = 404)]
    NotFound(Json<ActivationErrorBody>),
    /// TOO_MANY_REQUESTS.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ActivationErrorBody>,
        #[oai(header = "Retry-After")] u64,
    ),
    /// INTERNAL.
    #[oai(status = 500)]
    Internal(Json<ActivationErrorBody>),
    /// STORAGE_UNAVAILABLE: retry.
    #[oai(status = 503)]
    Unavailable(
        Json<ActivationErrorBody>,
        #[oai(header = "Retry-After")] u64,
    ),
}

fn deactivate_bad_request(error: poem::Error) -> DeactivateResponse {
    invalid(error).into()
}

impl From<Failure> for DeactivateResponse {
    fn from(failure: Failure) -> Self {
        use ActivationErrorCode::*;
        let retry_after = failure.retry_after;
        match failure.code() {
            InvalidRequest => DeactivateResponse::BadRequest(failure.body),
            UnknownLicense | NotActivated => DeactivateResponse::NotFound(failure.body),
            TooManyRequests => DeactivateResponse::TooManyRequests(failure.body, retry_after),
            StorageUnavailable => DeactivateResponse::Unavailable(failure.body, retry_after),
            // Deactivation frees a seat whatever the license's state.
            Expired | Suspended | Canceled | Superseded | TooManyActivations | Internal => {
                DeactivateResponse::Internal(failure.body)
            }
        }
    }
}

pub struct ActivationApi {
    activations: Arc<Activations>,
    limiter: RateLimiter,
}

impl ActivationApi {
    pub fn new(activations: Arc<Activations>, calls_per_minute: u32) -> Self {
        ActivationApi {
            activations,
            limiter: RateLimiter::new(calls_per_minute, Duration::from_secs(60)),
        }
    }

    fn admit(&self, request: &Request) -> Result<(), Failure> {
        match super::client_address(request) {
            Some(address) => self
                .limiter
                .check(address, Instant::now())
                .map_err(Failure::too_many_requests),
            None => Ok(()),
        }
    }
}

fn refused(operation: &str, failure: &Failure) {
    // The code only: the key and the fingerprint stay out of the logs.
    tracing::info!(operation, code = ?failure.body.error.code, "activation call refused");
}

#[OpenApi(tag = "ApiTags::Activation")]
impl ActivationApi {
    /// Activate a machine
    ///
    /// Activates the license on the machine `fingerprint` identifies: 201 with the activation
    /// and the license. The same machine again is 200 with the same activation. A license that
    /// is not usable is 403 with a code saying why; one activated on all the machines its
    /// product allows (`max_activations`) is 409. The first activation of a machine records a
    /// `register licences` event for Nexway's DMP when reporting is configured.
    #[oai(
        path = "/activation/activate",
        method = "post",
        operation_id = "activate"
    )]
    async fn activate(&self, request: &Request, body: Json<ActivateRequest>) -> ActivateResponse {
        let answer = async {
            self.admit(request)?;
            let body = body.0;
            let activated = self
                .activations
                .activate(&body.license_key, &body.fingerprint, body.name.as_deref())
                .await?;
            let activation = activated.activation;
            let answer = ActivationAnswer {
                id: activation.id,
                license_key: activated.license.license_key.clone(),
                fingerprint: activation.fingerprint,
                name: activation.name,
                activated_at: activation.created_at,
                license: activated.license.into(),
            };
            Ok::<_, Failure>(if activated.created {
                ActivateResponse::Created(Json(answer))
            } else {
                ActivateResponse::Ok(Json(answer))
            })
        }
        .await;
        answer.unwrap_or_else(|failure| {
            refused("activate", &failure);
            failure.into()
        })
    }

    /// Validate a license (and a machine)
    ///
    /// 200 for any known key: `valid` is true only for a usable license and, when a fingerprint
    /// is given, a machine it is activated on; `code` says why not (`EXPIRED`, `SUSPENDED`,
    /// `CANCELED`, `SUPERSEDED`, `NOT_ACTIVATED`). An unknown key is 404.
    #[oai(
        path = "/activation/validate",
        method = "post",
        operation_id = "validate"
    )]
    async fn validate(&self, request: &Request, body: Json<ValidateRequest>) -> ValidateResponse {
        let answer = async {
            self.admit(request)?;
            let validation = self
                .activations
                .validate(&body.license_key, body.fingerprint.as_deref())
                .await?;
            let key = validation.license.license_key.clone();
            Ok::<_, Failure>(ValidateResponse::Ok(Json(Box::new(ValidationAnswer {
                valid: validation.code == Code::Valid,
                code: validation.code,
                license: validation.license.into(),
                activation: validation
                    .activation
                    .map(|activation| ActivationDto::new(activation, &key)),
                token: validation.token,
            }))))
        }
        .await;
        answer.unwrap_or_else(|failure| {
            refused("validate", &failure);
            failure.into()
        })
    }

    /// Deactivate a machine
    ///
    /// Frees the machine's seat (whatever the license's status): 204. A machine the license is
    /// not activated on is 404 `NOT_ACTIVATED`.
    #[oai(
        path = "/activation/deactivate",
        method = "post",
        operation_id = "deactivate"
    )]
    async fn deactivate(
        &self,
        request: &Request,
        body: Json<DeactivateRequest>,
    ) -> DeactivateResponse {
        let answer = async {
            self.admit(request)?;
            self.activations
                .deactivate(&body.license_key, &body.fingerprint)
                .await?;
            Ok::<_, Failure>(DeactivateResponse::NoContent)
        }
        .await;
        answer.unwrap_or_else(|failure| {
            refused("deactivate", &failure);
            failure.into()
        })
    }
}
