//! The HTTP surface: one poem-openapi struct per audience, one error body everywhere.

pub mod activation;
pub mod admin;
mod client;
pub mod edge;
pub mod error;
pub mod ops;
pub mod params;
mod rate_limit;
pub mod spec;
mod stored_json;
pub mod webhook;

use poem::{IntoResponse, Response};
use poem_openapi::{Object, Tags};

use crate::error::Error;

pub use admin::AdminGate;
pub use client::{TrustedProxies, client_address, parse_range};
pub use error::{ErrorCode, HttpError};
pub use stored_json::StoredJson;

#[derive(Tags)]
pub enum ApiTags {
    /// The calls Nexway makes on each order event.
    Fulfillment,
    /// What support uses: key lookup, searches, manual actions (admin API keys).
    Support,
    /// What the publisher's software calls: activate, validate, deactivate a machine.
    Activation,
}

/// Every error answer: `{"error":{"code":"…","message":"…"}}`.
#[derive(Debug, Object)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Object)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For people: what was wrong. Never carries internal details.
    pub message: String,
}

impl From<&HttpError> for ErrorBody {
    fn from(error: &HttpError) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: error.code(),
                message: error.to_string(),
            },
        }
    }
}

/// The error as a complete HTTP answer, for the places outside a typed operation (middleware,
/// unknown paths). Typed operations build the same body through their response enums.
pub fn error_response(error: &HttpError) -> Response {
    let mut response = poem_openapi::payload::Json(ErrorBody::from(error)).into_response();
    response.set_status(error.status());
    if let Some(seconds) = error.retry_after() {
        response
            .headers_mut()
            .insert(poem::http::header::RETRY_AFTER, seconds.into());
    }
    if matches!(error, HttpError::Unauthorized) {
        response.headers_mut().insert(
            poem::http::header::WWW_AUTHENTICATE,
            poem::http::HeaderValue::from_static(error::REALM_NEXWAY),
        );
    }
    response
}

/// Maps the framework's own refusals (bad JSON, missing auth, wrong content type, body too large)
/// onto our errors, so they too are answered in the documented shape.
pub fn framework_error(error: &poem::Error) -> HttpError {
    use poem::http::StatusCode;
    match error.status() {
        StatusCode::UNAUTHORIZED => HttpError::Unauthorized,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => HttpError::UnsupportedMediaType,
        StatusCode::PAYLOAD_TOO_LARGE => HttpError::PayloadTooLarge,
        StatusCode::NOT_FOUND => HttpError::NoSuchPath,
        StatusCode::METHOD_NOT_ALLOWED => HttpError::MethodNotAllowed,
        status if status.is_client_error() => Error::InvalidRequest(error.to_string()).into(),
        _ => {
            tracing::error!(error = %error, "unexpected framework error");
            Error::Internal.into()
        }
    }
}
