//! A publisher's own generator, plugged into nexkey without touching its internals.
//!
//! `AcmeSeats` makes codes that spell the seat count the buyer chose (`priceFunctionParameters`
//! would carry it; here it comes from the product's `options`): `ACME-S05-XXXXXXXX`.
//!
//! Run `cargo run --example custom_generator` to print sample codes, or with `serve` to run
//! nexkey with it; nexkey.toml then chooses it per product:
//!
//! ```toml
//! [products.ACME-TEAM]
//! generator = { kind = "custom", name = "acme-seats", options = { seats = 5 } }
//! ```

use std::sync::Arc;

use nexkey::config::{ProductOverride, Settings};
use nexkey::keygen::{
    CustomSettings, GeneratorRegistry, GeneratorSettings, Key, KeyGenError, KeyGenerator,
    KeyRequest, base32,
};
use rand::RngCore;

struct AcmeSeats {
    seats: u8,
}

impl KeyGenerator for AcmeSeats {
    fn name(&self) -> &str {
        "acme-seats"
    }

    fn generate(&self, _request: &KeyRequest<'_>) -> Result<Key, KeyGenError> {
        let mut random = [0u8; 5];
        rand::rng().fill_bytes(&mut random);
        Ok(Key::code(format!(
            "ACME-S{:02}-{}",
            self.seats,
            base32::encode(&random)
        )))
    }
}

/// Registers the generator: the only nexkey code a publisher writes.
fn registry() -> GeneratorRegistry {
    let mut registry = GeneratorRegistry::new();
    registry.register("acme-seats", |options| {
        let seats = options
            .get("seats")
            .and_then(serde_json::Value::as_u64)
            .filter(|seats| (1..=99).contains(seats))
            .ok_or("options.seats must be a number from 1 to 99")?;
        Ok(Arc::new(AcmeSeats { seats: seats as u8 }))
    });
    registry
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let serve = std::env::args().nth(1).as_deref() == Some("serve");
    let settings = if serve {
        Settings::load()?
    } else {
        let mut settings = Settings::default();
        settings.products.insert(
            "ACME-TEAM".into(),
            ProductOverride {
                generator: Some(GeneratorSettings::Custom(CustomSettings {
                    name: "acme-seats".into(),
                    options: serde_json::json!({ "seats": 5 }),
                })),
                ..Default::default()
            },
        );
        settings
    };
    if serve {
        return nexkey::app::serve(settings, registry()).await;
    }
    let chosen = settings.products["ACME-TEAM"]
        .generator
        .as_ref()
        .expect("configured above");
    let generator = registry().build(chosen).map_err(anyhow::Error::msg)?;
    for index in 0..3 {
        let request = KeyRequest {
            product: "ACME-TEAM",
            customer: "ada@example.com",
            fulfillment: "NXF-EXAMPLE",
            call: "new:NXF-EXAMPLE:",
            index,
            attempt: 0,
            end_date: None,
        };
        println!("{}", generator.generate(&request)?.code);
    }
    Ok(())
}
