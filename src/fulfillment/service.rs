//! Applying a command: idempotency first, then the operation, all in one transaction whose
//! commit precedes the answer.

use chrono::{NaiveDate, Utc};
use entity::license;
use sea_orm::{DatabaseConnection, TransactionTrait};

use super::answer::{Answer, LicenseView};
use super::catalog::{Catalog, Policy};
use super::command::{Command, Email, Operation};
use crate::error::{Error, Result};
use crate::keygen::KeyRequest;
use crate::store::fulfillments::{self, CallKey};
use crate::store::{customers, licenses};

/// How many codes a generator may propose for one license before we give up: with a sane code
/// space a collision is rare, so running out means the configured space is too small.
const MAX_CODE_ATTEMPTS: u32 = 8;

pub struct Service {
    db: DatabaseConnection,
    catalog: Catalog,
}

/// The answer body of a call, and whether it was replayed from an earlier identical call.
#[derive(Debug)]
pub struct Outcome {
    pub answer: String,
    pub replayed: bool,
}

impl Service {
    pub fn new(db: DatabaseConnection, catalog: Catalog) -> Self {
        Service { db, catalog }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub async fn apply(&self, command: Command) -> Result<Outcome> {
        let digest = command.digest();
        let order_id = command.order_id.clone().unwrap_or_default();
        let key = CallKey {
            operation: command.operation.as_str(),
            nexway_fulfillment_id: &command.nexway_fulfillment_id,
            order_id: &order_id,
        };
        if let Some(done) = fulfillments::find(&self.db, key).await? {
            return replay(done, &digest);
        }
        let policy = self.catalog.policy(&command.product.publisher_product_id);
        let buyer_email = check_new(&command, policy)?;

        let txn = self.db.begin().await?;
        // Claiming the call is the transaction's first statement: on SQLite it takes the write
        // lock at once, on PostgreSQL a concurrent duplicate waits here for our commit.
        let publisher_fulfillment_id = uuid::Uuid::new_v4().to_string();
        let Some(fulfillment_id) =
            fulfillments::claim(&txn, key, &publisher_fulfillment_id, &digest).await?
        else {
            txn.rollback().await?;
            let done = fulfillments::find(&self.db, key)
                .await?
                .ok_or(Error::Internal)?;
            return replay(done, &digest);
        };
        let call = Call {
            command: &command,
            fulfillment_id,
            publisher_fulfillment_id: &publisher_fulfillment_id,
        };
        let issued = issue(&txn, &call, policy, buyer_email).await?;
        let answer = Answer {
            publisher_fulfillment_id: publisher_fulfillment_id.clone(),
            nexway_fulfillment_id: command.nexway_fulfillment_id.clone(),
            operation: command.operation.as_str(),
            licenses: issued.iter().map(view).collect(),
        }
        .to_json();
        fulfillments::record_answer(&txn, fulfillment_id, &answer).await?;
        txn.commit().await?;
        tracing::info!(
            operation = %command.operation,
            nexway_fulfillment_id = %command.nexway_fulfillment_id,
            %publisher_fulfillment_id,
            licenses = issued.len(),
            "fulfilled"
        );
        Ok(Outcome {
            answer,
            replayed: false,
        })
    }
}

/// The call being applied, as the operations need it.
struct Call<'a> {
    command: &'a Command,
    fulfillment_id: i64,
    publisher_fulfillment_id: &'a str,
}

/// A stored answer for the same call: the same bytes if the content is the same, else a conflict.
fn replay(done: entity::fulfillment::Model, digest: &str) -> Result<Outcome> {
    if done.request_digest != digest {
        return Err(Error::IdempotencyConflict);
    }
    Ok(Outcome {
        answer: done.answer,
        replayed: true,
    })
}

/// What `new` needs beyond a well-formed body, checked before any transaction opens.
fn check_new<'a>(command: &'a Command, policy: &Policy) -> Result<&'a Email> {
    if command.operation != Operation::New {
        return Err(Error::InvalidRequest(format!(
            "operation {} is not supported",
            command.operation
        )));
    }
    if command.quantity > policy.max_quantity {
        return Err(Error::InvalidRequest(format!(
            "quantity {} is more than the {} allowed for product {}",
            command.quantity, policy.max_quantity, command.product.publisher_product_id
        )));
    }
    command
        .buyer
        .email
        .as_ref()
        .ok_or_else(|| Error::InvalidRequest("user.email is required to issue licenses".into()))
}

/// Issues `quantity` new codes for the buyer.
async fn issue(
    txn: &impl sea_orm::ConnectionTrait,
    call: &Call<'_>,
    policy: &Policy,
    email: &Email,
) -> Result<Vec<license::Model>> {
    let command = call.command;
    let customer_id = customers::upsert(txn, email, &command.buyer).await?;
    let start_date = command.start_date.or_else(|| Some(Utc::now().date_naive()));
    let mut issued = Vec::with_capacity(command.quantity as usize);
    for index in 0..command.quantity {
        let license = insert_new_code(txn, call, policy, customer_id, index, start_date).await?;
        licenses::record_event(
            txn,
            license.id,
            None,
            &license.status,
            command.operation.as_str(),
            Some(call.fulfillment_id),
            None,
        )
        .await?;
        issued.push(license);
    }
    Ok(issued)
}

/// Asks the product's generator for codes until one is free, and writes the license with it.
async fn insert_new_code(
    txn: &impl sea_orm::ConnectionTrait,
    call: &Call<'_>,
    policy: &Policy,
    customer_id: i64,
    index: u32,
    start_date: Option<NaiveDate>,
) -> Result<license::Model> {
    let command = call.command;
    let product = &command.product;
    let email = command
        .buyer
        .email
        .as_ref()
        .map(Email::as_str)
        .unwrap_or_default();
    for attempt in 0..MAX_CODE_ATTEMPTS {
        let request = KeyRequest {
            product: &product.publisher_product_id,
            customer: email,
            fulfillment: &command.nexway_fulfillment_id,
            index,
            attempt,
        };
        let key = policy.generator.generate(&request).map_err(|e| {
            Error::KeyGeneration(format!("product {}: {e}", product.publisher_product_id))
        })?;
        let new = licenses::NewLicense {
            activation_code: &key.code,
            publisher_product_id: &product.publisher_product_id,
            nexway_product_id: product.nexway_product_id.as_deref(),
            product_name: product.name.as_deref().or(policy.name.as_deref()),
            customer_id,
            status: "active",
            start_date,
            end_date: command.end_date,
            fulfillment_id: call.fulfillment_id,
            parent_id: None,
            nexway_fulfillment_id: &command.nexway_fulfillment_id,
            initial_nexway_fulfillment_id: command.initial_nexway_fulfillment_id.as_deref(),
            publisher_fulfillment_id: call.publisher_fulfillment_id,
            subscription_id: command.subscription_id.as_deref(),
            order_id: command.order_id.as_deref(),
            external_context: command.external_context.as_deref(),
            generator: policy.generator.name(),
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

/// A license as the answer shows it; past its end date an active license reads as expired.
fn view(license: &license::Model) -> LicenseView {
    let today = Utc::now().date_naive();
    let expired = license.status == "active" && license.end_date.is_some_and(|end| end < today);
    LicenseView {
        activation_code: license.activation_code.clone(),
        status: if expired {
            "expired".into()
        } else {
            license.status.clone()
        },
        start_date: license.start_date,
        end_date: license.end_date,
    }
}
