//! The integration suite: one binary, each test against a real nexkey on loopback, on SQLite
//! always and on PostgreSQL too when `NEXKEY_TEST_DATABASE_URL` is set.

mod activation;
mod admin_edges;
mod bad_input;
mod binary;
mod browser;
mod cli;
mod concurrency;
mod dmp;
mod edges;
mod errors;
mod faults;
mod helpers;
mod idempotency;
mod keygen;
mod life;
mod lifecycle;
mod logs;
mod new;
mod openapi;
mod ops;
mod process;
mod shutdown;
mod signature;
mod support;
