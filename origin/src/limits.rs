//! Abuse limits on the routes that create or extend sessions: refresh per session, refresh and
//! session creation per client address. Each is a token bucket (GCRA: one timestamp per key)
//! with a sustained rate and a burst large enough for a browser's parallel tabs.
//!
//! Limits are per origin instance: behind a load balancer spreading requests over N instances a
//! client may reach N times the configured rate (docs/configuration.md).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::Clock;

/// Keys one limiter remembers at most: past it, keys whose bucket is full again are forgotten
/// (which changes nothing), and if that is not enough, all are.
const MAX_KEYS: usize = 100_000;

/// A sustained rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub per_minute: u32,
    pub burst: u32,
}

impl Quota {
    fn enabled(&self) -> bool {
        self.per_minute > 0 && self.burst > 0
    }
}

/// One keyed limiter.
#[derive(Debug)]
pub struct Limiter {
    /// Milliseconds between two requests at the sustained rate.
    interval_ms: i64,
    /// How far ahead of now a key's theoretical arrival time may run: the burst.
    tolerance_ms: i64,
    enabled: bool,
    /// Theoretical arrival time of each key's next request (ms since the epoch).
    arrivals: Mutex<HashMap<String, i64>>,
}

impl Limiter {
    pub fn new(quota: Quota) -> Self {
        let interval_ms = 60_000 / i64::from(quota.per_minute.max(1));
        Limiter {
            interval_ms,
            tolerance_ms: interval_ms * i64::from(quota.burst.saturating_sub(1)),
            enabled: quota.enabled(),
            arrivals: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one request for `key` at `now_ms`, or says how long to wait.
    pub fn check(&self, key: &str, now_ms: i64) -> Result<(), Duration> {
        if !self.enabled {
            return Ok(());
        }
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if arrivals.len() >= MAX_KEYS && !arrivals.contains_key(key) {
            arrivals.retain(|_, arrival| *arrival > now_ms);
            if arrivals.len() >= MAX_KEYS {
                arrivals.clear();
            }
        }
        let arrival = arrivals.get(key).copied().unwrap_or(now_ms).max(now_ms);
        let ahead = arrival - now_ms;
        if ahead > self.tolerance_ms {
            let wait = ahead - self.tolerance_ms;
            return Err(Duration::from_millis(wait.unsigned_abs()));
        }
        arrivals.insert(key.to_owned(), arrival + self.interval_ms);
        Ok(())
    }
}

/// The key of a client address: IPv4 as is, IPv6 by its /64 (what one subscriber gets).
pub fn address_key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", segments[0], segments[1], segments[2], segments[3])
        }
    }
}

/// The origin's limits.
#[derive(Debug)]
pub struct Limits {
    clock: Clock,
    refresh_per_session: Limiter,
    per_address: Limiter,
}

/// A request over a limit: retry after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited(pub Duration);

impl Limits {
    pub fn new(clock: Clock, per_session: Quota, per_address: Quota) -> Self {
        Limits {
            clock,
            refresh_per_session: Limiter::new(per_session),
            per_address: Limiter::new(per_address),
        }
    }

    /// A refresh of session `handle` (when the token names one) from `address` (when known).
    pub fn refresh(
        &self,
        handle: Option<&str>,
        address: Option<IpAddr>,
    ) -> Result<(), RateLimited> {
        let now = self.clock.now_ms();
        if let Some(address) = address {
            self.per_address.check(&address_key(address), now).map_err(RateLimited)?;
        }
        if let Some(handle) = handle {
            self.refresh_per_session.check(handle, now).map_err(RateLimited)?;
        }
        Ok(())
    }

    /// A session created for a client at `address` (when known).
    pub fn create(&self, address: Option<IpAddr>) -> Result<(), RateLimited> {
        match address {
            Some(address) => self
                .per_address
                .check(&address_key(address), self.clock.now_ms())
                .map_err(RateLimited),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_sustained_rate_holds() {
        let limiter = Limiter::new(Quota { per_minute: 60, burst: 50 });
        for i in 0..50 {
            assert_eq!(limiter.check("s", 0), Ok(()), "request {i} of the burst");
        }
        assert_eq!(limiter.check("s", 0), Err(Duration::from_secs(1)));
        assert_eq!(limiter.check("other", 0), Ok(()), "keys are independent");
        assert_eq!(limiter.check("s", 999), Err(Duration::from_millis(1)));
        assert_eq!(limiter.check("s", 1000), Ok(()), "one more each second");
        assert!(limiter.check("s", 1000).is_err());
    }

    #[test]
    fn a_zero_quota_disables_the_limit() {
        let limiter = Limiter::new(Quota { per_minute: 0, burst: 10 });
        for _ in 0..1000 {
            assert_eq!(limiter.check("s", 0), Ok(()));
        }
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        assert_eq!(address_key("192.0.2.7".parse().unwrap()), "192.0.2.7");
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_keys() {
        let limiter = Limiter::new(Quota { per_minute: 60, burst: 2 });
        for i in 0..(MAX_KEYS + 10) {
            let _ = limiter.check(&i.to_string(), 0);
        }
        assert!(limiter.arrivals.lock().unwrap().len() <= MAX_KEYS);
    }
}
