//! Minting one license: the product's generator proposes codes until one is free (the unique
//! index on `license.activation_code` decides), and the license is written with it. Every code
//! nexkey issues, for `new` and for reissues, comes through here.

use entity::license;
use sea_orm::DatabaseTransaction;

use super::command::Command;
use super::plan::Codes;
use crate::error::{Error, Result};
use crate::keygen::{KeyGenError, KeyGenerator, KeyRequest};
use crate::store::licenses::{self, Buyer};

/// How many codes a generator may propose for one license before we give up: with a sane code
/// space a collision is rare, so running out means the configured space is too small.
const MAX_CODE_ATTEMPTS: u32 = 8;

/// The call a license is minted for, as stored with it.
pub struct Call<'a> {
    pub command: &'a Command,
    pub fulfillment_id: i64,
    pub publisher_fulfillment_id: &'a str,
    /// How many times this identity was answered before (suspend, reactivate, suspend in one
    /// order share an identity).
    pub repeat: i32,
}

/// One license to mint.
pub struct Mint<'a> {
    pub codes: &'a Codes,
    pub generator: &'a dyn KeyGenerator,
    pub customer_id: i64,
    pub customer_email: &'a str,
    pub buyer: Buyer<'a>,
    /// Position of the code within the call, from 0.
    pub index: u32,
    /// The license this one replaces (renew, upgrade or reactivate by reissue).
    pub parent_id: Option<i64>,
    /// The first fulfillment of the life, when it is not the call's own.
    pub life: Option<&'a str>,
    pub subscription_id: Option<&'a str>,
}

pub async fn mint(
    txn: &DatabaseTransaction,
    call: &Call<'_>,
    mint: &Mint<'_>,
) -> Result<license::Model> {
    let command = call.command;
    let product = &mint.codes.product;
    // The call's whole identity, not only Nexway's fulfillment id: the current body keeps one
    // `fulfillmentId` for a license's life, and a deterministic generator must still give each
    // of its calls (every new order, every reissue) its own codes.
    // A repeat (the second reactivate of one order) has its own codes too. The ids carry their
    // lengths: ids holding the separator must not make two calls one.
    let fulfillment = &command.nexway_fulfillment_id;
    let order = command.order_id.as_deref().unwrap_or_default();
    let identity = format!(
        "{}:{}:{fulfillment}:{}:{order}:{}",
        command.operation,
        fulfillment.len(),
        order.len(),
        call.repeat
    );
    for attempt in 0..MAX_CODE_ATTEMPTS {
        let request = KeyRequest {
            product: &product.publisher_product_id,
            customer: mint.customer_email,
            fulfillment: &command.nexway_fulfillment_id,
            call: &identity,
            index: mint.index,
            attempt,
            end_date: mint.codes.end_date,
        };
        let key = mint
            .generator
            .generate_in(txn, &request)
            .await
            .map_err(|e| key_error(&product.publisher_product_id, e))?;
        let file = key
            .file
            .as_ref()
            .map(|file| serde_json::to_string(file).expect("a key file always serialises"));
        let new = licenses::NewLicense {
            activation_code: &key.code,
            publisher_product_id: &product.publisher_product_id,
            nexway_product_id: product.nexway_product_id.as_deref(),
            product_name: product.name.as_deref(),
            customer_id: mint.customer_id,
            buyer: mint.buyer,
            status: mint.codes.status,
            trial: mint.codes.trial,
            start_date: Some(mint.codes.start_date),
            end_date: mint.codes.end_date,
            fulfillment_id: call.fulfillment_id,
            parent_id: mint.parent_id,
            nexway_fulfillment_id: &command.nexway_fulfillment_id,
            initial_nexway_fulfillment_id: mint.life,
            publisher_fulfillment_id: call.publisher_fulfillment_id,
            subscription_id: mint.subscription_id,
            order_id: command.order_id.as_deref(),
            external_context: command.external_context.as_deref(),
            generator: mint.generator.name(),
            file: file.as_deref(),
        };
        if let Some(license) = licenses::insert_if_new(txn, &new).await? {
            return Ok(license);
        }
        tracing::warn!(product = %product.publisher_product_id, attempt, "activation code collision");
    }
    Err(Error::KeyGeneration(format!(
        "no free activation code for product {} after {MAX_CODE_ATTEMPTS} attempts: its code space is too small",
        product.publisher_product_id
    )))
}

fn key_error(product: &str, error: KeyGenError) -> Error {
    match error {
        KeyGenError::Exhausted => Error::PoolExhausted(product.to_owned()),
        KeyGenError::Database(error) => error.into(),
        KeyGenError::Failed(reason) => Error::KeyGeneration(format!("product {product}: {reason}")),
    }
}
