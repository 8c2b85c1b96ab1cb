//! How the support side refuses: its key schemes, and errors in that API family's shape
//! (`{"errorCode","errorMessage"}`), each with its status chosen once.

use poem::http::StatusCode;
use poem_openapi::auth::{ApiKey, Basic};
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object, SecurityScheme};
use secrecy::SecretString;

use super::gate::Denied;
use crate::api::error::{REALM_ADMIN, RETRY_BAD_KEY, RETRY_STORAGE};
use crate::error::Error;

/// What a support operation returns before it is answered.
pub type Answer<T> = Result<T, AdminFailure>;

/// An admin API key sent as the HTTP Basic user name (the password is ignored).
#[derive(SecurityScheme)]
#[oai(ty = "basic")]
pub struct AdminBasic(Basic);

/// An admin API key in the `key` query parameter, so support can paste a URL. Never logged.
#[derive(SecurityScheme)]
#[oai(ty = "api_key", key_name = "key", key_in = "query")]
pub struct AdminQueryKey(ApiKey);

/// Either way of sending the key; without one the answer is `401 NO_API_KEY`.
#[derive(SecurityScheme)]
pub enum AdminAuth {
    Basic(AdminBasic),
    Query(AdminQueryKey),
    #[oai(fallback)]
    None,
}

impl AdminAuth {
    pub fn key(&self) -> Option<SecretString> {
        match self {
            AdminAuth::Basic(basic) => Some(basic.0.username.clone().into()),
            AdminAuth::Query(query) => Some(query.0.key.clone().into()),
            AdminAuth::None => None,
        }
    }
}

/// Every admin error: `{"errorCode":"2X310/1","errorMessage":"INVALID_KEY"}`.
#[derive(Debug, Object)]
pub struct AdminErrorBody {
    #[oai(rename = "errorCode")]
    pub error_code: String,
    #[oai(rename = "errorMessage")]
    pub error_message: String,
}

/// An admin failure: the codes of that API family, and nexkey's own (`…N…`) for the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminFailure {
    InvalidKey,
    NoApiKey,
    InvalidApiKey,
    TooManyBadKeys,
    /// A bad parameter or body; the text names it (`INVALID_REQUEST: page: …`).
    InvalidRequest(String),
    InvalidTransition,
    /// A state-changing call from another site (`Origin`, `Sec-Fetch-Site`).
    CrossSite,
    /// No such resource other than a license key (a pool, an activation, a DMP event).
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    RequestTimeout,
    StorageUnavailable,
    Internal,
}

impl AdminFailure {
    pub fn status(&self) -> StatusCode {
        match self {
            AdminFailure::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            AdminFailure::NoApiKey | AdminFailure::InvalidApiKey => StatusCode::UNAUTHORIZED,
            AdminFailure::CrossSite => StatusCode::FORBIDDEN,
            AdminFailure::InvalidKey | AdminFailure::NotFound => StatusCode::NOT_FOUND,
            AdminFailure::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AdminFailure::InvalidTransition => StatusCode::CONFLICT,
            AdminFailure::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            AdminFailure::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AdminFailure::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AdminFailure::TooManyBadKeys => StatusCode::TOO_MANY_REQUESTS,
            AdminFailure::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            AdminFailure::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn body(&self) -> AdminErrorBody {
        let (code, message) = match self {
            AdminFailure::InvalidKey => ("2X310/1", "INVALID_KEY"),
            AdminFailure::NoApiKey => ("2S290/6", "NO_API_KEY"),
            AdminFailure::InvalidApiKey => ("3S290/7", "INVALID_API_KEY"),
            AdminFailure::TooManyBadKeys => ("1S290/A", "TOO_MANY_REQUESTS_WITH_BAD_KEY"),
            AdminFailure::InvalidRequest(detail) => {
                return AdminErrorBody {
                    error_code: "1N290/1".into(),
                    error_message: format!("INVALID_REQUEST: {detail}"),
                };
            }
            AdminFailure::InvalidTransition => ("1N310/2", "INVALID_TRANSITION"),
            AdminFailure::CrossSite => ("1N290/3", "CROSS_SITE_REQUEST"),
            AdminFailure::NotFound => ("1N290/4", "NOT_FOUND"),
            AdminFailure::MethodNotAllowed => ("1N290/5", "METHOD_NOT_ALLOWED"),
            AdminFailure::PayloadTooLarge => ("1N290/6", "PAYLOAD_TOO_LARGE"),
            AdminFailure::UnsupportedMediaType => ("1N290/7", "UNSUPPORTED_MEDIA_TYPE"),
            AdminFailure::RequestTimeout => ("1N290/8", "REQUEST_TIMEOUT"),
            AdminFailure::StorageUnavailable => ("5N000/1", "STORAGE_UNAVAILABLE"),
            AdminFailure::Internal => ("5N000/2", "INTERNAL"),
        };
        AdminErrorBody {
            error_code: code.into(),
            error_message: message.into(),
        }
    }
}

impl From<Denied> for AdminFailure {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::NoApiKey => AdminFailure::NoApiKey,
            Denied::InvalidApiKey => AdminFailure::InvalidApiKey,
            Denied::TooManyBadKeys => AdminFailure::TooManyBadKeys,
        }
    }
}

impl From<Error> for AdminFailure {
    fn from(error: Error) -> Self {
        match error {
            Error::UnknownFulfillment(_) => AdminFailure::InvalidKey,
            Error::InvalidRequest(detail) => AdminFailure::InvalidRequest(detail),
            Error::NotFound => AdminFailure::NotFound,
            Error::InvalidTransition(_) => AdminFailure::InvalidTransition,
            Error::StorageUnavailable => AdminFailure::StorageUnavailable,
            // Failures of Nexway's calls, which no support action causes.
            Error::UnknownProduct(_)
            | Error::IdempotencyConflict
            | Error::ReferencesDisagree(_)
            | Error::PoolExhausted(_)
            | Error::KeyGeneration(_)
            | Error::Internal => {
                tracing::error!(error = %error, "admin call failed");
                AdminFailure::Internal
            }
        }
    }
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_request")]
pub enum AdminResponse<T: ToJSON + Send + Sync> {
    #[oai(status = 200)]
    Ok(Json<T>),
    /// 1N290/1 INVALID_REQUEST: a parameter or body is invalid; the message names it.
    #[oai(status = 400)]
    BadRequest(Json<AdminErrorBody>),
    /// 2S290/6 NO_API_KEY, 3S290/7 INVALID_API_KEY.
    #[oai(status = 401)]
    Unauthorized(
        Json<AdminErrorBody>,
        #[oai(header = "WWW-Authenticate")] String,
    ),
    /// 1N290/3 CROSS_SITE_REQUEST: a state-changing call from another site's page.
    #[oai(status = 403)]
    Forbidden(Json<AdminErrorBody>),
    /// 2X310/1 INVALID_KEY: no such license key; 1N290/4 NOT_FOUND: no such product
    /// pool, activation or DMP event.
    #[oai(status = 404)]
    NotFound(Json<AdminErrorBody>),
    /// 1N310/2 INVALID_TRANSITION: the license (or event) cannot take this action.
    #[oai(status = 409)]
    Conflict(Json<AdminErrorBody>),
    /// 1N290/7 UNSUPPORTED_MEDIA_TYPE: the body's content type is not the one documented.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<AdminErrorBody>),
    /// 1S290/A TOO_MANY_REQUESTS_WITH_BAD_KEY: this address sent too many bad keys; wait.
    #[oai(status = 429)]
    TooManyRequests(Json<AdminErrorBody>, #[oai(header = "Retry-After")] u64),
    /// 5N000/2 INTERNAL.
    #[oai(status = 500)]
    Internal(Json<AdminErrorBody>),
    /// 5N000/1 STORAGE_UNAVAILABLE: retry.
    #[oai(status = 503)]
    Unavailable(Json<AdminErrorBody>, #[oai(header = "Retry-After")] u64),
}

fn bad_request<T: ToJSON + Send + Sync>(error: poem::Error) -> AdminResponse<T> {
    if error.status() == poem::http::StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return AdminFailure::UnsupportedMediaType.into();
    }
    // poem names the parameter or the body in its message.
    AdminFailure::InvalidRequest(error.to_string()).into()
}

impl<T: ToJSON + Send + Sync> From<AdminFailure> for AdminResponse<T> {
    fn from(failure: AdminFailure) -> Self {
        let body = Json(failure.body());
        match failure {
            AdminFailure::InvalidRequest(_) => AdminResponse::BadRequest(body),
            AdminFailure::NoApiKey | AdminFailure::InvalidApiKey => {
                AdminResponse::Unauthorized(body, REALM_ADMIN.into())
            }
            AdminFailure::CrossSite => AdminResponse::Forbidden(body),
            AdminFailure::InvalidKey | AdminFailure::NotFound => AdminResponse::NotFound(body),
            AdminFailure::UnsupportedMediaType => AdminResponse::UnsupportedMediaType(body),
            AdminFailure::InvalidTransition => AdminResponse::Conflict(body),
            AdminFailure::TooManyBadKeys => AdminResponse::TooManyRequests(body, RETRY_BAD_KEY),
            AdminFailure::StorageUnavailable => {
                AdminResponse::Unavailable(body, RETRY_STORAGE.into())
            }
            // Transport failures are answered by the framework layer (api::edge), never by an
            // operation; a 500 here would be a bug.
            AdminFailure::MethodNotAllowed
            | AdminFailure::RequestTimeout
            | AdminFailure::PayloadTooLarge
            | AdminFailure::Internal => AdminResponse::Internal(body),
        }
    }
}
