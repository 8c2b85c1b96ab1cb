//! Nexway's request signature (PROTOCOL.md section 3): HMAC-SHA256 over a canonical compact JSON
//! object made of the configured `signedFields`, read from the body as received.
//!
//! The canonical object's keys are the JSONPath strings, sorted; its values are the resolved
//! request values as strings (a string raw, an integer in decimal, a number without needless
//! fraction digits, `true`/`false`, null or missing `""`).

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// One step of a JSONPath: a member name or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Member(String),
    Index(usize),
}

/// A JSONPath of the subset Nexway's `signedFields` use: `$`, then `.name`, `['name']` or `[0]`
/// steps, resolving to one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    text: String,
    steps: Vec<Step>,
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix('$')
            .ok_or_else(|| format!("{text:?} must start with `$`"))?;
        let mut steps = Vec::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((start, c)) = chars.next() {
            match c {
                '.' => {
                    let mut name = String::new();
                    while let Some(&(_, c)) = chars.peek() {
                        if c == '.' || c == '[' {
                            break;
                        }
                        name.push(c);
                        chars.next();
                    }
                    if name.is_empty() || name == "*" {
                        return Err(format!("{text:?}: empty or wildcard member at {start}"));
                    }
                    steps.push(Step::Member(name));
                }
                '[' => {
                    let close = rest[start..]
                        .find(']')
                        .ok_or_else(|| format!("{text:?}: `[` without `]`"))?;
                    let inner = &rest[start + 1..start + close];
                    let step = if let Some(quoted) =
                        inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\''))
                    {
                        if quoted.contains('\'') {
                            return Err(format!("{text:?}: quotes inside a member name"));
                        }
                        Step::Member(quoted.to_owned())
                    } else if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()) {
                        Step::Index(
                            inner
                                .parse()
                                .map_err(|_| format!("{text:?}: index {inner} too large"))?,
                        )
                    } else {
                        return Err(format!(
                            "{text:?}: only `[n]` and `['name']` are supported, not [{inner}]"
                        ));
                    };
                    steps.push(step);
                    // Skip to just after the `]`.
                    for (i, _) in chars.by_ref() {
                        if i == start + close {
                            break;
                        }
                    }
                }
                _ => return Err(format!("{text:?}: unexpected {c:?} at {start}")),
            }
        }
        Ok(JsonPath {
            text: text.to_owned(),
            steps,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value at this path, if the body has one.
    pub fn resolve<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        self.steps.iter().try_fold(root, |value, step| match step {
            Step::Member(name) => value.as_object()?.get(name),
            Step::Index(index) => value.as_array()?.get(*index),
        })
    }
}

/// A resolved value as the canonical object carries it.
pub fn canonical_value(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Bool(flag)) => flag.to_string(),
        Some(Value::Number(number)) => {
            if let Some(integer) = number.as_i64() {
                integer.to_string()
            } else if let Some(integer) = number.as_u64() {
                integer.to_string()
            } else {
                format_number(number.as_f64().unwrap_or_default())
            }
        }
        // Arrays and objects are not scalars: they sign as their compact JSON text.
        Some(other) => other.to_string(),
    }
}

/// A number without needless fraction digits: `3.0` → `3`, `1.50` → `1.5`, never an exponent.
/// Rust's `Display` for `f64` prints the shortest text that reads back as the same number.
pub fn format_number(number: f64) -> String {
    if number == 0.0 {
        // Also -0.0: a sign on zero is no information worth refusing a call over.
        return "0".into();
    }
    number.to_string()
}

/// The canonical compact JSON object for `fields` (sorted by their JSONPath text).
pub fn canonical(body: &Value, fields: &[JsonPath]) -> String {
    let object: BTreeMap<&str, String> = fields
        .iter()
        .map(|path| (path.as_str(), canonical_value(path.resolve(body))))
        .collect();
    serde_json::to_string(&object).expect("a map of strings serialises")
}

/// HMAC-SHA256 of `message` keyed with the secret's UTF-8 bytes, as 64 lowercase hex characters.
pub fn sign(secret: &str, message: &str) -> String {
    hex::encode(digest(secret, message))
}

fn digest(secret: &str, message: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Why a signed call was refused: logged, never told to the caller (every refusal is one 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    MissingSignature,
    MalformedSignature,
    BodyNotJson,
    WrongSignature,
    MissingTimestamp,
    StaleTimestamp,
}

/// Refuses calls whose signed timestamp is further than `window` from now.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    pub field: JsonPath,
    pub window_millis: i64,
}

/// Verifies the signature header against every configured secret.
pub struct SignatureVerifier {
    pub header: String,
    fields: Vec<JsonPath>,
    secrets: Vec<SecretString>,
    replay: Option<ReplayWindow>,
}

impl std::fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureVerifier")
            .field("header", &self.header)
            .field("fields", &self.fields.len())
            .field("secrets", &self.secrets.len())
            .field("replay", &self.replay)
            .finish()
    }
}

impl SignatureVerifier {
    pub fn new(
        header: String,
        mut fields: Vec<JsonPath>,
        secrets: Vec<SecretString>,
        replay: Option<ReplayWindow>,
    ) -> Self {
        fields.sort_by(|a, b| a.text.cmp(&b.text));
        fields.dedup();
        SignatureVerifier {
            header,
            fields,
            secrets,
            replay,
        }
    }

    /// Checks `presented` (the header's value) against the body; `now_millis` is the current time.
    pub fn verify(
        &self,
        presented: Option<&str>,
        body: Result<&Value, ()>,
        now_millis: i64,
    ) -> Result<(), Refusal> {
        let presented = presented.ok_or(Refusal::MissingSignature)?.trim();
        let mut presented_digest = [0u8; 32];
        hex::decode_to_slice(presented, &mut presented_digest)
            .map_err(|_| Refusal::MalformedSignature)?;
        let body = body.map_err(|()| Refusal::BodyNotJson)?;
        let message = canonical(body, &self.fields);
        // Every secret is tried, each in constant time, whatever the outcome of the others.
        let matched = self
            .secrets
            .iter()
            .fold(subtle::Choice::from(0), |found, secret| {
                found | digest(secret.expose_secret(), &message).ct_eq(&presented_digest)
            });
        if !bool::from(matched) {
            return Err(Refusal::WrongSignature);
        }
        if let Some(replay) = &self.replay {
            let millis = replay
                .field
                .resolve(body)
                .and_then(epoch_millis)
                .ok_or(Refusal::MissingTimestamp)?;
            if now_millis.abs_diff(millis) > replay.window_millis.unsigned_abs() {
                return Err(Refusal::StaleTimestamp);
            }
        }
        Ok(())
    }
}

/// A signed timestamp as Nexway types it: a number, a string, or (in `additionalData`, whose
/// values are lists) a list of exactly one of those.
fn epoch_millis(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Array(values) if values.len() == 1 => epoch_millis(&values[0]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn paths(texts: &[&str]) -> Vec<JsonPath> {
        texts.iter().map(|t| JsonPath::parse(t).unwrap()).collect()
    }

    #[test]
    fn a_signed_timestamp_may_be_a_number_a_string_or_a_list_of_one() {
        for value in [
            json!(1_700_000_000_000_i64),
            json!(" 1700000000000"),
            json!(["1700000000000"]),
        ] {
            assert_eq!(epoch_millis(&value), Some(1_700_000_000_000), "{value}");
        }
        for value in [json!([]), json!(["1", "2"]), json!("soon"), json!(null)] {
            assert_eq!(epoch_millis(&value), None, "{value}");
        }
    }

    #[test]
    fn the_published_test_vector() {
        let body: Value = serde_json::from_str(
            r#"{"checkout":{"orderId":"ORD-42"},"product":{"publisherProductId":"PRD-9","quantity":3}}"#,
        )
        .unwrap();
        let fields = paths(&[
            "$.product.quantity",
            "$.checkout.orderId",
            "$.product.publisherProductId",
        ]);
        let verifier = SignatureVerifier::new("X-Nexway-Signature".into(), fields, vec![], None);
        let message = canonical(&body, &verifier.fields);
        assert_eq!(
            message,
            r#"{"$.checkout.orderId":"ORD-42","$.product.publisherProductId":"PRD-9","$.product.quantity":"3"}"#
        );
        assert_eq!(
            sign("s3cret", &message),
            "a66ccb600993e538aa50cc7b612785b8919bae518242dbd96c8fde8e4558cc9b"
        );
    }

    #[test]
    fn paths_resolve_members_indexes_and_quoted_names() {
        let body = json!({"a": {"b": [{"c": 1}, {"c": "two"}], "d e": true, "n": null}});
        let at = |p: &str| canonical_value(JsonPath::parse(p).unwrap().resolve(&body));
        assert_eq!(at("$.a.b[0].c"), "1");
        assert_eq!(at("$.a.b[1].c"), "two");
        assert_eq!(at("$.a['d e']"), "true");
        assert_eq!(at("$.a.n"), "");
        assert_eq!(at("$.a.missing"), "");
        assert_eq!(at("$.a.b[7].c"), "");
        assert_eq!(at("$.a.b.c"), "", "a member of an array is missing");
        for bad in [
            "a.b", "$.", "$.a[", "$.a[x]", "$.*", "$..a", "$a", "$.a[-1]",
        ] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_lose_needless_fraction_digits() {
        let value = |text: &str| canonical_value(Some(&serde_json::from_str(text).unwrap()));
        assert_eq!(value("3.0"), "3");
        assert_eq!(value("1.50"), "1.5");
        assert_eq!(value("29.99"), "29.99");
        assert_eq!(value("-0.0"), "0");
        assert_eq!(value("1e3"), "1000");
        assert_eq!(value("1.5e-7"), "0.00000015");
        assert_eq!(value("-42"), "-42");
        assert_eq!(value("18446744073709551615"), "18446744073709551615");
        assert_eq!(value("false"), "false");
    }

    #[test]
    fn any_configured_secret_verifies_and_each_refusal_is_told_apart_in_logs() {
        let body = json!({"checkout": {"orderId": "O-1"}, "additionalData": {"RequestTimestamp": 1_000_000}});
        let fields = paths(&["$.checkout.orderId", "$.additionalData.RequestTimestamp"]);
        let replay = ReplayWindow {
            field: JsonPath::parse("$.additionalData.RequestTimestamp").unwrap(),
            window_millis: 300_000,
        };
        let verifier = SignatureVerifier::new(
            "X-Nexway-Signature".into(),
            fields,
            vec![
                "old-secret".to_string().into(),
                "new-secret".to_string().into(),
            ],
            Some(replay),
        );
        let message = canonical(&body, &verifier.fields);
        let now = 1_000_000 + 299_000;
        for secret in ["old-secret", "new-secret"] {
            let signature = sign(secret, &message);
            assert_eq!(verifier.verify(Some(&signature), Ok(&body), now), Ok(()));
            assert_eq!(
                verifier.verify(Some(&signature.to_uppercase()), Ok(&body), now),
                Ok(()),
                "hex digits in either case"
            );
            assert_eq!(
                verifier.verify(Some(&signature), Ok(&body), 1_000_000 + 301_000),
                Err(Refusal::StaleTimestamp)
            );
            assert_eq!(
                verifier.verify(Some(&signature), Ok(&body), 1_000_000 - 301_000),
                Err(Refusal::StaleTimestamp),
                "from the future too"
            );
        }
        let forged = sign("rotated-out", &message);
        assert_eq!(
            verifier.verify(Some(&forged), Ok(&body), now),
            Err(Refusal::WrongSignature)
        );
        assert_eq!(
            verifier.verify(None, Ok(&body), now),
            Err(Refusal::MissingSignature)
        );
        assert_eq!(
            verifier.verify(Some("zz"), Ok(&body), now),
            Err(Refusal::MalformedSignature)
        );
        assert!(!format!("{verifier:?}").contains("secret\""));
        assert!(!format!("{verifier:?}").contains("new-secret"));
    }

    proptest! {
        #[test]
        fn formatted_floats_read_back_exactly_without_needless_digits(number in any::<f64>().prop_filter("finite", |n| n.is_finite())) {
            let text = format_number(number);
            prop_assert_eq!(text.parse::<f64>().unwrap(), number);
            prop_assert!(!text.contains(['e', 'E']), "{}", text);
            if let Some((_, fraction)) = text.split_once('.') {
                prop_assert!(!fraction.is_empty() && !fraction.ends_with('0'), "{}", text);
            }
        }

        #[test]
        fn integral_floats_format_as_integers(integer in -(1i64 << 53)..(1i64 << 53)) {
            let as_float = serde_json::from_str::<Value>(&format!("{integer}.0")).unwrap();
            prop_assert_eq!(canonical_value(Some(&as_float)), integer.to_string());
            // Halves are exact in binary while the integer part leaves room for the fraction.
            if integer.unsigned_abs() < 1 << 40 {
                let padded = serde_json::from_str::<Value>(&format!("{integer}.500")).unwrap();
                prop_assert_eq!(canonical_value(Some(&padded)), format!("{integer}.5"));
            }
        }

        #[test]
        fn canonical_text_is_valid_json_with_sorted_keys(body in "\\PC{0,64}", key in "[a-z]{1,8}") {
            let value = json!({ key.clone(): body.clone() });
            let fields = vec![JsonPath::parse(&format!("$.{key}")).unwrap(), JsonPath::parse("$.zz").unwrap()];
            let text = canonical(&value, &fields);
            let back: BTreeMap<String, String> = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(back.get(&format!("$.{key}")), Some(&body));
        }
    }
}
