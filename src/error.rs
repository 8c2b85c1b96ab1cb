//! The domain's error: what went wrong, in words safe to show the caller. It knows no HTTP:
//! statuses, realms and `Retry-After` are chosen in `src/api/error.rs`.

use sea_orm::DbErr;

/// Everything a call can fail with. Messages are safe to show to the caller; internal details
/// (database errors, I/O) are logged where they happen and never returned.
#[derive(Debug, thiserror::Error)]
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
