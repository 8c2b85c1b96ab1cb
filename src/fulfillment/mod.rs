//! The domain: what a Nexway call means for licenses. Knows nothing of HTTP.

mod answer;
mod catalog;
mod command;
mod lifecycle;
mod mint;
mod service;
mod status;
mod targets;
mod term;

pub use answer::{Answer, LicenseView};
pub use catalog::{Catalog, CodeMode, Policy, RenewMode};
pub use command::{Buyer, Command, Email, Operation, ProductRef};
pub use service::{Outcome, Service};
pub use status::{ManualAction, Status, Step, manual_step};
pub use targets::MAX_GENERATIONS;
pub use term::Term;
