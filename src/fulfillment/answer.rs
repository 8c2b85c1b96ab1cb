//! The answer of a call (PROTOCOL.md section 4), serialised once and stored byte for byte.

use chrono::NaiveDate;
use serde::Serialize;

use crate::keygen::KeyFile;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub publisher_fulfillment_id: String,
    pub nexway_fulfillment_id: String,
    pub operation: &'static str,
    /// Every code the call issued or touched, as it stands after the call.
    pub licenses: Vec<LicenseView>,
    /// Codes the call replaced by reissue (their new codes are in `licenses`); absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub superseded: Vec<LicenseView>,
}

/// A code as it stands after the call; past its end date a live license reads as expired.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseView {
    pub activation_code: String,
    pub status: String,
    /// A free trial's code; absent for ordinary licenses, so their answers are unchanged.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub trial: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date: Option<NaiveDate>,
    /// Absent for a perpetual license.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date: Option<NaiveDate>,
    /// The file deliverable of the code, for generators that make one; absent otherwise, so
    /// answers without files are unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<KeyFile>,
}

impl LicenseView {
    /// The file stored with a license (JSON written by `mint`).
    pub fn file_of(license: &entity::license::Model) -> Option<KeyFile> {
        let json = license.file.as_deref()?;
        serde_json::from_str(json)
            .inspect_err(
                |e| tracing::error!(license = license.id, error = %e, "unreadable key file"),
            )
            .ok()
    }
}

impl Answer {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an answer always serialises")
    }
}
