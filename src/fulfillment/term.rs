//! How long a license runs when the call gives no end date: `perpetual`, or a count of days,
//! weeks, months or years (`30d`, `2w`, `1m`, `1y`).

use chrono::{Days, Months, NaiveDate};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum Term {
    #[default]
    Perpetual,
    Days(u32),
    Weeks(u32),
    Months(u32),
    Years(u32),
}

impl Term {
    /// The end of a term starting on `start`; None for a perpetual license.
    pub fn end_after(self, start: NaiveDate) -> Option<NaiveDate> {
        match self {
            Term::Perpetual => None,
            Term::Days(n) => start.checked_add_days(Days::new(n.into())),
            Term::Weeks(n) => start.checked_add_days(Days::new(u64::from(n) * 7)),
            Term::Months(n) => start.checked_add_months(Months::new(n)),
            Term::Years(n) => start.checked_add_months(Months::new(n.saturating_mul(12))),
        }
    }

    /// The seed's `renewalTerm` form: the unit letter (`d`, `w`, `m`, `y`) and the count.
    pub fn letter_and_count(self) -> Option<(&'static str, u32)> {
        match self {
            Term::Perpetual => None,
            Term::Days(n) => Some(("d", n)),
            Term::Weeks(n) => Some(("w", n)),
            Term::Months(n) => Some(("m", n)),
            Term::Years(n) => Some(("y", n)),
        }
    }
}

impl std::str::FromStr for Term {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("perpetual") {
            return Ok(Term::Perpetual);
        }
        let invalid =
            || format!("invalid term {text:?}: expected perpetual or e.g. 30d, 2w, 1m, 1y");
        let unit = text.chars().last().ok_or_else(invalid)?;
        let count: u32 = text[..text.len() - unit.len_utf8()]
            .parse()
            .ok()
            .filter(|count| *count > 0)
            .ok_or_else(invalid)?;
        match unit.to_ascii_lowercase() {
            'd' => Ok(Term::Days(count)),
            'w' => Ok(Term::Weeks(count)),
            'm' => Ok(Term::Months(count)),
            'y' => Ok(Term::Years(count)),
            _ => Err(invalid()),
        }
    }
}

impl TryFrom<String> for Term {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl std::fmt::Display for Term {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.letter_and_count() {
            None => f.write_str("perpetual"),
            Some((letter, count)) => write!(f, "{count}{letter}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_parse_and_add_calendar_units() {
        let start = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
        let end = |term: &str| term.parse::<Term>().unwrap().end_after(start);
        assert_eq!(end("perpetual"), None);
        assert_eq!(end("30d"), NaiveDate::from_ymd_opt(2026, 3, 2));
        assert_eq!(end("2w"), NaiveDate::from_ymd_opt(2026, 2, 14));
        assert_eq!(
            end("1m"),
            NaiveDate::from_ymd_opt(2026, 2, 28),
            "clamped to month end"
        );
        assert_eq!(end("1Y"), NaiveDate::from_ymd_opt(2027, 1, 31));
        for bad in ["", "y", "0d", "-1y", "1x", "one year"] {
            assert!(bad.parse::<Term>().is_err(), "{bad}");
        }
        assert_eq!("12m".parse::<Term>().unwrap().to_string(), "12m");
    }
}
