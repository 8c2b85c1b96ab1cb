//! Answered calls: the idempotency record.

use chrono::Utc;
use entity::fulfillment::{self, Column, Entity};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    TryInsertResult,
};

/// The identity of a call: (operation, Nexway's fulfillment id, order id or "").
#[derive(Debug, Clone, Copy)]
pub struct CallKey<'a> {
    pub operation: &'a str,
    pub nexway_fulfillment_id: &'a str,
    pub order_id: &'a str,
}

pub async fn find(
    db: &impl ConnectionTrait,
    key: CallKey<'_>,
) -> Result<Option<fulfillment::Model>, DbErr> {
    Entity::find()
        .filter(Column::Operation.eq(key.operation))
        .filter(Column::NexwayFulfillmentId.eq(key.nexway_fulfillment_id))
        .filter(Column::OrderId.eq(key.order_id))
        .one(db)
        .await
}

/// Claims the call for this transaction by inserting its row first. Returns the row id, or None
/// when another transaction already answered it; the unique index decides, across processes.
/// A concurrent claimant waits on the index until the first one commits or rolls back.
pub async fn claim(
    db: &impl ConnectionTrait,
    key: CallKey<'_>,
    publisher_fulfillment_id: &str,
    request_digest: &str,
) -> Result<Option<i64>, DbErr> {
    let row = fulfillment::ActiveModel {
        publisher_fulfillment_id: Set(publisher_fulfillment_id.to_owned()),
        operation: Set(key.operation.to_owned()),
        nexway_fulfillment_id: Set(key.nexway_fulfillment_id.to_owned()),
        order_id: Set(key.order_id.to_owned()),
        request_digest: Set(request_digest.to_owned()),
        answer: Set(String::new()),
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    let inserted = Entity::insert(row)
        .on_conflict_do_nothing_on([
            Column::Operation,
            Column::NexwayFulfillmentId,
            Column::OrderId,
        ])
        .exec(db)
        .await?;
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
