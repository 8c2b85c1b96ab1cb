//! Where an error becomes an HTTP answer: the status, the machine-readable code, the realm and
//! `Retry-After`, each chosen once, by exhaustive matches (a new variant does not compile until
//! it has its answer). Transport failures (401, 404 path, 405, 408, 413, 415) live here only.

use poem::http::StatusCode;

use crate::error::Error;

/// Seconds after which a retry may succeed once the database is back.
pub const RETRY_STORAGE: u32 = 5;
/// Seconds after which a refilled pool may have codes again.
pub const RETRY_POOL: u32 = 60;
/// Seconds a client that sent too many bad admin keys is told to wait.
pub const RETRY_BAD_KEY: u64 = 60;
/// The Basic realm of Nexway's calls.
pub const REALM_NEXWAY: &str = "Basic realm=\"nexkey\"";
/// The Basic realm of the support side.
pub const REALM_ADMIN: &str = "Basic realm=\"nexkey admin\"";
/// The realm of the metrics endpoint.
pub const REALM_METRICS: &str = "Bearer realm=\"nexkey metrics\"";

/// An HTTP failure: one of the domain's, or the transport's.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Domain(#[from] Error),
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("the request body is larger than the configured limit")]
    PayloadTooLarge,
    #[error("no such resource")]
    NoSuchPath,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the request took too long to arrive")]
    RequestTimeout,
}

/// The stable machine-readable error codes, listed in the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// 400: the body is malformed or its content invalid.
    InvalidRequest,
    /// 401: missing or wrong credentials.
    Unauthorized,
    /// 404: no such path.
    NotFound,
    /// 404: the licenses the call is about are unknown.
    UnknownFulfillment,
    /// 405: the path exists but not with this method.
    MethodNotAllowed,
    /// 408: the request body did not arrive in time (slow or stalled client).
    RequestTimeout,
    /// 409: the same call was answered earlier with different content.
    IdempotencyConflict,
    /// 409: the licenses cannot make this transition.
    InvalidTransition,
    /// 409: the call's references point into different license lives; nothing changed.
    ReferencesDisagree,
    /// 413: the body is larger than the configured limit.
    PayloadTooLarge,
    /// 415: the body is not declared as JSON.
    UnsupportedMediaType,
    /// 422: the product is not configured and unknown products are refused.
    UnknownProduct,
    /// 500: an unexpected failure, logged.
    Internal,
    /// 500: the product's generator could not make a code (configuration to fix).
    KeyGenerationFailed,
    /// 503: the product's pool of codes is empty; retry after a refill.
    LicensePoolExhausted,
    /// 503: the database is unreachable; retry.
    StorageUnavailable,
}

impl HttpError {
    /// 4xx means "retrying will not help", 5xx means "retry".
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::Domain(error) => match error {
                Error::InvalidRequest(_) => StatusCode::BAD_REQUEST,
                Error::UnknownFulfillment(_) | Error::NotFound => StatusCode::NOT_FOUND,
                Error::IdempotencyConflict
                | Error::InvalidTransition(_)
                | Error::ReferencesDisagree(_) => StatusCode::CONFLICT,
                Error::UnknownProduct(_) => StatusCode::UNPROCESSABLE_ENTITY,
                Error::Internal | Error::KeyGeneration(_) => StatusCode::INTERNAL_SERVER_ERROR,
                Error::PoolExhausted(_) | Error::StorageUnavailable => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            },
            HttpError::Unauthorized => StatusCode::UNAUTHORIZED,
            HttpError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            HttpError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::NoSuchPath => StatusCode::NOT_FOUND,
            HttpError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            HttpError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            HttpError::Domain(error) => match error {
                Error::InvalidRequest(_) => ErrorCode::InvalidRequest,
                Error::UnknownProduct(_) => ErrorCode::UnknownProduct,
                Error::UnknownFulfillment(_) => ErrorCode::UnknownFulfillment,
                Error::IdempotencyConflict => ErrorCode::IdempotencyConflict,
                Error::InvalidTransition(_) => ErrorCode::InvalidTransition,
                Error::ReferencesDisagree(_) => ErrorCode::ReferencesDisagree,
                Error::PoolExhausted(_) => ErrorCode::LicensePoolExhausted,
                Error::KeyGeneration(_) => ErrorCode::KeyGenerationFailed,
                Error::StorageUnavailable => ErrorCode::StorageUnavailable,
                Error::NotFound => ErrorCode::NotFound,
                Error::Internal => ErrorCode::Internal,
            },
            HttpError::Unauthorized => ErrorCode::Unauthorized,
            HttpError::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            HttpError::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            HttpError::NoSuchPath => ErrorCode::NotFound,
            HttpError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            HttpError::RequestTimeout => ErrorCode::RequestTimeout,
        }
    }

    /// Seconds after which a retry may succeed, for the 503 answers.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            HttpError::Domain(Error::StorageUnavailable) => Some(RETRY_STORAGE),
            HttpError::Domain(Error::PoolExhausted(_)) => Some(RETRY_POOL),
            HttpError::Domain(_)
            | HttpError::Unauthorized
            | HttpError::UnsupportedMediaType
            | HttpError::PayloadTooLarge
            | HttpError::NoSuchPath
            | HttpError::MethodNotAllowed
            | HttpError::RequestTimeout => None,
        }
    }
}
