//! The one error type of nexkey, and the one place where an error becomes an HTTP status and a code.

use sea_orm::DbErr;

/// Everything a call can fail with. Messages are safe to show to the caller; internal details
/// (database errors, I/O) are logged where they happen and never returned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("the request body is larger than the configured limit")]
    PayloadTooLarge,
    #[error("unknown product {0:?}")]
    UnknownProduct(String),
    #[error("{0}")]
    UnknownFulfillment(String),
    #[error("this call was already answered with different content")]
    IdempotencyConflict,
    #[error("{0}")]
    InvalidTransition(String),
    #[error("no license left in the pool of product {0:?}")]
    PoolExhausted(String),
    #[error("{0}")]
    KeyGeneration(String),
    #[error("the database is unavailable, retry later")]
    StorageUnavailable,
    #[error("no such resource")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the request took too long to arrive")]
    RequestTimeout,
    #[error("internal error")]
    Internal,
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

impl Error {
    /// The HTTP status of this error: 4xx means "retrying will not help", 5xx means "retry".
    pub fn status(&self) -> u16 {
        match self {
            Error::InvalidRequest(_) => 400,
            Error::Unauthorized => 401,
            Error::UnknownFulfillment(_) | Error::NotFound => 404,
            Error::MethodNotAllowed => 405,
            Error::RequestTimeout => 408,
            Error::IdempotencyConflict | Error::InvalidTransition(_) => 409,
            Error::PayloadTooLarge => 413,
            Error::UnsupportedMediaType => 415,
            Error::UnknownProduct(_) => 422,
            Error::Internal | Error::KeyGeneration(_) => 500,
            Error::PoolExhausted(_) | Error::StorageUnavailable => 503,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Error::Unauthorized => ErrorCode::Unauthorized,
            Error::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Error::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Error::UnknownProduct(_) => ErrorCode::UnknownProduct,
            Error::UnknownFulfillment(_) => ErrorCode::UnknownFulfillment,
            Error::IdempotencyConflict => ErrorCode::IdempotencyConflict,
            Error::InvalidTransition(_) => ErrorCode::InvalidTransition,
            Error::PoolExhausted(_) => ErrorCode::LicensePoolExhausted,
            Error::KeyGeneration(_) => ErrorCode::KeyGenerationFailed,
            Error::StorageUnavailable => ErrorCode::StorageUnavailable,
            Error::NotFound => ErrorCode::NotFound,
            Error::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Error::RequestTimeout => ErrorCode::RequestTimeout,
            Error::Internal => ErrorCode::Internal,
        }
    }

    /// Seconds after which a retry may succeed, for the 503 answers.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Error::StorageUnavailable => Some(5),
            Error::PoolExhausted(_) => Some(60),
            _ => None,
        }
    }
}

impl From<DbErr> for Error {
    /// A storage fault worth a retry is a 503 (Nexway retries); anything else is a bug, a 500.
    /// Both are logged here, once, with the driver's words (never returned to the caller).
    fn from(err: DbErr) -> Self {
        let fault = crate::store::fault::classify(&err);
        crate::metrics::database_error(fault.label());
        if fault.is_transient() {
            tracing::error!(error = %err, fault = fault.label(), "database unavailable, answering 503");
            Error::StorageUnavailable
        } else {
            tracing::error!(error = %err, "database error");
            Error::Internal
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
