//! nexkey: the license fulfillment server Nexway calls on each sale.
//!
//! Dependencies point down: `api` → `fulfillment` → `keygen` / `store` → `entity`.

pub mod activation;
pub mod admin;
pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod deadline;
pub mod dmp;
pub mod error;
pub mod fulfillment;
pub mod keygen;
mod keys_cli;
pub mod logging;
pub mod metrics;
pub mod nexway;
pub mod observe;
pub mod ops_cli;
pub mod store;
