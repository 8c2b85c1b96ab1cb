//! renew, upgrade, suspend, reactivate and cancel: each target license takes the step the state
//! machine allows, under its product's policy, with an event for every change, all inside the
//! call's transaction.

use chrono::{NaiveDate, Utc};
use entity::{customer, license};
use sea_orm::{ActiveValue::Set, DatabaseTransaction, EntityTrait, IntoActiveModel};

use super::catalog::{Catalog, CodeMode, Policy, RenewMode};
use super::command::{Operation, ProductRef};
use super::mint::{Call, Mint, mint};
use super::status::{Status, Step, step};
use super::targets;
use crate::error::{Error, Result};
use crate::store::licenses;

/// The licenses a call leaves behind: the current ones, and those it replaced by reissue.
#[derive(Default)]
pub struct Effect {
    pub current: Vec<license::Model>,
    pub superseded: Vec<license::Model>,
}

pub async fn apply(
    txn: &DatabaseTransaction,
    call: &Call<'_>,
    catalog: &Catalog,
) -> Result<Effect> {
    let operation = call.command.operation;
    let today = Utc::now().date_naive();
    let mut effect = Effect::default();
    for (index, target) in targets::resolve(txn, call.command)
        .await?
        .into_iter()
        .enumerate()
    {
        let from = Status::effective(&target.status, target.end_date, today);
        let to = match step(operation, from)? {
            Step::InEffect => {
                effect.current.push(target);
                continue;
            }
            Step::To(to) => to,
        };
        let change = Change {
            txn,
            call,
            today,
            index: index as u32,
            from,
            to,
        };
        let changed = match operation {
            Operation::Renew => change.renew(target, catalog).await?,
            Operation::Upgrade => change.upgrade(target, catalog).await?,
            Operation::Reactivate => change.reactivate(target, catalog).await?,
            Operation::Suspend | Operation::Cancel => change.keep(target, Edit::default()).await?,
            Operation::New => return Err(Error::Internal),
        };
        effect.current.extend(changed.current);
        effect.superseded.extend(changed.superseded);
    }
    Ok(effect)
}

/// One target's step.
struct Change<'a> {
    txn: &'a DatabaseTransaction,
    call: &'a Call<'a>,
    today: NaiveDate,
    /// Position of the target within the call.
    index: u32,
    from: Status,
    to: Status,
}

/// What a step changes besides the status of a kept code.
#[derive(Default)]
struct Edit<'a> {
    end_date: Option<Option<NaiveDate>>,
    product: Option<(&'a ProductRef, &'a Policy)>,
}

impl Change<'_> {
    async fn renew(&self, target: license::Model, catalog: &Catalog) -> Result<Effect> {
        let policy = catalog.policy(&target.publisher_product_id)?;
        // The call's end date when it gives one; else a term after the current end, or after
        // today when the license has lapsed. A perpetual license stays perpetual.
        let end_date = match (self.call.command.end_date, target.end_date) {
            (Some(end), _) => Some(end),
            (None, Some(end)) => policy.term.end_after(end.max(self.today)).or(Some(end)),
            (None, None) => None,
        };
        match policy.renew {
            RenewMode::Extend => {
                let edit = Edit {
                    end_date: Some(end_date),
                    ..Edit::default()
                };
                self.keep(target, edit).await
            }
            RenewMode::Reissue => {
                let product = product_of(&target);
                self.reissue(target, &product, policy, end_date).await
            }
        }
    }

    async fn upgrade(&self, target: license::Model, catalog: &Catalog) -> Result<Effect> {
        let product = &self.call.command.product;
        let policy = catalog.policy(&product.publisher_product_id)?;
        let end_date = self.call.command.end_date.or(target.end_date);
        match policy.upgrade {
            CodeMode::Keep => {
                let edit = Edit {
                    end_date: Some(end_date),
                    product: Some((product, policy)),
                };
                self.keep(target, edit).await
            }
            CodeMode::Reissue => self.reissue(target, product, policy, end_date).await,
        }
    }

    async fn reactivate(&self, target: license::Model, catalog: &Catalog) -> Result<Effect> {
        let policy = catalog.policy(&target.publisher_product_id)?;
        let end_date = self.call.command.end_date.or(target.end_date);
        match policy.reactivate {
            CodeMode::Keep => {
                let edit = Edit {
                    end_date: Some(end_date),
                    ..Edit::default()
                };
                self.keep(target, edit).await
            }
            CodeMode::Reissue => {
                let product = product_of(&target);
                self.reissue(target, &product, policy, end_date).await
            }
        }
    }

    /// The same code takes the new status, and the edit's end date or product.
    async fn keep(&self, target: license::Model, edit: Edit<'_>) -> Result<Effect> {
        let mut reasons = Vec::new();
        let mut row = target.clone().into_active_model();
        row.status = Set(self.to.as_str().to_owned());
        if let Some(end_date) = edit.end_date
            && end_date != target.end_date
        {
            reasons.push(format!(
                "end date {} -> {}",
                show(target.end_date),
                show(end_date)
            ));
            row.end_date = Set(end_date);
        }
        if let Some((product, policy)) = edit.product
            && product.publisher_product_id != target.publisher_product_id
        {
            reasons.push(format!(
                "product {} -> {}",
                target.publisher_product_id, product.publisher_product_id
            ));
            row.publisher_product_id = Set(product.publisher_product_id.clone());
            row.nexway_product_id = Set(product.nexway_product_id.clone());
            row.product_name = Set(product.name.clone().or_else(|| policy.name.clone()));
        }
        let kept = licenses::update(self.txn, row).await?;
        let reason = (!reasons.is_empty()).then(|| reasons.join("; "));
        self.record(&kept, Some(self.from), self.to, reason.as_deref())
            .await?;
        Ok(Effect {
            current: vec![kept],
            superseded: Vec::new(),
        })
    }

    /// A new code replaces the target, which becomes superseded.
    async fn reissue(
        &self,
        target: license::Model,
        product: &ProductRef,
        policy: &Policy,
        end_date: Option<NaiveDate>,
    ) -> Result<Effect> {
        let command = self.call.command;
        let owner = customer::Entity::find_by_id(target.customer_id)
            .one(self.txn)
            .await?
            .ok_or(Error::Internal)?;
        let new = Mint {
            product,
            policy,
            customer_id: target.customer_id,
            customer_email: &owner.email,
            index: self.index,
            start_date: Some(command.start_date.unwrap_or(self.today)),
            end_date,
            parent_id: Some(target.id),
        };
        let child = mint(self.txn, self.call, &new).await?;
        // The child continues the parent's life: later calls naming the first fulfillment or
        // the subscription find it, and a suspended parent's hold carries over.
        let mut row = child.into_active_model();
        row.initial_nexway_fulfillment_id = Set(Some(
            target
                .initial_nexway_fulfillment_id
                .clone()
                .unwrap_or_else(|| target.nexway_fulfillment_id.clone()),
        ));
        row.subscription_id = Set(command
            .subscription_id
            .clone()
            .or_else(|| target.subscription_id.clone()));
        row.status = Set(self.to.as_str().to_owned());
        let child = licenses::update(self.txn, row).await?;
        let reason = format!("reissued from {}", target.activation_code);
        self.record(&child, None, self.to, Some(&reason)).await?;

        let mut old = target.into_active_model();
        old.status = Set(Status::Superseded.as_str().to_owned());
        let old = licenses::update(self.txn, old).await?;
        let reason = format!("replaced by {}", child.activation_code);
        self.record(&old, Some(self.from), Status::Superseded, Some(&reason))
            .await?;
        Ok(Effect {
            current: vec![child],
            superseded: vec![old],
        })
    }

    async fn record(
        &self,
        license: &license::Model,
        from: Option<Status>,
        to: Status,
        reason: Option<&str>,
    ) -> Result<()> {
        licenses::record_event(
            self.txn,
            license.id,
            from.map(Status::as_str),
            to.as_str(),
            self.call.command.operation.as_str(),
            Some(self.call.fulfillment_id),
            reason,
        )
        .await?;
        Ok(())
    }
}

/// The product a license unlocks, as a reissue under the same product names it.
fn product_of(license: &license::Model) -> ProductRef {
    ProductRef {
        publisher_product_id: license.publisher_product_id.clone(),
        nexway_product_id: license.nexway_product_id.clone(),
        name: license.product_name.clone(),
    }
}

fn show(date: Option<NaiveDate>) -> String {
    date.map_or_else(|| "perpetual".into(), |date| date.to_string())
}
