//! A per-address call budget: at most `limit` calls per window from one client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimiter {
    limit: u32,
    window: Duration,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// Addresses remembered at most; beyond it, finished windows are forgotten first.
const MAX_TRACKED_ADDRESSES: usize = 10_000;

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        RateLimiter {
            limit: limit.max(1),
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a call from `address`; Err(seconds until the window ends) when over the budget.
    pub fn check(&self, address: IpAddr, now: Instant) -> Result<(), u64> {
        // A panic while holding the lock leaves counters, not invariants: keep using them.
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= MAX_TRACKED_ADDRESSES && !windows.contains_key(&address) {
            let window = self.window;
            windows.retain(|_, (start, _)| now.duration_since(*start) < window);
            if windows.len() >= MAX_TRACKED_ADDRESSES {
                // Still full of live windows: forget them all rather than grow without bound.
                windows.clear();
            }
        }
        let entry = windows.entry(address).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            let left = self.window.saturating_sub(now.duration_since(entry.0));
            return Err(left.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_budget_per_window() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        let me: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let start = Instant::now();
        assert_eq!(limiter.check(me, start), Ok(()));
        assert_eq!(limiter.check(me, start), Ok(()));
        assert_eq!(limiter.check(me, start + Duration::from_secs(15)), Err(45));
        assert_eq!(limiter.check(other, start), Ok(()));
        assert_eq!(limiter.check(me, start + Duration::from_secs(60)), Ok(()));
    }
}
