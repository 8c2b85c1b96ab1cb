//! A cancel or suspend that waits for its `new` keeps the buyer it named, so the late `new`
//! takes it into account only when it is the same buyer's. Calls that waited before this
//! migration have none (NULL) and keep applying to their life as before.

use sea_orm_migration::{prelude::*, schema::*};

use crate::dialect;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Fulfillment::Table)
                    .add_column(dialect::long_text(
                        manager,
                        text_null(Fulfillment::PendingBuyer),
                    ))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Fulfillment::Table)
                    .drop_column(Fulfillment::PendingBuyer)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Fulfillment {
    Table,
    PendingBuyer,
}
