//! Activating, validating and deactivating machines: each write in one transaction, the DMP
//! event of a first activation included.

use std::sync::Arc;

use chrono::Utc;
use entity::activation;
use sea_orm::ConnectionTrait;

use super::rules::{self, Code, Fingerprint, Refusal};
use super::token;
use crate::admin::{self, Purchase};
use crate::dmp::{self, Meta};
use crate::error::Error;
use crate::fulfillment::{Service, Status};
use crate::store::{activations, outbox};

/// Why an activation call failed.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("no license has this key")]
    UnknownLicense,
    #[error("the license is not usable: {}", .0.as_str())]
    Unusable(Code),
    #[error("the license is activated on the {0} machines its product allows")]
    TooManyActivations(u32),
    #[error("the license is not activated on this machine")]
    NotActivated,
    #[error(transparent)]
    Storage(#[from] Error),
}

impl From<sea_orm::DbErr> for ActivationError {
    fn from(error: sea_orm::DbErr) -> Self {
        ActivationError::Storage(error.into())
    }
}

impl From<Refusal> for ActivationError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Unusable(code) => ActivationError::Unusable(code),
            Refusal::TooManyActivations { max } => ActivationError::TooManyActivations(max),
        }
    }
}

type Result<T> = std::result::Result<T, ActivationError>;

/// The license as the software needs it.
#[derive(Debug, Clone)]
pub struct LicenseFacts {
    pub license_key: String,
    /// As read today.
    pub status: Status,
    pub publisher_product_id: String,
    pub product_name: Option<String>,
    pub expires: Option<chrono::NaiveDate>,
    pub trial: bool,
    /// None: unlimited.
    pub max_activations: Option<u32>,
    pub activations: u64,
}

/// An activation and whether this call created it.
#[derive(Debug, Clone)]
pub struct Activated {
    pub activation: activation::Model,
    pub created: bool,
    pub license: LicenseFacts,
}

#[derive(Debug, Clone)]
pub struct Validation {
    pub code: Code,
    /// The signed offline token, for products whose generator signs.
    pub token: Option<String>,
    pub license: LicenseFacts,
    /// The machine's activation, when a fingerprint was given and it is activated.
    pub activation: Option<activation::Model>,
}

pub struct Activations {
    service: Arc<Service>,
    /// None: reporting to the DMP is off, no event is recorded.
    dmp: Option<Meta>,
}

impl Activations {
    pub fn new(service: Arc<Service>, dmp: Option<Meta>) -> Self {
        Activations { service, dmp }
    }

    /// Activates the machine on the license, or finds it already activated (idempotent). A
    /// new activation is written with its DMP event in the same transaction.
    pub async fn activate(
        &self,
        key: &str,
        fingerprint: &str,
        name: Option<&str>,
    ) -> Result<Activated> {
        let fingerprint =
            Fingerprint::parse(fingerprint).map_err(ActivationError::InvalidRequest)?;
        let name = rules::parse_name(name).map_err(ActivationError::InvalidRequest)?;
        let (service, dmp, key) = (self.service.clone(), self.dmp.clone(), key.to_owned());
        let (activation, created, purchase, count) = self
            .service
            .writer()
            .run(move |txn| {
                Box::pin(async move {
                    // Locked: concurrent activations of one license count its machines in turn.
                    let purchase = find_for_update(txn, &key).await?;
                    let license_id = purchase.license.id;
                    let existing = activations::find(txn, license_id, fingerprint.as_str()).await?;
                    let count = activations::count(txn, license_id).await?;
                    if let Some(activation) = existing {
                        // Already this machine's: the license must still be usable, the seat is
                        // its own.
                        rules::may_activate(purchase.status, 0, None)?;
                        return Ok::<_, ActivationError>((activation, false, purchase, count));
                    }
                    let policy = service
                        .catalog()
                        .policy_or_defaults(&purchase.license.publisher_product_id);
                    rules::may_activate(purchase.status, count, policy.max_activations)?;
                    let now = Utc::now();
                    let activation = activations::insert(
                        txn,
                        license_id,
                        fingerprint.as_str(),
                        name.as_deref(),
                        now,
                    )
                    .await?;
                    if let Some(meta) = &dmp {
                        let payload = dmp::event::register_licences(
                            &purchase.license,
                            &purchase.customer,
                            meta,
                            now,
                        );
                        outbox::insert(
                            txn,
                            dmp::REGISTER_LICENCES,
                            Some(license_id),
                            &payload.to_string(),
                            now,
                        )
                        .await?;
                    }
                    Ok((activation, true, purchase, count + 1))
                })
            })
            .await?;
        if created {
            tracing::info!(
                license = purchase.license.id,
                activation = activation.id,
                "machine activated"
            );
        }
        Ok(Activated {
            activation,
            created,
            license: self.facts(&purchase, count),
        })
    }

    /// Is the license usable (and, with a fingerprint, activated on that machine)?
    pub async fn validate(&self, key: &str, fingerprint: Option<&str>) -> Result<Validation> {
        let fingerprint = fingerprint
            .map(Fingerprint::parse)
            .transpose()
            .map_err(ActivationError::InvalidRequest)?;
        let db = self.service.db();
        let purchase = find(db, key).await?;
        let activation = match &fingerprint {
            Some(fingerprint) => {
                activations::find(db, purchase.license.id, fingerprint.as_str()).await?
            }
            None => None,
        };
        let machine = fingerprint.as_ref().map(|_| activation.is_some());
        let count = activations::count(db, purchase.license.id).await?;
        let code = rules::validity(purchase.status, machine);
        let license = &purchase.license;
        let policy = self
            .service
            .catalog()
            .policy_or_defaults(&license.publisher_product_id);
        // A token is a machine's: signed only for a fingerprint, so an offline check can never
        // stand for a seat the machine does not hold.
        let token = fingerprint.as_ref().and_then(|fingerprint| {
            let claims = token::TokenClaims {
                license_key: &license.activation_code,
                fingerprint: Some(fingerprint.as_str()),
                product: &license.publisher_product_id,
                code,
                expires: license.end_date,
                issued_at: Utc::now(),
            };
            token::token(&claims, |message| policy.generator.sign(message))
        });
        Ok(Validation {
            code,
            token,
            license: self.facts(&purchase, count),
            activation,
        })
    }

    /// Frees the machine's seat, whatever the license's status.
    pub async fn deactivate(&self, key: &str, fingerprint: &str) -> Result<()> {
        let fingerprint =
            Fingerprint::parse(fingerprint).map_err(ActivationError::InvalidRequest)?;
        let key = key.to_owned();
        let license = self
            .service
            .writer()
            .run(move |txn| {
                Box::pin(async move {
                    let purchase = find_for_update(txn, &key).await?;
                    if !activations::delete(txn, purchase.license.id, fingerprint.as_str()).await? {
                        return Err(ActivationError::NotActivated);
                    }
                    Ok(purchase.license.id)
                })
            })
            .await?;
        tracing::info!(license, "machine deactivated");
        Ok(())
    }

    fn facts(&self, purchase: &Purchase, activations: u64) -> LicenseFacts {
        let license = &purchase.license;
        let policy = self
            .service
            .catalog()
            .policy_or_defaults(&license.publisher_product_id);
        LicenseFacts {
            license_key: license.activation_code.clone(),
            status: purchase.status,
            publisher_product_id: license.publisher_product_id.clone(),
            product_name: license.product_name.clone().or_else(|| policy.name.clone()),
            expires: license.end_date,
            trial: license.trial,
            max_activations: policy.max_activations,
            activations,
        }
    }
}

/// The license of a key as people type it (the lkey lookup's rule).
async fn find(db: &impl ConnectionTrait, key: &str) -> Result<Purchase> {
    admin::purchase(db, key)
        .await?
        .ok_or(ActivationError::UnknownLicense)
}

/// The same, locked for the write that follows.
async fn find_for_update(db: &impl ConnectionTrait, key: &str) -> Result<Purchase> {
    admin::purchase_for_update(db, key)
        .await?
        .ok_or(ActivationError::UnknownLicense)
}
