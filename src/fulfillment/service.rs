//! Applying a command: idempotency first, then the operation, all in one transaction whose
//! commit precedes the answer.

use chrono::{NaiveDate, Utc};
use entity::license;
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};

use super::answer::{Answer, LicenseView};
use super::catalog::Catalog;
use super::command::{Command, Operation};
use super::lifecycle::{self, Effect};
use super::mint::{Call, Mint, mint};
use super::status::Status;
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

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// What a call needs beyond a well-formed body, checked before any transaction opens.
    fn check(&self, command: &Command) -> Result<()> {
        match command.operation {
            Operation::New => {
                let product = &command.product.publisher_product_id;
                let policy = self.catalog.policy(product)?;
                if command.quantity > policy.max_quantity {
                    return Err(Error::InvalidRequest(format!(
                        "quantity {} is more than the {} allowed for product {product}",
                        command.quantity, policy.max_quantity
                    )));
                }
                if command.buyer.email.is_none() {
                    return Err(Error::InvalidRequest(
                        "user.email is required to issue licenses".into(),
                    ));
                }
            }
            // The product moved to must be one nexkey serves.
            Operation::Upgrade => {
                self.catalog.policy(&command.product.publisher_product_id)?;
            }
            Operation::Renew | Operation::Suspend | Operation::Reactivate | Operation::Cancel => {}
        }
        Ok(())
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
        self.check(&command)?;

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
        let effect = match command.operation {
            Operation::New => issue(&txn, &call, &self.catalog).await?,
            _ => lifecycle::apply(&txn, &call, &self.catalog).await?,
        };
        let today = Utc::now().date_naive();
        let answer = Answer {
            publisher_fulfillment_id: publisher_fulfillment_id.clone(),
            nexway_fulfillment_id: command.nexway_fulfillment_id.clone(),
            operation: command.operation.as_str(),
            licenses: effect.current.iter().map(|l| view(l, today)).collect(),
            superseded: effect.superseded.iter().map(|l| view(l, today)).collect(),
        }
        .to_json();
        fulfillments::record_answer(&txn, fulfillment_id, &answer).await?;
        txn.commit().await?;
        tracing::info!(
            operation = %command.operation,
            nexway_fulfillment_id = %command.nexway_fulfillment_id,
            %publisher_fulfillment_id,
            licenses = effect.current.len(),
            superseded = effect.superseded.len(),
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

/// Issues `quantity` new codes for the buyer; with no end date in the call, the product's term
/// decides (perpetual by default).
async fn issue(txn: &DatabaseTransaction, call: &Call<'_>, catalog: &Catalog) -> Result<Effect> {
    let command = call.command;
    let policy = catalog.policy(&command.product.publisher_product_id)?;
    let email = command.buyer.email.as_ref().ok_or(Error::Internal)?;
    let customer_id = customers::upsert(txn, email, &command.buyer).await?;
    let start_date = command
        .start_date
        .unwrap_or_else(|| Utc::now().date_naive());
    let end_date = command
        .end_date
        .or_else(|| policy.term.end_after(start_date));
    let mut effect = Effect::default();
    for index in 0..command.quantity {
        let new = Mint {
            product: &command.product,
            policy,
            customer_id,
            customer_email: email.as_str(),
            index,
            start_date: Some(start_date),
            end_date,
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
        effect.current.push(license);
    }
    Ok(effect)
}

/// A license as the answer shows it.
fn view(license: &license::Model, today: NaiveDate) -> LicenseView {
    LicenseView {
        activation_code: license.activation_code.clone(),
        status: Status::effective(&license.status, license.end_date, today)
            .as_str()
            .into(),
        start_date: license.start_date,
        end_date: license.end_date,
        file: LicenseView::file_of(license),
    }
}
