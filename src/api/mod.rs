//! The HTTP surface: one poem-openapi struct per audience, one error body everywhere.

pub mod activation;
pub mod admin;
mod admin_auth;
pub mod lkey_page;
pub mod ops;
mod purchase;
mod rate_limit;
mod stored_json;
pub mod webhook;

use poem::{IntoResponse, Response};
use poem_openapi::{Object, Tags};

use crate::error::{Error, ErrorCode};

pub use admin_auth::AdminGate;
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

impl From<&Error> for ErrorBody {
    fn from(error: &Error) -> Self {
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
pub fn error_response(error: &Error) -> Response {
    let status = poem::http::StatusCode::from_u16(error.status()).expect("statuses are valid");
    let mut response = poem_openapi::payload::Json(ErrorBody::from(error)).into_response();
    response.set_status(status);
    if let Some(seconds) = error.retry_after() {
        response
            .headers_mut()
            .insert(poem::http::header::RETRY_AFTER, seconds.into());
    }
    if matches!(error, Error::Unauthorized) {
        response.headers_mut().insert(
            poem::http::header::WWW_AUTHENTICATE,
            poem::http::HeaderValue::from_static("Basic realm=\"nexkey\""),
        );
    }
    response
}

/// Maps the framework's own refusals (bad JSON, missing auth, wrong content type, body too large)
/// onto our errors, so they too are answered in the documented shape.
pub fn framework_error(error: &poem::Error) -> Error {
    use poem::http::StatusCode;
    match error.status() {
        StatusCode::UNAUTHORIZED => Error::Unauthorized,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::UnsupportedMediaType,
        StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge,
        StatusCode::NOT_FOUND => Error::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => Error::MethodNotAllowed,
        status if status.is_client_error() => Error::InvalidRequest(error.to_string()),
        _ => {
            tracing::error!(error = %error, "unexpected framework error");
            Error::Internal
        }
    }
}
