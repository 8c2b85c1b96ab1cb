//! Codes that carry their own claims, signed with Ed25519: the publisher's software verifies
//! them offline with the public key alone.
//!
//! Format (version 1), before encoding:
//!
//! | bytes | content |
//! |-------|---------|
//! | 1     | version, `1` |
//! | 2     | expiry: days since 1970-01-01, big-endian; `0` = perpetual |
//! | 4     | customer reference: first 4 bytes of SHA-256 of the lowercased e-mail address |
//! | 4     | serial: random, so two codes of one buyer differ |
//! | n     | product: the `publisherProductId`, UTF-8 |
//! | 64    | Ed25519 signature of everything above |
//!
//! Encoded in Crockford base32 (default; case-insensitive, safe to read aloud) or base64url
//! without padding (shorter), after an optional prefix and `-`. For an 8-character product id
//! that is 133 or 111 characters: meant to be pasted, not typed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Days, NaiveDate};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{
    FileEncoding, Key, KeyFile, KeyGenError, KeyGenerator, KeyRequest, Verdict, base32,
    validate_prefix,
};

const VERSION: u8 = 1;
const HEADER: usize = 1 + 2 + 4 + 4;
const SIGNATURE: usize = 64;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeEncoding {
    #[default]
    Base32,
    Base64url,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedSettings {
    /// The Ed25519 private key (32-byte seed, base64url), as `nexkey keys keypair` prints it.
    pub private_key: SecretString,
    #[serde(default)]
    pub encoding: CodeEncoding,
    /// Put before the code, followed by `-`.
    #[serde(default)]
    pub prefix: String,
    /// When set, the code also ships as a text file of this name (a license file).
    #[serde(default)]
    pub file_name: Option<String>,
}

impl SignedSettings {
    pub fn validate(&self) -> Result<(), String> {
        signing_key(&self.private_key)?;
        validate_prefix(&self.prefix)?;
        if self.file_name.as_deref().is_some_and(str::is_empty) {
            return Err("file_name must not be empty".into());
        }
        Ok(())
    }
}

fn signing_key(private_key: &SecretString) -> Result<SigningKey, String> {
    let seed = URL_SAFE_NO_PAD
        .decode(private_key.expose_secret().trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or("private_key must be 32 bytes in base64url, as `nexkey keys keypair` prints it")?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A fresh key pair, both halves base64url.
pub struct KeyPair {
    pub private_key: SecretString,
    pub public_key: String,
}

impl KeyPair {
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let key = SigningKey::from_bytes(&seed);
        KeyPair {
            private_key: URL_SAFE_NO_PAD.encode(seed).into(),
            public_key: URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
        }
    }
}

/// What a signed code says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub product: String,
    /// 8 hex characters: compare with [`customer_reference`] of the address the user gives.
    pub customer: String,
    /// Last day of validity; None for a perpetual license.
    pub expires: Option<NaiveDate>,
    pub serial: u32,
}

/// The customer reference of an e-mail address as signed codes carry it.
pub fn customer_reference(email: &str) -> [u8; 4] {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    digest[..4].try_into().expect("4 bytes")
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")
}

/// The end date as signed codes carry it: days since 1970-01-01 in 16 bits, 0 for perpetual.
fn expiry_days(end_date: Option<NaiveDate>) -> Result<u16, String> {
    let Some(date) = end_date else { return Ok(0) };
    u16::try_from((date - epoch()).num_days())
        .ok()
        .filter(|&days| days > 0)
        .ok_or_else(|| {
            let last = epoch() + chrono::Days::new(u16::MAX.into());
            format!("end date {date} is out of the signed generator's range (1970-01-02 to {last})")
        })
}

pub struct SignedGenerator {
    key: SigningKey,
    settings: SignedSettings,
}

impl SignedGenerator {
    pub fn new(settings: SignedSettings) -> Result<Self, String> {
        Ok(SignedGenerator {
            key: signing_key(&settings.private_key)?,
            settings,
        })
    }

    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes())
    }
}

impl KeyGenerator for SignedGenerator {
    fn name(&self) -> &str {
        "signed"
    }

    fn kind(&self) -> super::GeneratorKind {
        super::GeneratorKind::Signed
    }

    fn check_end_date(&self, end_date: Option<NaiveDate>) -> Result<(), String> {
        expiry_days(end_date).map(|_| ())
    }

    fn generate(&self, request: &KeyRequest<'_>) -> Result<Key, KeyGenError> {
        let expiry = expiry_days(request.end_date).map_err(KeyGenError::Failed)?;
        let mut payload = Vec::with_capacity(HEADER + request.product.len() + SIGNATURE);
        payload.push(VERSION);
        payload.extend_from_slice(&expiry.to_be_bytes());
        payload.extend_from_slice(&customer_reference(request.customer));
        payload.extend_from_slice(&rand::rng().next_u32().to_be_bytes());
        payload.extend_from_slice(request.product.as_bytes());
        let signature = self.key.sign(&payload);
        payload.extend_from_slice(&signature.to_bytes());
        let encoded = match self.settings.encoding {
            CodeEncoding::Base32 => base32::encode(&payload),
            CodeEncoding::Base64url => URL_SAFE_NO_PAD.encode(&payload),
        };
        let code = match self.settings.prefix.as_str() {
            "" => encoded,
            prefix => format!("{prefix}-{encoded}"),
        };
        let file = self.settings.file_name.as_ref().map(|file_name| KeyFile {
            data: format!("{code}\n"),
            encoding: FileEncoding::Text,
            charset: Some("utf-8".into()),
            file_name: file_name.clone(),
        });
        Ok(Key { code, file })
    }

    fn sign(&self, message: &[u8]) -> Option<[u8; 64]> {
        Some(self.key.sign(message).to_bytes())
    }

    fn verify(&self, product: &str, code: &str) -> Verdict {
        let code = match self.settings.prefix.as_str() {
            "" => code.trim(),
            prefix => code
                .trim()
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('-'))
                .unwrap_or(""),
        };
        let public_key = self.key.verifying_key();
        match verify_with(&public_key, code) {
            Ok(claims) if claims.product == product => Verdict::Genuine(claims.to_string()),
            Ok(claims) => Verdict::Forged(format!("signed for product {}", claims.product)),
            Err(reason) => Verdict::Forged(reason),
        }
    }
}

impl std::fmt::Display for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "product {}, customer {}, ", self.product, self.customer)?;
        match self.expires {
            Some(date) => write!(f, "expires {date}")?,
            None => f.write_str("perpetual")?,
        }
        write!(f, ", serial {:08x}", self.serial)
    }
}

/// Verifies a signed code (without prefix, either encoding) with a base64url public key: what the
/// publisher's software does offline. Returns the claims of a genuine code.
pub fn verify_signed(public_key: &str, code: &str) -> Result<Claims, String> {
    let key = URL_SAFE_NO_PAD
        .decode(public_key.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
        .ok_or("the public key must be 32 bytes in base64url")?;
    verify_with(&key, code.trim())
}

fn verify_with(key: &VerifyingKey, code: &str) -> Result<Claims, String> {
    // Either encoding may be given; a string may happen to decode as both, so try each.
    let candidates = [base32::decode(code), URL_SAFE_NO_PAD.decode(code).ok()];
    let mut outcome = Err("not a signed code".to_string());
    for bytes in candidates.into_iter().flatten() {
        if bytes.len() <= HEADER + SIGNATURE {
            continue;
        }
        outcome = claims_of(key, &bytes);
        if outcome.is_ok() {
            break;
        }
    }
    outcome
}

fn claims_of(key: &VerifyingKey, bytes: &[u8]) -> Result<Claims, String> {
    let (payload, signature) = bytes.split_at(bytes.len() - SIGNATURE);
    let signature = Signature::from_slice(signature).map_err(|_| "malformed signature")?;
    key.verify_strict(payload, &signature)
        .map_err(|_| "the signature does not match".to_string())?;
    if payload[0] != VERSION {
        return Err(format!("unknown version {}", payload[0]));
    }
    let days = u16::from_be_bytes([payload[1], payload[2]]);
    Ok(Claims {
        product: String::from_utf8(payload[HEADER..].to_vec())
            .map_err(|_| "product is not UTF-8")?,
        customer: hex::encode(&payload[3..7]),
        expires: (days > 0).then(|| epoch() + Days::new(u64::from(days))),
        serial: u32::from_be_bytes(payload[7..11].try_into().expect("4 bytes")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator(encoding: CodeEncoding, file_name: Option<&str>) -> (SignedGenerator, String) {
        let pair = KeyPair::generate();
        let generator = SignedGenerator::new(SignedSettings {
            private_key: pair.private_key,
            encoding,
            prefix: String::new(),
            file_name: file_name.map(str::to_owned),
        })
        .unwrap();
        assert_eq!(generator.public_key(), pair.public_key);
        (generator, pair.public_key)
    }

    fn request(end_date: Option<NaiveDate>) -> KeyRequest<'static> {
        KeyRequest {
            product: "ACME-PRO",
            customer: "Ada@Example.com",
            fulfillment: "F-1",
            call: "new:F-1:",
            index: 0,
            attempt: 0,
            end_date,
        }
    }

    #[test]
    fn codes_carry_verifiable_claims_in_both_encodings() {
        let end = NaiveDate::from_ymd_opt(2027, 11, 22);
        for (encoding, length) in [(CodeEncoding::Base32, 133), (CodeEncoding::Base64url, 111)] {
            let (generator, public_key) = generator(encoding, None);
            let key = generator.generate(&request(end)).unwrap();
            assert_eq!(key.code.len(), length, "{}", key.code);
            assert_eq!(key.file, None);
            let claims = verify_signed(&public_key, &key.code).unwrap();
            assert_eq!(claims.product, "ACME-PRO");
            assert_eq!(claims.expires, end);
            assert_eq!(
                claims.customer,
                hex::encode(customer_reference("ada@example.com"))
            );
            assert!(matches!(
                generator.verify("ACME-PRO", &key.code),
                Verdict::Genuine(_)
            ));
            assert!(matches!(
                generator.verify("ACME-LITE", &key.code),
                Verdict::Forged(_)
            ));
        }
        let (generator, public_key) = generator(CodeEncoding::Base32, None);
        let perpetual = generator.generate(&request(None)).unwrap().code;
        assert_eq!(
            verify_signed(&public_key, &perpetual).unwrap().expires,
            None
        );
        // Base32 forgives case.
        assert!(verify_signed(&public_key, &perpetual.to_lowercase()).is_ok());
        // Two codes of the same position differ (the serial).
        assert_ne!(generator.generate(&request(None)).unwrap().code, perpetual);
    }

    #[test]
    fn forged_and_altered_codes_are_refused() {
        let (generator, public_key) = generator(CodeEncoding::Base64url, None);
        let code = generator.generate(&request(None)).unwrap().code;
        // Another key pair signed it.
        let (_, stranger) = super::tests::generator(CodeEncoding::Base64url, None);
        assert!(verify_signed(&stranger, &code).is_err());
        // Any altered character (the claims or the signature) breaks it.
        for position in [2, 10, 20, code.len() - 2] {
            let mut altered = code.clone().into_bytes();
            altered[position] = if altered[position] == b'A' {
                b'B'
            } else {
                b'A'
            };
            let altered = String::from_utf8(altered).unwrap();
            assert!(verify_signed(&public_key, &altered).is_err(), "{altered}");
        }
        assert!(verify_signed(&public_key, "not-a-code").is_err());
        assert!(verify_signed("short", &code).is_err());
    }

    #[test]
    fn a_file_name_ships_the_code_as_a_license_file() {
        let (generator, _) = generator(CodeEncoding::Base32, Some("acme.lic"));
        let key = generator.generate(&request(None)).unwrap();
        let file = key.file.expect("file");
        assert_eq!(file.data, format!("{}\n", key.code));
        assert_eq!(file.encoding, FileEncoding::Text);
        assert_eq!(file.file_name, "acme.lic");
        assert_eq!(
            serde_json::to_value(&file).unwrap(),
            serde_json::json!({"data": file.data, "encoding": "text", "charset": "utf-8", "fileName": "acme.lic"})
        );
    }

    #[test]
    fn bad_keys_and_out_of_range_dates_are_refused() {
        let settings = SignedSettings {
            private_key: "abc".to_string().into(),
            encoding: CodeEncoding::Base32,
            prefix: String::new(),
            file_name: None,
        };
        assert!(settings.validate().is_err());
        let (generator, _) = generator(CodeEncoding::Base32, None);
        let far = NaiveDate::from_ymd_opt(2200, 1, 1);
        assert!(generator.generate(&request(far)).is_err());
    }
}
