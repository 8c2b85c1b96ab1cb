//! Queries over SeaORM. Every function takes `&impl ConnectionTrait`, so it runs inside the
//! caller's transaction as readily as on the pool.

pub mod activations;
pub mod customers;
pub mod db;
pub mod fault;
pub mod fulfillments;
pub mod licenses;
pub mod outbox;
pub mod pool;
pub mod writer;

pub use db::{Waits, connect, connect_with, migrate};

use sea_orm::{ConnectionTrait, DbBackend, DbErr};

/// Whether inserts that may collide with a unique index go as plain inserts read by
/// [`unless_taken`]: MariaDB/MySQL have no `ON CONFLICT DO NOTHING` (their `ON DUPLICATE KEY
/// UPDATE` locks and counts differently, `INSERT IGNORE` also hides truncations), while a
/// duplicate-key error there undoes only its statement, never the transaction.
pub(crate) fn plain_inserts(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == DbBackend::MySql
}

/// An insert's result, None when a unique index already held the row ("taken").
pub(crate) fn unless_taken<T>(result: Result<T, DbErr>) -> Result<Option<T>, DbErr> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if fault::is_duplicate_key(&error) => Ok(None),
        Err(error) => Err(error),
    }
}
