//! The domain: what a Nexway call means for licenses. Knows nothing of HTTP.

mod answer;
mod catalog;
mod command;
mod mint;
pub mod plan;
mod replays;
pub mod scope;
mod service;
mod status;
mod term;

pub use crate::store::licenses::MAX_GENERATIONS;
pub use answer::{Answer, LicenseView};
pub use catalog::{
    Catalog, CodeMode, DEFAULT_MAX_QUANTITY, Money, Policy, RenewMode, TaxClass, UnknownProducts,
};
pub use command::{Buyer, Command, Email, Operation, ProductRef, Trial};
pub use service::{Outcome, Service};
pub use status::{ManualAction, Status, Step, effective, manual_step};
pub use term::Term;
