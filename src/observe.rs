//! The HTTP layer's view of each call: a request id, one span with the operation, the
//! fulfillment id and the outcome, one log line, and the request metrics. Probes and scrapes
//! (`/health/*`, `/metrics`) pass through unobserved: they would drown the logs.

use std::sync::Arc;
use std::time::Instant;

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;
use tracing::field::Empty;

use crate::metrics::metrics;

pub const REQUEST_ID: &str = "x-request-id";

/// Paths that are neither logged nor counted.
fn is_quiet(path: &str) -> bool {
    matches!(path, "/health/live" | "/health/ready" | "/metrics")
}

/// A bounded name for the path, fit for a metric label (never the raw path: keys live in paths).
pub fn operation_of(path: &str) -> &'static str {
    const OPERATIONS: [&str; 6] = ["new", "renew", "upgrade", "suspend", "reactivate", "cancel"];
    if let Some(operation) = path.strip_prefix("/licenses/") {
        return OPERATIONS
            .into_iter()
            .find(|known| *known == operation)
            .unwrap_or("unknown");
    }
    if path.starts_with("/nexus/lkey/") {
        "lkey"
    } else if path.starts_with("/admin/") {
        "admin"
    } else if path.starts_with("/activation/") {
        "activation"
    } else if path == "/openapi.json" || path == "/docs" || path.starts_with("/docs/") {
        "docs"
    } else {
        "unknown"
    }
}

/// The caller's request id when it is sane (1 to 128 characters of `[A-Za-z0-9._:-]`), else a
/// fresh UUID: whatever is echoed and logged stays short and printable.
pub fn request_id_of(request: &Request) -> String {
    request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            (1..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// Wraps every request: see the module documentation.
pub async fn observe<E: Endpoint>(endpoint: Arc<E>, request: Request) -> poem::Result<Response> {
    if is_quiet(request.uri().path()) {
        return Ok(endpoint.call(request).await?.into_response());
    }
    let started = Instant::now();
    let operation = operation_of(request.uri().path());
    let request_id = request_id_of(&request);
    let client = crate::api::client_address(&request);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        operation,
        method = %request.method(),
        fulfillment_id = Empty,
        publisher_fulfillment_id = Empty,
        outcome = Empty,
    );
    let mut response = match endpoint.call(request).instrument(span.clone()).await {
        Ok(response) => response.into_response(),
        Err(error) => error.into_response(),
    };
    let status = response.status();
    let outcome = if status.is_success() {
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|value| value.as_bytes() == b"true");
        // The ids are only looked for when the span is logged (not at `NEXKEY_LOG=warn`):
        // reading them means re-parsing the answer.
        if operation_is_fulfillment(operation) && !span.is_disabled() {
            let body = read_body(&mut response).await;
            if let Some((nexway, publisher)) = fulfillment_ids(&body) {
                span.record("fulfillment_id", nexway);
                span.record("publisher_fulfillment_id", publisher);
            }
        }
        if replayed {
            metrics().replays.with_label_values(&[operation]).inc();
            "replayed".to_owned()
        } else {
            "ok".to_owned()
        }
    } else {
        let body = read_body(&mut response).await;
        let reason = error_code(&body).unwrap_or_else(|| format!("HTTP_{}", status.as_u16()));
        metrics()
            .refused
            .with_label_values(&[operation, &reason])
            .inc();
        reason
    };
    let elapsed = started.elapsed();
    let m = metrics();
    m.requests
        .with_label_values(&[operation, status.as_str()])
        .inc();
    m.latency
        .with_label_values(&[operation])
        .observe(elapsed.as_secs_f64());
    span.record("outcome", outcome.as_str());
    span.in_scope(|| {
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        if status.is_success() {
            tracing::info!(status = status.as_u16(), latency_ms, "request answered");
        } else {
            // Who was refused: the client's address (through trusted proxies), never a credential.
            let client = client.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
            tracing::info!(
                status = status.as_u16(),
                latency_ms,
                client,
                "request answered"
            );
        }
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(response)
}

fn operation_is_fulfillment(operation: &str) -> bool {
    !matches!(
        operation,
        "lkey" | "admin" | "activation" | "docs" | "unknown"
    )
}

/// Takes the (small, already in memory) answer body to look into it, and puts it back.
async fn read_body(response: &mut Response) -> Vec<u8> {
    let bytes = response.take_body().into_vec().await.unwrap_or_default();
    response.set_body(bytes.clone());
    bytes
}

/// `nexwayFulfillmentId` and `publisherFulfillmentId` of a fulfillment answer.
fn fulfillment_ids(body: &[u8]) -> Option<(String, String)> {
    let answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some((
        answer.get("nexwayFulfillmentId")?.as_str()?.to_owned(),
        answer.get("publisherFulfillmentId")?.as_str()?.to_owned(),
    ))
}

/// The error code of an error answer: `{"error":{"code"}}`, or the support side's
/// `{"errorMessage"}`.
fn error_code(body: &[u8]) -> Option<String> {
    let answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = answer
        .pointer("/error/code")
        .or_else(|| answer.get("errorMessage"))?
        .as_str()?;
    // `INVALID_REQUEST: page: …`: the code is what precedes the detail.
    let code = code.split(':').next().unwrap_or_default();
    // Codes are SCREAMING_SNAKE_CASE; anything else is not a label we want.
    (code.len() <= 64 && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
        .then(|| code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_a_bounded_set() {
        assert_eq!(operation_of("/licenses/new"), "new");
        assert_eq!(operation_of("/licenses/cancel"), "cancel");
        assert_eq!(operation_of("/licenses/K7QX-SECRET"), "unknown");
        assert_eq!(operation_of("/nexus/lkey/K7QX-1234"), "lkey");
        assert_eq!(operation_of("/admin/licenses"), "admin");
        assert_eq!(operation_of("/activation/validate"), "activation");
        assert_eq!(operation_of("/docs/index.css"), "docs");
        assert_eq!(operation_of("/whatever"), "unknown");
    }

    #[test]
    fn request_ids_are_taken_only_when_sane() {
        let with =
            |value: &str| request_id_of(&Request::builder().header(REQUEST_ID, value).finish());
        assert_eq!(with("abc-123_x.y:z"), "abc-123_x.y:z");
        for bad in ["", "has space", "semi;colon", "<script>", &"x".repeat(129)] {
            let id = with(bad);
            assert!(
                uuid::Uuid::parse_str(&id).is_ok(),
                "{bad:?} replaced by {id}"
            );
        }
        let generated = request_id_of(&Request::builder().finish());
        assert!(uuid::Uuid::parse_str(&generated).is_ok());
    }

    #[test]
    fn error_codes_are_read_from_both_error_shapes() {
        assert_eq!(
            error_code(br#"{"error":{"code":"IDEMPOTENCY_CONFLICT","message":"m"}}"#).as_deref(),
            Some("IDEMPOTENCY_CONFLICT")
        );
        assert_eq!(
            error_code(br#"{"errorCode":"2X310/1","errorMessage":"INVALID_KEY"}"#).as_deref(),
            Some("INVALID_KEY")
        );
        assert_eq!(
            error_code(br#"{"errorCode":"1N290/1","errorMessage":"INVALID_REQUEST: page: x"}"#)
                .as_deref(),
            Some("INVALID_REQUEST")
        );
        assert_eq!(error_code(b"<html>"), None);
        assert_eq!(error_code(br#"{"error":{"code":"lower case"}}"#), None);
    }
}
