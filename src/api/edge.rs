//! What every answer owes browsers and clients, whatever produced it (an operation, the
//! framework, a middleware):
//! - state-changing support calls from another site's page are refused (`Origin`,
//!   `Sec-Fetch-Site`): the support agent's browser may hold cached Basic credentials;
//! - answers carrying codes or buyer data (`/licenses/…`, `/nexus/lkey/…`, `/admin/…`) are never
//!   cached (`Cache-Control: no-store`), and no answer is content-sniffed;
//! - a 405 says what is allowed (`Allow`, from the OpenAPI document's paths);
//! - the support side answers its errors in its own shape (`{"errorCode","errorMessage"}`), also
//!   those the framework or the middleware produced in the webhook's shape.

use std::sync::Arc;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};

use super::admin::AdminFailure;

/// The documented paths and their methods, to answer `Allow`.
pub struct Routes(Vec<(Vec<String>, String)>);

impl Routes {
    /// From the OpenAPI document: each path template (`/admin/licenses/{key}`) and its methods.
    pub fn from_spec(spec: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec).expect("the spec is JSON");
        let mut routes = Vec::new();
        for (path, operations) in spec["paths"].as_object().into_iter().flatten() {
            let mut methods: Vec<String> = operations
                .as_object()
                .into_iter()
                .flatten()
                .map(|(method, _)| method.to_ascii_uppercase())
                .collect();
            methods.sort();
            let segments = path.split('/').map(str::to_owned).collect();
            routes.push((segments, methods.join(", ")));
        }
        Routes(routes)
    }

    /// The methods of the documented path `path` matches, if any.
    fn allowed(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.split('/').collect();
        self.0.iter().find_map(|(template, methods)| {
            let matches = template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| {
                    t == s || (t.starts_with('{') && t.ends_with('}') && !s.is_empty())
                });
            matches.then_some(methods.as_str())
        })
    }
}

/// The support side: API keys, the `{"errorCode","errorMessage"}` shape.
pub fn is_support_path(path: &str) -> bool {
    path.starts_with("/admin/") || path == "/admin" || path.starts_with("/nexus/lkey/")
}

/// Paths whose answers carry activation codes, machines or buyer data.
fn carries_codes(path: &str) -> bool {
    is_support_path(path) || path.starts_with("/licenses/") || path.starts_with("/activation/")
}

/// Whether a browser says this request comes from another site's page. Requests without these
/// headers (Nexway, curl, scripts) are not browsers' and pass.
pub fn is_cross_site(request: &Request) -> bool {
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers.get(header::HOST).map(HeaderValue::as_bytes);
    let authority = origin
        .to_str()
        .ok()
        .and_then(|origin| origin.split_once("://"))
        .map(|(_, authority)| authority.as_bytes());
    authority.is_none() || authority != host
}

/// The content types a page can send cross-site without a CORS preflight.
fn is_form_type(request: &Request) -> bool {
    request.content_type().is_some_and(|content_type| {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        [
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "text/plain",
        ]
        .iter()
        .any(|form| essence.eq_ignore_ascii_case(form))
    })
}

pub async fn edge<E: Endpoint>(
    endpoint: Arc<E>,
    request: Request,
    routes: Arc<Routes>,
) -> poem::Result<Response> {
    let path = request.uri().path().to_owned();
    let support = is_support_path(&path);
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let mut response = if support && !safe && is_cross_site(&request) {
        tracing::warn!("cross-site request to the support side refused");
        admin_error(&AdminFailure::CrossSite)
    } else if support && !safe && is_form_type(&request) {
        // A type an HTML form can send without a preflight never changes anything here, on
        // any support write (those with no body included).
        admin_error(&AdminFailure::UnsupportedMediaType)
    } else {
        match endpoint.call(request).await {
            Ok(response) => response.into_response(),
            Err(error) => error.into_response(),
        }
    };
    if support && !response.status().is_success() {
        response = in_admin_shape(response).await;
    }
    let headers = response.headers_mut();
    if carries_codes(&path) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allowed) = routes.allowed(&path)
        && let Ok(value) = HeaderValue::from_str(allowed)
    {
        response.headers_mut().insert(header::ALLOW, value);
    }
    Ok(response)
}

pub fn admin_error(failure: &AdminFailure) -> Response {
    let mut response = poem_openapi::payload::Json(failure.body()).into_response();
    response.set_status(failure.status());
    response
}

/// An error answered in the webhook's shape (`{"error":{"code","message"}}`), re-answered in the
/// support side's; answers already in that shape, or not JSON (the lkey page), pass unchanged.
async fn in_admin_shape(mut response: Response) -> Response {
    let is_json = response
        .content_type()
        .is_some_and(|content_type| content_type.starts_with("application/json"));
    if !is_json {
        return response;
    }
    let body = response.take_body().into_vec().await.unwrap_or_default();
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let Some(error) = parsed.as_ref().and_then(|value| value.get("error")) else {
        response.set_body(body);
        return response;
    };
    let message = error["message"].as_str().unwrap_or_default().to_owned();
    let failure = match error["code"].as_str().unwrap_or_default() {
        "INVALID_REQUEST" => AdminFailure::InvalidRequest(message),
        "NOT_FOUND" => AdminFailure::NotFound,
        "METHOD_NOT_ALLOWED" => AdminFailure::MethodNotAllowed,
        "PAYLOAD_TOO_LARGE" => AdminFailure::PayloadTooLarge,
        "UNSUPPORTED_MEDIA_TYPE" => AdminFailure::UnsupportedMediaType,
        "REQUEST_TIMEOUT" => AdminFailure::RequestTimeout,
        "STORAGE_UNAVAILABLE" => AdminFailure::StorageUnavailable,
        "UNAUTHORIZED" => AdminFailure::NoApiKey,
        _ => AdminFailure::Internal,
    };
    let mut answer = admin_error(&failure);
    for name in [header::RETRY_AFTER, header::ALLOW] {
        if let Some(value) = response.headers().get(&name) {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_comes_from_the_documented_paths() {
        let routes = Routes::from_spec(&crate::app::openapi_json());
        assert_eq!(routes.allowed("/licenses/new"), Some("POST"));
        assert_eq!(routes.allowed("/admin/licenses/K7QX/revoke"), Some("POST"));
        assert_eq!(routes.allowed("/admin/licenses/K7QX"), Some("GET"));
        assert_eq!(routes.allowed("/nexus/lkey/K7QX"), Some("GET"));
        assert_eq!(routes.allowed("/nexus/lkey/"), None);
        assert_eq!(routes.allowed("/nowhere"), None);
    }

    #[test]
    fn cross_site_is_what_browsers_say_it_is() {
        let with = |headers: &[(&str, &str)]| {
            let mut builder = Request::builder().header("host", "support.example:8080");
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            is_cross_site(&builder.finish())
        };
        assert!(!with(&[]));
        assert!(!with(&[("sec-fetch-site", "same-origin")]));
        assert!(!with(&[("sec-fetch-site", "none")]));
        assert!(with(&[("sec-fetch-site", "cross-site")]));
        assert!(with(&[("sec-fetch-site", "same-site")]));
        assert!(!with(&[("origin", "https://support.example:8080")]));
        assert!(with(&[("origin", "https://evil.example")]));
        assert!(with(&[("origin", "null")]));
    }
}
