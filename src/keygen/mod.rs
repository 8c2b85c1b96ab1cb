//! Key generation: the plug-in point where publishers differ most.
//!
//! A [`KeyGenerator`] turns a [`KeyRequest`] into a [`Key`]: a code, and optionally a file
//! deliverable. It does not need to guarantee uniqueness: the `license.activation_code` unique
//! index does, and the fulfillment asks again (with `attempt` increased) when a code is already
//! taken, up to a bounded number of attempts.
//!
//! Generators are chosen per product in the configuration (`kind = "random" | "hmac" | "pool" |
//! "signed" | "custom"`, see [`GeneratorSettings`]). A publisher's own generator is registered
//! under a name in a [`GeneratorRegistry`] and chosen with `kind = "custom", name = "…"`.
//!
//! # Writing a generator
//!
//! ```
//! use std::sync::Arc;
//! use nexkey::keygen::{GeneratorRegistry, Key, KeyGenError, KeyGenerator, KeyRequest};
//!
//! /// `ACME-<product>-<fulfillment>-<index>`: readable, deterministic, unique per call position.
//! struct AcmeSerial;
//!
//! impl KeyGenerator for AcmeSerial {
//!     fn name(&self) -> &str {
//!         "acme-serial"
//!     }
//!     fn generate(&self, request: &KeyRequest<'_>) -> Result<Key, KeyGenError> {
//!         if request.attempt > 0 {
//!             // The only code this generator can make for this position is taken.
//!             return Err(KeyGenError::Failed("serial already issued".into()));
//!         }
//!         Ok(Key::code(format!(
//!             "ACME-{}-{}-{}",
//!             request.product, request.fulfillment, request.index
//!         )))
//!     }
//! }
//!
//! let mut registry = GeneratorRegistry::new();
//! registry.register("acme-serial", |_options| Ok(Arc::new(AcmeSerial)));
//! // In nexkey.toml: [products.ACME-PRO] generator = { kind = "custom", name = "acme-serial" };
//! // `nexkey::app::serve(settings, registry)` builds it for every product that chooses it.
//! let chosen = nexkey::keygen::GeneratorSettings::Custom(nexkey::keygen::CustomSettings {
//!     name: "acme-serial".into(),
//!     options: Default::default(),
//! });
//! let generator = registry.build(&chosen).unwrap();
//! let request = KeyRequest {
//!     product: "PRO",
//!     customer: "ada@example.com",
//!     fulfillment: "F1",
//!     call: "new:F1:",
//!     index: 0,
//!     attempt: 0,
//!     end_date: None,
//! };
//! assert_eq!(generator.generate(&request).unwrap().code, "ACME-PRO-F1-0");
//! ```

pub mod base32;
mod hmac;
mod pool;
mod random;
mod registry;
mod signed;

use std::future::Future;
use std::pin::Pin;

use chrono::NaiveDate;
use sea_orm::{DatabaseTransaction, DbErr};
use serde::{Deserialize, Serialize};

pub use hmac::{HmacGenerator, HmacSettings};
pub use pool::{PoolGenerator, PoolSettings};
pub use random::{RandomGenerator, RandomSettings};
pub use registry::{CustomSettings, GeneratorRegistry};
pub use signed::{Claims, KeyPair, SignedGenerator, SignedSettings, verify_signed};

/// What a generator knows about the code it is asked for. The product's settings are the
/// generator's own (it is built from them).
#[derive(Debug, Clone, Copy)]
pub struct KeyRequest<'a> {
    /// `publisherProductId` of the product the code unlocks.
    pub product: &'a str,
    /// E-mail address of the buyer.
    pub customer: &'a str,
    /// Nexway's fulfillment id of the call.
    pub fulfillment: &'a str,
    /// The call's identity, `operation:fulfillment id:order id`: unique to each call of a
    /// license's life (the current body keeps one fulfillment id for all of them), so it is
    /// what a deterministic generator derives from.
    pub call: &'a str,
    /// Position of the code within the call, from 0.
    pub index: u32,
    /// 0 on the first try; increased each time the previous code was already taken.
    pub attempt: u32,
    /// Last day of validity of the license, when it has one.
    pub end_date: Option<NaiveDate>,
}

/// A generated code, with the file the buyer receives when the product ships one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub code: String,
    pub file: Option<KeyFile>,
}

impl Key {
    /// A code without a file.
    pub fn code(code: impl Into<String>) -> Self {
        Key {
            code: code.into(),
            file: None,
        }
    }
}

/// A file deliverable, in Nexway Connect's serial shape `{data, encoding, charset, fileName}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyFile {
    /// The content: text as is, or binary in standard base64.
    pub data: String,
    pub encoding: FileEncoding,
    /// Character set of a text file (e.g. `utf-8`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
    pub file_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileEncoding {
    Base64,
    Text,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyGenError {
    /// The generator cannot make a code (its configuration or code space is the problem).
    #[error("{0}")]
    Failed(String),
    /// No code left to hand out (an empty pool): retrying after a refill will help.
    #[error("no code left")]
    Exhausted,
    #[error("database error: {0}")]
    Database(#[from] DbErr),
}

/// What [`KeyGenerator::generate_in`] returns: a boxed future, so the trait stays object safe.
pub type KeyFuture<'a> = Pin<Box<dyn Future<Output = Result<Key, KeyGenError>> + Send + 'a>>;

/// Whether a code is one this generator could have made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Genuine, with what the code says (claims, checks made).
    Genuine(String),
    /// Not genuine, with the reason.
    Forged(String),
    /// This generator keeps nothing that would tell (random codes without a check character,
    /// pools: look the code up in the database instead).
    Unsupported,
}

/// Which of nexkey's generators one is: what nexkey may rely on about it (a pool keeps stock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneratorKind {
    Random,
    Hmac,
    Pool,
    Signed,
    /// A publisher's own.
    Custom,
}

/// Makes activation codes for one product configuration.
pub trait KeyGenerator: Send + Sync {
    /// The name recorded with each license (`random`, `hmac`, …).
    fn name(&self) -> &str;

    /// Which generator this is; a publisher's own is `Custom`.
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::Custom
    }

    /// Makes a code. Generators that need no database implement only this.
    fn generate(&self, request: &KeyRequest<'_>) -> Result<Key, KeyGenError>;

    /// Makes a code inside the call's transaction. Generators that draw from the database
    /// (the pool) override it; what they change commits or rolls back with the call.
    fn generate_in<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        request: &'a KeyRequest<'a>,
    ) -> KeyFuture<'a> {
        let _ = txn;
        Box::pin(std::future::ready(self.generate(request)))
    }

    /// Whether a code can carry this end date, checked before the call writes anything: a
    /// refusal is the caller's error (400), not a failure Nexway would retry forever.
    fn check_end_date(&self, end_date: Option<NaiveDate>) -> Result<(), String> {
        let _ = end_date;
        Ok(())
    }

    /// Tells a genuine code of `product` from a forged one, when the generator can.
    fn verify(&self, product: &str, code: &str) -> Verdict {
        let _ = (product, code);
        Verdict::Unsupported
    }

    /// Signs `message` with the generator's private key, for generators that hold one
    /// (`signed`): the activation API's offline token. None for the others.
    fn sign(&self, message: &[u8]) -> Option<[u8; 64]> {
        let _ = message;
        None
    }
}

/// A generator as configured in `nexkey.toml` (`generator = { kind = "random", … }`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum GeneratorSettings {
    Random(RandomSettings),
    Hmac(HmacSettings),
    Pool(PoolSettings),
    Signed(SignedSettings),
    /// A publisher's generator, registered under `name` in a [`GeneratorRegistry`].
    Custom(CustomSettings),
}

impl Default for GeneratorSettings {
    fn default() -> Self {
        GeneratorSettings::Random(RandomSettings::default())
    }
}

impl GeneratorSettings {
    pub fn validate(&self) -> Result<(), String> {
        match self {
            GeneratorSettings::Random(settings) => settings.validate(),
            GeneratorSettings::Hmac(settings) => settings.validate(),
            GeneratorSettings::Pool(_) => Ok(()),
            GeneratorSettings::Signed(settings) => settings.validate(),
            GeneratorSettings::Custom(settings) => settings.validate(),
        }
    }
}

/// A code prefix is typed by people and travels in URLs: letters, digits and `-` only.
pub(crate) fn validate_prefix(prefix: &str) -> Result<(), String> {
    if prefix
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || c == '-'))
    {
        return Err("prefix may hold only ASCII letters, digits and '-'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn parse(toml_text: &str) -> Result<GeneratorSettings, String> {
        #[derive(Deserialize)]
        struct Wrapper {
            generator: GeneratorSettings,
        }
        let wrapper: Wrapper = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        wrapper.generator.validate()?;
        Ok(wrapper.generator)
    }

    #[test]
    fn every_kind_is_chosen_by_name_with_its_own_settings() {
        let pair = KeyPair::generate();
        use secrecy::ExposeSecret;
        let cases = [
            (
                r#"generator = { kind = "random", groups = 2, check = true }"#.to_string(),
                "random",
            ),
            (
                r#"generator = { kind = "hmac", secret = "0123456789abcdef" }"#.into(),
                "hmac",
            ),
            (
                r#"generator = { kind = "pool", low_stock = 5 }"#.into(),
                "pool",
            ),
            (
                format!(
                    r#"generator = {{ kind = "signed", private_key = "{}", encoding = "base64url" }}"#,
                    pair.private_key.expose_secret()
                ),
                "signed",
            ),
        ];
        for (text, name) in cases {
            let settings = parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let built = GeneratorRegistry::new().build(&settings).unwrap();
            assert_eq!(built.name(), name);
        }
        assert!(parse(r#"generator = { kind = "hmac", secret = "short" }"#).is_err());
        assert!(parse(r#"generator = { kind = "signed", private_key = "x" }"#).is_err());
        assert!(parse(r#"generator = { kind = "pool", size = 5 }"#).is_err());
        assert!(parse(r#"generator = { kind = "lottery" }"#).is_err());
    }

    struct Fixed(String);

    impl KeyGenerator for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        fn generate(&self, request: &KeyRequest<'_>) -> Result<Key, KeyGenError> {
            Ok(Key::code(format!("{}-{}", self.0, request.index)))
        }
    }

    #[test]
    fn custom_generators_are_built_by_their_registered_factory_and_fail_loudly_otherwise() {
        let chosen = |name: &str, options| {
            GeneratorSettings::Custom(CustomSettings {
                name: name.into(),
                options,
            })
        };
        let request = KeyRequest {
            product: "P",
            customer: "a@b.c",
            fulfillment: "F",
            call: "new:F:",
            index: 3,
            attempt: 0,
            end_date: None,
        };
        let mut registry = GeneratorRegistry::new();
        registry.register("fixed", |options| {
            let stem = options["stem"].as_str().ok_or("options.stem is required")?;
            Ok(Arc::new(Fixed(stem.to_owned())))
        });
        let err = registry
            .build(&chosen("nobody", serde_json::Value::Null))
            .err()
            .unwrap();
        assert!(err.contains("nobody"), "{err}");
        let err = registry
            .build(&chosen("fixed", serde_json::json!({})))
            .err()
            .unwrap();
        assert!(err.contains("options.stem"), "{err}");

        let generator = registry
            .build(&chosen("fixed", serde_json::json!({"stem": "ACME"})))
            .unwrap();
        assert_eq!(generator.generate(&request).unwrap().code, "ACME-3");
    }
}
