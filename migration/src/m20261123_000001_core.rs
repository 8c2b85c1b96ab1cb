//! Customers, fulfillments (answered calls), licenses and their events.

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
                    .table(Customer::Table)
                    .col(big_pk_auto(Customer::Id))
                    .col(string_uniq(Customer::Email))
                    .col(string_null(Customer::FirstName))
                    .col(string_null(Customer::LastName))
                    .col(string_null(Customer::CompanyName))
                    .col(string_null(Customer::NexwayUserId))
                    .col(dialect::instant(
                        manager,
                        timestamp_with_time_zone(Customer::CreatedAt),
                    ))
                    .to_owned(),
            ))
            .await?;

        manager
            .create_table(dialect::table(
                manager,
                Table::create()
                    .table(Fulfillment::Table)
                    .col(big_pk_auto(Fulfillment::Id))
                    .col(string_uniq(Fulfillment::PublisherFulfillmentId))
                    .col(string(Fulfillment::Operation))
                    .col(string(Fulfillment::NexwayFulfillmentId))
                    .col(string(Fulfillment::OrderId))
                    .col(string(Fulfillment::RequestDigest))
                    .col(dialect::long_text(manager, text(Fulfillment::Answer)))
                    .col(dialect::instant(
                        manager,
                        timestamp_with_time_zone(Fulfillment::CreatedAt),
                    ))
                    .to_owned(),
            ))
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

        manager
            .create_table(dialect::table(
                manager,
                Table::create()
                    .table(License::Table)
                    .col(big_pk_auto(License::Id))
                    .col(string_uniq(License::ActivationCode))
                    .col(string(License::LookupKey))
                    .col(string(License::PublisherProductId))
                    .col(string_null(License::NexwayProductId))
                    .col(string_null(License::ProductName))
                    .col(big_integer(License::CustomerId))
                    .col(string(License::Status))
                    .col(date_null(License::StartDate))
                    .col(date_null(License::EndDate))
                    .col(big_integer(License::FulfillmentId))
                    .col(big_integer_null(License::ParentId))
                    .col(string(License::NexwayFulfillmentId))
                    .col(string_null(License::InitialNexwayFulfillmentId))
                    .col(string(License::PublisherFulfillmentId))
                    .col(string_null(License::SubscriptionId))
                    .col(string_null(License::OrderId))
                    .col(text_null(License::ExternalContext))
                    .col(string(License::Generator))
                    .col(dialect::instant(
                        manager,
                        timestamp_with_time_zone(License::CreatedAt),
                    ))
                    .col(dialect::instant(
                        manager,
                        timestamp_with_time_zone(License::UpdatedAt),
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .from(License::Table, License::CustomerId)
                            .to(Customer::Table, Customer::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(License::Table, License::FulfillmentId)
                            .to(Fulfillment::Table, Fulfillment::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(License::Table, License::ParentId)
                            .to(License::Table, License::Id),
                    )
                    .to_owned(),
            ))
            .await?;
        for (name, column) in [
            ("license_lookup_key", License::LookupKey),
            ("license_customer", License::CustomerId),
            ("license_fulfillment", License::FulfillmentId),
            ("license_nexway_fulfillment", License::NexwayFulfillmentId),
            (
                "license_initial_fulfillment",
                License::InitialNexwayFulfillmentId,
            ),
            (
                "license_publisher_fulfillment",
                License::PublisherFulfillmentId,
            ),
            ("license_subscription", License::SubscriptionId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(License::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(dialect::table(
                manager,
                Table::create()
                    .table(LicenseEvent::Table)
                    .col(big_pk_auto(LicenseEvent::Id))
                    .col(big_integer(LicenseEvent::LicenseId))
                    .col(string_null(LicenseEvent::FromStatus))
                    .col(string(LicenseEvent::ToStatus))
                    .col(string(LicenseEvent::Operation))
                    .col(big_integer_null(LicenseEvent::FulfillmentId))
                    .col(text_null(LicenseEvent::Reason))
                    .col(dialect::instant(
                        manager,
                        timestamp_with_time_zone(LicenseEvent::CreatedAt),
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .from(LicenseEvent::Table, LicenseEvent::LicenseId)
                            .to(License::Table, License::Id),
                    )
                    .to_owned(),
            ))
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("license_event_license")
                    .table(LicenseEvent::Table)
                    .col(LicenseEvent::LicenseId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            LicenseEvent::Table.into_iden(),
            License::Table.into_iden(),
            Fulfillment::Table.into_iden(),
            Customer::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Customer {
    Table,
    Id,
    Email,
    FirstName,
    LastName,
    CompanyName,
    NexwayUserId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Fulfillment {
    Table,
    Id,
    PublisherFulfillmentId,
    Operation,
    NexwayFulfillmentId,
    OrderId,
    RequestDigest,
    Answer,
    CreatedAt,
}

#[derive(DeriveIden)]
enum License {
    Table,
    Id,
    ActivationCode,
    LookupKey,
    PublisherProductId,
    NexwayProductId,
    ProductName,
    CustomerId,
    Status,
    StartDate,
    EndDate,
    FulfillmentId,
    ParentId,
    NexwayFulfillmentId,
    InitialNexwayFulfillmentId,
    PublisherFulfillmentId,
    SubscriptionId,
    OrderId,
    ExternalContext,
    Generator,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum LicenseEvent {
    Table,
    Id,
    LicenseId,
    FromStatus,
    ToStatus,
    Operation,
    FulfillmentId,
    Reason,
    CreatedAt,
}
