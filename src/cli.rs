//! The command line: `nexkey serve | migrate | openapi | keys`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait};

use crate::config::Settings;
use crate::keygen::GeneratorRegistry;

#[derive(Debug, Parser)]
#[command(
    name = "nexkey",
    version,
    about = "License fulfillment server for Nexway"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (runs pending migrations first unless NEXKEY_AUTO_MIGRATE=false).
    Serve,
    /// Apply or inspect the database migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Print the OpenAPI document, or write it to a file.
    Openapi {
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Manage activation codes: pools, signing keys, verification.
    Keys {
        #[command(subcommand)]
        action: crate::keys_cli::KeysAction,
    },
    /// Print what is stored about one activation code: status, product, customer, dates,
    /// Nexway references and the audit trail.
    Lookup {
        /// The activation code (case, spaces and dashes do not matter).
        key: String,
    },
    /// Validate the configuration and print the effective settings, secrets masked.
    CheckConfig,
    /// Ask the running server's readiness probe; exit 0 when ready (for container HEALTHCHECKs).
    Health {
        /// host:port to probe; by default the configured bind address (on loopback when it is
        /// 0.0.0.0 or [::]).
        #[arg(long)]
        address: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Revert the last migration.
    Down,
    /// List the migrations and whether each is applied.
    Status,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => crate::app::serve(Settings::load()?, GeneratorRegistry::new()).await,
        Command::Migrate { action } => migrate(Settings::load()?, action).await,
        Command::Keys { action } => crate::keys_cli::run(action).await,
        Command::Openapi { output } => {
            let spec = crate::app::openapi_json();
            match output {
                Some(path) => std::fs::write(&path, spec + "\n")
                    .with_context(|| format!("cannot write {}", path.display())),
                None => {
                    println!("{spec}");
                    Ok(())
                }
            }
        }
        Command::Lookup { key } => crate::ops_cli::lookup(Settings::load()?, &key).await,
        Command::CheckConfig => crate::ops_cli::check_config(),
        Command::Health { address } => {
            let address = match address {
                Some(address) => address,
                None => crate::ops_cli::probe_address(&Settings::load()?.bind),
            };
            crate::ops_cli::health(&address).await
        }
    }
}

async fn migrate(settings: Settings, action: MigrateAction) -> anyhow::Result<()> {
    let db = crate::app::open_database(&settings).await?;
    match action {
        // Under the same lock as `serve`: a `migrate up` beside a starting server migrates once.
        MigrateAction::Up => crate::store::migrate(&db).await?,
        MigrateAction::Down => Migrator::down(&db, Some(1)).await?,
        MigrateAction::Status => {
            for migration in Migrator::get_migration_with_status(&db).await? {
                println!("{:<40} {}", migration.name(), migration.status());
            }
        }
    }
    db.close().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        super::Cli::command().debug_assert();
    }
}
