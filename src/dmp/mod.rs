//! Reporting to Nexway's DMP (`POST …/event`, HTTP Basic): the events nexkey records in its
//! outbox ([`event`]) and the background sender that delivers them ([`sender`]).

pub mod event;
pub mod sender;

pub use event::{Meta, REGISTER_LICENCES};
pub use sender::{Delivery, Endpoint, classify, retry_delay, spawn};
