//! Publishers' own generators: registered under a name, chosen in the configuration with
//! `generator = { kind = "custom", name = "…", options = { … } }`.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use super::{GeneratorSettings, Key, KeyGenError, KeyGenerator, KeyRequest};
use crate::config::Settings;

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

/// A custom generator, built by its factory.
#[derive(Clone)]
pub struct Registered(pub Arc<dyn KeyGenerator>);

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Registered({})", self.0.name())
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

    /// Builds every `kind = "custom"` generator of the settings, so the app built from them
    /// uses it. Fails on a name nobody registered, or options its factory refuses.
    pub fn resolve(&self, settings: &mut Settings) -> Result<(), String> {
        let generators = std::iter::once(("defaults", &mut settings.defaults.generator)).chain(
            settings
                .products
                .iter_mut()
                .filter_map(|(name, product)| Some((name.as_str(), product.generator.as_mut()?))),
        );
        for (product, generator) in generators {
            if let GeneratorSettings::Custom(custom) = generator {
                let factory = self.factories.get(&custom.name).ok_or_else(|| {
                    format!(
                        "generator of {product}: no custom generator registered as {:?}",
                        custom.name
                    )
                })?;
                let built = factory(&custom.options)
                    .map_err(|reason| format!("generator of {product}: {reason}"))?;
                *generator = GeneratorSettings::Registered(Registered(built));
            }
        }
        Ok(())
    }
}

/// A `custom` generator nobody resolved: every call fails with the reason, loudly.
pub(super) struct Unresolved {
    pub name: String,
}

impl KeyGenerator for Unresolved {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(&self, _request: &KeyRequest<'_>) -> Result<Key, KeyGenError> {
        Err(KeyGenError::Failed(format!(
            "no custom generator registered as {:?} (GeneratorRegistry::resolve was not called)",
            self.name
        )))
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
