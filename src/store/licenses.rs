//! Licenses and their audit trail.

use std::collections::HashSet;

use chrono::{NaiveDate, Utc};
use entity::vocabulary::{Cause, Status};
use entity::{customer, license, license_event};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TryInsertResult,
};

use super::fulfillments;

/// Reissues chain at most once per renewal; this bounds a walk over a corrupted chain.
pub const MAX_GENERATIONS: usize = 1000;

/// A license about to be written; the code may already be taken.
#[derive(Debug, Clone)]
pub struct NewLicense<'a> {
    pub activation_code: &'a str,
    pub publisher_product_id: &'a str,
    pub nexway_product_id: Option<&'a str>,
    pub product_name: Option<&'a str>,
    pub customer_id: i64,
    pub buyer: Buyer<'a>,
    pub status: Status,
    pub trial: bool,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub fulfillment_id: i64,
    pub parent_id: Option<i64>,
    pub nexway_fulfillment_id: &'a str,
    pub initial_nexway_fulfillment_id: Option<&'a str>,
    pub publisher_fulfillment_id: &'a str,
    pub subscription_id: Option<&'a str>,
    pub order_id: Option<&'a str>,
    pub external_context: Option<&'a str>,
    pub generator: &'a str,
    /// The file deliverable as JSON, when the generator made one.
    pub file: Option<&'a str>,
}

/// The buyer's details as a purchase's call gave them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Buyer<'a> {
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub company_name: Option<&'a str>,
}

impl<'a> Buyer<'a> {
    /// The buyer stored with a license, for its reissued children.
    pub fn of(license: &'a license::Model) -> Self {
        Buyer {
            first_name: license.buyer_first_name.as_deref(),
            last_name: license.buyer_last_name.as_deref(),
            company_name: license.buyer_company_name.as_deref(),
        }
    }
}

/// The life a license belongs to: the first fulfillment of its life (PROTOCOL.md 2b), which is
/// the fulfillment that issued it unless a reissue or a later call carried it over.
pub fn life_of(license: &license::Model) -> &str {
    license
        .initial_nexway_fulfillment_id
        .as_deref()
        .unwrap_or(&license.nexway_fulfillment_id)
}

/// The form a code is looked up by: uppercase, letters and digits only, so what people type
/// (lowercase, spaces, missing dashes) still finds it.
pub fn lookup_key(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Inserts the license unless its code is taken (then None: the caller makes another code).
/// `ON CONFLICT DO NOTHING` keeps a PostgreSQL transaction usable after a collision.
pub async fn insert_if_new(
    db: &impl ConnectionTrait,
    new: &NewLicense<'_>,
) -> Result<Option<license::Model>, DbErr> {
    let now = Utc::now();
    let owned = |value: Option<&str>| value.map(str::to_owned);
    let row = license::ActiveModel {
        activation_code: Set(new.activation_code.to_owned()),
        lookup_key: Set(lookup_key(new.activation_code)),
        publisher_product_id: Set(new.publisher_product_id.to_owned()),
        nexway_product_id: Set(owned(new.nexway_product_id)),
        product_name: Set(owned(new.product_name)),
        customer_id: Set(new.customer_id),
        buyer_first_name: Set(owned(new.buyer.first_name)),
        buyer_last_name: Set(owned(new.buyer.last_name)),
        buyer_company_name: Set(owned(new.buyer.company_name)),
        status: Set(new.status),
        trial: Set(new.trial),
        start_date: Set(new.start_date),
        end_date: Set(new.end_date),
        fulfillment_id: Set(new.fulfillment_id),
        parent_id: Set(new.parent_id),
        nexway_fulfillment_id: Set(new.nexway_fulfillment_id.to_owned()),
        initial_nexway_fulfillment_id: Set(owned(new.initial_nexway_fulfillment_id)),
        publisher_fulfillment_id: Set(new.publisher_fulfillment_id.to_owned()),
        subscription_id: Set(owned(new.subscription_id)),
        order_id: Set(owned(new.order_id)),
        external_context: Set(owned(new.external_context)),
        generator: Set(new.generator.to_owned()),
        file: Set(owned(new.file)),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    // The row as stored comes back with the insert (RETURNING; SeaORM reads it back where the
    // database has none, MySQL).
    let inserted = if super::plain_inserts(db) {
        super::unless_taken(license::Entity::insert(row).exec_with_returning(db).await)?
    } else {
        match license::Entity::insert(row)
            .on_conflict_do_nothing_on([license::Column::ActivationCode])
            .exec_with_returning(db)
            .await?
        {
            TryInsertResult::Inserted(license) => Some(license),
            TryInsertResult::Conflicted | TryInsertResult::Empty => None,
        }
    };
    if inserted.is_some() {
        // Every code nexkey issues is written here: the one place to count them.
        crate::metrics::code_issued(new.publisher_product_id, new.generator);
    }
    Ok(inserted)
}

/// One line of a license's audit trail.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// None when the event created the license.
    pub from: Option<Status>,
    pub to: Status,
    pub cause: Cause,
    /// The call that caused it; None for a person's action.
    pub fulfillment_id: Option<i64>,
    pub reason: Option<String>,
}

/// Appends one line to a license's audit trail.
pub async fn record_event(
    db: &impl ConnectionTrait,
    license_id: i64,
    event: &NewEvent,
) -> Result<(), DbErr> {
    let row = license_event::ActiveModel {
        license_id: Set(license_id),
        from_status: Set(event.from),
        to_status: Set(event.to),
        operation: Set(event.cause),
        fulfillment_id: Set(event.fulfillment_id),
        reason: Set(event.reason.clone()),
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    license_event::Entity::insert(row).exec(db).await?;
    Ok(())
}

/// The product a license unlocks, when a change moves it.
#[derive(Debug, Clone, Copy)]
pub struct Product<'a> {
    pub publisher_product_id: &'a str,
    pub nexway_product_id: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// What a change does to a kept license: the new status, and the other columns it sets.
#[derive(Debug, Clone, Copy)]
pub struct Transition<'a> {
    pub status: Status,
    pub end_date: Option<Option<NaiveDate>>,
    pub product: Option<Product<'a>>,
    pub trial: Option<bool>,
}

/// The one way a license changes: the row and its event, together, in the caller's transaction.
pub async fn transition(
    db: &impl ConnectionTrait,
    license: license::Model,
    change: &Transition<'_>,
    event: &NewEvent,
) -> Result<license::Model, DbErr> {
    let id = license.id;
    let mut row: license::ActiveModel = license.into();
    row.status = Set(change.status);
    if let Some(end_date) = change.end_date {
        row.end_date = Set(end_date);
    }
    if let Some(product) = change.product {
        row.publisher_product_id = Set(product.publisher_product_id.to_owned());
        row.nexway_product_id = Set(product.nexway_product_id.map(str::to_owned));
        row.product_name = Set(product.name.map(str::to_owned));
    }
    if let Some(trial) = change.trial {
        row.trial = Set(trial);
    }
    row.updated_at = Set(Utc::now());
    let changed = row.update(db).await?;
    record_event(db, id, event).await?;
    Ok(changed)
}

pub async fn events(
    db: &impl ConnectionTrait,
    license_id: i64,
) -> Result<Vec<license_event::Model>, DbErr> {
    license_event::Entity::find()
        .filter(license_event::Column::LicenseId.eq(license_id))
        .order_by_asc(license_event::Column::Id)
        .all(db)
        .await
}

/// The licenses matching `condition`, oldest first, locked for the rest of the transaction on
/// PostgreSQL (`FOR UPDATE`), so concurrent calls about the same licenses apply one after the
/// other. SQLite needs no lock: a writing transaction there is alone.
pub async fn find_for_update(
    db: &impl ConnectionTrait,
    condition: Condition,
) -> Result<Vec<license::Model>, DbErr> {
    license::Entity::find()
        .filter(condition)
        .order_by_asc(license::Column::Id)
        .lock_exclusive()
        .all(db)
        .await
}

/// The licenses whose codes are `codes` (in their lookup form), locked.
pub async fn by_codes(
    db: &impl ConnectionTrait,
    codes: &[String],
) -> Result<Vec<license::Model>, DbErr> {
    let keys: Vec<String> = codes.iter().map(|code| lookup_key(code)).collect();
    find_for_update(db, license::Column::LookupKey.is_in(keys).into()).await
}

/// The licenses of a life (see [`life_of`]), locked.
pub async fn by_life(db: &impl ConnectionTrait, life: &str) -> Result<Vec<license::Model>, DbErr> {
    use license::Column;
    let condition = Condition::any()
        .add(
            Condition::all()
                .add(Column::InitialNexwayFulfillmentId.is_null())
                .add(Column::NexwayFulfillmentId.eq(life)),
        )
        .add(Column::InitialNexwayFulfillmentId.eq(life));
    find_for_update(db, condition).await
}

/// The licenses carrying a fulfillment id, as issuing call or first of their life, locked.
pub async fn by_fulfillment_id(
    db: &impl ConnectionTrait,
    id: &str,
) -> Result<Vec<license::Model>, DbErr> {
    use license::Column;
    let condition = Condition::any()
        .add(Column::NexwayFulfillmentId.eq(id))
        .add(Column::InitialNexwayFulfillmentId.eq(id));
    find_for_update(db, condition).await
}

pub async fn by_subscription(
    db: &impl ConnectionTrait,
    subscription_id: &str,
) -> Result<Vec<license::Model>, DbErr> {
    find_for_update(
        db,
        license::Column::SubscriptionId.eq(subscription_id).into(),
    )
    .await
}

/// The licenses of the call nexkey answered with `publisher_fulfillment_id`: those it issued,
/// and those any later call (renew, suspend…) touched, whose answers carry their own id.
pub async fn answered_by(
    db: &impl ConnectionTrait,
    publisher_fulfillment_id: &str,
) -> Result<Vec<license::Model>, DbErr> {
    let Some(call) = fulfillments::find_by_publisher_id(db, publisher_fulfillment_id).await? else {
        return Ok(Vec::new());
    };
    let touched = touched_by(db, call.id).await?;
    let condition = Condition::any()
        .add(license::Column::FulfillmentId.eq(call.id))
        .add(license::Column::Id.is_in(touched));
    find_for_update(db, condition).await
}

/// The ids of the licenses a call wrote an event for.
pub async fn touched_by(db: &impl ConnectionTrait, fulfillment_id: i64) -> Result<Vec<i64>, DbErr> {
    license_event::Entity::find()
        .select_only()
        .column(license_event::Column::LicenseId)
        .filter(license_event::Column::FulfillmentId.eq(fulfillment_id))
        .into_tuple::<i64>()
        .all(db)
        .await
}

/// Replaces every superseded license by its children, until only current codes remain.
pub async fn current(
    db: &impl ConnectionTrait,
    mut found: Vec<license::Model>,
) -> Result<Vec<license::Model>, DbErr> {
    for _ in 0..MAX_GENERATIONS {
        let superseded: Vec<i64> = found
            .iter()
            .filter(|license| license.status == Status::Superseded)
            .map(|license| license.id)
            .collect();
        if superseded.is_empty() {
            let mut seen = HashSet::new();
            found.retain(|license| seen.insert(license.id));
            return Ok(found);
        }
        found.retain(|license| !superseded.contains(&license.id));
        let children =
            find_for_update(db, license::Column::ParentId.is_in(superseded).into()).await?;
        found.extend(children);
    }
    Err(DbErr::Custom(format!(
        "a reissue chain is longer than {MAX_GENERATIONS} generations"
    )))
}

/// The customers owning `licenses`.
pub async fn owners(
    db: &impl ConnectionTrait,
    licenses: &[license::Model],
) -> Result<Vec<customer::Model>, DbErr> {
    let ids: Vec<i64> = licenses.iter().map(|license| license.customer_id).collect();
    customer::Entity::find()
        .filter(customer::Column::Id.is_in(ids))
        .all(db)
        .await
}

/// One license, locked for the rest of the transaction.
pub async fn by_id_for_update(db: &impl ConnectionTrait, id: i64) -> Result<license::Model, DbErr> {
    find_for_update(db, license::Column::Id.eq(id).into())
        .await?
        .pop()
        .ok_or_else(|| DbErr::RecordNotFound(format!("license {id}")))
}

pub async fn by_id(db: &impl ConnectionTrait, id: i64) -> Result<license::Model, DbErr> {
    license::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("license {id}")))
}

/// Locks the licenses of `key` before anything is read: on PostgreSQL and MariaDB it locks the
/// rows; on SQLite the writer holds the write lock already (and a transaction that read first
/// could fail to upgrade to a writer). Changes nothing.
pub async fn lock_by_key(db: &impl ConnectionTrait, key: &str) -> Result<(), DbErr> {
    license::Entity::update_many()
        .col_expr(
            license::Column::UpdatedAt,
            sea_orm::sea_query::Expr::col(license::Column::UpdatedAt),
        )
        .filter(license::Column::LookupKey.eq(lookup_key(key)))
        .exec(db)
        .await?;
    Ok(())
}

/// The licenses whose code has this lookup form, oldest first.
pub async fn by_lookup_key(
    db: &impl ConnectionTrait,
    key: &str,
) -> Result<Vec<license::Model>, DbErr> {
    license::Entity::find()
        .filter(license::Column::LookupKey.eq(key))
        .order_by_asc(license::Column::Id)
        .all(db)
        .await
}

/// The licenses whose code has this lookup form, oldest first, each with its customer: one
/// query (a join) for support's most frequent question.
pub async fn by_lookup_key_with_owner(
    db: &impl ConnectionTrait,
    key: &str,
) -> Result<Vec<(license::Model, customer::Model)>, DbErr> {
    use sea_orm::{EntityTrait as _, JoinType};
    let owner = license::Entity::belongs_to(customer::Entity)
        .from(license::Column::CustomerId)
        .to(customer::Column::Id)
        .into();
    let rows = license::Entity::find()
        .join(JoinType::InnerJoin, owner)
        .select_also(customer::Entity)
        .filter(license::Column::LookupKey.eq(key))
        .order_by_asc(license::Column::Id)
        .all(db)
        .await?;
    rows.into_iter()
        .map(|(license, owner)| {
            let owner = owner.ok_or_else(|| {
                DbErr::RecordNotFound(format!("customer {}", license.customer_id))
            })?;
            Ok((license, owner))
        })
        .collect()
}

/// What support searches licenses by; every given criterion must match.
#[derive(Debug, Clone, Copy)]
pub struct Search<'a> {
    pub customer_id: Option<i64>,
    /// The fulfillment that issued a license, or the first one of its life.
    pub nexway_fulfillment_id: Option<&'a str>,
    pub publisher_fulfillment_id: Option<&'a str>,
    pub order_id: Option<&'a str>,
    pub product: Option<&'a str>,
    /// As read on `today`: `expired` finds active licenses past their end date.
    pub status: Option<Status>,
    pub today: NaiveDate,
}

/// One page (from 1) of the licenses matching `search`, newest first, and how many match.
pub async fn search(
    db: &impl ConnectionTrait,
    search: &Search<'_>,
    page: u64,
    per_page: u64,
) -> Result<(Vec<license::Model>, u64), DbErr> {
    use license::Column;
    let mut condition = Condition::all();
    if let Some(id) = search.customer_id {
        condition = condition.add(Column::CustomerId.eq(id));
    }
    if let Some(id) = search.nexway_fulfillment_id {
        condition = condition.add(
            Condition::any()
                .add(Column::NexwayFulfillmentId.eq(id))
                .add(Column::InitialNexwayFulfillmentId.eq(id)),
        );
    }
    if let Some(id) = search.publisher_fulfillment_id {
        condition = condition.add(Column::PublisherFulfillmentId.eq(id));
    }
    if let Some(order) = search.order_id {
        condition = condition.add(Column::OrderId.eq(order));
    }
    if let Some(product) = search.product {
        condition = condition.add(Column::PublisherProductId.eq(product));
    }
    if let Some(status) = search.status {
        condition = condition.add(status_condition(status, search.today));
    }
    let paginator = license::Entity::find()
        .filter(condition)
        .order_by_desc(Column::Id)
        .paginate(db, per_page.max(1));
    let total = paginator.num_items().await?;
    let found = paginator.fetch_page(page.saturating_sub(1)).await?;
    Ok((found, total))
}

/// The stored form of a status as read on `today`.
fn status_condition(status: Status, today: NaiveDate) -> Condition {
    use license::Column;
    // As `fulfillment::effective` reads a license: only an active one expires (a suspension
    // holds past the end date).
    let active = Column::Status.eq(Status::Active);
    match status {
        Status::Expired => Condition::all().add(active).add(Column::EndDate.lt(today)),
        Status::Active => Condition::all().add(active).add(
            Condition::any()
                .add(Column::EndDate.is_null())
                .add(Column::EndDate.gte(today)),
        ),
        Status::Suspended | Status::Canceled | Status::Superseded => {
            Condition::all().add(Column::Status.eq(status))
        }
    }
}

/// Serialises the transactions of one license life, across processes: on PostgreSQL a
/// transaction-scoped advisory lock on the life's id (key space 1: the migration lock uses the
/// one-key form); on MariaDB/MySQL the life's row of `life_lock`, which the upsert locks
/// exclusively until the transaction ends (whether it inserted or found it); SQLite's single
/// writer serialises them already.
pub async fn lock_life(db: &impl ConnectionTrait, life: &str) -> Result<(), DbErr> {
    use sea_orm::{DbBackend, Statement};
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => "SELECT pg_advisory_xact_lock(1, hashtext($1))",
        DbBackend::MySql => {
            "INSERT INTO life_lock (life) VALUES (?) ON DUPLICATE KEY UPDATE life = life"
        }
        _ => return Ok(()),
    };
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(backend, sql, [life.into()]))
        .await?;
    Ok(())
}
