use sea_orm::entity::prelude::*;

use crate::vocabulary::{Cause, Status};

/// The audit trail: every change of a license, written in the transaction that made it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "license_event")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub license_id: i64,
    /// None when the event created the license.
    pub from_status: Option<Status>,
    pub to_status: Status,
    pub operation: Cause,
    pub fulfillment_id: Option<i64>,
    pub reason: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
