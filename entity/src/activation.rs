use sea_orm::entity::prelude::*;

/// A machine using a license: one row per (license, fingerprint), the unique index making a
/// repeated or concurrent activation of the same machine idempotent.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "activation")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub license_id: i64,
    /// What the publisher's software says identifies the machine (opaque to nexkey).
    pub fingerprint: String,
    /// A label for people (e.g. the machine's host name).
    pub name: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
