//! The offline token of a validation, for products whose generator signs (`signed`): the
//! software keeps it and checks it with the product's public key when it cannot reach nexkey.
//!
//! `token = base64url(claims) "." base64url(signature)`, no padding, where `claims` is the JSON
//! `{"licenseKey","fingerprint","product","valid","code","expires","issuedAt"}` and the
//! Ed25519 signature covers `nexkey-validation.` followed by the first part (the text before the
//! dot). The prefix keeps a token's signature from ever being taken for a signed code's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use super::rules::Code;

pub const SIGNED_PREFIX: &str = "nexkey-validation.";

/// What a token asserts.
pub struct TokenClaims<'a> {
    pub license_key: &'a str,
    pub fingerprint: Option<&'a str>,
    pub product: &'a str,
    pub code: Code,
    pub expires: Option<NaiveDate>,
    pub issued_at: DateTime<Utc>,
}

/// The token, when `sign` can sign (None for generators without a key).
pub fn token(claims: &TokenClaims<'_>, sign: impl Fn(&[u8]) -> Option<[u8; 64]>) -> Option<String> {
    let body = json!({
        "licenseKey": claims.license_key,
        "fingerprint": claims.fingerprint,
        "product": claims.product,
        "valid": claims.code == Code::Valid,
        "code": claims.code.as_str(),
        "expires": claims.expires.map(|date| date.to_string()),
        "issuedAt": claims.issued_at.timestamp(),
    });
    let first = URL_SAFE_NO_PAD.encode(body.to_string());
    let signature = sign(format!("{SIGNED_PREFIX}{first}").as_bytes())?;
    Some(format!("{first}.{}", URL_SAFE_NO_PAD.encode(signature)))
}
