//! Product policies: what the configuration says about each product.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use super::term::Term;
use crate::config::{Money, ProductSettings, Settings, TaxClass, UnknownProducts};
use crate::error::{Error, Result};
use crate::keygen::KeyGenerator;

/// What `renew` does to the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RenewMode {
    /// Same codes, new end date.
    Extend,
    /// New codes, children of the old ones, which become superseded.
    Reissue,
}

/// What `upgrade` and `reactivate` do to the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeMode {
    Keep,
    Reissue,
}

/// The rules for one product, its unset settings taken from the defaults.
#[derive(Clone)]
pub struct Policy {
    pub name: Option<String>,
    pub max_quantity: u32,
    pub term: Term,
    pub renew: RenewMode,
    pub upgrade: CodeMode,
    pub reactivate: CodeMode,
    pub generator: Arc<dyn KeyGenerator>,
    /// Machines one license may be activated on; None: unlimited.
    pub max_activations: Option<u32>,
    /// What support sees of the product (the lkey purchase shape); unset for the defaults.
    pub item_id: Option<i64>,
    pub image: Option<String>,
    pub renewal_price: Option<Money>,
    pub tax_class: Option<TaxClass>,
}

pub struct Catalog {
    unknown_products: UnknownProducts,
    defaults: Policy,
    products: HashMap<String, Policy>,
}

impl Catalog {
    pub fn from_settings(settings: &Settings) -> Self {
        let ProductSettings {
            max_quantity,
            term,
            renew,
            upgrade,
            reactivate,
            ref generator,
            max_activations,
        } = settings.defaults;
        let defaults = Policy {
            name: None,
            max_quantity,
            term,
            renew,
            upgrade,
            reactivate,
            generator: generator.build(),
            max_activations,
            item_id: None,
            image: None,
            renewal_price: None,
            tax_class: None,
        };
        let products = settings
            .products
            .iter()
            .map(|(id, product)| {
                let policy = Policy {
                    name: product.name.clone(),
                    max_quantity: product.max_quantity.unwrap_or(max_quantity),
                    term: product.term.unwrap_or(term),
                    renew: product.renew.unwrap_or(renew),
                    upgrade: product.upgrade.unwrap_or(upgrade),
                    reactivate: product.reactivate.unwrap_or(reactivate),
                    generator: match &product.generator {
                        Some(generator) => generator.build(),
                        None => defaults.generator.clone(),
                    },
                    max_activations: product.max_activations.or(max_activations),
                    item_id: product.item_id,
                    image: product.image.clone(),
                    renewal_price: product.renewal_price.clone(),
                    tax_class: product.tax_class.clone(),
                };
                (id.clone(), policy)
            })
            .collect();
        Catalog {
            unknown_products: settings.unknown_products,
            defaults,
            products,
        }
    }

    /// The policy of a product: its own when configured, else the defaults, unless unknown
    /// products are refused (422 `UNKNOWN_PRODUCT`).
    pub fn policy(&self, publisher_product_id: &str) -> Result<&Policy> {
        match self.products.get(publisher_product_id) {
            Some(policy) => Ok(policy),
            None if self.unknown_products == UnknownProducts::Accept => Ok(&self.defaults),
            None => Err(Error::UnknownProduct(publisher_product_id.to_owned())),
        }
    }

    /// The policy a stored license is read with: its product's, else the defaults (also when
    /// unknown products are now refused: the license exists all the same).
    pub fn policy_or_defaults(&self, publisher_product_id: &str) -> &Policy {
        self.products
            .get(publisher_product_id)
            .unwrap_or(&self.defaults)
    }

    /// The configured products with their policies, by `publisherProductId`.
    pub fn products(&self) -> impl Iterator<Item = (&str, &Policy)> {
        self.products
            .iter()
            .map(|(id, policy)| (id.as_str(), policy))
    }
}
