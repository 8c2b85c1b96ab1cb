//! Key generation: the plug-in point where publishers differ most.
//!
//! A [`KeyGenerator`] turns a [`KeyRequest`] into a code. It does not need to guarantee
//! uniqueness: the `license.activation_code` unique index does, and the fulfillment service asks
//! again (with `attempt` increased) when a code is already taken.

mod random;

use std::sync::Arc;

use serde::Deserialize;

pub use random::{RandomGenerator, RandomSettings};

/// What a generator knows about the code it is asked for.
#[derive(Debug, Clone, Copy)]
pub struct KeyRequest<'a> {
    /// `publisherProductId` of the product the code unlocks.
    pub product: &'a str,
    /// E-mail address of the buyer.
    pub customer: &'a str,
    /// Nexway's fulfillment id of the call.
    pub fulfillment: &'a str,
    /// Position of the code within the call, from 0.
    pub index: u32,
    /// 0 on the first try; increased each time the previous code was already taken.
    pub attempt: u32,
}

/// A generated code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub code: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyGenError {
    #[error("{0}")]
    Failed(String),
}

/// Makes activation codes for one product configuration.
pub trait KeyGenerator: Send + Sync {
    /// The name recorded with each license (`random`, …).
    fn name(&self) -> &'static str;
    fn generate(&self, request: &KeyRequest<'_>) -> Result<Key, KeyGenError>;
}

/// A generator as configured in `nexkey.toml` (`generator = { kind = "random", … }`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum GeneratorSettings {
    Random(RandomSettings),
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
        }
    }

    pub fn build(&self) -> Arc<dyn KeyGenerator> {
        match self {
            GeneratorSettings::Random(settings) => Arc::new(RandomGenerator::new(settings.clone())),
        }
    }
}
