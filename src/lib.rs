//! nexkey: the license fulfillment server Nexway calls on each sale.
//!
//! Dependencies point down: `api` → `fulfillment` → `keygen` / `store` → `entity`.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod error;
pub mod fulfillment;
pub mod keygen;
pub mod logging;
pub mod metrics;
pub mod nexway;
pub mod observe;
pub mod ops_cli;
pub mod store;
