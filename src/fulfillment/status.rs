//! The license state machine: the one place that says which operation may move a license from
//! which status to which.
//!
//! ```text
//!             suspend               cancel
//!   active ─────────────▶ suspended ──────▶ canceled
//!     ▲  ◀───────────────    │                 ▲
//!     │      reactivate      └─────────────────┤
//!     │                                        │
//!     └──── renew (past end: reads expired) ───┘ cancel
//!   any of active/suspended ──reissue──▶ superseded (its codes replaced by children)
//! ```
//! `expired` is never stored: an active license past its end date reads as expired everywhere,
//! without a background job.

use chrono::NaiveDate;

use super::command::Operation;
use crate::error::Error;
use entity::vocabulary::Cause;

pub use entity::vocabulary::Status;

/// The status as a reader sees it on `today`: past its end date an active license is expired.
/// A suspended one stays suspended: the hold is the fact that decides what happens next (only
/// `reactivate` lifts it), whatever the dates.
pub fn effective(stored: Status, end_date: Option<NaiveDate>, today: NaiveDate) -> Status {
    match stored {
        Status::Active if end_date.is_some_and(|end| end < today) => Status::Expired,
        status => status,
    }
}

/// What an operation does to a license in a given (effective) status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The license moves to this stored status (or keeps it and changes dates or product).
    To(Status),
    /// Already in effect: succeed and change nothing.
    InEffect,
}

/// The transition table. `renew` and `upgrade` keep a suspended license suspended: a suspension is
/// an explicit hold that only `reactivate` lifts.
pub fn step(operation: Operation, from: Status) -> Result<Step, Error> {
    use Operation::*;
    use Status::*;
    let step = match (operation, from) {
        (Renew, Active | Expired) => Step::To(Active),
        (Renew, Suspended) => Step::To(Suspended),
        (Upgrade, Active) => Step::To(Active),
        (Upgrade, Suspended) => Step::To(Suspended),
        (Suspend, Active | Expired) => Step::To(Suspended),
        (Suspend, Suspended) => Step::InEffect,
        (Reactivate, Suspended) => Step::To(Active),
        // Nothing holds an expired license (a held one reads suspended): only renew revives it.
        (Reactivate, Active | Expired) => Step::InEffect,
        (Cancel, Active | Suspended | Expired) => Step::To(Canceled),
        (Cancel, Canceled) => Step::InEffect,
        (operation, from) => {
            return Err(Error::InvalidTransition(format!(
                "cannot {operation} a license that is {from}"
            )));
        }
    };
    Ok(step)
}

/// What support may do by hand, outside Nexway's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManualAction {
    /// Take a license away (fraud, chargeback Nexway did not report…): it becomes `canceled`.
    Revoke,
    /// Give back a revoked or suspended license: it becomes `active`.
    Reinstate,
}

impl ManualAction {
    /// The cause its event records.
    pub fn cause(self) -> Cause {
        match self {
            ManualAction::Revoke => Cause::Revoke,
            ManualAction::Reinstate => Cause::Reinstate,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.cause().as_str()
    }
}

/// The manual transitions. Unlike Nexway's `reactivate`, a reinstatement may undo a cancel: it is
/// a person's decision, written to the events with its reason. A superseded code stays replaced.
pub fn manual_step(action: ManualAction, from: Status) -> Result<Step, Error> {
    use ManualAction::*;
    use Status::*;
    let step = match (action, from) {
        (Revoke, Active | Suspended | Expired) => Step::To(Canceled),
        (Revoke, Canceled) => Step::InEffect,
        (Reinstate, Canceled | Suspended | Expired) => Step::To(Active),
        (Reinstate, Active) => Step::InEffect,
        (action, from) => {
            return Err(Error::InvalidTransition(format!(
                "cannot {} a license that is {from}",
                action.as_str()
            )));
        }
    };
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_computed_from_the_end_date() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let yesterday = today.pred_opt();
        assert_eq!(effective(Status::Active, yesterday, today), Status::Expired);
        assert_eq!(
            effective(Status::Suspended, yesterday, today),
            Status::Suspended
        );
        assert_eq!(
            effective(Status::Active, Some(today), today),
            Status::Active
        );
        assert_eq!(effective(Status::Active, None, today), Status::Active);
        assert_eq!(
            effective(Status::Canceled, yesterday, today),
            Status::Canceled
        );
    }

    #[test]
    fn nonsense_is_refused_and_repeats_are_in_effect() {
        use Operation::*;
        use Status::*;
        for (operation, from) in [
            (Reactivate, Canceled),
            (Renew, Canceled),
            (Upgrade, Canceled),
            (Suspend, Canceled),
            (Upgrade, Expired),
            (Reactivate, Superseded),
            (Cancel, Superseded),
            (New, Active),
        ] {
            assert!(
                matches!(step(operation, from), Err(Error::InvalidTransition(_))),
                "{operation} from {from}"
            );
        }
        assert_eq!(step(Cancel, Canceled).unwrap(), Step::InEffect);
        assert_eq!(step(Suspend, Suspended).unwrap(), Step::InEffect);
        assert_eq!(step(Reactivate, Active).unwrap(), Step::InEffect);
        assert_eq!(step(Renew, Expired).unwrap(), Step::To(Active));
        assert_eq!(step(Reactivate, Suspended).unwrap(), Step::To(Active));
    }

    #[test]
    fn support_may_undo_a_cancel_but_not_a_reissue() {
        use ManualAction::*;
        assert_eq!(
            manual_step(Reinstate, Status::Canceled).unwrap(),
            Step::To(Status::Active)
        );
        assert_eq!(
            manual_step(Revoke, Status::Canceled).unwrap(),
            Step::InEffect
        );
        assert_eq!(
            manual_step(Revoke, Status::Active).unwrap(),
            Step::To(Status::Canceled)
        );
        assert!(manual_step(Reinstate, Status::Superseded).is_err());
        assert!(manual_step(Revoke, Status::Superseded).is_err());
    }
}
