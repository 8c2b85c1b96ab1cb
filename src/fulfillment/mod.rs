//! The domain: what a Nexway call means for licenses. Knows nothing of HTTP.

mod answer;
mod catalog;
mod command;
mod mint;
mod service;

pub use answer::{Answer, LicenseView};
pub use catalog::{Catalog, Policy};
pub use command::{Buyer, Command, Email, Operation, ProductRef};
pub use service::{Outcome, Service};
