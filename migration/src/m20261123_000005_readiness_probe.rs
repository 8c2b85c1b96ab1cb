//! One row that the readiness probe rewrites: ready means the database accepts a write (a full
//! disk or a read-only file fails it), not only a read.

use sea_orm_migration::prelude::*;

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
                    .table(ReadinessProbe::Table)
                    .col(
                        ColumnDef::new(ReadinessProbe::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(dialect::instant(
                        manager,
                        ColumnDef::new(ReadinessProbe::CheckedAt)
                            .timestamp_with_time_zone()
                            .not_null()
                            .to_owned(),
                    ))
                    .to_owned(),
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ReadinessProbe::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ReadinessProbe {
    Table,
    Id,
    CheckedAt,
}
