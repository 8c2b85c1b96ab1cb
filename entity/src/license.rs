use sea_orm::entity::prelude::*;

pub use crate::vocabulary::Status;

/// An activation code and what it unlocks.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "license")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub activation_code: String,
    /// The code uppercased without separators, for lookups of what people type.
    pub lookup_key: String,
    pub publisher_product_id: String,
    pub nexway_product_id: Option<String>,
    pub product_name: Option<String>,
    pub customer_id: i64,
    /// The buyer as the purchase's call described them (the customer row keeps the first call's
    /// details); None on licenses written before these columns, which read the customer row.
    pub buyer_first_name: Option<String>,
    pub buyer_last_name: Option<String>,
    pub buyer_company_name: Option<String>,
    /// Never `expired`: that is computed from `end_date`.
    pub status: Status,
    /// A free trial's code (`checkout.trialContext` CREATION) until a conversion makes it ordinary.
    pub trial: bool,
    pub start_date: Option<Date>,
    pub end_date: Option<Date>,
    /// The fulfillment (row id) that issued this code.
    pub fulfillment_id: i64,
    /// The license this one renewed or replaced.
    pub parent_id: Option<i64>,
    pub nexway_fulfillment_id: String,
    pub initial_nexway_fulfillment_id: Option<String>,
    pub publisher_fulfillment_id: String,
    pub subscription_id: Option<String>,
    pub order_id: Option<String>,
    pub external_context: Option<String>,
    pub generator: String,
    /// The file deliverable shipped with the code (JSON `{data, encoding, charset, fileName}`).
    pub file: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
