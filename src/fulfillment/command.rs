//! What Nexway asks for, once both body generations are normalised.

use chrono::NaiveDate;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use entity::vocabulary::Operation;

/// `checkout.trialContext`: the call starts a free trial, or turns one into a paid order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Trial {
    Creation,
    Conversion,
}

/// One call of Nexway's, whichever body generation carried it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Command {
    pub operation: Operation,
    /// `nexwayFulfillmentId` (legacy body) or `fulfillmentId` (current body).
    pub nexway_fulfillment_id: String,
    /// `metadata.order` or `checkout.orderId`: part of the call's identity when present.
    pub order_id: Option<String>,
    pub initial_nexway_fulfillment_id: Option<String>,
    /// The id nexkey answered earlier (`publisherFulfillmentId` / `PublisherLicenseID`).
    pub publisher_fulfillment_id: Option<String>,
    pub subscription_id: Option<String>,
    pub product: ProductRef,
    pub quantity: u32,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    /// Codes the call names (`licenses[].activationCode`, `additionalData.ActivationCode`).
    pub activation_codes: Vec<String>,
    pub buyer: Buyer,
    pub external_context: Option<String>,
    // Members added later are left out of the digest when unset, so the stored digests of
    // earlier calls still match their retries.
    /// `checkout.trialContext`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trial: Option<Trial>,
    /// Further `PublisherLicenseID`s when `additionalData` lists several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub more_publisher_fulfillment_ids: Vec<String>,
}

impl Command {
    /// The life the call belongs to when it starts one (or waits for it): the first
    /// fulfillment of the life, else the call's own.
    pub fn life(&self) -> &str {
        self.initial_nexway_fulfillment_id
            .as_deref()
            .unwrap_or(&self.nexway_fulfillment_id)
    }

    /// Fingerprint of the whole command: a repeat with another digest is a conflicting repeat.
    pub fn digest(&self) -> String {
        let bytes = serde_json::to_vec(self).expect("a command always serialises");
        hex::encode(Sha256::digest(bytes))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductRef {
    /// The key of the product policy.
    pub publisher_product_id: String,
    pub nexway_product_id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Buyer {
    pub email: Option<Email>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    pub nexway_user_id: Option<String>,
}

/// A plausible e-mail address, stored lowercased so one buyer is one customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Email(String);

impl Email {
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        let invalid = || format!("{value:?} is not a valid e-mail address");
        let (local, domain) = value.split_once('@').ok_or_else(invalid)?;
        let well_formed = !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && value.len() <= 254
            && value.chars().all(|c| !c.is_whitespace() && !c.is_control());
        if !well_formed {
            return Err(invalid());
        }
        Ok(Email(value.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_lowercased() {
        assert_eq!(
            Email::parse(" Buyer@Example.COM ").unwrap().as_str(),
            "buyer@example.com"
        );
        for bad in [
            "",
            "buyer",
            "@example.com",
            "buyer@",
            "buyer@example",
            "a b@example.com",
            "a@b@c.de",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
