//! Finding the licenses a lifecycle call is about, in this order of trust:
//!
//! 1. the codes the call names (`product.licenses[].activationCode`, `additionalData.ActivationCode`);
//! 2. the `publisherFulfillmentId` / `PublisherLicenseID` nexkey answered earlier;
//! 3. `initialNexwayFulfillmentId`, the first fulfillment of the license's life;
//! 4. the call's own fulfillment id (the current body's `fulfillmentId` names the whole life);
//! 5. `checkout.subscriptionId`.
//!
//! References 2-5 give the call's *scope*: the first of them that finds anything. Named codes must
//! lie within that scope, so a call about one customer's fulfillment never touches another's
//! codes; when no reference finds anything, named codes must belong to the call's buyer (and a
//! call naming no buyer touches nothing). A `publisherFulfillmentId` may be that of any call
//! nexkey answered: it finds the licenses that call issued or changed.
//! A superseded license stands for the codes that replaced it: targets are always current codes.

use std::collections::HashSet;

use entity::{customer, license, license_event};
use sea_orm::{ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect};

use super::command::Command;
use super::status::Status;
use crate::error::{Error, Result};
use crate::store::fulfillments;
use crate::store::licenses::{self, lookup_key};

/// Reissues chain at most once per renewal; this bounds a walk over a corrupted chain.
pub const MAX_GENERATIONS: usize = 1000;

pub async fn resolve(txn: &DatabaseTransaction, command: &Command) -> Result<Vec<license::Model>> {
    let scope = current(txn, scope(txn, command).await?).await?;
    if command.activation_codes.is_empty() {
        if scope.is_empty() {
            return Err(Error::UnknownFulfillment(
                "no license matches the call's codes, fulfillment ids or subscription".into(),
            ));
        }
        return Ok(scope);
    }

    let keys: Vec<String> = command
        .activation_codes
        .iter()
        .map(|c| lookup_key(c))
        .collect();
    let named =
        licenses::find_for_update(txn, license::Column::LookupKey.is_in(keys.clone()).into())
            .await?;
    if let Some(missing) = command
        .activation_codes
        .iter()
        .zip(&keys)
        .find(|(_, key)| !named.iter().any(|license| &license.lookup_key == *key))
    {
        return Err(Error::UnknownFulfillment(format!(
            "activation code {} is not known",
            missing.0
        )));
    }
    let named = current(txn, named).await?;
    if scope.is_empty() {
        belong_to_buyer(txn, command, &named).await?;
    } else if let Some(stranger) = named.iter().find(|n| !scope.iter().any(|s| s.id == n.id)) {
        return Err(Error::UnknownFulfillment(format!(
            "activation code {} does not belong to this fulfillment",
            stranger.activation_code
        )));
    }
    Ok(named)
}

/// The licenses found by the first of the call's references (2-5 above) that finds any.
async fn scope(txn: &DatabaseTransaction, command: &Command) -> Result<Vec<license::Model>> {
    use license::Column;
    let by_life = |id: &str| {
        Condition::any()
            .add(Column::NexwayFulfillmentId.eq(id))
            .add(Column::InitialNexwayFulfillmentId.eq(id))
    };
    if let Some(id) = command.publisher_fulfillment_id.as_deref() {
        let found = answered_by(txn, id).await?;
        if !found.is_empty() {
            return Ok(found);
        }
    }
    let references = [
        command
            .initial_nexway_fulfillment_id
            .as_deref()
            .map(by_life),
        Some(by_life(&command.nexway_fulfillment_id)),
        command
            .subscription_id
            .as_deref()
            .map(|id| Column::SubscriptionId.eq(id).into()),
    ];
    for condition in references.into_iter().flatten() {
        let found = licenses::find_for_update(txn, condition).await?;
        if !found.is_empty() {
            return Ok(found);
        }
    }
    Ok(Vec::new())
}

/// The licenses of the call nexkey answered with `publisher_fulfillment_id`: those it issued,
/// and those any later call (renew, suspend…) touched, whose answers carry their own id.
async fn answered_by(txn: &DatabaseTransaction, id: &str) -> Result<Vec<license::Model>> {
    let Some(call) = fulfillments::find_by_publisher_id(txn, id).await? else {
        return Ok(Vec::new());
    };
    let touched = license_event::Entity::find()
        .select_only()
        .column(license_event::Column::LicenseId)
        .filter(license_event::Column::FulfillmentId.eq(call.id))
        .into_tuple::<i64>()
        .all(txn)
        .await?;
    let condition = Condition::any()
        .add(license::Column::FulfillmentId.eq(call.id))
        .add(license::Column::Id.is_in(touched));
    Ok(licenses::find_for_update(txn, condition).await?)
}

/// Replaces every superseded license by its children, until only current codes remain.
async fn current(
    txn: &DatabaseTransaction,
    mut found: Vec<license::Model>,
) -> Result<Vec<license::Model>> {
    for _ in 0..MAX_GENERATIONS {
        let superseded: Vec<i64> = found
            .iter()
            .filter(|license| Status::parse(&license.status) == Status::Superseded)
            .map(|license| license.id)
            .collect();
        if superseded.is_empty() {
            let mut seen = HashSet::new();
            found.retain(|license| seen.insert(license.id));
            return Ok(found);
        }
        found.retain(|license| !superseded.contains(&license.id));
        let children =
            licenses::find_for_update(txn, license::Column::ParentId.is_in(superseded).into())
                .await?;
        found.extend(children);
    }
    Err(Error::Internal)
}

/// Without another reference, named codes are only touched when they are the buyer's own.
async fn belong_to_buyer(
    txn: &DatabaseTransaction,
    command: &Command,
    named: &[license::Model],
) -> Result<()> {
    let Some(email) = &command.buyer.email else {
        return Err(Error::UnknownFulfillment(
            "the named codes match no reference of the call, and the call names no buyer".into(),
        ));
    };
    let owner_ids: Vec<i64> = named.iter().map(|license| license.customer_id).collect();
    let owners = customer::Entity::find()
        .filter(customer::Column::Id.is_in(owner_ids))
        .all(txn)
        .await?;
    if let Some(stranger) = named.iter().find(|license| {
        owners
            .iter()
            .find(|owner| owner.id == license.customer_id)
            .is_none_or(|owner| owner.email != email.as_str())
    }) {
        return Err(Error::UnknownFulfillment(format!(
            "activation code {} does not belong to this buyer",
            stranger.activation_code
        )));
    }
    Ok(())
}
