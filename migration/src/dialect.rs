//! What differs on MariaDB/MySQL, written once. SQLite and PostgreSQL get the portable
//! definitions unchanged; on MySQL:
//! - tables are InnoDB in utf8mb4 with the binary collation, so codes, e-mails and call
//!   identities compare byte for byte as on SQLite and PostgreSQL (the default collations fold
//!   case and accents, which would make two codes one), and an indexed `varchar(255)` fits
//!   InnoDB's key limit;
//! - instants are `datetime(6)`, always written in UTC (MySQL's `timestamp` ends in 2038 and
//!   keeps no microseconds);
//! - texts of unbounded length (answers, payloads) are `longtext` (`text` stops at 64 KiB).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

fn is_mysql(manager: &SchemaManager) -> bool {
    manager.get_database_backend() == DbBackend::MySql
}

/// A table created with the MySQL options above.
pub fn table(manager: &SchemaManager, mut create: TableCreateStatement) -> TableCreateStatement {
    if is_mysql(manager) {
        create
            .engine("InnoDB")
            .character_set("utf8mb4")
            .collate("utf8mb4_bin");
    }
    create
}

/// An instant column (`timestamp with time zone` elsewhere).
pub fn instant(manager: &SchemaManager, mut column: ColumnDef) -> ColumnDef {
    if is_mysql(manager) {
        column.custom(Alias::new("datetime(6)"));
    }
    column
}

/// A text column of unbounded length.
pub fn long_text(manager: &SchemaManager, mut column: ColumnDef) -> ColumnDef {
    if is_mysql(manager) {
        column.custom(Alias::new("longtext"));
    }
    column
}
