//! Activation: may this machine use this license? The rules are pure ([`rules`]); [`service`]
//! applies them in one transaction with the machine's row and, when reporting is on, the DMP
//! event. Knows nothing of HTTP.

mod rules;
mod service;
pub mod token;

pub use rules::{Code, Fingerprint, Refusal, code_of, may_activate, parse_name, validity};
pub use service::{Activated, ActivationError, Activations, LicenseFacts, Validation};
