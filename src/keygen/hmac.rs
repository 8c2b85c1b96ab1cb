//! Codes derived with HMAC-SHA256 from a per-product secret and the call's identity:
//! the same call position always derives the same code (a retry needs no database to agree),
//! and the secret alone tells a genuine code from a forged one.
//!
//! A code is 15 bytes in Crockford base32, as four groups of six (`XXXXXX-XXXXXX-XXXXXX-XXXXXX`),
//! after an optional prefix: a 10-byte id = HMAC(secret, "id" ‖ product ‖ call ‖ index ‖
//! attempt), then a 5-byte tag = HMAC(secret, "tag" ‖ product ‖ id). Verification recomputes the
//! tag: a guess passes with probability 2⁻⁴⁰.

use ::hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{Key, KeyGenError, KeyGenerator, KeyRequest, Verdict, base32, validate_prefix};

const ID_LEN: usize = 10;
const TAG_LEN: usize = 5;
const GROUP: usize = 6;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacSettings {
    /// The product's secret (16 characters or more); whoever holds it can verify and mint codes.
    pub secret: SecretString,
    /// Put before the code, followed by `-`.
    #[serde(default)]
    pub prefix: String,
}

impl HmacSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.secret.expose_secret().len() < 16 {
            return Err("hmac secret must have 16 characters or more".into());
        }
        validate_prefix(&self.prefix)?;
        Ok(())
    }
}

pub struct HmacGenerator {
    settings: HmacSettings,
}

impl HmacGenerator {
    pub fn new(settings: HmacSettings) -> Self {
        HmacGenerator { settings }
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.settings.secret.expose_secret().as_bytes())
                .expect("HMAC takes keys of any length");
        for part in parts {
            // Length-prefixed, so ("ab","c") and ("a","bc") differ.
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    fn tag(&self, product: &str, id: &[u8]) -> [u8; 32] {
        self.mac(&[b"nexkey/hmac/tag", product.as_bytes(), id])
    }
}

impl KeyGenerator for HmacGenerator {
    fn name(&self) -> &str {
        "hmac"
    }

    fn kind(&self) -> super::GeneratorKind {
        super::GeneratorKind::Hmac
    }

    fn generate(&self, request: &KeyRequest<'_>) -> Result<Key, KeyGenError> {
        let id = self.mac(&[
            b"nexkey/hmac/id",
            request.product.as_bytes(),
            request.call.as_bytes(),
            &request.index.to_be_bytes(),
            &request.attempt.to_be_bytes(),
        ]);
        let mut bytes = id[..ID_LEN].to_vec();
        bytes.extend_from_slice(&self.tag(request.product, &id[..ID_LEN])[..TAG_LEN]);
        let text = base32::encode(&bytes);
        let groups: Vec<&str> = text
            .as_bytes()
            .chunks(GROUP)
            .map(|chunk| std::str::from_utf8(chunk).expect("base32 is ASCII"))
            .collect();
        let mut code = String::new();
        if !self.settings.prefix.is_empty() {
            code.push_str(&self.settings.prefix);
            code.push('-');
        }
        code.push_str(&groups.join("-"));
        Ok(Key::code(code))
    }

    fn verify(&self, product: &str, code: &str) -> Verdict {
        let code = code.trim();
        let body = match self.settings.prefix.as_str() {
            "" => Some(code),
            prefix => code
                .get(..prefix.len())
                .filter(|head| head.eq_ignore_ascii_case(prefix))
                .and_then(|_| code[prefix.len()..].strip_prefix('-')),
        };
        let Some(bytes) = body.and_then(base32::decode) else {
            return Verdict::Forged("not a code of this format".into());
        };
        if bytes.len() != ID_LEN + TAG_LEN {
            return Verdict::Forged("wrong length".into());
        }
        let (id, tag) = bytes.split_at(ID_LEN);
        if bool::from(self.tag(product, id)[..TAG_LEN].ct_eq(tag)) {
            Verdict::Genuine(format!("derived with the secret of product {product}"))
        } else {
            Verdict::Forged(format!("not made with the secret of product {product}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator(secret: &str, prefix: &str) -> HmacGenerator {
        HmacGenerator::new(HmacSettings {
            secret: secret.to_string().into(),
            prefix: prefix.into(),
        })
    }

    fn request(fulfillment: &str, index: u32, attempt: u32) -> KeyRequest<'_> {
        KeyRequest {
            product: "ACME-PRO",
            customer: "ada@example.com",
            fulfillment,
            call: fulfillment,
            index,
            attempt,
            end_date: None,
        }
    }

    #[test]
    fn the_same_position_derives_the_same_code_and_others_differ() {
        let generator = generator("a-long-enough-secret", "");
        let code = generator.generate(&request("F-1", 0, 0)).unwrap().code;
        assert_eq!(
            generator.generate(&request("F-1", 0, 0)).unwrap().code,
            code
        );
        let others = [
            request("F-1", 1, 0),
            request("F-2", 0, 0),
            request("F-1", 0, 1),
        ];
        for other in others {
            assert_ne!(generator.generate(&other).unwrap().code, code);
        }
        let groups: Vec<&str> = code.split('-').collect();
        assert_eq!(groups.len(), 4, "{code}");
        assert!(groups.iter().all(|g| g.len() == 6), "{code}");
        // A known answer pins the derivation: changing it would orphan every issued code.
        assert_eq!(
            generator.generate(&request("F-1", 0, 0)).unwrap().code,
            "JHKGJE-9GW7F1-0AEHJ7-MW32FT"
        );
    }

    #[test]
    fn genuine_codes_verify_including_retries_and_forgeries_do_not() {
        let generator = generator("a-long-enough-secret", "ACME");
        for attempt in 0..3 {
            let code = generator
                .generate(&request("F-9", 2, attempt))
                .unwrap()
                .code;
            assert!(code.starts_with("ACME-"), "{code}");
            assert!(matches!(
                generator.verify("ACME-PRO", &code),
                Verdict::Genuine(_)
            ));
            // What people type: lowercase, O for 0, no dashes.
            let typed = code.to_lowercase().replace('0', "o").replace('-', "");
            let typed = format!("acme-{}", &typed[4..]);
            assert!(
                matches!(generator.verify("ACME-PRO", &typed), Verdict::Genuine(_)),
                "{typed}"
            );
            // Another product's secret domain, another secret, one changed character.
            assert!(matches!(
                generator.verify("ACME-LITE", &code),
                Verdict::Forged(_)
            ));
            let other = super::tests::generator("another-long-secret", "ACME");
            assert!(matches!(
                other.verify("ACME-PRO", &code),
                Verdict::Forged(_)
            ));
            let last = code.chars().last().unwrap();
            let flipped = format!(
                "{}{}",
                &code[..code.len() - 1],
                if last == 'Z' { 'Y' } else { 'Z' }
            );
            assert!(matches!(
                generator.verify("ACME-PRO", &flipped),
                Verdict::Forged(_)
            ));
        }
        assert!(matches!(
            generator.verify("ACME-PRO", "ACME-!!"),
            Verdict::Forged(_)
        ));
        assert!(matches!(
            generator.verify("ACME-PRO", "K6X8DP"),
            Verdict::Forged(_)
        ));
    }

    #[test]
    fn short_secrets_are_refused_and_never_debug_printed() {
        let settings = HmacSettings {
            secret: "short".to_string().into(),
            prefix: String::new(),
        };
        assert!(settings.validate().is_err());
        let settings = HmacSettings {
            secret: "a-long-enough-secret".to_string().into(),
            prefix: String::new(),
        };
        assert!(settings.validate().is_ok());
        assert!(!format!("{settings:?}").contains("enough"));
    }
}
