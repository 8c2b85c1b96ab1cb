//! MariaDB/MySQL only: one row per license life, locked (`SELECT … FOR UPDATE`) by each
//! transaction about that life, so two processes apply one life's calls one after the other.
//! PostgreSQL does this with an advisory lock and SQLite with its single writer: no table there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::dialect;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::MySql {
            return Ok(());
        }
        manager
            .create_table(dialect::table(
                manager,
                Table::create()
                    .table(LifeLock::Table)
                    .col(
                        ColumnDef::new(LifeLock::Life)
                            .string_len(255)
                            .not_null()
                            .primary_key(),
                    )
                    .to_owned(),
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::MySql {
            return Ok(());
        }
        manager
            .drop_table(Table::drop().table(LifeLock::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum LifeLock {
    Table,
    Life,
}
