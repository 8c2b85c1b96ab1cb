//! The inbound protocol: Nexway's body generations, their normalisation, and Nexway's credentials.

pub mod auth;
mod body;
pub mod normalise;
pub mod payload;
pub mod signature;

pub use auth::{BasicCredential, NexwayCredentials, NexwayGate};
pub use body::NexwayBody;
