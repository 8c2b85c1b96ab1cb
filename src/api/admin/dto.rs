//! The support side's bodies, as the OpenAPI document describes them.

use poem_openapi::payload::PlainText;
use poem_openapi::{ApiRequest, Object};

use super::purchase::PurchaseDto;
use crate::api::activation::ActivationDto;

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

impl From<crate::admin::Event> for EventDto {
    fn from(line: crate::admin::Event) -> Self {
        let event = line.event;
        let call = line.call;
        EventDto {
            at: event.created_at,
            operation: event.operation.as_str().to_owned(),
            from_status: event.from_status.map(|status| status.as_str().to_owned()),
            to_status: event.to_status.as_str().to_owned(),
            reason: event.reason,
            nexway_fulfillment_id: call.as_ref().map(|c| c.nexway_fulfillment_id.clone()),
            publisher_fulfillment_id: call.as_ref().map(|c| c.publisher_fulfillment_id.clone()),
            order_id: call.and_then(|c| (!c.order_id.is_empty()).then_some(c.order_id)),
        }
    }
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
    pub fn text(&self) -> &str {
        match self {
            CsvBody::Csv(text) | CsvBody::CsvUtf8(text) => text,
        }
    }
}
