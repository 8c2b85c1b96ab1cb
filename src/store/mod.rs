//! Queries over SeaORM. Every function takes `&impl ConnectionTrait`, so it runs inside the
//! caller's transaction as readily as on the pool.

pub mod customers;
pub mod db;
pub mod fault;
pub mod fulfillments;
pub mod licenses;
pub mod pool;

pub use db::{Waits, connect, connect_with, migrate};
