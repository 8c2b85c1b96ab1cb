use sea_orm::entity::prelude::*;

/// An event for Nexway's DMP, written in the transaction of the fact it reports and delivered
/// later by the sender.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox_event")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The DMP action, e.g. `register licences`.
    pub action: String,
    /// The license the event is about.
    pub license_id: Option<i64>,
    /// The request body, exactly as it will be sent.
    pub payload: String,
    /// pending | delivered | failed
    pub state: String,
    pub attempts: i32,
    /// When the sender may (re)try; while a sender holds the row, the end of its claim.
    pub next_attempt_at: DateTimeUtc,
    /// The sender holding the row, so only it records the result of its attempt.
    pub claim: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
