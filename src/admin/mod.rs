//! The support side's domain: a license with everything support needs to see it whole, the
//! searches, and the manual actions. Knows nothing of HTTP: `api::admin` and the lkey page
//! present it, `nexkey lookup` prints it.

use chrono::Utc;
use entity::{customer, fulfillment, license, license_event};
use sea_orm::ConnectionTrait;

use crate::error::{Error, Result};
use crate::fulfillment::{
    Catalog, MAX_GENERATIONS, ManualAction, Status, Step, effective, manual_step,
};
use crate::store::licenses::{self, NewEvent, Search, Transition, lookup_key};
use crate::store::writer::Writer;
use crate::store::{customers, fulfillments, outbox, pool};

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

impl Purchase {
    /// Nexway's references of the license and nexkey's own, under the names the lkey answer
    /// gives them (None when unset): the one list the JSON answer, the page and `nexkey lookup`
    /// show.
    pub fn references(&self) -> [(&'static str, Option<&str>); 8] {
        let license = &self.license;
        [
            (
                "nexwayFulfillmentId",
                Some(license.nexway_fulfillment_id.as_str()),
            ),
            (
                "initialNexwayFulfillmentId",
                license.initial_nexway_fulfillment_id.as_deref(),
            ),
            (
                "publisherFulfillmentId",
                Some(license.publisher_fulfillment_id.as_str()),
            ),
            (
                "publisherProductId",
                Some(license.publisher_product_id.as_str()),
            ),
            ("nexwayProductId", license.nexway_product_id.as_deref()),
            ("subscriptionId", license.subscription_id.as_deref()),
            ("order", license.order_id.as_deref()),
            ("externalContext", license.external_context.as_deref()),
        ]
    }

    /// The buyer's first and last name as their purchase gave them; empty when it gave none.
    pub fn buyer_name(&self) -> String {
        [&self.customer.first_name, &self.customer.last_name]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The product's name: the publisher's own for it first, then the one Nexway sent, else its
    /// `publisherProductId`.
    pub fn product_name<'a>(&'a self, catalog: &'a Catalog) -> &'a str {
        let license = &self.license;
        catalog
            .policy_or_defaults(&license.publisher_product_id)
            .name
            .as_deref()
            .or(license.product_name.as_deref())
            .unwrap_or(&license.publisher_product_id)
    }

    /// The licenses this one renewed or replaced, the latest first.
    pub fn ancestors(&self) -> impl Iterator<Item = &Purchase> {
        std::iter::successors(self.parent.as_deref(), |parent| parent.parent.as_deref())
    }
}

/// Everything support sees of one license: what the admin API's license detail, the lkey page
/// and `nexkey lookup` format, each in its own way.
#[derive(Debug, Clone)]
pub struct LicenseFacts {
    pub purchase: Purchase,
    /// Everything that happened to it, oldest first.
    pub history: Vec<Event>,
    /// The machines it is activated on, first activated first.
    pub activations: Vec<entity::activation::Model>,
    /// What was reported about it to Nexway's DMP, oldest first.
    pub dmp_events: Vec<entity::outbox_event::Model>,
}

/// The facts of the license a key (as people type it) belongs to.
pub async fn facts(db: &impl ConnectionTrait, key: &str) -> Result<Option<LicenseFacts>> {
    let Some(purchase) = purchase(db, key).await? else {
        return Ok(None);
    };
    let id = purchase.license.id;
    Ok(Some(LicenseFacts {
        history: history(db, id).await?,
        activations: crate::store::activations::of_license(db, id).await?,
        dmp_events: outbox::of_license(db, id).await?,
        purchase,
    }))
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
    // One query: the license with its customer (a parentless license needs no other).
    let mut candidates = licenses::by_lookup_key_with_owner(db, &wanted).await?;
    // Two codes can differ only by their separators; the one typed exactly wins.
    let exact = candidates
        .iter()
        .position(|(l, _)| l.activation_code == key.trim());
    let Some(found) = exact
        .or((!candidates.is_empty()).then_some(0))
        .map(|i| candidates.swap_remove(i))
    else {
        return Ok(None);
    };
    let (license, owner) = found;
    Ok(Some(assemble(db, license, Some(owner)).await?))
}

/// The purchase of a key, its license locked until the transaction ends: a write follows, and
/// concurrent writes to one license go one at a time.
pub async fn purchase_for_update(db: &impl ConnectionTrait, key: &str) -> Result<Option<Purchase>> {
    licenses::lock_by_key(db, key).await?;
    purchase(db, key).await
}

/// A license with its customer (read here unless given) and its parents, oldest last.
async fn assemble(
    db: &impl ConnectionTrait,
    license: license::Model,
    mut owner: Option<customer::Model>,
) -> Result<Purchase> {
    let mut chain = vec![license];
    while let Some(parent_id) = chain.last().and_then(|l| l.parent_id) {
        if chain.len() > MAX_GENERATIONS {
            return Err(Error::Internal);
        }
        chain.push(licenses::by_id(db, parent_id).await?);
    }
    let today = Utc::now().date_naive();
    let mut purchase: Option<Purchase> = None;
    let generations = chain.len();
    for (index, license) in chain.into_iter().rev().enumerate() {
        // The license asked about (the last here) may come with its customer.
        let given = if index + 1 == generations {
            owner.take()
        } else {
            None
        };
        let customer = match given {
            Some(customer) => customer,
            None => customers::by_id(db, license.customer_id).await?,
        };
        let customer = as_purchased(customer, &license);
        purchase = Some(Purchase {
            status: effective(license.status, license.end_date, today),
            license,
            customer,
            parent: purchase.map(Box::new),
        });
    }
    purchase.ok_or(Error::Internal)
}

/// The buyer as the license's own purchase described them: the customer row keeps the first
/// call's details, each license those of its call. Licenses written before nexkey kept them
/// (no detail of their own) show the customer row.
fn as_purchased(mut customer: customer::Model, license: &license::Model) -> customer::Model {
    let own = [
        &license.buyer_first_name,
        &license.buyer_last_name,
        &license.buyer_company_name,
    ];
    if own.iter().any(|detail| detail.is_some()) {
        customer.first_name = license.buyer_first_name.clone();
        customer.last_name = license.buyer_last_name.clone();
        customer.company_name = license.buyer_company_name.clone();
    }
    customer
}

/// Everything that happened to a license, oldest first.
async fn history(db: &impl ConnectionTrait, license_id: i64) -> Result<Vec<Event>> {
    let events = licenses::events(db, license_id).await?;
    let call_ids: Vec<i64> = events.iter().filter_map(|e| e.fulfillment_id).collect();
    let calls = fulfillments::by_ids(db, call_ids).await?;
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
    let customer_id = match &filter.email {
        Some(email) => Some(
            customers::by_email(db, &email.trim().to_lowercase())
                .await?
                .map_or(-1, |customer| customer.id),
        ),
        None => None,
    };
    // Pasted ids often carry spaces; Nexway's are stored trimmed (and MySQL's PAD SPACE
    // collations would ignore trailing ones where SQLite and PostgreSQL do not).
    let search = Search {
        customer_id,
        nexway_fulfillment_id: filter.nexway_fulfillment_id.as_deref().map(str::trim),
        publisher_fulfillment_id: filter.publisher_fulfillment_id.as_deref().map(str::trim),
        order_id: filter.order_id.as_deref().map(str::trim),
        product: filter.product.as_deref().map(str::trim),
        status: filter.status,
        today: Utc::now().date_naive(),
    };
    let (page, total) = licenses::search(db, &search, page, per_page).await?;
    let mut found = Vec::new();
    for license in page {
        found.push(assemble(db, license, None).await?);
    }
    Ok((found, total))
}

/// Revokes or reinstates a license by hand, with the reason written to its events.
pub async fn act(
    writer: &Writer,
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
    let (key, reason) = (key.to_owned(), reason.to_owned());
    writer
        .run(move |txn| {
            Box::pin(async move {
                let found = purchase_for_update(txn, &key)
                    .await?
                    .ok_or(Error::NotFound)?;
                let license = licenses::by_id_for_update(txn, found.license.id).await?;
                let today = Utc::now().date_naive();
                let from = effective(license.status, license.end_date, today);
                let id = license.id;
                if let Step::To(to) = manual_step(action, from)? {
                    let transition = Transition {
                        status: to,
                        end_date: None,
                        product: None,
                        trial: None,
                    };
                    let event = NewEvent {
                        from: Some(from),
                        to,
                        cause: action.cause(),
                        fulfillment_id: None,
                        reason: Some(reason),
                    };
                    licenses::transition(txn, license, &transition, &event).await?;
                }
                assemble(txn, licenses::by_id(txn, id).await?, None).await
            })
        })
        .await
}

/// Removes one activation of a license by hand (a machine the buyer lost, a seat to free):
/// false when the license has no such activation. NotFound when there is no such license.
pub async fn remove_activation(writer: &Writer, key: &str, id: i64) -> Result<bool> {
    let key = key.to_owned();
    writer
        .run(move |txn| {
            Box::pin(async move {
                let found = purchase_for_update(txn, &key)
                    .await?
                    .ok_or(Error::NotFound)?;
                Ok(crate::store::activations::delete_by_id(txn, found.license.id, id).await?)
            })
        })
        .await
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

/// What loading codes into a pool did, and the pool's stock after it.
#[derive(Debug, Clone, Copy)]
pub struct Imported {
    pub report: pool::ImportReport,
    pub stock: pool::Stock,
}

/// Loads the codes of a CSV file (see [`pool::parse_csv`]) into a product's pool: the one way
/// for the admin API and `nexkey keys import`. Known codes are skipped, never duplicated; one
/// transaction, so an import that fails leaves the pool as it was.
pub async fn import_pool(writer: &Writer, product: &str, csv: &str) -> Result<Imported> {
    let codes =
        pool::parse_csv(csv).map_err(|reason| Error::InvalidRequest(format!("CSV: {reason}")))?;
    let product = product.to_owned();
    let imported = writer
        .run(move |txn| {
            Box::pin(async move {
                let report = pool::import(txn, &product, &codes).await?;
                let stock = pool::stock(txn, &product).await?;
                Ok::<_, Error>((product, Imported { report, stock }))
            })
        })
        .await;
    let (product, imported) = imported?;
    crate::metrics::pool_stock(&product, imported.stock.available);
    Ok(imported)
}
