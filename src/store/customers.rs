//! Buyers, one per e-mail address.

use chrono::Utc;
use entity::customer::{self, Column, Entity};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    TryInsertResult,
};

use crate::fulfillment::{Buyer, Email};

/// The customer's id, creating the row on their first purchase. A concurrent first purchase by
/// the same buyer is absorbed by the unique e-mail index.
pub async fn upsert(db: &impl ConnectionTrait, email: &Email, buyer: &Buyer) -> Result<i64, DbErr> {
    let row = customer::ActiveModel {
        email: Set(email.as_str().to_owned()),
        first_name: Set(buyer.first_name.clone()),
        last_name: Set(buyer.last_name.clone()),
        company_name: Set(buyer.company_name.clone()),
        nexway_user_id: Set(buyer.nexway_user_id.clone()),
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    let inserted = if super::plain_inserts(db) {
        super::unless_taken(Entity::insert(row).exec(db).await)?
    } else {
        match Entity::insert(row)
            .on_conflict_do_nothing_on([Column::Email])
            .exec(db)
            .await?
        {
            TryInsertResult::Inserted(inserted) => Some(inserted),
            TryInsertResult::Conflicted | TryInsertResult::Empty => None,
        }
    };
    if let Some(inserted) = inserted {
        return Ok(inserted.last_insert_id);
    }
    // A returning buyer.
    let customer = by_email(db, email.as_str())
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("customer {}", email.as_str())))?;
    Ok(customer.id)
}

pub async fn by_id(db: &impl ConnectionTrait, id: i64) -> Result<customer::Model, DbErr> {
    Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("customer {id}")))
}

pub async fn by_email(
    db: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<customer::Model>, DbErr> {
    Entity::find().filter(Column::Email.eq(email)).one(db).await
}
