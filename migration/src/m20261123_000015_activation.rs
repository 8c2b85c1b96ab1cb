//! Activations (the machines using a license) and the outbox of events for Nexway's DMP.

use sea_orm_migration::{prelude::*, schema::*};

use crate::dialect;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(dialect::table(
                manager,
                Table::create()
                    .table(Activation::Table)
                    .col(big_pk_auto(Activation::Id))
                    .col(big_integer(Activation::LicenseId))
                    .col(string(Activation::Fingerprint))
                    .col(string_null(Activation::Name))
                    .col(dialect::instant(
                        manager,
                        timestamp_with_time_zone(Activation::CreatedAt),
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Activation::Table, Activation::LicenseId)
                            .to(License::Table, License::Id),
                    )
                    .to_owned(),
            ))
            .await?;
        // One row per machine and license: a repeated or concurrent activation finds it.
        manager
            .create_index(
                Index::create()
                    .name("activation_license_fingerprint")
                    .table(Activation::Table)
                    .col(Activation::LicenseId)
                    .col(Activation::Fingerprint)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(dialect::table(
                manager,
                Table::create()
                    .table(OutboxEvent::Table)
                    .col(big_pk_auto(OutboxEvent::Id))
                    .col(string(OutboxEvent::Action))
                    .col(big_integer_null(OutboxEvent::LicenseId))
                    .col(dialect::long_text(manager, text(OutboxEvent::Payload)))
                    .col(string(OutboxEvent::State))
                    .col(integer(OutboxEvent::Attempts))
                    .col(dialect::instant(
                        manager,
                        timestamp_with_time_zone(OutboxEvent::NextAttemptAt),
                    ))
                    .col(string_null(OutboxEvent::Claim))
                    .col(text_null(OutboxEvent::LastError))
                    .col(dialect::instant(
                        manager,
                        timestamp_with_time_zone(OutboxEvent::CreatedAt),
                    ))
                    .col(dialect::instant(
                        manager,
                        timestamp_with_time_zone(OutboxEvent::UpdatedAt),
                    ))
                    .to_owned(),
            ))
            .await?;
        // The sender's question: which pending events are due, oldest first.
        manager
            .create_index(
                Index::create()
                    .name("outbox_event_due")
                    .table(OutboxEvent::Table)
                    .col(OutboxEvent::State)
                    .col(OutboxEvent::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OutboxEvent::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Activation::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Activation {
    Table,
    Id,
    LicenseId,
    Fingerprint,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OutboxEvent {
    Table,
    Id,
    Action,
    LicenseId,
    Payload,
    State,
    Attempts,
    NextAttemptAt,
    Claim,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum License {
    Table,
    Id,
}
