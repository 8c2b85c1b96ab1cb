//! The DMP's Event resource, as far as nexkey fills it.

use chrono::{DateTime, Utc};
use entity::{customer, license};
use serde_json::{Map, Value, json};

/// The action of a first activation: the buyer registered the licence in the software.
pub const REGISTER_LICENCES: &str = "register licences";

/// The `_meta` ids Nexway gave the publisher, when it gave them.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub salesunit_id: Option<String>,
    pub platform_id: Option<String>,
}

/// The `register licences` event of `license`, registered at `at`: the licence number, the
/// product (name, Nexway's id, `uniqueReference` = publisherProductId) and the buyer.
pub fn register_licences(
    license: &license::Model,
    buyer: &customer::Model,
    meta: &Meta,
    at: DateTime<Utc>,
) -> Value {
    let mut product = Map::new();
    // `name` is required: the product's name when Nexway sent one, else its reference.
    product.insert(
        "name".into(),
        license
            .product_name
            .clone()
            .unwrap_or_else(|| license.publisher_product_id.clone())
            .into(),
    );
    if let Some(id) = &license.nexway_product_id {
        product.insert("nexwayID".into(), id.clone().into());
    }
    product.insert(
        "uniqueReference".into(),
        license.publisher_product_id.clone().into(),
    );
    let mut user = Map::new();
    user.insert("email".into(), buyer.email.clone().into());
    if let Some(first) = &buyer.first_name {
        user.insert("firstName".into(), first.clone().into());
    }
    if let Some(last) = &buyer.last_name {
        user.insert("lastName".into(), last.clone().into());
    }
    if let Some(company) = &buyer.company_name {
        user.insert("companyName".into(), company.clone().into());
    }
    let mut meta_object = Map::new();
    meta_object.insert("dataAcquisitionTime".into(), at.timestamp().into());
    if let Some(id) = &meta.salesunit_id {
        meta_object.insert("nexwaySalesunitID".into(), id.clone().into());
    }
    if let Some(id) = &meta.platform_id {
        meta_object.insert("platformID".into(), id.clone().into());
    }
    json!({
        "_meta": meta_object,
        "action": REGISTER_LICENCES,
        "actionTime": at.timestamp(),
        "registrations": [{
            "licenceNumber": license.activation_code,
            "product": product,
        }],
        "user": user,
    })
}
