//! The support side's parameters, checked before anything reaches the database: identifiers and
//! texts hold no control character (a NUL is an error on PostgreSQL and a truncation elsewhere),
//! lengths and numbers are bounded. The same bounds are written into the OpenAPI schema
//! (`validator(…)` attributes, which poem checks first); these functions serve the paths outside
//! typed operations (the lkey page) and the bodies the schema cannot describe (CSV).

use poem_openapi::Enum;

use super::admin::AdminFailure;
use crate::fulfillment::Status;

/// What the schema's `pattern` says: no C0/C1 control character (`char::is_control`).
pub const NO_CONTROL_PATTERN: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";
/// Longest license key, identifier or e-mail accepted as a parameter.
pub const MAX_PARAM: usize = 256;
/// Highest page number of a search (beyond it, a search is a scan, not support's question).
pub const MAX_PAGE: u64 = 100_000;

/// A parameter's text: bounded and free of control characters, else a 400 naming it.
pub fn check_text(name: &str, value: &str, max: usize) -> Result<(), AdminFailure> {
    if value.chars().any(char::is_control) {
        return Err(AdminFailure::InvalidRequest(format!(
            "{name} contains control characters"
        )));
    }
    if value.chars().count() > max {
        return Err(AdminFailure::InvalidRequest(format!(
            "{name} is longer than {max} characters"
        )));
    }
    Ok(())
}

/// A license key in a path (`/nexus/lkey/{key}`): 1 to 256 characters, no control character.
/// Its own type, not `String` with a `pattern` validator: poem-openapi compiles that pattern on
/// every request (a tenth of a lookup's CPU); this checks the characters and states the same
/// schema.
#[derive(Debug, Clone)]
pub struct KeyParam(pub String);

impl std::ops::Deref for KeyParam {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl poem_openapi::types::Type for KeyParam {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> std::borrow::Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        let mut schema = poem_openapi::registry::MetaSchema::new("string");
        schema.min_length = Some(1);
        schema.max_length = Some(MAX_PARAM);
        schema.pattern = Some(NO_CONTROL_PATTERN.to_owned());
        poem_openapi::registry::MetaSchemaRef::Inline(Box::new(schema))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl poem_openapi::types::ParseFromParameter for KeyParam {
    fn parse_from_parameter(value: &str) -> poem_openapi::types::ParseResult<Self> {
        // Checked by [`KeyCheck`], whose refusal names the parameter.
        Ok(KeyParam(value.to_owned()))
    }
}

/// What `KeyParam`'s schema says, checked without a regular expression.
#[derive(Debug, Clone, Copy)]
pub struct KeyCheck;

impl std::fmt::Display for KeyCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "minLength(1), maxLength({MAX_PARAM}), pattern(\"{NO_CONTROL_PATTERN}\")"
        )
    }
}

impl poem_openapi::validation::Validator<KeyParam> for KeyCheck {
    fn check(&self, value: &KeyParam) -> bool {
        (1..=MAX_PARAM).contains(&value.0.chars().count()) && !value.0.chars().any(char::is_control)
    }
}

/// The `status` search criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum StatusFilter {
    Active,
    Suspended,
    Canceled,
    Expired,
    Superseded,
}

/// The `state` criterion of the DMP outbox list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum EventStateFilter {
    Pending,
    Delivered,
    Failed,
}

impl From<EventStateFilter> for crate::store::outbox::State {
    fn from(filter: EventStateFilter) -> Self {
        use crate::store::outbox::State;
        match filter {
            EventStateFilter::Pending => State::Pending,
            EventStateFilter::Delivered => State::Delivered,
            EventStateFilter::Failed => State::Failed,
        }
    }
}

impl From<StatusFilter> for Status {
    fn from(filter: StatusFilter) -> Self {
        match filter {
            StatusFilter::Active => Status::Active,
            StatusFilter::Suspended => Status::Suspended,
            StatusFilter::Canceled => Status::Canceled,
            StatusFilter::Expired => Status::Expired,
            StatusFilter::Superseded => Status::Superseded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_lengths_are_refused_with_the_name() {
        assert!(check_text("key", "K7QXM-2HJ9P", MAX_PARAM).is_ok());
        assert!(check_text("key", "Zoë \u{202e} ok", MAX_PARAM).is_ok());
        for bad in ["a\0b", "tab\there", "new\nline", "c1\u{85}"] {
            let Err(AdminFailure::InvalidRequest(message)) = check_text("email", bad, MAX_PARAM)
            else {
                panic!("{bad:?} accepted");
            };
            assert_eq!(message, "email contains control characters");
        }
        assert!(check_text("key", &"x".repeat(MAX_PARAM + 1), MAX_PARAM).is_err());
    }

    #[test]
    fn the_schema_pattern_says_the_same_as_the_check() {
        // The pattern's class is exactly char::is_control: C0, DEL and C1.
        for c in (0u32..0x100).filter_map(char::from_u32) {
            let in_class = matches!(c as u32, 0..=0x1F | 0x7F..=0x9F);
            assert_eq!(in_class, c.is_control(), "{c:?}");
        }
        assert_eq!(NO_CONTROL_PATTERN, r"^[^\x00-\x1F\x7F-\x9F]*$");
    }

    #[test]
    fn key_parameters_are_checked_as_their_schema_says() {
        use poem_openapi::validation::Validator;
        let key = |value: &str| KeyCheck.check(&KeyParam(value.to_owned()));
        assert!(key("K7QXM-2HJ9P"));
        assert!(key(&"é".repeat(MAX_PARAM)));
        for bad in ["", "K\0", "tab\t", "c1\u{85}", &"x".repeat(MAX_PARAM + 1)] {
            assert!(!key(bad), "{bad:?} accepted");
        }
    }
}
