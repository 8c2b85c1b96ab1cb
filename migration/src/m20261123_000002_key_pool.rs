//! Pools of pre-loaded codes, and the file deliverable a generator may ship with a code.

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
                    .table(PoolKey::Table)
                    .col(big_pk_auto(PoolKey::Id))
                    .col(string(PoolKey::PublisherProductId))
                    .col(string_uniq(PoolKey::Code))
                    .col(string(PoolKey::Status))
                    .col(dialect::instant(
                        manager,
                        timestamp_with_time_zone(PoolKey::ImportedAt),
                    ))
                    .col(dialect::instant(
                        manager,
                        timestamp_with_time_zone_null(PoolKey::AllocatedAt),
                    ))
                    .col(string_null(PoolKey::AllocatedTo))
                    .to_owned(),
            ))
            .await?;
        // Allocation takes the oldest available code of a product: this index finds it.
        manager
            .create_index(
                Index::create()
                    .name("pool_key_product_status")
                    .table(PoolKey::Table)
                    .col(PoolKey::PublisherProductId)
                    .col(PoolKey::Status)
                    .col(PoolKey::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(License::Table)
                    .add_column(text_null(License::File))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(License::Table)
                    .drop_column(License::File)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(PoolKey::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum PoolKey {
    Table,
    Id,
    PublisherProductId,
    Code,
    Status,
    ImportedAt,
    AllocatedAt,
    AllocatedTo,
}

#[derive(DeriveIden)]
enum License {
    Table,
    File,
}
