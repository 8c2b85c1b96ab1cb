//! Answered calls: the idempotency record.

use chrono::Utc;
use entity::fulfillment::{self, Column, Entity, Operation};
use entity::vocabulary::Cause;
use entity::{license, license_event};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TryInsertResult,
};

/// The identity of a call: (operation, Nexway's fulfillment id, order id or "").
#[derive(Debug, Clone, Copy)]
pub struct CallKey<'a> {
    pub operation: Operation,
    pub nexway_fulfillment_id: &'a str,
    pub order_id: &'a str,
}

/// Whether a cancel of order `order_id` wrote an event on one of `license_ids` (any fulfillment
/// id: a legacy cancel carries its own).
pub async fn canceled_in_order(
    db: &impl ConnectionTrait,
    license_ids: &[i64],
    order_id: &str,
) -> Result<bool, DbErr> {
    let events = sea_orm::sea_query::Query::select()
        .column(license_event::Column::FulfillmentId)
        .from(license_event::Entity)
        .and_where(license_event::Column::LicenseId.is_in(license_ids.iter().copied()))
        .to_owned();
    let found = Entity::find()
        .filter(Column::Operation.eq(Operation::Cancel))
        .filter(Column::OrderId.eq(order_id))
        .filter(Column::Id.in_subquery(events))
        .one(db)
        .await?;
    Ok(found.is_some())
}

/// The latest call answered with this identity (the highest `repeat`).
pub async fn find(
    db: &impl ConnectionTrait,
    key: CallKey<'_>,
) -> Result<Option<fulfillment::Model>, DbErr> {
    Entity::find()
        .filter(Column::Operation.eq(key.operation))
        .filter(Column::NexwayFulfillmentId.eq(key.nexway_fulfillment_id))
        .filter(Column::OrderId.eq(key.order_id))
        .order_by_desc(Column::Repeat)
        .one(db)
        .await
}

/// Claims the call for this transaction by inserting its row first. Returns the row id, or None
/// when another transaction already answered it; the unique index decides, across processes.
/// A concurrent claimant waits on the index until the first one commits or rolls back.
pub async fn claim(
    db: &impl ConnectionTrait,
    key: CallKey<'_>,
    repeat: i32,
    publisher_fulfillment_id: &str,
    request_digest: &str,
) -> Result<Option<i64>, DbErr> {
    let row = fulfillment::ActiveModel {
        publisher_fulfillment_id: Set(publisher_fulfillment_id.to_owned()),
        operation: Set(key.operation),
        repeat: Set(repeat),
        pending_life: Set(None),
        nexway_fulfillment_id: Set(key.nexway_fulfillment_id.to_owned()),
        order_id: Set(key.order_id.to_owned()),
        request_digest: Set(request_digest.to_owned()),
        answer: Set(String::new()),
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    // No conflict target: the unique call key and the unique publisher id both mean "taken"
    // (the latter is a fresh UUID), and the statement does not depend on the index's columns.
    let inserted = if super::plain_inserts(db) {
        super::unless_taken(Entity::insert(row).exec(db).await)?
            .map_or(TryInsertResult::Conflicted, TryInsertResult::Inserted)
    } else {
        Entity::insert(row)
            .on_conflict(OnConflict::new().do_nothing().to_owned())
            .try_insert()
            .exec(db)
            .await?
    };
    Ok(match inserted {
        TryInsertResult::Inserted(result) => Some(result.last_insert_id),
        TryInsertResult::Conflicted | TryInsertResult::Empty => None,
    })
}

/// Stores the answer of a claimed call, in the claiming transaction.
pub async fn record_answer(db: &impl ConnectionTrait, id: i64, answer: &str) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Answer, answer.into())
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn find_by_publisher_id(
    db: &impl ConnectionTrait,
    publisher_fulfillment_id: &str,
) -> Result<Option<fulfillment::Model>, DbErr> {
    Entity::find()
        .filter(Column::PublisherFulfillmentId.eq(publisher_fulfillment_id))
        .one(db)
        .await
}

/// Marks a claimed cancel or suspend as waiting for the `new` of `life` by `buyer` (an e-mail).
pub async fn mark_pending(
    db: &impl ConnectionTrait,
    id: i64,
    life: &str,
    buyer: &str,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::PendingLife, life.into())
        .col_expr(Column::PendingBuyer, buyer.into())
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// The cancels and suspends answered before the `new` of `life`, oldest first.
pub async fn pending_for(
    db: &impl ConnectionTrait,
    life: &str,
) -> Result<Vec<fulfillment::Model>, DbErr> {
    Entity::find()
        .filter(Column::PendingLife.eq(life))
        .order_by_asc(Column::Id)
        .all(db)
        .await
}

/// Whether something with one of `causes` happened, after `call`, to a license `call` touched
/// (or, when it touched none: it waited for its `new`, or changed nothing, to a license of its
/// `life`). Nexway's calls are ordered by their ids, support's actions (no call) by time.
pub async fn happened_since(
    db: &impl ConnectionTrait,
    call: &fulfillment::Model,
    life: &str,
    causes: &[Cause],
) -> Result<bool, DbErr> {
    let mut licenses: Vec<i64> = license_event::Entity::find()
        .select_only()
        .column(license_event::Column::LicenseId)
        .filter(license_event::Column::FulfillmentId.eq(call.id))
        .into_tuple()
        .all(db)
        .await?;
    if licenses.is_empty() {
        licenses = license::Entity::find()
            .select_only()
            .column(license::Column::Id)
            .filter(
                Condition::any()
                    .add(license::Column::InitialNexwayFulfillmentId.eq(life))
                    .add(license::Column::NexwayFulfillmentId.eq(life)),
            )
            .into_tuple()
            .all(db)
            .await?;
    }
    let after = Condition::any()
        .add(license_event::Column::FulfillmentId.gt(call.id))
        .add(
            Condition::all()
                .add(license_event::Column::FulfillmentId.is_null())
                .add(license_event::Column::CreatedAt.gt(call.created_at)),
        );
    let later = license_event::Entity::find()
        .filter(license_event::Column::LicenseId.is_in(licenses))
        .filter(after)
        .filter(license_event::Column::Operation.is_in(causes.iter().copied()))
        .one(db)
        .await?;
    Ok(later.is_some())
}

pub async fn by_ids(
    db: &impl ConnectionTrait,
    ids: Vec<i64>,
) -> Result<Vec<fulfillment::Model>, DbErr> {
    Entity::find().filter(Column::Id.is_in(ids)).all(db).await
}
