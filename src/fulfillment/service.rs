//! Applying a command: idempotency first, then the license life's plan, all in one transaction
//! whose commit precedes the answer. This is the glue: `store` reads and writes, `scope` and
//! `plan` decide.

use chrono::{NaiveDate, Utc};
use entity::license;
use entity::vocabulary::Cause;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DatabaseConnection, DatabaseTransaction};

use super::answer::{Answer, LicenseView};
use super::catalog::Catalog;
use super::command::{Command, Email, Operation, Trial};
use super::mint::{Call, Mint, mint};
use super::plan::{self, Change, Held, Plan};
use super::replays::{Replays, Stored};
use super::scope::{self, Found, Reference};
use super::status::{Status, effective};
use crate::error::{Error, Result};
use crate::store::customers;
use crate::store::fulfillments::{self, CallKey};
use crate::store::licenses::{self, Buyer, NewEvent, Product, Transition, life_of};
use crate::store::writer::Writer;

pub struct Service {
    /// Reads outside a write.
    db: DatabaseConnection,
    writer: Writer,
    catalog: Catalog,
    /// Committed answers of calls whose repeats are always replays (see `replays`).
    replays: Replays,
}

/// The answer body of a call, and whether it was replayed from an earlier identical call.
#[derive(Debug)]
pub struct Outcome {
    pub answer: String,
    pub replayed: bool,
}

/// The licenses a call leaves behind: the current ones, and those it replaced by reissue.
#[derive(Default)]
struct Effect {
    current: Vec<license::Model>,
    superseded: Vec<license::Model>,
}

/// What a call's transaction did.
enum Written {
    /// Issued or changed licenses; this is the committed answer.
    Answered {
        publisher_fulfillment_id: String,
        answer: String,
        licenses: usize,
        superseded: usize,
    },
    /// The same call was answered meanwhile: its stored answer.
    Replay(entity::fulfillment::Model),
}

/// What a lifecycle call is about.
enum Targets {
    /// These licenses (current codes), all of one life.
    Found(Vec<license::Model>),
    /// Nothing yet: a cancel or suspend of this life that arrived before its `new`.
    Pending(String),
}

impl Service {
    /// The service over `db`, whose writes wait for their turn at most `wait`.
    pub fn new(db: DatabaseConnection, catalog: Catalog, wait: Duration) -> Self {
        Service {
            writer: Writer::new(db.clone(), wait),
            db,
            catalog,
            replays: Replays::default(),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Where every write transaction runs.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// What a call needs beyond a well-formed body, checked before any transaction opens.
    fn check(&self, command: &Command, today: NaiveDate) -> Result<()> {
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
        // An end date the call sets on licenses must not lie in the past (suspend and cancel
        // set none, so theirs is not read).
        if !matches!(command.operation, Operation::Suspend | Operation::Cancel)
            && let Some(end) = command.end_date
            && end < today
        {
            return Err(Error::InvalidRequest(format!(
                "the end date {end} is before today ({today}): licenses are never issued or extended already expired"
            )));
        }
        Ok(())
    }

    pub async fn apply(self: &Arc<Self>, command: Command) -> Result<Outcome> {
        let digest = command.digest();
        let order_id = command.order_id.clone().unwrap_or_default();
        let key = CallKey {
            operation: command.operation,
            nexway_fulfillment_id: &command.nexway_fulfillment_id,
            order_id: &order_id,
        };
        if let Some(stored) = self
            .replays
            .get(key.operation, key.nexway_fulfillment_id, &order_id)
        {
            return replay(&stored.digest, stored.answer.to_string(), &digest);
        }
        let mut repeat = 0;
        if let Some(done) = fulfillments::find(&self.db, key).await? {
            if !self.is_new_call(&done, command.life()).await? {
                return self.replay(done, &digest);
            }
            repeat = done.repeat + 1;
        }
        let today = Utc::now().date_naive();
        self.check(&command, today)?;

        let service = Arc::clone(self);
        let stored_digest = digest.clone();
        let written = self
            .writer
            .run(move |txn| {
                Box::pin(async move {
                    let written = service.write_call(txn, &command, repeat, &stored_digest, today);
                    Ok::<_, Error>((written.await?, command))
                })
            })
            .await;
        let (written, command) = written?;
        match written {
            Written::Replay(done) => self.replay(done, &digest),
            Written::Answered {
                publisher_fulfillment_id,
                answer,
                licenses,
                superseded,
            } => {
                // A call's writes committed: the storage takes writes again (readiness).
                crate::store::fault::note_commit();
                self.remember(&command, &order_id, digest, &answer);
                tracing::info!(
                    operation = %command.operation,
                    nexway_fulfillment_id = %command.nexway_fulfillment_id,
                    %publisher_fulfillment_id,
                    licenses,
                    superseded,
                    "fulfilled"
                );
                Ok(Outcome {
                    answer,
                    replayed: false,
                })
            }
        }
    }

    /// A call's writes, in the writer's transaction: its identity claimed, the plan applied, the
    /// answer recorded.
    async fn write_call(
        &self,
        txn: &DatabaseTransaction,
        command: &Command,
        repeat: i32,
        digest: &str,
        today: NaiveDate,
    ) -> Result<Written> {
        let order_id = command.order_id.clone().unwrap_or_default();
        let key = CallKey {
            operation: command.operation,
            nexway_fulfillment_id: &command.nexway_fulfillment_id,
            order_id: &order_id,
        };
        // Claiming the call is the transaction's first write: on PostgreSQL a concurrent
        // duplicate waits here for our commit; on SQLite the writer holds the write lock already.
        let publisher_fulfillment_id = uuid::Uuid::new_v4().to_string();
        let Some(fulfillment_id) =
            fulfillments::claim(txn, key, repeat, &publisher_fulfillment_id, digest).await?
        else {
            // The same call answered meanwhile, by another process or earlier in this batch.
            let done = fulfillments::find(txn, key).await?.ok_or(Error::Internal)?;
            return Ok(Written::Replay(done));
        };
        let call = Call {
            command,
            fulfillment_id,
            publisher_fulfillment_id: &publisher_fulfillment_id,
            repeat,
        };
        // One life's calls one at a time: a cancel that arrives with its `new` either sees the
        // codes or is seen by it (PostgreSQL's READ COMMITTED would let both miss the other).
        licenses::lock_life(txn, command.life()).await?;
        let effect = self.fulfil(txn, &call, today).await?;
        let answer = Answer {
            publisher_fulfillment_id: publisher_fulfillment_id.clone(),
            nexway_fulfillment_id: command.nexway_fulfillment_id.clone(),
            operation: command.operation.as_str(),
            licenses: effect.current.iter().map(|l| view(l, today)).collect(),
            superseded: effect.superseded.iter().map(|l| view(l, today)).collect(),
        }
        .to_json();
        fulfillments::record_answer(txn, fulfillment_id, &answer).await?;
        Ok(Written::Answered {
            publisher_fulfillment_id,
            answer,
            licenses: effect.current.len(),
            superseded: effect.superseded.len(),
        })
    }

    /// A stored answer read from the database, remembered for the next repeat.
    fn replay(&self, done: entity::fulfillment::Model, digest: &str) -> Result<Outcome> {
        let stored = Stored {
            digest: done.request_digest,
            answer: done.answer.as_str().into(),
        };
        self.replays.insert(
            done.operation,
            &done.nexway_fulfillment_id,
            &done.order_id,
            stored.clone(),
        );
        replay(&stored.digest, done.answer, digest)
    }

    /// A committed answer, remembered for the call's repeats.
    fn remember(&self, command: &Command, order_id: &str, digest: String, answer: &str) {
        let stored = Stored {
            digest,
            answer: answer.into(),
        };
        let fulfillment = &command.nexway_fulfillment_id;
        self.replays
            .insert(command.operation, fulfillment, order_id, stored);
    }

    /// Whether a call already answered under this identity arriving again is a new call: a
    /// suspend (or reactivate) after the opposite operation was applied to its licenses (the
    /// current body has no event id, so suspend, reactivate, suspend share one identity).
    /// Everything else is a retry.
    /// Support's reinstate lifts a suspension as a reactivate does.
    async fn is_new_call(&self, done: &entity::fulfillment::Model, life: &str) -> Result<bool> {
        let opposite: &[Cause] = match done.operation {
            Operation::Suspend => &[Cause::Reactivate, Cause::Reinstate],
            Operation::Reactivate => &[Cause::Suspend],
            Operation::New | Operation::Renew | Operation::Upgrade | Operation::Cancel => {
                return Ok(false);
            }
        };
        Ok(fulfillments::happened_since(&self.db, done, life, opposite).await?)
    }

    async fn fulfil(
        &self,
        txn: &DatabaseTransaction,
        call: &Call<'_>,
        today: NaiveDate,
    ) -> Result<Effect> {
        let command = call.command;
        if command.operation == Operation::New {
            let trials = match command.trial {
                Some(Trial::Conversion) => match self.targets(txn, command).await {
                    Ok(Targets::Found(found)) => found.into_iter().filter(|l| l.trial).collect(),
                    Ok(Targets::Pending(_)) | Err(Error::UnknownFulfillment(_)) => Vec::new(),
                    Err(error) => return Err(error),
                },
                Some(Trial::Creation) | None => Vec::new(),
            };
            // A `new` joins an existing life (a renewal sent as `new`, a trial's conversion) only
            // when the life is its buyer's: a life id must not let one customer's calls reach
            // another's codes.
            // Its own fulfillment id, already holding codes of another life, is refused too: it
            // would make that life's later calls find two lives and be refused for good.
            let life = command.life();
            let own = licenses::by_fulfillment_id(txn, &command.nexway_fulfillment_id).await?;
            // Usually the call's own id names its life: then its rows hold the life's already.
            let existing = if life == command.nexway_fulfillment_id {
                own.iter()
                    .filter(|license| life_of(license) == life)
                    .cloned()
                    .collect()
            } else {
                licenses::by_life(txn, life).await?
            };
            if own.iter().any(|license| life_of(license) != life)
                || !self.is_buyers(txn, command, &existing).await?
            {
                return Err(Error::ReferencesDisagree(
                    "the call's fulfillment ids name another buyer's license life".into(),
                ));
            }
            // Cancels and suspends that came first apply to the life's first codes only.
            let pending = if existing.is_empty() {
                let waiting = fulfillments::pending_for(txn, life).await?;
                pending_status(&same_purchase(command, waiting))
            } else {
                None
            };
            // A cancel of this very order that came first and reached the life's earlier codes
            // (a trial's, say) refunded it: its codes are issued canceled too.
            let refunded = match &command.order_id {
                Some(order_id) if !existing.is_empty() => {
                    let ids: Vec<i64> = existing.iter().map(|license| license.id).collect();
                    fulfillments::canceled_in_order(txn, &ids, order_id).await?
                }
                _ => false,
            };
            let pending = if refunded {
                Some(Status::Canceled)
            } else {
                pending
            };
            let plan = plan::plan(command, &held(&trials), pending, &self.catalog, today)?;
            return self.write(txn, call, plan, trials, pending.is_some()).await;
        }
        match self.targets(txn, command).await? {
            Targets::Found(targets) => {
                let plan = plan::plan(command, &held(&targets), None, &self.catalog, today)?;
                self.write(txn, call, plan, targets, false).await
            }
            Targets::Pending(life) => {
                let buyer = command.buyer.email.as_ref().ok_or(Error::Internal)?;
                fulfillments::mark_pending(txn, call.fulfillment_id, &life, buyer.as_str()).await?;
                tracing::info!(operation = %command.operation, %life, "recorded before its new");
                Ok(Effect::default())
            }
        }
    }

    /// The licenses a lifecycle call is about (PROTOCOL.md 2b): every reference that finds
    /// licenses must point into one life; named codes act on exactly those codes, else the
    /// call acts on the life's current codes.
    async fn targets(&self, txn: &DatabaseTransaction, command: &Command) -> Result<Targets> {
        let lives = |found: &[license::Model]| -> Vec<String> {
            found.iter().map(|l| life_of(l).to_owned()).collect()
        };
        let mut found = Vec::new();
        let named = if command.activation_codes.is_empty() {
            None
        } else {
            let named = licenses::by_codes(txn, &command.activation_codes).await?;
            if let Some(missing) = command.activation_codes.iter().find(|code| {
                let key = licenses::lookup_key(code);
                !named.iter().any(|license| license.lookup_key == key)
            }) {
                return Err(Error::UnknownFulfillment(format!(
                    "activation code {missing} is not known"
                )));
            }
            found.push(Found {
                reference: Reference::NamedCodes,
                lives: lives(&named),
            });
            Some(licenses::current(txn, named).await?)
        };
        let publisher_ids = command
            .publisher_fulfillment_id
            .iter()
            .chain(&command.more_publisher_fulfillment_ids);
        for id in publisher_ids {
            found.push(Found {
                reference: Reference::PublisherFulfillmentId,
                lives: lives(&licenses::answered_by(txn, id).await?),
            });
        }
        if let Some(id) = &command.initial_nexway_fulfillment_id {
            found.push(Found {
                reference: Reference::InitialFulfillmentId,
                lives: lives(&licenses::by_fulfillment_id(txn, id).await?),
            });
        }
        found.push(Found {
            reference: Reference::FulfillmentId,
            lives: lives(&licenses::by_fulfillment_id(txn, &command.nexway_fulfillment_id).await?),
        });
        // A cancel or suspend whose own references find nothing is about a life whose `new` has
        // not come yet (in the current body the fulfillment id names the life): it waits for it,
        // recorded only with the buyer it is about, so the late `new` must be theirs.
        let found_otherwise = found.iter().any(|f| !f.lives.is_empty());
        if !found_otherwise
            && matches!(command.operation, Operation::Cancel | Operation::Suspend)
            && command.publisher_fulfillment_id.is_none()
            && command.buyer.email.is_some()
        {
            return Ok(Targets::Pending(command.life().to_owned()));
        }
        // The subscription is the last resort: one subscription may span several lives (an
        // upgrade Nexway sends as a new purchase), so it only speaks when nothing else found
        // anything, and then it must find one life.
        if let Some(id) = command
            .subscription_id
            .as_ref()
            .filter(|_| !found_otherwise)
        {
            found.push(Found {
                reference: Reference::SubscriptionId,
                lives: lives(&licenses::by_subscription(txn, id).await?),
            });
        }
        let life = scope::life(&found)?;
        // The call's own fulfillment id names its life; any other reference (codes, ids an
        // extractor copied, a subscription) reaches only the call's buyer's licenses.
        let own_life = found
            .iter()
            .any(|f| f.reference == Reference::FulfillmentId && !f.lives.is_empty());
        match (named, life) {
            (Some(named), _) => {
                if !own_life {
                    self.belong_to_buyer(txn, command, &named).await?;
                }
                Ok(Targets::Found(named))
            }
            (None, Some(life)) => {
                let current = licenses::current(txn, licenses::by_life(txn, &life).await?).await?;
                if !own_life {
                    self.belong_to_buyer(txn, command, &current).await?;
                }
                Ok(Targets::Found(current))
            }
            (None, None) => Err(Error::UnknownFulfillment(
                "no license matches the call's codes, fulfillment ids or subscription".into(),
            )),
        }
    }

    /// Licenses reached by a reference other than the call's own fulfillment id are only
    /// touched when they are the call's buyer's own.
    async fn belong_to_buyer(
        &self,
        txn: &DatabaseTransaction,
        command: &Command,
        named: &[license::Model],
    ) -> Result<()> {
        if command.buyer.email.is_none() {
            return Err(Error::UnknownFulfillment(
                "the licenses the call refers to are not in its own fulfillment, and the call \
                 names no buyer to check them against"
                    .into(),
            ));
        }
        if !self.is_buyers(txn, command, named).await? {
            // Never name another buyer's code: the message goes back to the caller.
            return Err(Error::UnknownFulfillment(
                "the licenses the call refers to are not this buyer's".into(),
            ));
        }
        Ok(())
    }

    /// Whether every one of `licenses` belongs to the call's buyer (none: yes; a call naming no
    /// buyer: only then).
    async fn is_buyers(
        &self,
        txn: &DatabaseTransaction,
        command: &Command,
        licenses: &[license::Model],
    ) -> Result<bool> {
        if licenses.is_empty() {
            return Ok(true);
        }
        let Some(email) = &command.buyer.email else {
            return Ok(false);
        };
        let owners = licenses::owners(txn, licenses).await?;
        Ok(licenses.iter().all(|license| {
            owners
                .iter()
                .find(|owner| owner.id == license.customer_id)
                .is_some_and(|owner| owner.email == email.as_str())
        }))
    }

    /// Writes a plan: every license change with its event, through `store`.
    async fn write(
        &self,
        txn: &DatabaseTransaction,
        call: &Call<'_>,
        plan: Plan,
        targets: Vec<license::Model>,
        waited: bool,
    ) -> Result<Effect> {
        let command = call.command;
        let event = |from, to, reason| NewEvent {
            from,
            to,
            cause: command.operation.into(),
            fulfillment_id: Some(call.fulfillment_id),
            reason,
        };
        let mut effect = Effect::default();
        match plan {
            Plan::Issue { count, codes } => {
                let email = command.buyer.email.as_ref().ok_or(Error::Internal)?;
                let customer_id = customers::upsert(txn, email, &command.buyer).await?;
                let policy = self.catalog.policy(&codes.product.publisher_product_id)?;
                let buyer = Buyer {
                    first_name: command.buyer.first_name.as_deref(),
                    last_name: command.buyer.last_name.as_deref(),
                    company_name: command.buyer.company_name.as_deref(),
                };
                let reason = waited.then(|| {
                    format!(
                        "issued {}: a call of this life arrived before its new",
                        codes.status
                    )
                });
                for index in 0..count {
                    let new = Mint {
                        codes: &codes,
                        generator: policy.generator.as_ref(),
                        customer_id,
                        customer_email: email.as_str(),
                        buyer,
                        index,
                        parent_id: None,
                        life: command.initial_nexway_fulfillment_id.as_deref(),
                        subscription_id: command.subscription_id.as_deref(),
                    };
                    let license = mint(txn, call, &new).await?;
                    licenses::record_event(
                        txn,
                        license.id,
                        &event(None, codes.status, reason.clone()),
                    )
                    .await?;
                    effect.current.push(license);
                }
            }
            Plan::Change(changes) => {
                // A plan may leave some targets alone (canceled seats): pair by id.
                let mut targets: std::collections::HashMap<i64, license::Model> = targets
                    .into_iter()
                    .map(|target| (target.id, target))
                    .collect();
                for (index, change) in changes.into_iter().enumerate() {
                    let target = targets.remove(&change.id()).ok_or(Error::Internal)?;
                    match change {
                        Change::InEffect { .. } => effect.current.push(target),
                        Change::Keep {
                            from,
                            to,
                            end_date,
                            product,
                            trial,
                            reason,
                            ..
                        } => {
                            let transition = Transition {
                                status: to,
                                end_date: Some(end_date),
                                product: Some(Product {
                                    publisher_product_id: &product.publisher_product_id,
                                    nexway_product_id: product.nexway_product_id.as_deref(),
                                    name: product.name.as_deref(),
                                }),
                                trial: Some(trial),
                            };
                            let kept = licenses::transition(
                                txn,
                                target,
                                &transition,
                                &event(Some(from), to, reason),
                            )
                            .await?;
                            effect.current.push(kept);
                        }
                        Change::Reissue { from, child, .. } => {
                            let policy =
                                self.catalog.policy(&child.product.publisher_product_id)?;
                            let owner = customers::by_id(txn, target.customer_id).await?;
                            let new = Mint {
                                codes: &child,
                                generator: policy.generator.as_ref(),
                                customer_id: target.customer_id,
                                customer_email: &owner.email,
                                buyer: Buyer::of(&target),
                                index: index as u32,
                                parent_id: Some(target.id),
                                // The child continues the parent's life: later calls naming the
                                // first fulfillment or the subscription find it.
                                life: Some(life_of(&target)),
                                subscription_id: command
                                    .subscription_id
                                    .as_deref()
                                    .or(target.subscription_id.as_deref()),
                            };
                            let born = mint(txn, call, &new).await?;
                            let reason = format!("reissued from {}", target.activation_code);
                            licenses::record_event(
                                txn,
                                born.id,
                                &event(None, child.status, Some(reason)),
                            )
                            .await?;
                            let transition = Transition {
                                status: Status::Superseded,
                                end_date: None,
                                product: None,
                                trial: None,
                            };
                            let reason = format!("replaced by {}", born.activation_code);
                            let old = licenses::transition(
                                txn,
                                target,
                                &transition,
                                &event(Some(from), Status::Superseded, Some(reason)),
                            )
                            .await?;
                            effect.current.push(born);
                            effect.superseded.push(old);
                        }
                    }
                }
            }
        }
        Ok(effect)
    }
}

/// The status the cancels and suspends that arrived before a `new` leave for its codes: a cancel
/// wins over a suspend.
/// The waiting calls that are about the purchase `new` makes: those of another buyer are not (a
/// life id alone must not cancel someone else's purchase) and are left alone with a warning.
/// Calls that waited before nexkey kept their buyer name none and apply as they did then.
fn same_purchase(
    new: &Command,
    waiting: Vec<entity::fulfillment::Model>,
) -> Vec<entity::fulfillment::Model> {
    let buyer = new.buyer.email.as_ref().map(Email::as_str);
    waiting
        .into_iter()
        .filter(|call| {
            let same = call.pending_buyer.is_none() || call.pending_buyer.as_deref() == buyer;
            if !same {
                tracing::warn!(
                    operation = %call.operation,
                    publisher_fulfillment_id = %call.publisher_fulfillment_id,
                    "a call recorded before its new names another buyer: not applied"
                );
            }
            same
        })
        .collect()
}

fn pending_status(calls: &[entity::fulfillment::Model]) -> Option<Status> {
    calls
        .iter()
        .fold(None, |status, call| match (status, call.operation) {
            (_, Operation::Cancel) | (Some(Status::Canceled), _) => Some(Status::Canceled),
            (_, Operation::Suspend) => Some(Status::Suspended),
            (status, _) => status,
        })
}

fn held(licenses: &[license::Model]) -> Vec<Held> {
    licenses
        .iter()
        .map(|license| Held {
            id: license.id,
            code: license.activation_code.clone(),
            status: license.status,
            trial: license.trial,
            end_date: license.end_date,
            product: super::command::ProductRef {
                publisher_product_id: license.publisher_product_id.clone(),
                nexway_product_id: license.nexway_product_id.clone(),
                name: license.product_name.clone(),
            },
        })
        .collect()
}

/// A stored answer for the same call: the same bytes if the content is the same, else a conflict.
fn replay(stored_digest: &str, answer: String, digest: &str) -> Result<Outcome> {
    if stored_digest != digest {
        return Err(Error::IdempotencyConflict);
    }
    Ok(Outcome {
        answer,
        replayed: true,
    })
}

/// A license as the answer shows it.
fn view(license: &license::Model, today: NaiveDate) -> LicenseView {
    LicenseView {
        activation_code: license.activation_code.clone(),
        status: effective(license.status, license.end_date, today)
            .as_str()
            .into(),
        trial: license.trial,
        start_date: license.start_date,
        end_date: license.end_date,
        file: LicenseView::file_of(license),
    }
}
