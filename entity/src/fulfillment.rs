use sea_orm::entity::prelude::*;

pub use crate::vocabulary::Operation;

/// One answered call from Nexway. The unique (operation, nexway_fulfillment_id, order_id, repeat) index
/// is what makes repeats and concurrent duplicates safe: the first insert wins, the others replay.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "fulfillment")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The id nexkey answered (`publisherFulfillmentId`); Nexway sends it back later.
    #[sea_orm(unique)]
    pub publisher_fulfillment_id: String,
    pub operation: Operation,
    pub nexway_fulfillment_id: String,
    /// Empty when the call named no order: NULLs would not collide in a unique index.
    pub order_id: String,
    /// 0, or n for the n-th time a suspend or reactivate with this identity was a new call
    /// (after the opposite operation had been applied to its licenses).
    pub repeat: i32,
    /// Set on a cancel or suspend answered before the `new` of its life: the life it waits for.
    pub pending_life: Option<String>,
    /// The buyer's e-mail (lowercased) a waiting call named: the late `new` of another buyer
    /// does not take it. None on calls that waited before nexkey kept it.
    pub pending_buyer: Option<String>,
    /// SHA-256 of the normalised command, to tell a true repeat from a conflicting one.
    pub request_digest: String,
    /// The answer body exactly as sent, replayed byte for byte.
    pub answer: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
