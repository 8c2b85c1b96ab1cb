//! What Nexway asks for, once both body generations are normalised.

use chrono::NaiveDate;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The operation, given by the path (`/licenses/{operation}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    New,
    Renew,
    Upgrade,
    Suspend,
    Reactivate,
    Cancel,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::New => "new",
            Operation::Renew => "renew",
            Operation::Upgrade => "upgrade",
            Operation::Suspend => "suspend",
            Operation::Reactivate => "reactivate",
            Operation::Cancel => "cancel",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
}

impl Command {
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
