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
    /// The call's references (codes, fulfillment ids, subscription) point into different lives.
    #[error("{0}")]
    ReferencesDisagree(String),
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

impl Error {
    /// The HTTP status of this error: 4xx means "retrying will not help", 5xx means "retry".
    pub fn status(&self) -> u16 {
        match self {
            Error::InvalidRequest(_) => 400,
            Error::Unauthorized => 401,
            Error::UnknownFulfillment(_) | Error::NotFound => 404,
            Error::MethodNotAllowed => 405,
            Error::RequestTimeout => 408,
            Error::IdempotencyConflict
            | Error::InvalidTransition(_)
            | Error::ReferencesDisagree(_) => 409,
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
            Error::ReferencesDisagree(_) => ErrorCode::ReferencesDisagree,
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
    fn from(err: DbErr) -> Self {
        match err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
                tracing::error!(error = %err, "database unreachable");
                crate::metrics::database_error("unavailable");
                Error::StorageUnavailable
            }
            // A busy SQLite file or a dropped PostgreSQL connection mid-query: worth a retry.
            DbErr::Exec(ref e) | DbErr::Query(ref e) if is_transient(&e.to_string()) => {
                tracing::error!(error = %err, "database temporarily unavailable");
                crate::metrics::database_error("unavailable");
                Error::StorageUnavailable
            }
            _ => {
                tracing::error!(error = %err, "database error");
                crate::metrics::database_error("other");
                Error::Internal
            }
        }
    }
}

fn is_transient(message: &str) -> bool {
    const SIGNS: [&str; 6] = [
        "database is locked",
        "connection refused",
        "connection reset",
        "broken pipe",
        "pool timed out",
        "terminating connection",
    ];
    let message = message.to_ascii_lowercase();
    SIGNS.iter().any(|sign| message.contains(sign))
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
