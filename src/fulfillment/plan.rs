//! The license life as a pure plan: given the call, the licenses it is about as they stand, the
//! product policies and today, what happens to each license, or why nothing may. No database,
//! no HTTP: `service` loads the state, asks for a plan, and `store` writes it.

use chrono::Datelike as _;
use chrono::NaiveDate;

use super::catalog::{Catalog, CodeMode, Policy, RenewMode};
use super::command::{Command, Operation, ProductRef, Trial};
use super::status::{Status, Step, effective, step};
use crate::error::{Error, Result};

/// A license as the planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub id: i64,
    pub code: String,
    /// As stored (never `expired`).
    pub status: Status,
    pub trial: bool,
    pub end_date: Option<NaiveDate>,
    pub product: ProductRef,
}

/// Codes to mint, all alike.
#[derive(Debug, Clone, PartialEq)]
pub struct Codes {
    pub product: ProductRef,
    pub status: Status,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub trial: bool,
}

/// What happens to one license the call is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Already in effect: the license is answered as it stands and nothing is written.
    InEffect { id: i64 },
    /// The same code takes `to` and the end date, product and trial flag given.
    Keep {
        id: i64,
        from: Status,
        to: Status,
        end_date: Option<NaiveDate>,
        product: ProductRef,
        trial: bool,
        /// What changed besides the status, for the audit trail.
        reason: Option<String>,
    },
    /// A new code (the child) replaces the license, which becomes superseded.
    Reissue { id: i64, from: Status, child: Codes },
}

impl Change {
    pub fn id(&self) -> i64 {
        match self {
            Change::InEffect { id } | Change::Keep { id, .. } | Change::Reissue { id, .. } => *id,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// `new`: mint `count` codes.
    Issue { count: u32, codes: Codes },
    /// A lifecycle call, or a trial's conversion: one change per license, in order.
    Change(Vec<Change>),
}

/// The plan of `command` over `targets` (the licenses the call is about, current codes only).
/// `pending` is the status a cancel or suspend that arrived before this `new` left for its codes.
/// For a `new` with `trialContext: CONVERSION`, `targets` are the life's trial codes: found, they
/// are converted; none, the `new` issues ordinary codes.
pub fn plan(
    command: &Command,
    targets: &[Held],
    pending: Option<Status>,
    catalog: &Catalog,
    today: NaiveDate,
) -> Result<Plan> {
    if command.operation == Operation::New {
        // A conversion turns the trial's live codes into the paid ones when they are as many as
        // the paid quantity; otherwise (none left, fewer or more seats bought) it issues the
        // paid codes and the trial codes run out at their trial end.
        let live: Vec<&Held> = targets
            .iter()
            .filter(|t| t.trial && matches!(t.status, Status::Active | Status::Suspended))
            .collect();
        if command.trial != Some(Trial::Conversion) || live.len() != command.quantity as usize {
            return issue(command, pending, catalog, today);
        }
        return live
            .into_iter()
            .map(|target| {
                let from = effective(target.status, target.end_date, today);
                convert(command, target, from, pending, catalog, today)
            })
            .collect::<Result<_>>()
            .map(Plan::Change);
    }
    // Trial codes are paid for only as far as a conversion says: a renewal converting a trial
    // converts as many live trial codes as seats paid, and once the life has paid codes an
    // ordinary renewal or upgrade leaves its trial codes to run out.
    let converted: Vec<i64> = targets
        .iter()
        .filter(|t| t.trial && matches!(t.status, Status::Active | Status::Suspended))
        .take(command.quantity as usize)
        .map(|t| t.id)
        .collect();
    let paid = targets
        .iter()
        .any(|t| !t.trial && t.status != Status::Canceled);
    let paid_for = |target: &Held| match (command.trial, target.trial) {
        (_, false) => true,
        (Some(Trial::Conversion), true) => converted.contains(&target.id),
        (_, true) => !(paid && matches!(command.operation, Operation::Renew | Operation::Upgrade)),
    };
    // A call that names no code acts on its life's codes that are not canceled (one seat
    // refunded or revoked must not block the subscription's other seats) and are paid for;
    // with none such, on all of them, and is refused as before.
    let mut in_play: Vec<&Held> = targets
        .iter()
        .filter(|t| {
            !command.activation_codes.is_empty() || (t.status != Status::Canceled && paid_for(t))
        })
        .collect();
    if in_play.is_empty() {
        in_play = targets.iter().collect();
    }
    in_play
        .into_iter()
        .map(|target| change(command, target, catalog, today))
        .collect::<Result<_>>()
        .map(Plan::Change)
}

fn issue(
    command: &Command,
    pending: Option<Status>,
    catalog: &Catalog,
    today: NaiveDate,
) -> Result<Plan> {
    let policy = catalog.policy(&command.product.publisher_product_id)?;
    let start_date = command.start_date.unwrap_or(today);
    let trial = command.trial == Some(Trial::Creation);
    let term = if trial {
        policy.trial_term
    } else {
        policy.term
    };
    let codes = Codes {
        product: named(&command.product, policy),
        status: pending.unwrap_or(Status::Active),
        start_date,
        end_date: command.end_date.or_else(|| term.end_after(start_date)),
        trial,
    };
    check(&codes, policy, today)?;
    Ok(Plan::Issue {
        count: command.quantity,
        codes,
    })
}

fn change(command: &Command, target: &Held, catalog: &Catalog, today: NaiveDate) -> Result<Change> {
    let from = effective(target.status, target.end_date, today);
    let operation = command.operation;
    if command.trial == Some(Trial::Conversion)
        && target.trial
        && matches!(operation, Operation::New | Operation::Renew)
    {
        return convert(command, target, from, None, catalog, today);
    }
    let to = match step(operation, from)? {
        Step::InEffect => return Ok(Change::InEffect { id: target.id }),
        Step::To(to) => to,
    };
    let start_date = command.start_date.unwrap_or(today);
    let change = Edit {
        target,
        from,
        to,
        start_date,
        today,
    };
    match operation {
        Operation::Renew => {
            let policy = catalog.policy(&target.product.publisher_product_id)?;
            // The call's end date when it gives one; else a term after the current end, or after
            // today when the license has lapsed. A perpetual license stays perpetual.
            let end_date = match (command.end_date, target.end_date) {
                (Some(end), _) => Some(end),
                (None, Some(end)) => policy.term.end_after(end.max(today)).or(Some(end)),
                (None, None) => None,
            };
            within_calendar(end_date)?;
            match policy.renew {
                RenewMode::Extend => Ok(change.keep(end_date, &target.product, target.trial)),
                RenewMode::Reissue => {
                    change.reissue(&target.product, policy, end_date, target.trial)
                }
            }
        }
        Operation::Upgrade => {
            let policy = catalog.policy(&command.product.publisher_product_id)?;
            let product = named(&command.product, policy);
            let end_date = command.end_date.or(target.end_date);
            match policy.upgrade {
                CodeMode::Keep => Ok(change.keep(end_date, &product, target.trial)),
                CodeMode::Reissue => change.reissue(&product, policy, end_date, target.trial),
            }
        }
        Operation::Reactivate => {
            let policy = catalog.policy(&target.product.publisher_product_id)?;
            let end_date = command.end_date.or(target.end_date);
            match policy.reactivate {
                CodeMode::Keep => Ok(change.keep(end_date, &target.product, target.trial)),
                CodeMode::Reissue => {
                    change.reissue(&target.product, policy, end_date, target.trial)
                }
            }
        }
        Operation::Suspend | Operation::Cancel => {
            Ok(change.keep(target.end_date, &target.product, target.trial))
        }
        Operation::New => Err(Error::Internal),
    }
}

/// A trial becomes an ordinary license: the product's term from today (or the call's end date),
/// the same code unless the product's renewal policy reissues. A suspension stays.
/// A trial code made ordinary; `pending` is what a cancel or suspend of the paid order that
/// arrived before it left (a refunded conversion must not leave a usable code).
fn convert(
    command: &Command,
    target: &Held,
    from: Status,
    pending: Option<Status>,
    catalog: &Catalog,
    today: NaiveDate,
) -> Result<Change> {
    let to = match (from, pending) {
        (Status::Canceled | Status::Superseded, _) => {
            return Err(Error::InvalidTransition(format!(
                "cannot convert a trial license that is {from}"
            )));
        }
        (_, Some(pending)) => pending,
        (Status::Active | Status::Expired, None) => Status::Active,
        (Status::Suspended, None) => Status::Suspended,
    };
    let policy = catalog.policy(&target.product.publisher_product_id)?;
    let end_date = command.end_date.or_else(|| policy.term.end_after(today));
    let change = Edit {
        target,
        from,
        to,
        start_date: command.start_date.unwrap_or(today),
        today,
    };
    match policy.renew {
        RenewMode::Extend => Ok(change.keep(end_date, &target.product, false)),
        RenewMode::Reissue => change.reissue(&target.product, policy, end_date, false),
    }
}

/// One target's move to `to`.
struct Edit<'a> {
    target: &'a Held,
    from: Status,
    to: Status,
    /// Of a reissued code.
    start_date: NaiveDate,
    today: NaiveDate,
}

impl Edit<'_> {
    fn keep(&self, end_date: Option<NaiveDate>, product: &ProductRef, trial: bool) -> Change {
        let target = self.target;
        let mut reasons = Vec::new();
        if end_date != target.end_date {
            reasons.push(format!(
                "end date {} -> {}",
                show(target.end_date),
                show(end_date)
            ));
        }
        if product.publisher_product_id != target.product.publisher_product_id {
            reasons.push(format!(
                "product {} -> {}",
                target.product.publisher_product_id, product.publisher_product_id
            ));
        }
        if target.trial && !trial {
            reasons.push("trial converted".into());
        }
        Change::Keep {
            id: target.id,
            from: self.from,
            to: self.to,
            end_date,
            product: product.clone(),
            trial,
            reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
        }
    }

    fn reissue(
        &self,
        product: &ProductRef,
        policy: &Policy,
        end_date: Option<NaiveDate>,
        trial: bool,
    ) -> Result<Change> {
        let child = Codes {
            product: product.clone(),
            status: self.to,
            start_date: self.start_date,
            end_date,
            trial,
        };
        check(&child, policy, self.today)?;
        Ok(Change::Reissue {
            id: self.target.id,
            from: self.from,
            child,
        })
    }
}

/// Codes are never minted already expired, nor with an end date their generator cannot carry.
fn check(codes: &Codes, policy: &Policy, today: NaiveDate) -> Result<()> {
    within_calendar(codes.end_date)?;
    if let Some(end) = codes.end_date {
        if end < today {
            return Err(Error::InvalidRequest(format!(
                "the licenses would end on {end}, before today ({today}): codes are never issued already expired"
            )));
        }
        if end < codes.start_date {
            return Err(Error::InvalidRequest(format!(
                "the end date {end} is before the start date {}",
                codes.start_date
            )));
        }
    }
    policy
        .generator
        .check_end_date(codes.end_date)
        .map_err(|reason| {
            Error::InvalidRequest(format!(
                "product {}: {reason}",
                codes.product.publisher_product_id
            ))
        })
}

/// End dates are four-digit years (PROTOCOL.md 2b): a term that would carry one past
/// 9999-12-31 is refused, never shown as `+10000-…`.
fn within_calendar(end: Option<NaiveDate>) -> Result<()> {
    match end {
        Some(end) if end.year() > 9999 => Err(Error::InvalidRequest(format!(
            "the licenses would end in the year {}, after 9999-12-31",
            end.year()
        ))),
        _ => Ok(()),
    }
}

/// The product as codes are written under it: the call's name, else the configured one.
fn named(product: &ProductRef, policy: &Policy) -> ProductRef {
    ProductRef {
        name: product.name.clone().or_else(|| policy.name.clone()),
        ..product.clone()
    }
}

fn show(date: Option<NaiveDate>) -> String {
    date.map_or_else(|| "perpetual".into(), |date| date.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::fulfillment::Buyer;
    use crate::fulfillment::UnknownProducts;
    use crate::keygen::RandomGenerator;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    const TODAY: &str = "2026-11-23";

    /// KEEP: renew extends, upgrade and reactivate keep. MOVE: renew, upgrade and reactivate
    /// reissue. Both yearly, with a 7-day trial.
    fn catalog() -> Catalog {
        let product = |renew, modes| Policy {
            name: None,
            max_quantity: 100,
            term: Term::Years(1),
            trial_term: Term::Days(7),
            renew,
            upgrade: modes,
            reactivate: modes,
            generator: std::sync::Arc::new(RandomGenerator::new(Default::default())),
            max_activations: None,
            item_id: None,
            image: None,
            renewal_price: None,
            tax_class: None,
        };
        Catalog::new(
            UnknownProducts::Accept,
            product(RenewMode::Extend, CodeMode::Keep),
            HashMap::from([
                ("KEEP".into(), product(RenewMode::Extend, CodeMode::Keep)),
                (
                    "MOVE".into(),
                    product(RenewMode::Reissue, CodeMode::Reissue),
                ),
            ]),
        )
    }

    use super::super::term::Term;

    fn product(id: &str) -> ProductRef {
        ProductRef {
            publisher_product_id: id.into(),
            nexway_product_id: None,
            name: None,
        }
    }

    fn command(operation: Operation, product_id: &str) -> Command {
        Command {
            operation,
            nexway_fulfillment_id: "F".into(),
            order_id: None,
            initial_nexway_fulfillment_id: None,
            publisher_fulfillment_id: None,
            subscription_id: None,
            product: product(product_id),
            quantity: 2,
            start_date: None,
            end_date: None,
            activation_codes: Vec::new(),
            buyer: Buyer::default(),
            external_context: None,
            trial: None,
            more_publisher_fulfillment_ids: Vec::new(),
        }
    }

    fn held(id: i64, status: Status, end: Option<&str>, product_id: &str) -> Held {
        Held {
            id,
            code: format!("CODE-{id}"),
            status,
            trial: false,
            end_date: end.map(day),
            product: product(product_id),
        }
    }

    fn one(command: &Command, target: Held) -> Result<Change> {
        match plan(command, &[target], None, &catalog(), day(TODAY))? {
            Plan::Change(mut changes) => Ok(changes.remove(0)),
            Plan::Issue { .. } => panic!("a lifecycle call issued"),
        }
    }

    #[test]
    fn new_issues_for_the_term_the_trial_term_or_the_pending_status() {
        let today = day(TODAY);
        let new = command(Operation::New, "KEEP");
        let Plan::Issue { count, codes } = plan(&new, &[], None, &catalog(), today).unwrap() else {
            panic!("no issue")
        };
        assert_eq!(count, 2);
        assert_eq!(codes.status, Status::Active);
        assert_eq!(codes.end_date, Some(day("2027-11-23")));
        assert!(!codes.trial);

        let mut trial = new.clone();
        trial.trial = Some(Trial::Creation);
        let Plan::Issue { codes, .. } = plan(&trial, &[], None, &catalog(), today).unwrap() else {
            panic!("no issue")
        };
        assert!(codes.trial);
        assert_eq!(codes.end_date, Some(day("2026-11-30")));

        let canceled = plan(&new, &[], Some(Status::Canceled), &catalog(), today).unwrap();
        assert!(matches!(canceled, Plan::Issue { codes, .. } if codes.status == Status::Canceled));

        let mut past = new.clone();
        past.start_date = Some(day("2020-01-01"));
        assert!(matches!(
            plan(&past, &[], None, &catalog(), today),
            Err(Error::InvalidRequest(_))
        ));
    }

    #[test]
    fn each_operation_keeps_or_reissues_by_policy() {
        use Operation::*;
        use Status::*;
        let cases: &[(Operation, &str, Status, Option<&str>, &str)] = &[
            // operation, product, stored status, end date, expected
            (
                Renew,
                "KEEP",
                Active,
                Some("2027-01-10"),
                "keep active 2028-01-10",
            ),
            (
                Renew,
                "KEEP",
                Active,
                Some("2020-01-10"),
                "keep active 2027-11-23",
            ),
            (Renew, "KEEP", Active, None, "keep active perpetual"),
            (
                Renew,
                "KEEP",
                Suspended,
                Some("2027-01-10"),
                "keep suspended 2028-01-10",
            ),
            (
                Renew,
                "MOVE",
                Active,
                Some("2027-01-10"),
                "reissue active 2028-01-10",
            ),
            (
                Upgrade,
                "KEEP",
                Active,
                Some("2027-01-10"),
                "keep active 2027-01-10",
            ),
            (
                Reactivate,
                "KEEP",
                Suspended,
                Some("2027-01-10"),
                "keep active 2027-01-10",
            ),
            (
                Reactivate,
                "MOVE",
                Suspended,
                Some("2027-01-10"),
                "reissue active 2027-01-10",
            ),
            (Reactivate, "KEEP", Active, None, "in effect"),
            (Suspend, "KEEP", Active, None, "keep suspended perpetual"),
            (Suspend, "KEEP", Suspended, None, "in effect"),
            (Cancel, "MOVE", Suspended, None, "keep canceled perpetual"),
            (Cancel, "KEEP", Canceled, None, "in effect"),
            (Reactivate, "KEEP", Canceled, None, "refused"),
            (Renew, "KEEP", Canceled, None, "refused"),
            (Suspend, "KEEP", Superseded, None, "refused"),
        ];
        for &(operation, product_id, status, end, expected) in cases {
            let call = command(operation, product_id);
            let got = match one(&call, held(7, status, end, product_id)) {
                Ok(Change::InEffect { .. }) => "in effect".to_string(),
                Ok(Change::Keep { to, end_date, .. }) => format!("keep {to} {}", show(end_date)),
                Ok(Change::Reissue { child, .. }) => {
                    format!("reissue {} {}", child.status, show(child.end_date))
                }
                Err(Error::InvalidTransition(_)) => "refused".into(),
                Err(error) => format!("error {error}"),
            };
            assert_eq!(
                got, expected,
                "{operation} of a {status} {product_id} license"
            );
        }
    }

    #[test]
    fn a_conversion_makes_a_trial_ordinary_from_today() {
        let mut call = command(Operation::New, "KEEP");
        call.trial = Some(Trial::Conversion);
        call.quantity = 1;
        let mut trial = held(3, Status::Active, Some("2026-11-20"), "KEEP");
        trial.trial = true;
        let change = one(&call, trial).unwrap();
        assert!(
            matches!(&change, Change::Keep { to: Status::Active, trial: false, end_date, reason: Some(reason), .. }
                if *end_date == Some(day("2027-11-23")) && reason.contains("trial converted")),
            "{change:?}"
        );
    }

    #[test]
    fn a_conversion_gives_exactly_the_paid_seats_in_the_state_its_order_is_in() {
        let today = day(TODAY);
        let trial = |id, status| Held {
            trial: true,
            ..held(id, status, Some("2026-12-01"), "KEEP")
        };
        let mut call = command(Operation::New, "KEEP");
        call.trial = Some(Trial::Conversion);
        let issued =
            |call: &Command, targets: &[Held]| match plan(call, targets, None, &catalog(), today) {
                Ok(Plan::Issue { count, codes }) => Some((count, codes.trial)),
                _ => None,
            };
        // Fewer, more or no live trial seats than paid: the paid codes are issued, ordinary.
        call.quantity = 3;
        assert_eq!(issued(&call, &[trial(1, Status::Active)]), Some((3, false)));
        call.quantity = 1;
        let two = [trial(1, Status::Active), trial(2, Status::Active)];
        assert_eq!(issued(&call, &two), Some((1, false)));
        let revoked = [trial(1, Status::Canceled)];
        assert_eq!(issued(&call, &revoked), Some((1, false)));
        // As many: converted, and a refund that came first cancels them.
        let Ok(Plan::Change(changes)) = plan(
            &call,
            &[trial(1, Status::Active)],
            Some(Status::Canceled),
            &catalog(),
            today,
        ) else {
            panic!("not converted")
        };
        assert!(
            matches!(
                &changes[..],
                [Change::Keep {
                    to: Status::Canceled,
                    trial: false,
                    ..
                }]
            ),
            "{changes:?}"
        );
    }

    fn operations() -> impl Strategy<Value = Operation> {
        prop_oneof![
            Just(Operation::Renew),
            Just(Operation::Upgrade),
            Just(Operation::Suspend),
            Just(Operation::Reactivate),
            Just(Operation::Cancel),
        ]
    }

    fn statuses() -> impl Strategy<Value = Status> {
        prop_oneof![
            Just(Status::Active),
            Just(Status::Suspended),
            Just(Status::Canceled),
            Just(Status::Superseded),
        ]
    }

    fn licenses() -> impl Strategy<Value = Vec<Held>> {
        let one = (
            statuses(),
            proptest::option::of(-400i64..400),
            prop_oneof![Just("KEEP"), Just("MOVE")],
            any::<bool>(),
        );
        proptest::collection::vec(one, 0..5).prop_map(|licenses| {
            licenses
                .into_iter()
                .enumerate()
                .map(|(i, (status, end, product_id, trial))| {
                    let end =
                        end.map(|days| (day(TODAY) + chrono::TimeDelta::days(days)).to_string());
                    Held {
                        trial,
                        ..held(i as i64 + 1, status, end.as_deref(), product_id)
                    }
                })
                .collect()
        })
    }

    /// The state a plan leaves a license in, as `store` would write it.
    fn after(license: &Held, change: &Change) -> Held {
        match change {
            Change::InEffect { .. } => license.clone(),
            Change::Keep {
                to,
                end_date,
                product,
                trial,
                ..
            } => Held {
                status: *to,
                end_date: *end_date,
                product: product.clone(),
                trial: *trial,
                ..license.clone()
            },
            Change::Reissue { .. } => Held {
                status: Status::Superseded,
                ..license.clone()
            },
        }
    }

    proptest! {
        #[test]
        fn plans_keep_the_invariants(
            operation in operations(),
            product_id in prop_oneof![Just("KEEP"), Just("MOVE")],
            targets in licenses(),
            conversion in any::<bool>(),
        ) {
            let today = day(TODAY);
            let mut call = command(operation, product_id);
            call.trial = conversion.then_some(Trial::Conversion);
            let Ok(Plan::Change(changes)) = plan(&call, &targets, None, &catalog(), today) else {
                // Refused: nothing changes. (A lifecycle call never issues.)
                let issued = matches!(plan(&call, &targets, None, &catalog(), today), Ok(Plan::Issue { .. }));
                prop_assert!(!issued);
                return Ok(());
            };
            // At most one change per target, about that target only: no plan reaches outside the
            // call; a target left alone is a canceled seat or an unpaid trial seat of a call that
            // names no code.
            let planned: Vec<i64> = changes.iter().map(Change::id).collect();
            prop_assert!(planned.windows(2).all(|pair| pair[0] != pair[1]));
            for target in targets.iter().filter(|t| !planned.contains(&t.id)) {
                prop_assert!(target.status == Status::Canceled || target.trial, "{:?}", target);
            }
            // A conversion never makes more ordinary codes than the seats paid.
            if conversion {
                let converted = changes
                    .iter()
                    .filter(|c| matches!(c, Change::Keep { trial: false, .. } | Change::Reissue { child: Codes { trial: false, .. }, .. }))
                    .filter(|c| targets.iter().any(|t| t.id == c.id() && t.trial))
                    .count();
                prop_assert!(converted <= call.quantity as usize);
            }
            for change in &changes {
                let target = targets.iter().find(|t| t.id == change.id());
                prop_assert!(target.is_some(), "{:?} is no target", change);
                let target = target.unwrap();
                // A superseded code is never a target; a canceled code never becomes usable.
                prop_assert_ne!(target.status, Status::Superseded);
                if target.status == Status::Canceled {
                    prop_assert_eq!(change, &Change::InEffect { id: target.id });
                }
                // No code is minted already expired.
                if let Change::Reissue { child, .. } = change {
                    prop_assert!(child.end_date.is_none_or(|end| end >= today));
                    prop_assert_ne!(child.status, Status::Canceled);
                }
            }
            // Applying the same call again to what it left changes nothing more (suspend, cancel,
            // reactivate by keeping): a replay is in effect.
            let settled = matches!(operation, Operation::Suspend | Operation::Cancel)
                || (operation == Operation::Reactivate && product_id == "KEEP" && !conversion);
            if settled {
                let left: Vec<Held> = changes
                    .iter()
                    .map(|c| after(targets.iter().find(|t| t.id == c.id()).unwrap(), c))
                    .collect();
                let left: Vec<Held> = left
                    .into_iter()
                    .filter(|license| license.product.publisher_product_id == "KEEP" || operation != Operation::Reactivate)
                    .collect();
                if let Ok(Plan::Change(again)) = plan(&call, &left, None, &catalog(), today) {
                    for change in again {
                        let in_effect = matches!(change, Change::InEffect { .. });
                        prop_assert!(in_effect, "{:?}", change);
                    }
                }
            }
        }
    }
}
