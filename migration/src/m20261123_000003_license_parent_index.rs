//! Reissues find a superseded license's children by `parent_id`; index it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("license_parent")
                    .table(License::Table)
                    .col(License::ParentId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("license_parent")
                    .table(License::Table)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum License {
    Table,
    ParentId,
}
