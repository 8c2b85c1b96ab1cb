//! The machines a license is activated on.

use chrono::{DateTime, Utc};
use entity::activation::{self, Column, Entity};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder,
};

pub async fn find(
    db: &impl ConnectionTrait,
    license_id: i64,
    fingerprint: &str,
) -> Result<Option<activation::Model>, DbErr> {
    Entity::find()
        .filter(Column::LicenseId.eq(license_id))
        .filter(Column::Fingerprint.eq(fingerprint))
        .one(db)
        .await
}

pub async fn count(db: &impl ConnectionTrait, license_id: i64) -> Result<u64, DbErr> {
    Entity::find()
        .filter(Column::LicenseId.eq(license_id))
        .count(db)
        .await
}

/// The license's machines, first activated first.
pub async fn of_license(
    db: &impl ConnectionTrait,
    license_id: i64,
) -> Result<Vec<activation::Model>, DbErr> {
    Entity::find()
        .filter(Column::LicenseId.eq(license_id))
        .order_by_asc(Column::Id)
        .all(db)
        .await
}

/// Records a machine. The caller holds the license's lock, so the (license, fingerprint) index
/// is a guard, not a path: a violation is an error.
pub async fn insert(
    db: &impl ConnectionTrait,
    license_id: i64,
    fingerprint: &str,
    name: Option<&str>,
    at: DateTime<Utc>,
) -> Result<activation::Model, DbErr> {
    let row = activation::ActiveModel {
        license_id: Set(license_id),
        fingerprint: Set(fingerprint.to_owned()),
        name: Set(name.map(str::to_owned)),
        created_at: Set(at),
        ..Default::default()
    };
    Entity::insert(row).exec_with_returning(db).await
}

/// Frees the seat of a machine; false when it was not activated.
pub async fn delete(
    db: &impl ConnectionTrait,
    license_id: i64,
    fingerprint: &str,
) -> Result<bool, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::LicenseId.eq(license_id))
        .filter(Column::Fingerprint.eq(fingerprint))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Removes an activation by its id, when it belongs to the license; false otherwise.
pub async fn delete_by_id(
    db: &impl ConnectionTrait,
    license_id: i64,
    id: i64,
) -> Result<bool, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::LicenseId.eq(license_id))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}
