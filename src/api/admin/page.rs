//! The lkey URL opened in a browser: a plain page of the same facts, with no external assets, so
//! support needs nothing but a browser. The API key is read as in the JSON API.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::web::headers::authorization::Basic;
use poem::web::headers::{Authorization, HeaderMapExt};
use poem::{Request, Response};
use secrecy::SecretString;

use super::{AdminFailure, AdminGate};
use crate::admin::{self, LicenseFacts};
use crate::api::params::{MAX_PARAM, check_text};
use crate::fulfillment::{Catalog, Service, Status};

pub const PREFIX: &str = "/nexus/lkey/";

/// Whether this request is a browser asking for an lkey page rather than a client for JSON.
pub fn wants_html(request: &Request) -> bool {
    request.method() == poem::http::Method::GET
        && request.uri().path().starts_with(PREFIX)
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|accept| accept.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
}

pub struct LkeyPage {
    pub service: Arc<Service>,
    pub gate: Arc<AdminGate>,
    pub purchase_url: Option<String>,
}

impl LkeyPage {
    pub async fn render(&self, request: &Request) -> Response {
        let query: HashMap<String, String> = request.params().unwrap_or_default();
        let key = request
            .headers()
            .typed_get::<Authorization<Basic>>()
            .map(|basic| basic.username().to_owned())
            .or_else(|| query.get("key").cloned())
            .map(SecretString::from);
        if let Err(denied) = self
            .gate
            .check(crate::api::client_address(request), key.as_ref())
        {
            return failure_page(denied.into());
        }
        let raw = &request.uri().path()[PREFIX.len()..];
        // The key as typed in the address bar (`%20` for a space).
        let wanted = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
        if let Err(failure) = check_text("key", &wanted, MAX_PARAM) {
            return failure_page(failure);
        }
        let facts = match admin::facts(self.service.db(), &wanted).await {
            Ok(Some(facts)) => facts,
            Ok(None) => return failure_page(AdminFailure::InvalidKey),
            Err(error) => return failure_page(error.into()),
        };
        html(StatusCode::OK, &page(&facts, self.service.catalog()))
    }
}

fn page(facts: &LicenseFacts, catalog: &Catalog) -> String {
    let purchase = &facts.purchase;
    let license = &purchase.license;
    let customer = &purchase.customer;
    let status = purchase.status.as_str();
    let mut body = String::new();
    let trial = if license.trial {
        " <span class=\"status trial\">trial</span>"
    } else {
        ""
    };
    let _ = write!(
        body,
        "<h1><code>{}</code> <span class=\"status {status}\">{status}</span>{trial}</h1>",
        escape(&license.activation_code)
    );
    let mut rows = vec![
        (
            "Product",
            format!(
                "{} ({})",
                escape(purchase.product_name(catalog)),
                escape(&license.publisher_product_id)
            ),
        ),
        (
            "Customer",
            format!(
                "{} &lt;{}&gt;",
                isolate(&purchase.buyer_name()),
                isolate(&customer.email)
            ),
        ),
        (
            "Active now",
            yes_no(purchase.status == Status::Active).into(),
        ),
        (
            "Canceled",
            yes_no(purchase.status == Status::Canceled).into(),
        ),
        ("Purchased", license.created_at.to_rfc3339()),
        (
            "Expires",
            license.end_date.map_or_else(
                || "never (perpetual)".into(),
                |end| format!("{end} (end of day, UTC)"),
            ),
        ),
        ("Generator", escape(&license.generator)),
    ];
    for (name, value) in [
        ("companyName", &customer.company_name),
        ("nexwayUserId", &customer.nexway_user_id),
    ] {
        if let Some(value) = value {
            rows.push(("Customer detail", format!("{name}: {}", isolate(value))));
        }
    }
    for (name, value) in purchase.references() {
        if let Some(value) = value {
            rows.push(("Reference", format!("{name}: {}", isolate(value))));
        }
    }
    for previous in purchase.ancestors() {
        rows.push((
            "Replaces",
            format!(
                "<code>{}</code> ({})",
                escape(&previous.license.activation_code),
                previous.status.as_str()
            ),
        ));
    }
    // Every value above is escaped where it is built.
    body.push_str("<table>");
    for (name, value) in rows {
        let _ = write!(body, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    body.push_str("</table><h2>History</h2><table><tr><th>When</th><th>What</th><th>Status</th><th>Why</th><th>Nexway fulfillment</th></tr>");
    for line in &facts.history {
        let event = &line.event;
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{} &rarr; {}</td><td>{}</td><td>{}</td></tr>",
            event.created_at.to_rfc3339(),
            event.operation.as_str(),
            event.from_status.map_or("", |status| status.as_str()),
            event.to_status.as_str(),
            isolate(event.reason.as_deref().unwrap_or("")),
            escape(
                line.call
                    .as_ref()
                    .map(|c| c.nexway_fulfillment_id.as_str())
                    .unwrap_or("")
            ),
        );
    }
    body.push_str("</table>");
    let machines = &facts.activations;
    let _ = write!(body, "<h2>Activations ({})</h2>", machines.len());
    if machines.is_empty() {
        body.push_str("<p>Not activated on any machine.</p>");
    } else {
        body.push_str(
            "<table><tr><th>Id</th><th>Activated</th><th>Machine</th><th>Fingerprint</th></tr>",
        );
        for machine in machines {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                machine.id,
                machine.created_at.to_rfc3339(),
                escape(machine.name.as_deref().unwrap_or("")),
                escape(&machine.fingerprint),
            );
        }
        body.push_str("</table>");
    }
    document(&format!("License {}", license.activation_code), &body)
}

fn failure_page(failure: AdminFailure) -> Response {
    let error = failure.body();
    let explanation = match &failure {
        AdminFailure::NoApiKey | AdminFailure::InvalidApiKey => {
            "An admin API key is required: enter it as the user name, or add ?key=… to the URL."
        }
        AdminFailure::InvalidKey => "No license has this key.",
        AdminFailure::TooManyBadKeys => {
            "Too many bad API keys from this address: wait a few minutes."
        }
        _ => "The lookup failed; try again.",
    };
    let body = format!(
        "<h1>{}</h1><p>{explanation}</p><p><code>{}</code></p>",
        escape(&error.error_message),
        escape(&error.error_code)
    );
    let status = failure.status();
    let mut response = html(status, &document(&error.error_message, &body));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static(crate::api::error::REALM_ADMIN),
        );
    }
    response
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{} · nexkey</title><style>\
         body{{font:16px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}}\
         table{{border-collapse:collapse;width:100%;margin-bottom:1.5rem}}\
         th,td{{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}}\
         th{{width:12rem;color:#555;font-weight:600}}code{{font-size:1.05em}}\
         .status{{font-size:.7em;padding:.15em .6em;border-radius:1em;background:#eee;vertical-align:middle}}\
         bdi,td{{unicode-bidi:isolate}}\
         .active{{background:#d4f4dd}}.suspended{{background:#fff0c2}}.canceled,.superseded,.expired{{background:#f8d7da}}\
         </style></head><body>{body}</body></html>",
        escape(title)
    )
}

fn html(status: StatusCode, document: &str) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        // No script, no external anything, never framed; the key in the URL never leaves as a
        // Referer.
        .header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::X_FRAME_OPTIONS, "DENY")
        .body(document.to_owned())
}

/// The page's only style is inline; nothing else may load, run, frame it or be submitted.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A buyer's (or support's) free text, escaped and isolated: a right-to-left override or a
/// zero-width character inside cannot reorder or disguise what surrounds it.
fn isolate(text: &str) -> String {
    format!("<bdi>{}</bdi>", escape(text))
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}
