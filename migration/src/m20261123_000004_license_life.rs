//! The license life as a plan: trial codes, the buyer as each purchase gave them, cancels and
//! suspends that arrive before their `new`, and suspend/reactivate repeated in one order.
//! Columns are added one per statement (SQLite alters one thing at a time); existing rows get
//! the defaults that describe them: not a trial, no per-purchase buyer (read from the customer),
//! no pending life, first of their identity.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let license_columns = [
            boolean(License::Trial).default(false).to_owned(),
            string_null(License::BuyerFirstName),
            string_null(License::BuyerLastName),
            string_null(License::BuyerCompanyName),
        ];
        for column in license_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(License::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        let fulfillment_columns = [
            integer(Fulfillment::Repeat).default(0).to_owned(),
            string_null(Fulfillment::PendingLife),
        ];
        for column in fulfillment_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Fulfillment::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("fulfillment_call_key")
                    .table(Fulfillment::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("fulfillment_call_key_repeat")
                    .table(Fulfillment::Table)
                    .col(Fulfillment::Operation)
                    .col(Fulfillment::NexwayFulfillmentId)
                    .col(Fulfillment::OrderId)
                    .col(Fulfillment::Repeat)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("fulfillment_pending_life")
                    .table(Fulfillment::Table)
                    .col(Fulfillment::PendingLife)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("fulfillment_pending_life")
                    .table(Fulfillment::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("fulfillment_call_key_repeat")
                    .table(Fulfillment::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("fulfillment_call_key")
                    .table(Fulfillment::Table)
                    .col(Fulfillment::Operation)
                    .col(Fulfillment::NexwayFulfillmentId)
                    .col(Fulfillment::OrderId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        for column in [Fulfillment::Repeat, Fulfillment::PendingLife] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Fulfillment::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            License::Trial,
            License::BuyerFirstName,
            License::BuyerLastName,
            License::BuyerCompanyName,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(License::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum License {
    Table,
    Trial,
    BuyerFirstName,
    BuyerLastName,
    BuyerCompanyName,
}

#[derive(DeriveIden)]
enum Fulfillment {
    Table,
    Operation,
    NexwayFulfillmentId,
    OrderId,
    Repeat,
    PendingLife,
}
