//! SeaORM entities of nexkey. Plain data: the rules live in the `nexkey` crate.

pub mod customer;
pub mod fulfillment;
pub mod license;
pub mod license_event;
pub mod pool_key;
pub mod vocabulary;

pub mod prelude {
    pub use super::customer::Entity as Customer;
    pub use super::fulfillment::Entity as Fulfillment;
    pub use super::license::Entity as License;
    pub use super::license_event::Entity as LicenseEvent;
    pub use super::pool_key::Entity as PoolKey;
}
