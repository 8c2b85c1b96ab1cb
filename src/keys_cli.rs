//! `nexkey keys …`: pool imports and stock, Ed25519 key pairs, code verification.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use secrecy::ExposeSecret;

use crate::config::Settings;
use crate::keygen::GeneratorRegistry;
use crate::keygen::{KeyPair, Verdict, verify_signed};
use crate::store::pool;

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Load codes into a product's pool from a CSV file (first column; a `code` header is skipped).
    Import {
        #[arg(long)]
        product: String,
        file: PathBuf,
    },
    /// Show a product's pool: available, allocated and revoked codes.
    Stock {
        #[arg(long)]
        product: String,
    },
    /// Make an Ed25519 key pair for the `signed` generator.
    Keypair,
    /// Tell a genuine code from a forged one, with the product's configured generator, or with
    /// a public key alone for signed codes.
    Verify {
        /// The product whose generator (hmac, signed, random with check) judges the code.
        #[arg(long, required_unless_present = "public_key")]
        product: Option<String>,
        /// A signed code's public key (base64url): verifies without any configuration.
        #[arg(long, conflicts_with = "product")]
        public_key: Option<String>,
        code: String,
    },
}

pub async fn run(action: KeysAction) -> anyhow::Result<()> {
    match action {
        KeysAction::Import { product, file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let settings = Settings::load()?;
            let db = crate::app::open_database(&settings).await?;
            crate::store::migrate(&db).await?;
            let writer = crate::store::writer::Writer::new(
                db.clone(),
                crate::store::Waits::within(settings.request_timeout()).lock,
            );
            let crate::admin::Imported { report, stock } =
                crate::admin::import_pool(&writer, &product, &text).await?;
            drop(writer);
            db.close().await?;
            println!(
                "{product}: imported {}, skipped {} already known; {} available, {} allocated, {} revoked",
                report.imported, report.skipped, stock.available, stock.allocated, stock.revoked
            );
            Ok(())
        }
        KeysAction::Stock { product } => {
            let settings = Settings::load()?;
            let db = crate::app::open_database(&settings).await?;
            let stock = pool::stock(&db, &product).await?;
            db.close().await?;
            println!(
                "{product}: {} available, {} allocated, {} revoked",
                stock.available, stock.allocated, stock.revoked
            );
            Ok(())
        }
        KeysAction::Keypair => {
            let pair = KeyPair::generate();
            println!("private_key = \"{}\"", pair.private_key.expose_secret());
            println!("public_key  = \"{}\"", pair.public_key);
            eprintln!(
                "Keep the private key in the product's `signed` generator settings only; \
                 ship the public key with your software."
            );
            Ok(())
        }
        KeysAction::Verify {
            product,
            public_key,
            code,
        } => {
            let verdict = match (product, public_key) {
                (_, Some(public_key)) => match verify_signed(&public_key, &code) {
                    Ok(claims) => Verdict::Genuine(claims.to_string()),
                    Err(reason) => Verdict::Forged(reason),
                },
                (Some(product), None) => {
                    let settings = Settings::load()?;
                    let catalog = settings.catalog(&GeneratorRegistry::new())?;
                    catalog
                        .policy_or_defaults(&product)
                        .generator
                        .verify(&product, &code)
                }
                (None, None) => bail!("give --product or --public-key"),
            };
            match verdict {
                Verdict::Genuine(details) => {
                    println!("genuine: {details}");
                    Ok(())
                }
                Verdict::Forged(reason) => bail!("forged: {reason}"),
                Verdict::Unsupported => bail!(
                    "this product's generator cannot verify codes offline; look the code up instead"
                ),
            }
        }
    }
}
