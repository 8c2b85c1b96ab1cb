//! Publishers' own generators: registered under a name, chosen in the configuration with
//! `generator = { kind = "custom", name = "…", options = { … } }`.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use super::{
    GeneratorSettings, HmacGenerator, KeyGenerator, PoolGenerator, RandomGenerator, SignedGenerator,
};

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomSettings {
    /// The name the generator was registered under.
    pub name: String,
    /// Passed as is to the generator's factory.
    #[serde(default)]
    pub options: serde_json::Value,
}

/// Options may hold a publisher's secrets: Debug output (`nexkey check-config`) names them only.
impl std::fmt::Debug for CustomSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = match &self.options {
            serde_json::Value::Object(options) => options.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        f.debug_struct("CustomSettings")
            .field("name", &self.name)
            .field("options", &format_args!("{names:?} [values REDACTED]"))
            .finish()
    }
}

impl CustomSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("a custom generator needs a name".into());
        }
        Ok(())
    }
}

type Factory =
    Box<dyn Fn(&serde_json::Value) -> Result<Arc<dyn KeyGenerator>, String> + Send + Sync>;

/// Factories of custom generators by name.
#[derive(Default)]
pub struct GeneratorRegistry {
    factories: HashMap<String, Factory>,
}

impl GeneratorRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `factory` under `name`; it receives the `options` of each product using it.
    pub fn register(
        &mut self,
        name: impl Into<String>,
        factory: impl Fn(&serde_json::Value) -> Result<Arc<dyn KeyGenerator>, String>
        + Send
        + Sync
        + 'static,
    ) -> &mut Self {
        self.factories.insert(name.into(), Box::new(factory));
        self
    }

    /// The generator `settings` describe: a built-in kind, or a custom one built by the factory
    /// registered under its name. Fails on a name nobody registered, options its factory refuses,
    /// or settings that do not validate.
    pub fn build(&self, settings: &GeneratorSettings) -> Result<Arc<dyn KeyGenerator>, String> {
        settings.validate()?;
        Ok(match settings {
            GeneratorSettings::Random(settings) => Arc::new(RandomGenerator::new(settings.clone())),
            GeneratorSettings::Hmac(settings) => Arc::new(HmacGenerator::new(settings.clone())),
            GeneratorSettings::Pool(settings) => Arc::new(PoolGenerator::new(settings.clone())),
            GeneratorSettings::Signed(settings) => {
                Arc::new(SignedGenerator::new(settings.clone())?)
            }
            GeneratorSettings::Custom(custom) => {
                let factory = self.factories.get(&custom.name).ok_or_else(|| {
                    format!("no custom generator registered as {:?}", custom.name)
                })?;
                factory(&custom.options)?
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_options_are_named_never_printed() {
        let settings = CustomSettings {
            name: "acme".into(),
            options: serde_json::json!({"api_secret": "do-not-print-me"}),
        };
        let debug = format!("{settings:?}");
        assert!(
            debug.contains("api_secret") && !debug.contains("do-not-print-me"),
            "{debug}"
        );
    }
}
