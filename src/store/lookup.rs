//! Everything stored about one license, found by its key as people type it: what
//! `nexkey lookup` prints (and what a support view can build on).

use entity::{customer, license, license_event};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::licenses::{events, lookup_key};

#[derive(Debug, Clone)]
pub struct LicenseFacts {
    pub license: license::Model,
    /// None only if the customer row was removed behind nexkey's back.
    pub customer: Option<customer::Model>,
    /// Its audit trail, oldest first.
    pub events: Vec<license_event::Model>,
    /// The activation code of the license this one renewed or replaced.
    pub parent_code: Option<String>,
}

/// The license whose code matches `key` (case, spaces and dashes ignored), with its customer and
/// events; None when there is no such license.
pub async fn license_facts(
    db: &impl ConnectionTrait,
    key: &str,
) -> Result<Option<LicenseFacts>, DbErr> {
    let normalised = lookup_key(key);
    if normalised.is_empty() {
        return Ok(None);
    }
    let Some(license) = license::Entity::find()
        .filter(license::Column::LookupKey.eq(normalised))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let customer = customer::Entity::find_by_id(license.customer_id)
        .one(db)
        .await?;
    let events = events(db, license.id).await?;
    let parent_code = match license.parent_id {
        Some(parent) => license::Entity::find_by_id(parent)
            .one(db)
            .await?
            .map(|parent| parent.activation_code),
        None => None,
    };
    Ok(Some(LicenseFacts {
        license,
        customer,
        events,
        parent_code,
    }))
}
