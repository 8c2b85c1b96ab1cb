//! Product policies: what the configuration says about each product.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Settings;
use crate::keygen::KeyGenerator;

/// The rules for one product, its unset settings taken from the defaults.
#[derive(Clone)]
pub struct Policy {
    pub name: Option<String>,
    pub max_quantity: u32,
    pub generator: Arc<dyn KeyGenerator>,
}

pub struct Catalog {
    defaults: Policy,
    products: HashMap<String, Policy>,
}

impl Catalog {
    pub fn from_settings(settings: &Settings) -> Self {
        let defaults = Policy {
            name: None,
            max_quantity: settings.defaults.max_quantity,
            generator: settings.defaults.generator.build(),
        };
        let products = settings
            .products
            .iter()
            .map(|(id, product)| {
                let policy = Policy {
                    name: product.name.clone(),
                    max_quantity: product.max_quantity.unwrap_or(defaults.max_quantity),
                    generator: match &product.generator {
                        Some(generator) => generator.build(),
                        None => defaults.generator.clone(),
                    },
                };
                (id.clone(), policy)
            })
            .collect();
        Catalog { defaults, products }
    }

    /// The policy of a product: its own when configured, else the defaults.
    pub fn policy(&self, publisher_product_id: &str) -> &Policy {
        self.products
            .get(publisher_product_id)
            .unwrap_or(&self.defaults)
    }
}
