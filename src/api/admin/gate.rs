//! Support's door: API keys in that API family's manner (the HTTP Basic user name, or `?key=` so
//! a URL can be pasted), compared as digests in constant time, with a cooling-off period for an
//! address that keeps sending bad keys. Separate from Nexway's credentials: neither opens the
//! other's door.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why the door stayed shut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    NoApiKey,
    InvalidApiKey,
    TooManyBadKeys,
}

pub struct AdminGate {
    /// SHA-256 digests of the accepted keys: Debug output and memory dumps show no key.
    digests: Vec<[u8; 32]>,
    bad_key_limit: u32,
    cooldown: Duration,
    strikes: Mutex<HashMap<IpAddr, Strikes>>,
}

struct Strikes {
    count: u32,
    since: Instant,
    blocked_until: Option<Instant>,
}

/// Addresses remembered at most; beyond it, stale entries are dropped first.
const MAX_TRACKED_ADDRESSES: usize = 10_000;

impl AdminGate {
    /// A door opened by any of `keys`; an address that sent `bad_key_limit` bad keys within
    /// `cooldown` is refused for `cooldown`. No keys: the door stays shut.
    pub fn new(keys: &[SecretString], bad_key_limit: u32, cooldown: Duration) -> Self {
        AdminGate {
            digests: keys.iter().map(|key| digest(key.expose_secret())).collect(),
            bad_key_limit: bad_key_limit.max(1),
            cooldown,
            strikes: Mutex::new(HashMap::new()),
        }
    }

    /// How long an address that sent too many bad keys is refused.
    pub fn cooldown_secs(&self) -> u64 {
        self.cooldown.as_secs()
    }

    /// With no key configured every call is refused.
    pub fn is_closed(&self) -> bool {
        self.digests.is_empty()
    }

    /// Lets `presented` in, or says why not. An address in its cooling-off period is refused
    /// whatever it presents, so a good guess there teaches nothing.
    pub fn check(
        &self,
        address: Option<IpAddr>,
        presented: Option<&SecretString>,
    ) -> Result<(), Denied> {
        let now = Instant::now();
        if let Some(address) = address
            && self
                .strikes()
                .get(&address)
                .and_then(|s| s.blocked_until)
                .is_some_and(|until| until > now)
        {
            return Err(Denied::TooManyBadKeys);
        }
        let Some(presented) = presented.filter(|key| !key.expose_secret().is_empty()) else {
            return Err(Denied::NoApiKey);
        };
        let presented = digest(presented.expose_secret());
        let valid = self
            .digests
            .iter()
            .fold(subtle::Choice::from(0), |found, accepted| {
                found | accepted.ct_eq(&presented)
            });
        if bool::from(valid) {
            return Ok(());
        }
        if let Some(address) = address {
            self.strike(address, now);
        }
        Err(Denied::InvalidApiKey)
    }

    fn strike(&self, address: IpAddr, now: Instant) {
        let mut strikes = self.strikes();
        if strikes.len() >= MAX_TRACKED_ADDRESSES {
            let cooldown = self.cooldown;
            strikes.retain(|_, s| {
                now.duration_since(s.since) < cooldown || s.blocked_until.is_some_and(|u| u > now)
            });
            if strikes.len() >= MAX_TRACKED_ADDRESSES {
                // Still full of fresh entries (many addresses guessing): keep only those already
                // cooling off, so memory stays bounded.
                strikes.retain(|_, s| s.blocked_until.is_some_and(|u| u > now));
            }
        }
        let entry = strikes.entry(address).or_insert(Strikes {
            count: 0,
            since: now,
            blocked_until: None,
        });
        if now.duration_since(entry.since) >= self.cooldown {
            *entry = Strikes {
                count: 0,
                since: now,
                blocked_until: None,
            };
        }
        entry.count += 1;
        if entry.count >= self.bad_key_limit {
            entry.blocked_until = Some(now + self.cooldown);
            tracing::warn!(%address, "too many bad admin API keys: address cooling off");
        }
    }

    fn strikes(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Strikes>> {
        // A panic while holding the lock leaves counters, not invariants: keep using them.
        self.strikes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(limit: u32) -> AdminGate {
        AdminGate::new(
            &[
                "old-key-0123456789".to_string().into(),
                "new-key-0123456789".to_string().into(),
            ],
            limit,
            Duration::from_secs(300),
        )
    }

    #[test]
    fn any_configured_key_opens_and_nothing_else() {
        let gate = gate(10);
        let key = |k: &str| Some(SecretString::from(k.to_owned()));
        assert_eq!(gate.check(None, key("old-key-0123456789").as_ref()), Ok(()));
        assert_eq!(gate.check(None, key("new-key-0123456789").as_ref()), Ok(()));
        assert_eq!(
            gate.check(None, key("new-key-012345678").as_ref()),
            Err(Denied::InvalidApiKey)
        );
        assert_eq!(gate.check(None, None), Err(Denied::NoApiKey));
        assert_eq!(gate.check(None, key("").as_ref()), Err(Denied::NoApiKey));
    }

    #[test]
    fn repeated_bad_keys_cool_the_address_off_even_for_a_good_key() {
        let gate = gate(3);
        let me: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let bad = Some(SecretString::from("guess".to_owned()));
        let good = Some(SecretString::from("old-key-0123456789".to_owned()));
        for _ in 0..3 {
            assert_eq!(
                gate.check(Some(me), bad.as_ref()),
                Err(Denied::InvalidApiKey)
            );
        }
        assert_eq!(
            gate.check(Some(me), good.as_ref()),
            Err(Denied::TooManyBadKeys)
        );
        assert_eq!(gate.check(Some(other), good.as_ref()), Ok(()));
    }

    #[test]
    fn no_keys_means_closed() {
        let gate = AdminGate::new(&[], 10, Duration::from_secs(300));
        assert!(gate.is_closed());
        let any = Some(SecretString::from("anything-at-all-123".to_owned()));
        assert_eq!(gate.check(None, any.as_ref()), Err(Denied::InvalidApiKey));
    }
}
