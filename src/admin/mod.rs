//! The support side's domain: a license with everything support needs to see it whole, the
//! searches, and the manual actions. Knows nothing of HTTP: `api::admin` and the lkey page
//! present it, `nexkey lookup` prints it.

use chrono::Utc;
use entity::{customer, fulfillment, license, license_event};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, TransactionTrait,
};

use crate::error::{Error, Result};
use crate::fulfillment::{MAX_GENERATIONS, ManualAction, Status, Step, manual_step};
use crate::store::licenses::{self, lookup_key};
use crate::store::outbox;

/// A license as support sees it: its buyer, its effective status and the license it replaced.
#[derive(Debug, Clone)]
pub struct Purchase {
    pub license: license::Model,
    pub customer: customer::Model,
    /// Read today: an active license past its end date is expired.
    pub status: Status,
    /// The license this one renewed or replaced, itself with its parent.
    pub parent: Option<Box<Purchase>>,
}

/// One line of a license's history, with the call that caused it when there was one.
#[derive(Debug, Clone)]
pub struct Event {
    pub event: license_event::Model,
    pub call: Option<fulfillment::Model>,
}

/// The purchase of a license key as people type it: case and separators do not matter.
pub async fn purchase(db: &impl ConnectionTrait, key: &str) -> Result<Option<Purchase>> {
    let wanted = lookup_key(key);
    if wanted.is_empty() {
        return Ok(None);
    }
    let candidates = license::Entity::find()
        .filter(license::Column::LookupKey.eq(&wanted))
        .order_by_asc(license::Column::Id)
        .all(db)
        .await?;
    // Two codes can differ only by their separators; the one typed exactly wins.
    let exact = candidates
        .iter()
        .position(|l| l.activation_code == key.trim());
    let Some(license) = exact
        .or((!candidates.is_empty()).then_some(0))
        .map(|i| candidates[i].clone())
    else {
        return Ok(None);
    };
    Ok(Some(assemble(db, license).await?))
}

/// A license with its customer and its parents, oldest last.
async fn assemble(db: &impl ConnectionTrait, license: license::Model) -> Result<Purchase> {
    let mut chain = vec![license];
    while let Some(parent_id) = chain.last().and_then(|l| l.parent_id) {
        if chain.len() > MAX_GENERATIONS {
            return Err(Error::Internal);
        }
        let parent = license::Entity::find_by_id(parent_id)
            .one(db)
            .await?
            .ok_or(Error::Internal)?;
        chain.push(parent);
    }
    let today = Utc::now().date_naive();
    let mut purchase: Option<Purchase> = None;
    for license in chain.into_iter().rev() {
        let customer = customer::Entity::find_by_id(license.customer_id)
            .one(db)
            .await?
            .ok_or(Error::Internal)?;
        purchase = Some(Purchase {
            status: Status::effective(&license.status, license.end_date, today),
            license,
            customer,
            parent: purchase.map(Box::new),
        });
    }
    purchase.ok_or(Error::Internal)
}

/// Everything that happened to a license, oldest first.
pub async fn history(db: &impl ConnectionTrait, license_id: i64) -> Result<Vec<Event>> {
    let events = licenses::events(db, license_id).await?;
    let call_ids: Vec<i64> = events.iter().filter_map(|e| e.fulfillment_id).collect();
    let calls = fulfillment::Entity::find()
        .filter(fulfillment::Column::Id.is_in(call_ids))
        .all(db)
        .await?;
    Ok(events
        .into_iter()
        .map(|event| {
            let call = calls
                .iter()
                .find(|c| Some(c.id) == event.fulfillment_id)
                .cloned();
            Event { event, call }
        })
        .collect())
}

/// What support searches licenses by; every given criterion must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub email: Option<String>,
    /// Matches the fulfillment that issued a license and the first one of its life.
    pub nexway_fulfillment_id: Option<String>,
    pub publisher_fulfillment_id: Option<String>,
    pub order_id: Option<String>,
    /// As read today: `expired` finds active licenses past their end date.
    pub status: Option<Status>,
    pub product: Option<String>,
}

/// One page of licenses matching `filter`, newest first, and the number of all that match.
pub async fn search(
    db: &impl ConnectionTrait,
    filter: &Filter,
    page: u64,
    per_page: u64,
) -> Result<(Vec<Purchase>, u64)> {
    use license::Column;
    let mut condition = Condition::all();
    if let Some(email) = &filter.email {
        let buyer = customer::Entity::find()
            .filter(customer::Column::Email.eq(email.trim().to_lowercase()))
            .one(db)
            .await?;
        condition = condition.add(Column::CustomerId.eq(buyer.map_or(-1, |c| c.id)));
    }
    if let Some(id) = &filter.nexway_fulfillment_id {
        condition = condition.add(
            Condition::any()
                .add(Column::NexwayFulfillmentId.eq(id))
                .add(Column::InitialNexwayFulfillmentId.eq(id)),
        );
    }
    if let Some(id) = &filter.publisher_fulfillment_id {
        condition = condition.add(Column::PublisherFulfillmentId.eq(id));
    }
    if let Some(order) = &filter.order_id {
        condition = condition.add(Column::OrderId.eq(order));
    }
    if let Some(product) = &filter.product {
        condition = condition.add(Column::PublisherProductId.eq(product));
    }
    if let Some(status) = filter.status {
        condition = condition.add(status_condition(status));
    }
    let query = license::Entity::find()
        .filter(condition)
        .order_by_desc(Column::Id);
    let paginator = query.paginate(db, per_page.max(1));
    let total = paginator.num_items().await?;
    let mut found = Vec::new();
    for license in paginator.fetch_page(page.saturating_sub(1)).await? {
        found.push(assemble(db, license).await?);
    }
    Ok((found, total))
}

/// The stored form of a status as read today.
fn status_condition(status: Status) -> Condition {
    use license::Column;
    let today = Utc::now().date_naive();
    let live = Column::Status.is_in([Status::Active.as_str(), Status::Suspended.as_str()]);
    let not_past_end = Condition::any()
        .add(Column::EndDate.is_null())
        .add(Column::EndDate.gte(today));
    match status {
        Status::Expired => Condition::all().add(live).add(Column::EndDate.lt(today)),
        Status::Active | Status::Suspended => Condition::all()
            .add(Column::Status.eq(status.as_str()))
            .add(not_past_end),
        Status::Canceled | Status::Superseded => {
            Condition::all().add(Column::Status.eq(status.as_str()))
        }
    }
}

/// Revokes or reinstates a license by hand, with the reason written to its events.
pub async fn act(
    db: &DatabaseConnection,
    key: &str,
    action: ManualAction,
    reason: &str,
) -> Result<Purchase> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 1000 {
        return Err(Error::InvalidRequest(
            "a reason of 1 to 1000 characters is required".into(),
        ));
    }
    let txn = db.begin().await?;
    licenses::lock_by_key(&txn, key).await?;
    let Some(found) = purchase(&txn, key).await? else {
        return Err(Error::NotFound);
    };
    let license = licenses::find_for_update(&txn, license::Column::Id.eq(found.license.id).into())
        .await?
        .pop()
        .ok_or(Error::NotFound)?;
    let today = Utc::now().date_naive();
    let from = Status::effective(&license.status, license.end_date, today);
    if let Step::To(to) = manual_step(action, from)? {
        use sea_orm::{ActiveValue::Set, IntoActiveModel};
        let mut row = license.clone().into_active_model();
        row.status = Set(to.as_str().to_owned());
        licenses::update(&txn, row).await?;
        licenses::record_event(
            &txn,
            license.id,
            Some(from.as_str()),
            to.as_str(),
            action.as_str(),
            None,
            Some(reason),
        )
        .await?;
    }
    let updated = assemble(&txn, licenses_by_id(&txn, license.id).await?).await?;
    txn.commit().await?;
    Ok(updated)
}

async fn licenses_by_id(db: &impl ConnectionTrait, id: i64) -> Result<license::Model> {
    license::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::Internal)
}

/// The machines a license is activated on, first activated first.
pub async fn activations(
    db: &impl ConnectionTrait,
    license_id: i64,
) -> Result<Vec<entity::activation::Model>> {
    Ok(crate::store::activations::of_license(db, license_id).await?)
}

/// Removes one activation of a license by hand (a machine the buyer lost, a seat to free):
/// false when the license has no such activation. NotFound when there is no such license.
pub async fn remove_activation(db: &DatabaseConnection, key: &str, id: i64) -> Result<bool> {
    let txn = db.begin().await?;
    licenses::lock_by_key(&txn, key).await?;
    let Some(found) = purchase(&txn, key).await? else {
        return Err(Error::NotFound);
    };
    let removed = crate::store::activations::delete_by_id(&txn, found.license.id, id).await?;
    txn.commit().await?;
    Ok(removed)
}

/// One page of the DMP outbox, newest first, optionally in one state.
pub async fn events(
    db: &impl ConnectionTrait,
    state: Option<outbox::State>,
    page: u64,
    per_page: u64,
) -> Result<(Vec<entity::outbox_event::Model>, u64)> {
    Ok(outbox::list(db, state, page, per_page).await?)
}

/// The DMP events about one license, oldest first.
pub async fn license_dmp_events(
    db: &impl ConnectionTrait,
    license_id: i64,
) -> Result<Vec<entity::outbox_event::Model>> {
    Ok(outbox::of_license(db, license_id).await?)
}

/// What support's retry of a DMP event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retried {
    /// Back in line, due now.
    Queued(entity::outbox_event::Model),
    /// Only a failed event can be retried: this one is pending or delivered.
    NotFailed,
    NoSuchEvent,
}

/// Puts a failed DMP event back in line (after fixing what the DMP refused, e.g. credentials).
pub async fn retry_event(db: &impl ConnectionTrait, id: i64) -> Result<Retried> {
    if outbox::retry_failed(db, id, Utc::now()).await? {
        let event = outbox::find(db, id).await?.ok_or(Error::Internal)?;
        return Ok(Retried::Queued(event));
    }
    Ok(match outbox::find(db, id).await? {
        Some(_) => Retried::NotFailed,
        None => Retried::NoSuchEvent,
    })
}
