//! Applying a command: idempotency first, then the operation, all in one transaction whose
//! commit precedes the answer.

use chrono::Utc;
use entity::license;
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};

use super::answer::{Answer, LicenseView};
use super::catalog::{Catalog, Policy};
use super::command::{Command, Email, Operation};
use super::mint::{Call, Mint, mint};
use crate::error::{Error, Result};
use crate::store::fulfillments::{self, CallKey};
use crate::store::{customers, licenses};

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
    txn: &DatabaseTransaction,
    call: &Call<'_>,
    policy: &Policy,
    email: &Email,
) -> Result<Vec<license::Model>> {
    let command = call.command;
    let customer_id = customers::upsert(txn, email, &command.buyer).await?;
    let start_date = command.start_date.or_else(|| Some(Utc::now().date_naive()));
    let mut issued = Vec::with_capacity(command.quantity as usize);
    for index in 0..command.quantity {
        let new = Mint {
            product: &command.product,
            policy,
            customer_id,
            customer_email: email.as_str(),
            index,
            start_date,
            end_date: command.end_date,
            parent_id: None,
        };
        let license = mint(txn, call, &new).await?;
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
        file: LicenseView::file_of(license),
    }
}
