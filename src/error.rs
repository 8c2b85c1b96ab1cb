//! The domain's error: what went wrong, in words safe to show the caller. It knows no HTTP:
//! statuses, realms and `Retry-After` are chosen in `src/api/error.rs`.

use sea_orm::DbErr;

/// Everything a call can fail with. Messages are safe to show to the caller; internal details
/// (database errors, I/O) are logged where they happen and never returned.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("unknown product {0:?}")]
    UnknownProduct(String),
    #[error("{0}")]
    UnknownFulfillment(String),
    #[error("this call was already answered with different content")]
    IdempotencyConflict,
    #[error("{0}")]
    InvalidTransition(String),
    /// The call's references (codes, fulfillment ids, subscription) point into different lives.
    #[error("{0}")]
    ReferencesDisagree(String),
    #[error("no license left in the pool of product {0:?}")]
    PoolExhausted(String),
    #[error("{0}")]
    KeyGeneration(String),
    #[error("the database is unavailable, retry later")]
    StorageUnavailable,
    /// What support asked about does not exist.
    #[error("no such license")]
    NotFound,
    #[error("internal error")]
    Internal,
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
