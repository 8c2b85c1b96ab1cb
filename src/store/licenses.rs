//! Licenses and their audit trail.

use chrono::{NaiveDate, Utc};
use entity::{license, license_event};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, TryInsertResult,
};

/// A license about to be written; the code may already be taken.
#[derive(Debug, Clone)]
pub struct NewLicense<'a> {
    pub activation_code: &'a str,
    pub publisher_product_id: &'a str,
    pub nexway_product_id: Option<&'a str>,
    pub product_name: Option<&'a str>,
    pub customer_id: i64,
    pub status: &'a str,
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
        status: Set(new.status.to_owned()),
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
    let inserted = license::Entity::insert(row)
        .on_conflict_do_nothing_on([license::Column::ActivationCode])
        .exec(db)
        .await?;
    match inserted {
        TryInsertResult::Inserted(result) => {
            // Every code nexkey issues is written here: the one place to count them.
            crate::metrics::code_issued(new.publisher_product_id, new.generator);
            license::Entity::find_by_id(result.last_insert_id)
                .one(db)
                .await
        }
        TryInsertResult::Conflicted | TryInsertResult::Empty => Ok(None),
    }
}

/// Appends one line to a license's audit trail.
pub async fn record_event(
    db: &impl ConnectionTrait,
    license_id: i64,
    from_status: Option<&str>,
    to_status: &str,
    operation: &str,
    fulfillment_id: Option<i64>,
    reason: Option<&str>,
) -> Result<(), DbErr> {
    let row = license_event::ActiveModel {
        license_id: Set(license_id),
        from_status: Set(from_status.map(str::to_owned)),
        to_status: Set(to_status.to_owned()),
        operation: Set(operation.to_owned()),
        fulfillment_id: Set(fulfillment_id),
        reason: Set(reason.map(str::to_owned)),
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    license_event::Entity::insert(row).exec(db).await?;
    Ok(())
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

/// Writes the changed columns of a license, stamping `updated_at`.
pub async fn update(
    db: &impl ConnectionTrait,
    mut license: license::ActiveModel,
) -> Result<license::Model, DbErr> {
    license.updated_at = Set(Utc::now());
    license.update(db).await
}

/// Takes the write lock on the licenses of `key` before anything is read: on SQLite a
/// transaction that reads first can fail to upgrade to a writer when another one committed in
/// between; on PostgreSQL it locks the rows. Changes nothing.
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
