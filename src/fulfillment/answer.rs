//! The answer of a call (PROTOCOL.md section 4), serialised once and stored byte for byte.

use chrono::NaiveDate;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub publisher_fulfillment_id: String,
    pub nexway_fulfillment_id: String,
    pub operation: &'static str,
    pub licenses: Vec<LicenseView>,
}

/// A code the call issued or touched, as it stands after the call.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseView {
    pub activation_code: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date: Option<NaiveDate>,
    /// Absent for a perpetual license.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date: Option<NaiveDate>,
}

impl Answer {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an answer always serialises")
    }
}
