//! [`RateLimits`]: `--http-rate-limit` as one token bucket per principal (`governor`,
//! keyed by the principal's name; callers that did not authenticate are keyed by their
//! address), bursting up to the per-period count.
//!
//! Owns the buckets and their bound: past [`MAX_KEYS`] buckets, those full again (idle
//! callers) are dropped, at most once a second. It must not answer HTTP requests (the 429
//! is `auth.rs`'s) nor decide who the caller is.

use std::{
    num::NonZeroU32,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};

use crate::config::RateLimit;

/// Buckets kept before idle ones are dropped.
pub const MAX_KEYS: usize = 10_000;

/// One bucket per principal.
pub struct RateLimits {
    limit: RateLimit,
    buckets: DefaultKeyedRateLimiter<String>,
    /// Milliseconds since `epoch` of the last pruning.
    pruned_ms: AtomicU64,
    epoch: Instant,
}

impl RateLimits {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: governor::RateLimiter::keyed(quota(limit)),
            pruned_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes one request from `key`'s bucket; `Err(wait)` when it is empty, with the
    /// time until the next request is allowed.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.prune();
        let key = key.to_string();
        self.buckets
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.buckets.clock().now()))
    }

    /// Drops full buckets when there are more than [`MAX_KEYS`], at most once a second.
    fn prune(&self) {
        if self.buckets.len() <= MAX_KEYS {
            return;
        }
        let now = self.epoch.elapsed().as_millis() as u64;
        let last = self.pruned_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 1000
            || self
                .pruned_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.buckets.retain_recent();
        self.buckets.shrink_to_fit();
    }
}

/// `count` per `period`, in bursts of up to `count`.
fn quota(limit: RateLimit) -> Quota {
    let count = NonZeroU32::new(limit.count).unwrap_or(NonZeroU32::MIN);
    let interval = limit.period.duration() / count.get();
    Quota::with_period(interval.max(Duration::from_nanos(1)))
        .unwrap_or_else(|| Quota::per_second(count))
        .allow_burst(count)
}

/// Whole seconds to tell a client to wait (`Retry-After`), rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RatePeriod;

    #[test]
    fn a_principal_bursts_up_to_the_count_then_waits_and_others_are_apart() {
        let limits = RateLimits::new(RateLimit {
            count: 3,
            period: RatePeriod::Hour,
        });
        for _ in 0..3 {
            assert_eq!(limits.check("oauth:alice"), Ok(()));
        }
        let wait = limits.check("oauth:alice").unwrap_err();
        // One request comes back every 20 minutes.
        assert!(wait > Duration::from_secs(19 * 60) && wait <= Duration::from_secs(20 * 60));
        assert_eq!(limits.check("oauth:bob"), Ok(()));
        assert_eq!(limits.check("ip:127.0.0.1"), Ok(()));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    }

    #[test]
    fn quotas_replenish_one_request_per_period_over_count() {
        let q = quota(RateLimit {
            count: 600,
            period: RatePeriod::Minute,
        });
        assert_eq!(q.replenish_interval(), Duration::from_millis(100));
        assert_eq!(q.burst_size().get(), 600);
    }
}
