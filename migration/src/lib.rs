//! Schema migrations, run by `nexkey migrate` and (unless disabled) when `nexkey serve` starts.

pub use sea_orm_migration::prelude::*;

mod dialect;

mod m20261123_000001_core;
mod m20261123_000002_key_pool;
mod m20261123_000003_license_parent_index;
mod m20261123_000004_license_life;
mod m20261123_000005_readiness_probe;
mod m20261123_000015_activation;
mod m20261123_000016_life_lock;
mod m20261123_000017_pending_binding;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_core::Migration),
            Box::new(m20261123_000002_key_pool::Migration),
            Box::new(m20261123_000003_license_parent_index::Migration),
            Box::new(m20261123_000004_license_life::Migration),
            Box::new(m20261123_000005_readiness_probe::Migration),
            Box::new(m20261123_000015_activation::Migration),
            Box::new(m20261123_000016_life_lock::Migration),
            Box::new(m20261123_000017_pending_binding::Migration),
        ]
    }
}
