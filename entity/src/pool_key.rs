use sea_orm::entity::prelude::*;

/// A pre-loaded activation code of one product, handed out at most once.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pool_key")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub publisher_product_id: String,
    #[sea_orm(unique)]
    pub code: String,
    /// available | allocated | revoked
    pub status: String,
    pub imported_at: DateTimeUtc,
    pub allocated_at: Option<DateTimeUtc>,
    /// Nexway's fulfillment id of the call that received the code.
    pub allocated_to: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
