//! The integration suite: one binary, each test against a real nexkey on loopback, on SQLite
//! always and on PostgreSQL too when `NEXKEY_TEST_DATABASE_URL` is set.

mod browser;
mod cli;
mod errors;
mod helpers;
mod idempotency;
mod keygen;
mod lifecycle;
mod new;
mod openapi;
mod ops;
mod process;
mod shutdown;
mod support;
