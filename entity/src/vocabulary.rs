//! The words a license's life is written in, as stored. The one place that spells them: a stored
//! value that is not listed here fails to load (an error, never a guess).

use sea_orm::Iterable;
use sea_orm::entity::prelude::*;
use serde::Serialize;

/// A license's status. `Expired` is never stored: an active license past its end date reads as
/// expired, computed where it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[sea_orm(string_value = "active")]
    Active,
    #[sea_orm(string_value = "suspended")]
    Suspended,
    #[sea_orm(string_value = "canceled")]
    Canceled,
    #[sea_orm(string_value = "expired")]
    Expired,
    #[sea_orm(string_value = "superseded")]
    Superseded,
}

/// A Nexway call's operation, given by its path (`/licenses/{operation}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    #[sea_orm(string_value = "new")]
    New,
    #[sea_orm(string_value = "renew")]
    Renew,
    #[sea_orm(string_value = "upgrade")]
    Upgrade,
    #[sea_orm(string_value = "suspend")]
    Suspend,
    #[sea_orm(string_value = "reactivate")]
    Reactivate,
    #[sea_orm(string_value = "cancel")]
    Cancel,
}

/// What caused a license event: one of Nexway's operations, or a person's action by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    #[sea_orm(string_value = "new")]
    New,
    #[sea_orm(string_value = "renew")]
    Renew,
    #[sea_orm(string_value = "upgrade")]
    Upgrade,
    #[sea_orm(string_value = "suspend")]
    Suspend,
    #[sea_orm(string_value = "reactivate")]
    Reactivate,
    #[sea_orm(string_value = "cancel")]
    Cancel,
    /// Support took the license away by hand.
    #[sea_orm(string_value = "revoke")]
    Revoke,
    /// Support gave a revoked or suspended license back by hand.
    #[sea_orm(string_value = "reinstate")]
    Reinstate,
}

/// The stored word of a value, borrowed (the derive's `to_value` allocates).
macro_rules! words {
    ($type:ty { $($variant:ident => $word:literal),* $(,)? }) => {
        impl $type {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)*
                }
            }
        }
        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

words!(Status {
    Active => "active",
    Suspended => "suspended",
    Canceled => "canceled",
    Expired => "expired",
    Superseded => "superseded",
});

words!(Operation {
    New => "new",
    Renew => "renew",
    Upgrade => "upgrade",
    Suspend => "suspend",
    Reactivate => "reactivate",
    Cancel => "cancel",
});

words!(Cause {
    New => "new",
    Renew => "renew",
    Upgrade => "upgrade",
    Suspend => "suspend",
    Reactivate => "reactivate",
    Cancel => "cancel",
    Revoke => "revoke",
    Reinstate => "reinstate",
});

impl From<Operation> for Cause {
    fn from(operation: Operation) -> Self {
        match operation {
            Operation::New => Cause::New,
            Operation::Renew => Cause::Renew,
            Operation::Upgrade => Cause::Upgrade,
            Operation::Suspend => Cause::Suspend,
            Operation::Reactivate => Cause::Reactivate,
            Operation::Cancel => Cause::Cancel,
        }
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    fn from_str(word: &str) -> Result<Self, Self::Err> {
        Status::iter()
            .find(|status| status.as_str() == word)
            .ok_or_else(|| format!("unknown status {word:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_borrowed_words_are_the_stored_ones() {
        for status in Status::iter() {
            assert_eq!(status.as_str(), status.to_value());
            assert_eq!(status.as_str().parse::<Status>(), Ok(status));
        }
        for operation in Operation::iter() {
            assert_eq!(operation.as_str(), operation.to_value());
            assert_eq!(Cause::from(operation).as_str(), operation.as_str());
        }
        for cause in Cause::iter() {
            assert_eq!(cause.as_str(), cause.to_value());
        }
        assert!(Status::try_from_value(&"paused".to_owned()).is_err());
    }
}
