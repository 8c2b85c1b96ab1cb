//! Nexway's HTTP Basic credentials: several may be valid at once (rotation), every comparison is
//! constant-time, and with none configured a strong one is generated on first start.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use poem::http::HeaderMap;
use poem::web::headers::{Authorization, HeaderMapExt, authorization::Basic};
use serde_json::Value;

use rand::Rng;
use rand::distr::Alphanumeric;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::signature::SignatureVerifier;

/// File in the data directory holding the generated `user:password`.
pub const GENERATED_FILE: &str = "nexway-credentials";
const GENERATED_USER: &str = "nexway";

/// One HTTP Basic credential Nexway may present (`[[nexway.credentials]]`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicCredential {
    pub user: String,
    pub password: SecretString,
}

/// The credentials Nexway may present. Holds digests only, so Debug output shows no secret.
#[derive(Clone)]
pub struct NexwayCredentials {
    accepted: Vec<[u8; 32]>,
}

impl std::fmt::Debug for NexwayCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NexwayCredentials({} accepted)", self.accepted.len())
    }
}

/// A credential made on first start, to be shown once to the operator.
pub struct Generated {
    pub user: String,
    pub password: SecretString,
    pub path: std::path::PathBuf,
}

impl NexwayCredentials {
    pub fn new(credentials: &[BasicCredential]) -> Self {
        let accepted = credentials
            .iter()
            .map(|c| fingerprint(&c.user, c.password.expose_secret()))
            .collect();
        NexwayCredentials { accepted }
    }

    /// The configured credentials; when there are none, the one kept in the data directory,
    /// created (owner-only) on the first start and returned as `Generated` that once.
    pub fn load_or_generate(
        configured: &[BasicCredential],
        data_dir: &Path,
    ) -> std::io::Result<(Self, Option<Generated>)> {
        if !configured.is_empty() {
            return Ok((Self::new(configured), None));
        }
        let path = data_dir.join(GENERATED_FILE);
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Some((user, password)) = text.trim_end().split_once(':')
        {
            let credential = BasicCredential {
                user: user.into(),
                password: password.into(),
            };
            return Ok((Self::new(&[credential]), None));
        }
        let password: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        std::fs::create_dir_all(data_dir)?;
        let mut file = owner_only_file(&path)?;
        writeln!(file, "{GENERATED_USER}:{password}")?;
        file.sync_all()?;
        let credential = BasicCredential {
            user: GENERATED_USER.into(),
            password: password.into(),
        };
        let generated = Generated {
            user: credential.user.clone(),
            password: credential.password.clone(),
            path,
        };
        Ok((Self::new(&[credential]), Some(generated)))
    }

    /// Whether `user`/`password` is one of the accepted credentials. Every accepted credential is
    /// compared, in constant time, so the answer's timing tells nothing about which part differed.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let presented = fingerprint(user, password);
        self.accepted
            .iter()
            .fold(subtle::Choice::from(0), |found, accepted| {
                found | accepted.ct_eq(&presented)
            })
            .into()
    }
}

/// Everything that decides whether a call comes from Nexway: HTTP Basic (unless turned off) and
/// the request signature (when required). A refusal is one log line and a count, never a detail
/// told to the caller.
#[derive(Clone, Debug)]
pub struct NexwayGate {
    basic: Option<NexwayCredentials>,
    signature: Option<Arc<SignatureVerifier>>,
    refused: Arc<AtomicU64>,
}

impl NexwayGate {
    /// The gate checking HTTP Basic against `basic` (none: Basic is turned off) and the request
    /// signature with `signature` (none: not required).
    pub fn new(basic: Option<NexwayCredentials>, signature: Option<SignatureVerifier>) -> Self {
        NexwayGate {
            basic,
            signature: signature.map(Arc::new),
            refused: Arc::default(),
        }
    }

    /// Whether the call's Basic credentials are accepted (always, when Basic is turned off).
    pub fn check_basic(&self, headers: &HeaderMap) -> bool {
        let Some(credentials) = &self.basic else {
            return true;
        };
        let accepted = headers
            .typed_get::<Authorization<Basic>>()
            .is_some_and(|auth| credentials.verify(auth.username(), auth.password()));
        if !accepted {
            self.refuse("basic credentials missing or wrong");
        }
        accepted
    }

    /// Whether the body as received carries a valid signature (always, when it is not required).
    /// `body` is the JSON parsed from the received bytes, or `Err` when they are not JSON.
    pub fn check_signature(&self, headers: &HeaderMap, body: Result<&Value, ()>) -> bool {
        let Some(verifier) = &self.signature else {
            return true;
        };
        let presented = headers
            .get(verifier.header.as_str())
            .and_then(|value| value.to_str().ok());
        let now = chrono::Utc::now().timestamp_millis();
        match verifier.verify(presented, body, now) {
            Ok(()) => true,
            Err(refusal) => {
                self.refuse(&format!("signature: {refusal:?}"));
                false
            }
        }
    }

    pub fn signature_required(&self) -> bool {
        self.signature.is_some()
    }

    /// How many calls were refused since the start.
    pub fn refused_count(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn refuse(&self, reason: &str) {
        let refused_total = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(
            reason,
            refused_total,
            "Nexway call refused: not authenticated"
        );
    }
}

/// SHA-256 over the length-prefixed pair: equal-length values for a constant-time comparison.
fn fingerprint(user: &str, password: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update((user.len() as u64).to_be_bytes());
    hasher.update(user.as_bytes());
    hasher.update(password.as_bytes());
    hasher.finalize().into()
}

#[cfg(unix)]
fn owner_only_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn owner_only_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(user: &str, password: &str) -> BasicCredential {
        BasicCredential {
            user: user.into(),
            password: password.to_string().into(),
        }
    }

    #[test]
    fn any_configured_credential_is_accepted_and_nothing_else() {
        let credentials = NexwayCredentials::new(&[
            credential("nexway", "old-password"),
            credential("nexway", "new-password"),
        ]);
        assert!(credentials.verify("nexway", "old-password"));
        assert!(credentials.verify("nexway", "new-password"));
        assert!(!credentials.verify("nexway", "other"));
        assert!(!credentials.verify("nexwa", "ynew-password"));
        assert!(!credentials.verify("", ""));
        assert!(!format!("{credentials:?}").contains("password"));
    }

    #[test]
    fn generated_credential_is_kept_owner_only_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (first, generated) = NexwayCredentials::load_or_generate(&[], dir.path()).unwrap();
        let generated = generated.expect("made on first start");
        assert_eq!(generated.password.expose_secret().len(), 32);
        assert!(first.verify(&generated.user, generated.password.expose_secret()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&generated.path)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (second, again) = NexwayCredentials::load_or_generate(&[], dir.path()).unwrap();
        assert!(again.is_none(), "printed only once");
        assert!(second.verify(&generated.user, generated.password.expose_secret()));
    }
}
