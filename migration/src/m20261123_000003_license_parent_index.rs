//! Reissues find a superseded license's children by `parent_id`; index it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Kept by a `down` on MySQL (below): then there is nothing to create.
        if manager.has_index("license", "license_parent").await? {
            return Ok(());
        }
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
        // InnoDB made this index serve the foreign key on `parent_id` (dropping its own): it
        // cannot go while the key stands, and goes with the table.
        if manager.get_database_backend() == DbBackend::MySql {
            return Ok(());
        }
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
