//! Which life a lifecycle call is about (PROTOCOL.md 2b): every reference the call carries that
//! finds licenses must point into the same life, or the call is refused and nothing changes.
//! Pure: `service` looks each reference up and hands the lives found here.

use std::collections::BTreeSet;

use crate::error::{Error, Result};

/// A reference a call carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// `product.licenses[].activationCode` / `additionalData.ActivationCode`.
    NamedCodes,
    /// `publisherFulfillmentId` / `additionalData.PublisherLicenseID`.
    PublisherFulfillmentId,
    /// `product.initialNexwayFulfillmentId`.
    InitialFulfillmentId,
    /// The call's own `nexwayFulfillmentId` / `fulfillmentId`.
    FulfillmentId,
    /// `checkout.subscriptionId`.
    SubscriptionId,
}

impl Reference {
    fn name(self) -> &'static str {
        match self {
            Reference::NamedCodes => "the named codes",
            Reference::PublisherFulfillmentId => "the publisherFulfillmentId",
            Reference::InitialFulfillmentId => "the initialNexwayFulfillmentId",
            Reference::FulfillmentId => "the fulfillment id",
            Reference::SubscriptionId => "the subscriptionId",
        }
    }
}

/// The lives (first fulfillment ids) of the licenses one reference found; empty when it found
/// nothing, and then it says nothing.
#[derive(Debug, Clone)]
pub struct Found {
    pub reference: Reference,
    pub lives: Vec<String>,
}

/// The one life the call's references agree on; None when none of them finds anything.
pub fn life(found: &[Found]) -> Result<Option<String>> {
    let mut lives: BTreeSet<&str> = BTreeSet::new();
    let mut seen: Vec<Reference> = Vec::new();
    for found in found.iter().filter(|found| !found.lives.is_empty()) {
        lives.extend(found.lives.iter().map(String::as_str));
        if !seen.contains(&found.reference) {
            seen.push(found.reference);
        }
        if lives.len() > 1 {
            let names: Vec<&str> = seen.iter().map(|reference| reference.name()).collect();
            return Err(Error::ReferencesDisagree(format!(
                "{} point into different license lives",
                names.join(" and ")
            )));
        }
    }
    Ok(lives.into_iter().next().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(reference: Reference, lives: &[&str]) -> Found {
        Found {
            reference,
            lives: lives.iter().map(|life| life.to_string()).collect(),
        }
    }

    #[test]
    fn references_that_find_nothing_say_nothing() {
        assert_eq!(life(&[]).unwrap(), None);
        let agreed = life(&[
            found(Reference::NamedCodes, &["A", "A"]),
            found(Reference::PublisherFulfillmentId, &[]),
            found(Reference::FulfillmentId, &["A"]),
        ]);
        assert_eq!(agreed.unwrap().as_deref(), Some("A"));
    }

    #[test]
    fn references_into_two_lives_are_refused() {
        for found in [
            vec![
                found(Reference::PublisherFulfillmentId, &["B"]),
                found(Reference::FulfillmentId, &["A"]),
            ],
            vec![found(Reference::NamedCodes, &["A", "B"])],
            vec![
                found(Reference::NamedCodes, &["A"]),
                found(Reference::SubscriptionId, &["A", "C"]),
            ],
        ] {
            let error = life(&found).unwrap_err();
            assert!(matches!(error, Error::ReferencesDisagree(_)), "{found:?}");
        }
    }
}
