//! The inbound protocol: Nexway's body generations, their normalisation, and Nexway's credentials.

pub mod auth;
mod body;
pub mod normalise;
pub mod payload;

pub use auth::NexwayCredentials;
pub use body::NexwayBody;
