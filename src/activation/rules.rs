//! The activation rules, as pure functions of a license's status and its machines.

use crate::fulfillment::Status;

/// What the publisher's software is told about a license (and a machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    /// The license is usable (and, when a fingerprint was given, activated on that machine).
    Valid,
    /// Past its end date.
    Expired,
    /// On hold (e.g. a subscription payment failed); may come back.
    Suspended,
    /// Revoked (refund, chargeback, cancellation) for good.
    Canceled,
    /// Replaced by a new code (renewal or upgrade by reissue): ask the buyer for the new one.
    Superseded,
    /// The license is usable but not activated on this machine.
    NotActivated,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Valid => "VALID",
            Code::Expired => "EXPIRED",
            Code::Suspended => "SUSPENDED",
            Code::Canceled => "CANCELED",
            Code::Superseded => "SUPERSEDED",
            Code::NotActivated => "NOT_ACTIVATED",
        }
    }
}

/// The one mapping from a license's status (as read today) to what the software is told.
pub fn code_of(status: Status) -> Code {
    match status {
        Status::Active => Code::Valid,
        Status::Expired => Code::Expired,
        Status::Suspended => Code::Suspended,
        Status::Canceled => Code::Canceled,
        Status::Superseded => Code::Superseded,
    }
}

/// Why a machine may not be activated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The license is not usable; the code says why (never `VALID` or `NOT_ACTIVATED`).
    Unusable(Code),
    /// Every seat the product allows is taken.
    TooManyActivations { max: u32 },
}

/// May one more machine be activated on a license in `status` that has `activations` machines,
/// under the product's `max` (None: unlimited)? A machine already activated is not "one more":
/// the caller answers it before asking.
pub fn may_activate(status: Status, activations: u64, max: Option<u32>) -> Result<(), Refusal> {
    match code_of(status) {
        Code::Valid => {}
        code => return Err(Refusal::Unusable(code)),
    }
    match max {
        Some(max) if activations >= u64::from(max) => Err(Refusal::TooManyActivations { max }),
        _ => Ok(()),
    }
}

/// The validation code: the license's own unless it is usable, then whether the machine (when
/// one is named) is activated.
pub fn validity(status: Status, machine: Option<bool>) -> Code {
    match (code_of(status), machine) {
        (Code::Valid, Some(false)) => Code::NotActivated,
        (code, _) => code,
    }
}

/// Longest fingerprint or machine name accepted, in characters.
pub const MAX_LEN: usize = 255;

/// A machine's fingerprint as the software sends it: opaque, compared exactly (it is the
/// software's own identifier), 1 to 255 printable characters, surrounding spaces trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn parse(text: &str) -> Result<Fingerprint, String> {
        let text = text.trim();
        if text.is_empty() || text.chars().count() > MAX_LEN || text.chars().any(char::is_control) {
            return Err(format!(
                "fingerprint must be 1 to {MAX_LEN} printable characters"
            ));
        }
        Ok(Fingerprint(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A machine's optional label: at most 255 printable characters; blank means none.
pub fn parse_name(name: Option<&str>) -> Result<Option<String>, String> {
    let Some(name) = name.map(str::trim).filter(|name| !name.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > MAX_LEN || name.chars().any(char::is_control) {
        return Err(format!(
            "name must be at most {MAX_LEN} printable characters"
        ));
    }
    Ok(Some(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_usable_license_takes_machines_up_to_the_limit() {
        assert_eq!(may_activate(Status::Active, 0, None), Ok(()));
        assert_eq!(may_activate(Status::Active, 10_000, None), Ok(()));
        assert_eq!(may_activate(Status::Active, 1, Some(2)), Ok(()));
        assert_eq!(
            may_activate(Status::Active, 2, Some(2)),
            Err(Refusal::TooManyActivations { max: 2 })
        );
        for (status, code) in [
            (Status::Expired, Code::Expired),
            (Status::Suspended, Code::Suspended),
            (Status::Canceled, Code::Canceled),
            (Status::Superseded, Code::Superseded),
        ] {
            // The status speaks first: a full license that is also canceled says canceled.
            assert_eq!(
                may_activate(status, 5, Some(1)),
                Err(Refusal::Unusable(code))
            );
        }
    }

    #[test]
    fn validity_names_the_license_problem_before_the_machine() {
        assert_eq!(validity(Status::Active, None), Code::Valid);
        assert_eq!(validity(Status::Active, Some(true)), Code::Valid);
        assert_eq!(validity(Status::Active, Some(false)), Code::NotActivated);
        assert_eq!(validity(Status::Suspended, Some(true)), Code::Suspended);
        assert_eq!(validity(Status::Expired, Some(false)), Code::Expired);
    }

    #[test]
    fn fingerprints_and_names_are_bounded_and_printable() {
        assert_eq!(Fingerprint::parse("  ab:cd  ").unwrap().as_str(), "ab:cd");
        assert!(Fingerprint::parse("").is_err());
        assert!(Fingerprint::parse("   ").is_err());
        assert!(Fingerprint::parse("a\nb").is_err());
        assert!(Fingerprint::parse(&"é".repeat(255)).is_ok());
        assert!(Fingerprint::parse(&"x".repeat(256)).is_err());
        assert_eq!(parse_name(None).unwrap(), None);
        assert_eq!(parse_name(Some("  ")).unwrap(), None);
        assert_eq!(
            parse_name(Some(" laptop ")).unwrap().as_deref(),
            Some("laptop")
        );
        assert!(parse_name(Some(&"x".repeat(256))).is_err());
        assert!(parse_name(Some("a\u{7}")).is_err());
    }
}
