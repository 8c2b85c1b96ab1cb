//! Product policies: what the configuration says about each product.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use super::term::Term;
use crate::error::{Error, Result};
use crate::keygen::KeyGenerator;

/// What a call about a product nexkey has no policy for gets: the defaults, or a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownProducts {
    Accept,
    Refuse,
}

impl std::str::FromStr for UnknownProducts {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "accept" => Ok(UnknownProducts::Accept),
            "refuse" => Ok(UnknownProducts::Refuse),
            _ => Err("expected accept or refuse".into()),
        }
    }
}

/// A price as support sees it (the lkey `renewalTerm.price`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    /// Decimal amount as a string, e.g. `"29.99"`.
    pub amount: String,
}

/// The tax class of a renewal price (the lkey `renewalTerm.taxClass`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxClass {
    pub id: i64,
    pub name: String,
}

/// What `renew` does to the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RenewMode {
    /// Same codes, new end date.
    Extend,
    /// New codes, children of the old ones, which become superseded.
    Reissue,
}

impl RenewMode {
    /// As the configuration spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RenewMode::Extend => "extend",
            RenewMode::Reissue => "reissue",
        }
    }
}

/// What `upgrade` and `reactivate` do to the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeMode {
    Keep,
    Reissue,
}

impl CodeMode {
    /// As the configuration spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeMode::Keep => "keep",
            CodeMode::Reissue => "reissue",
        }
    }
}

/// Most codes one call may ask for, unless the configuration says otherwise.
pub const DEFAULT_MAX_QUANTITY: u32 = 100;

/// The rules for one product, its unset settings taken from the defaults.
#[derive(Clone)]
pub struct Policy {
    pub name: Option<String>,
    pub max_quantity: u32,
    pub term: Term,
    /// How long a free trial runs when its call gives no end date.
    pub trial_term: Term,
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
    pub fn new(
        unknown_products: UnknownProducts,
        defaults: Policy,
        products: HashMap<String, Policy>,
    ) -> Self {
        Catalog {
            unknown_products,
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
