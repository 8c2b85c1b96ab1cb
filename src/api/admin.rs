//! The support side: `GET /nexus/lkey/{key}` in the purchase shape, and the admin API, in the
//! conventions of that API family (API key as the Basic user name or `?key=`, errors as
//! `{"errorCode","errorMessage"}`).

use std::sync::Arc;

use poem::Request;
use poem_openapi::ApiRequest;
use poem_openapi::auth::{ApiKey, Basic};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object, OpenApi, SecurityScheme};
use secrecy::SecretString;

use poem::http::StatusCode;

use super::ApiTags;
use super::activation::ActivationDto;
use super::admin_auth::{AdminGate, Denied};
use super::error::{REALM_ADMIN, RETRY_BAD_KEY, RETRY_STORAGE};
use super::params::{EventStateFilter, StatusFilter};
use super::purchase::PurchaseDto;
use crate::admin::{self, Filter};
use crate::error::Error;
use crate::fulfillment::{ManualAction, Service, Status};
use crate::store::pool;

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

type Answer<T> = Result<T, AdminFailure>;

/// One page of a search, in that API family's list form.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct PurchaseList {
    pub page: u64,
    pub per_page: u64,
    pub total_results: u64,
    pub total_pages: u64,
    pub results: Vec<PurchaseDto>,
}

/// A license with everything that happened to it.
#[derive(Debug, Object)]
pub struct LicenseDetail {
    pub purchase: PurchaseDto,
    pub events: Vec<EventDto>,
    /// The machines the license is activated on, first activated first.
    pub activations: Vec<ActivationDto>,
    /// What was reported about it to Nexway's DMP, oldest first.
    #[oai(rename = "dmpEvents")]
    pub dmp_events: Vec<DmpEventDto>,
}

/// An event for Nexway's DMP, as the outbox holds it.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct DmpEventDto {
    pub id: i64,
    /// The DMP action, e.g. `register licences`.
    pub action: String,
    /// pending | delivered | failed
    pub state: String,
    /// Delivery attempts so far (counted afresh after a retry by support).
    pub attempts: i32,
    /// When a pending event is next attempted.
    pub next_attempt_at: chrono::DateTime<chrono::Utc>,
    /// Why the last attempt did not deliver it (or the DMP's note on a duplicate).
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// The body sent to the DMP.
    pub payload: serde_json::Value,
}

impl From<entity::outbox_event::Model> for DmpEventDto {
    fn from(event: entity::outbox_event::Model) -> Self {
        DmpEventDto {
            id: event.id,
            action: event.action,
            state: event.state,
            attempts: event.attempts,
            next_attempt_at: event.next_attempt_at,
            last_error: event.last_error,
            created_at: event.created_at,
            updated_at: event.updated_at,
            payload: serde_json::from_str(&event.payload).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// One page of DMP events.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct DmpEventList {
    pub page: u64,
    pub per_page: u64,
    pub total_results: u64,
    pub total_pages: u64,
    pub results: Vec<DmpEventDto>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct EventDto {
    pub at: chrono::DateTime<chrono::Utc>,
    /// new | renew | upgrade | suspend | reactivate | cancel | revoke | reinstate
    pub operation: String,
    /// Null for the license's creation.
    pub from_status: Option<String>,
    pub to_status: String,
    pub reason: Option<String>,
    /// The Nexway call that caused it; null for support's own actions.
    pub nexway_fulfillment_id: Option<String>,
    pub publisher_fulfillment_id: Option<String>,
    pub order_id: Option<String>,
}

#[derive(Debug, Object)]
pub struct ActionRequest {
    /// Why, for the audit trail (1 to 1000 characters, no control characters).
    #[oai(validator(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    ))]
    pub reason: String,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ProductDto {
    pub publisher_product_id: String,
    pub name: Option<String>,
    pub max_quantity: u32,
    /// `perpetual` or e.g. `1y`.
    pub term: String,
    /// extend | reissue
    pub renew: String,
    /// keep | reissue
    pub upgrade: String,
    /// keep | reissue
    pub reactivate: String,
    pub generator: String,
    /// Machines one license may be activated on; null: unlimited.
    pub max_activations: Option<u32>,
    /// For a `pool` product, its codes by status; null otherwise.
    pub stock: Option<StockDto>,
}

#[derive(Debug, Object)]
pub struct StockDto {
    pub available: u64,
    pub allocated: u64,
    pub revoked: u64,
}

impl From<crate::store::pool::Stock> for StockDto {
    fn from(stock: crate::store::pool::Stock) -> Self {
        StockDto {
            available: stock.available,
            allocated: stock.allocated,
            revoked: stock.revoked,
        }
    }
}

/// What an import into a pool did.
#[derive(Debug, Object)]
pub struct ImportResult {
    /// Codes added.
    pub imported: u64,
    /// Codes already known (in any pool) or repeated in the file.
    pub skipped: u64,
    pub stock: StockDto,
}

/// The codes of a pool import: a CSV file. `text/csv` (never `text/plain`): a browser cannot
/// send it from another site without asking first (a CORS preflight nexkey never grants).
#[derive(ApiRequest)]
pub enum CsvBody {
    #[oai(content_type = "text/csv")]
    Csv(PlainText<String>),
    #[oai(content_type = "text/csv; charset=utf-8")]
    CsvUtf8(PlainText<String>),
}

impl CsvBody {
    fn text(&self) -> &str {
        match self {
            CsvBody::Csv(text) | CsvBody::CsvUtf8(text) => text,
        }
    }
}

pub struct AdminApi {
    service: Arc<Service>,
    gate: Arc<AdminGate>,
    purchase_url: Option<String>,
}

impl AdminApi {
    pub fn new(service: Arc<Service>, gate: Arc<AdminGate>, purchase_url: Option<String>) -> Self {
        AdminApi {
            service,
            gate,
            purchase_url,
        }
    }

    fn respond<T: ToJSON + Send + Sync>(&self, answer: Answer<T>) -> AdminResponse<T> {
        match answer {
            Ok(value) => AdminResponse::Ok(Json(value)),
            // Retry when the cooling-off period is over.
            Err(AdminFailure::TooManyBadKeys) => AdminResponse::TooManyRequests(
                Json(AdminFailure::TooManyBadKeys.body()),
                self.gate.cooldown_secs(),
            ),
            Err(failure) => failure.into(),
        }
    }

    fn admit(&self, request: &Request, auth: &AdminAuth) -> Answer<()> {
        let address = super::client_address(request);
        Ok(self.gate.check(address, auth.key().as_ref())?)
    }

    fn dto(&self, purchase: &admin::Purchase) -> PurchaseDto {
        PurchaseDto::new(
            purchase,
            self.service.catalog(),
            self.purchase_url.as_deref(),
        )
    }

    async fn detail(&self, key: &str) -> Answer<LicenseDetail> {
        let db = self.service.db();
        let purchase = admin::purchase(db, key)
            .await?
            .ok_or(AdminFailure::InvalidKey)?;
        let history = admin::history(db, purchase.license.id).await?;
        let events = history
            .into_iter()
            .map(|line| EventDto {
                at: line.event.created_at,
                operation: line.event.operation.as_str().to_owned(),
                from_status: line.event.from_status.map(|s| s.as_str().to_owned()),
                to_status: line.event.to_status.as_str().to_owned(),
                reason: line.event.reason,
                nexway_fulfillment_id: line.call.as_ref().map(|c| c.nexway_fulfillment_id.clone()),
                publisher_fulfillment_id: line
                    .call
                    .as_ref()
                    .map(|c| c.publisher_fulfillment_id.clone()),
                order_id: line
                    .call
                    .and_then(|c| (!c.order_id.is_empty()).then_some(c.order_id)),
            })
            .collect();
        let activations = admin::activations(db, purchase.license.id)
            .await?
            .into_iter()
            .map(|activation| ActivationDto::new(activation, &purchase.license.activation_code))
            .collect();
        let dmp_events = admin::license_dmp_events(db, purchase.license.id)
            .await?
            .into_iter()
            .map(DmpEventDto::from)
            .collect();
        Ok(LicenseDetail {
            purchase: self.dto(&purchase),
            events,
            activations,
            dmp_events,
        })
    }

    async fn act(&self, key: &str, action: ManualAction, reason: &str) -> Answer<LicenseDetail> {
        admin::act(self.service.db(), key, action, reason).await?;
        tracing::info!(action = action.as_str(), "license changed by support");
        self.detail(key).await
    }
}

#[OpenApi(tag = "ApiTags::Support")]
impl AdminApi {
    /// Look a license key up
    ///
    /// The purchase the key belongs to, in the purchase shape: whose it is, what it unlocks,
    /// whether it is active, when it expires, and the purchase it renewed or replaced (`parent`).
    /// Case and separators do not matter (`k7qxm 2hj9p…` finds `K7QXM-2HJ9P-…`). Opened in a
    /// browser (`Accept: text/html`), the same URL shows a readable page.
    #[oai(path = "/nexus/lkey/:key", method = "get", operation_id = "lkey")]
    async fn lkey(
        &self,
        request: &Request,
        auth: AdminAuth,
        /// The license key (case and separators do not matter).
        #[oai(validator(
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
        ))]
        key: Path<String>,
    ) -> AdminResponse<PurchaseDto> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                let purchase = admin::purchase(self.service.db(), &key).await?;
                Ok(self.dto(&purchase.ok_or(AdminFailure::InvalidKey)?))
            }
            .await,
        )
    }

    /// Search licenses
    ///
    /// Every given criterion must match; newest first. `status` is read today: `expired` finds
    /// live licenses past their end date.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/admin/licenses",
        method = "get",
        operation_id = "searchLicenses"
    )]
    async fn search(
        &self,
        request: &Request,
        auth: AdminAuth,
        #[oai(validator(
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
        ))]
        email: Query<Option<String>>,
        #[oai(
            name = "nexwayFulfillmentId",
            validator(
                min_length = 1,
                max_length = 256,
                pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
            )
        )]
        nexway_fulfillment_id: Query<Option<String>>,
        #[oai(
            name = "publisherFulfillmentId",
            validator(
                min_length = 1,
                max_length = 256,
                pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
            )
        )]
        publisher_fulfillment_id: Query<Option<String>>,
        #[oai(
            name = "orderId",
            validator(
                min_length = 1,
                max_length = 256,
                pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
            )
        )]
        order_id: Query<Option<String>>,
        /// `expired` finds active licenses past their end date.
        status: Query<Option<StatusFilter>>,
        /// `publisherProductId`
        #[oai(validator(
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
        ))]
        product: Query<Option<String>>,
        /// From 1 to 100000.
        #[oai(
            default = "first_page",
            validator(minimum(value = "1"), maximum(value = "100000"))
        )]
        page: Query<u64>,
        #[oai(
            name = "perPage",
            default = "default_per_page",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        per_page: Query<u64>,
    ) -> AdminResponse<PurchaseList> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                let status = status.0.map(Status::from);
                let filter = Filter {
                    email: email.0,
                    nexway_fulfillment_id: nexway_fulfillment_id.0,
                    publisher_fulfillment_id: publisher_fulfillment_id.0,
                    order_id: order_id.0,
                    status,
                    product: product.0,
                };
                let (found, total) =
                    admin::search(self.service.db(), &filter, page.0, per_page.0).await?;
                Ok(PurchaseList {
                    page: page.0,
                    per_page: per_page.0,
                    total_results: total,
                    total_pages: total.div_ceil(per_page.0),
                    results: found.iter().map(|p| self.dto(p)).collect(),
                })
            }
            .await,
        )
    }

    /// One license with its full event history
    #[oai(
        path = "/admin/licenses/:key",
        method = "get",
        operation_id = "getLicense"
    )]
    async fn license(
        &self,
        request: &Request,
        auth: AdminAuth,
        /// The license key (case and separators do not matter).
        #[oai(validator(
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
        ))]
        key: Path<String>,
    ) -> AdminResponse<LicenseDetail> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                self.detail(&key).await
            }
            .await,
        )
    }

    /// Revoke a license by hand
    ///
    /// The license becomes `canceled`; the reason is written to its events. Revoking a revoked
    /// license changes nothing.
    #[oai(
        path = "/admin/licenses/:key/revoke",
        method = "post",
        operation_id = "revokeLicense"
    )]
    async fn revoke(
        &self,
        request: &Request,
        auth: AdminAuth,
        /// The license key (case and separators do not matter).
        #[oai(validator(
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
        ))]
        key: Path<String>,
        body: Json<ActionRequest>,
    ) -> AdminResponse<LicenseDetail> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                self.act(&key, ManualAction::Revoke, &body.reason).await
            }
            .await,
        )
    }

    /// Reinstate a revoked or suspended license by hand
    ///
    /// The license becomes `active` (a superseded code cannot: its replacement is the live one);
    /// the reason is written to its events.
    #[oai(
        path = "/admin/licenses/:key/reinstate",
        method = "post",
        operation_id = "reinstateLicense"
    )]
    async fn reinstate(
        &self,
        request: &Request,
        auth: AdminAuth,
        /// The license key (case and separators do not matter).
        #[oai(validator(
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
        ))]
        key: Path<String>,
        body: Json<ActionRequest>,
    ) -> AdminResponse<LicenseDetail> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                self.act(&key, ManualAction::Reinstate, &body.reason).await
            }
            .await,
        )
    }

    /// Remove an activation by hand
    ///
    /// Frees the seat of a machine the buyer no longer has (the activation `id` is listed by
    /// `GET /admin/licenses/{key}`); answers the license as it stands. No such activation on this
    /// license: 404 `NOT_FOUND`.
    #[oai(
        path = "/admin/licenses/:key/activations/:id",
        method = "delete",
        operation_id = "removeActivation"
    )]
    async fn remove_activation(
        &self,
        request: &Request,
        auth: AdminAuth,
        key: Path<String>,
        id: Path<i64>,
    ) -> AdminResponse<LicenseDetail> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                if !admin::remove_activation(self.service.db(), &key, id.0).await? {
                    return Err(AdminFailure::NotFound);
                }
                tracing::info!(activation = id.0, "activation removed by support");
                self.detail(&key).await
            }
            .await,
        )
    }

    /// Events for Nexway's DMP
    ///
    /// The outbox, newest first: what was reported (`register licences` on a first activation),
    /// what is waiting for a retry and what the DMP refused (`failed`, with the reason).
    #[oai(path = "/admin/events", method = "get", operation_id = "listDmpEvents")]
    async fn dmp_events(
        &self,
        request: &Request,
        auth: AdminAuth,
        /// pending | delivered | failed
        state: Query<Option<EventStateFilter>>,
        /// From 1.
        #[oai(
            default = "first_page",
            validator(minimum(value = "1"), maximum(value = "100000"))
        )]
        page: Query<u64>,
        #[oai(
            name = "perPage",
            default = "default_per_page",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        per_page: Query<u64>,
    ) -> AdminResponse<DmpEventList> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                let state = state.0.map(Into::into);
                let (found, total) =
                    admin::events(self.service.db(), state, page.0, per_page.0).await?;
                Ok(DmpEventList {
                    page: page.0,
                    per_page: per_page.0,
                    total_results: total,
                    total_pages: total.div_ceil(per_page.0),
                    results: found.into_iter().map(DmpEventDto::from).collect(),
                })
            }
            .await,
        )
    }

    /// Retry a failed DMP event
    ///
    /// Puts a `failed` event back in line, due now, its attempts counted afresh (after fixing
    /// what the DMP refused, e.g. the credentials). A pending or delivered event: 409.
    #[oai(
        path = "/admin/events/:id/retry",
        method = "post",
        operation_id = "retryDmpEvent"
    )]
    async fn retry_dmp_event(
        &self,
        request: &Request,
        auth: AdminAuth,
        id: Path<i64>,
    ) -> AdminResponse<DmpEventDto> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                match admin::retry_event(self.service.db(), id.0).await? {
                    admin::Retried::Queued(event) => {
                        tracing::info!(event = id.0, "DMP event retried by support");
                        Ok(event.into())
                    }
                    admin::Retried::NotFailed => Err(AdminFailure::InvalidTransition),
                    admin::Retried::NoSuchEvent => Err(AdminFailure::NotFound),
                }
            }
            .await,
        )
    }

    /// The configured products, their policies and, for pool products, their stock
    #[oai(
        path = "/admin/products",
        method = "get",
        operation_id = "listProducts"
    )]
    async fn products(&self, request: &Request, auth: AdminAuth) -> AdminResponse<Vec<ProductDto>> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                let mut products = Vec::new();
                for (id, policy) in self.service.catalog().products() {
                    let generator = policy.generator.name().to_owned();
                    let stock = match generator.as_str() {
                        "pool" => Some(
                            pool::stock(self.service.db(), id)
                                .await
                                .map_err(Error::from)?
                                .into(),
                        ),
                        _ => None,
                    };
                    products.push(ProductDto {
                        publisher_product_id: id.to_owned(),
                        name: policy.name.clone(),
                        max_quantity: policy.max_quantity,
                        term: policy.term.to_string(),
                        renew: format!("{:?}", policy.renew).to_lowercase(),
                        upgrade: format!("{:?}", policy.upgrade).to_lowercase(),
                        reactivate: format!("{:?}", policy.reactivate).to_lowercase(),
                        generator,
                        max_activations: policy.max_activations,
                        stock,
                    });
                }
                Ok(products)
            }
            .await,
        )
    }

    /// Load codes into a product's pool
    ///
    /// The body is a CSV file: the first column of each line is a code (a header line `code` is
    /// skipped). Codes already known are skipped, never duplicated; each is handed out at most
    /// once. Same as `nexkey keys import --product P file.csv`.
    #[oai(
        path = "/admin/products/:product/pool",
        method = "post",
        operation_id = "importPoolCodes"
    )]
    async fn import_pool(
        &self,
        request: &Request,
        auth: AdminAuth,
        /// A product configured with the `pool` generator (any other: 404 NOT_FOUND).
        #[oai(validator(
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
        ))]
        product: Path<String>,
        body: CsvBody,
    ) -> AdminResponse<ImportResult> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                let is_pool = self
                    .service
                    .catalog()
                    .products()
                    .any(|(id, policy)| id == product.0.as_str() && policy.generator.name() == "pool");
                if !is_pool {
                    // This product has no pool to load: the resource does not exist.
                    return Err(AdminFailure::NotFound);
                }
                let codes = pool::parse_csv(body.text())
                    .map_err(|reason| AdminFailure::InvalidRequest(format!("body: {reason}")))?;
                let db = self.service.db();
                let report = pool::import(db, &product, &codes).await.map_err(Error::from)?;
                let stock = pool::stock(db, &product).await.map_err(Error::from)?;
                crate::metrics::pool_stock(&product, stock.available);
                tracing::info!(product = %product.0, imported = report.imported, "pool codes imported by support");
                Ok(ImportResult { imported: report.imported, skipped: report.skipped, stock: stock.into() })
            }
            .await,
        )
    }
}

fn first_page() -> u64 {
    1
}

fn default_per_page() -> u64 {
    25
}
