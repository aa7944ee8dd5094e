//! Limiter state: primary budgets, secondary limits, counters, installation tokens.

use crate::{FakeConfig, Stats, TokenStats};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Rate-limit view of one bucket for one token, as sent in `x-ratelimit-*`.
#[derive(Clone, Copy, Debug)]
pub struct RateInfo {
    pub limit: u32,
    pub remaining: u32,
    pub used: u32,
    pub reset: u64,
    pub resource: &'static str,
}

#[derive(Default)]
struct Budget {
    used: u32,
    reset: u64,
}

#[derive(Default)]
struct TokenState {
    in_flight: u64,
    penalty_until: Option<Instant>,
    points: HashMap<String, VecDeque<(Instant, u32)>>,
    budgets: HashMap<&'static str, Budget>,
}

pub struct InstallToken {
    pub expires: SystemTime,
    pub revoked: bool,
}

/// Why a request was refused by the secondary limiter.
#[derive(Debug, PartialEq, Eq)]
pub enum Reject {
    Forced,
    Penalty,
    Concurrency,
    Points,
}

#[derive(Default)]
pub struct Gate {
    pub stats: Stats,
    tokens: HashMap<String, TokenState>,
    in_flight: u64,
    /// (remaining count, status) of injected server errors.
    pub inject: (u32, u16),
    pub force_secondary: u32,
    pub install_tokens: HashMap<String, InstallToken>,
}

pub fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Window length of a bucket in seconds.
fn window(bucket: &str) -> u64 {
    match bucket {
        "search" | "code_search" => 60,
        _ => 3600,
    }
}

/// The primary limit of `bucket` for a token (`anonymous` = no credentials).
pub fn limit_for(cfg: &FakeConfig, anonymous: bool, bucket: &str) -> u32 {
    match (bucket, anonymous) {
        ("search", true) => cfg.search_limit.min(10),
        ("search", false) => cfg.search_limit,
        ("code_search", true) => cfg.code_search_limit.min(10),
        ("code_search", false) => cfg.code_search_limit,
        (_, true) => cfg.core_limit.min(60),
        (_, false) => cfg.core_limit,
    }
}

pub fn static_bucket(b: &str) -> &'static str {
    match b {
        "search" => "search",
        "code_search" => "code_search",
        "graphql" => "graphql",
        _ => "core",
    }
}

impl Gate {
    pub fn token_stats(&mut self, display: &str) -> &mut TokenStats {
        self.stats.by_token.entry(display.to_string()).or_default()
    }

    /// Admit a request into the secondary limiter or refuse it. A refusal (other than
    /// one inside an open penalty window) opens a penalty window for the token.
    pub fn admit(
        &mut self,
        key: &str,
        display: &str,
        endpoint: &str,
        points: u32,
        cfg: &FakeConfig,
        forced: bool,
    ) -> Result<(), Reject> {
        let now = Instant::now();
        let st = self.tokens.entry(key.to_string()).or_default();
        let reject = if forced {
            Some(Reject::Forced)
        } else if st.penalty_until.is_some_and(|t| now < t) {
            Some(Reject::Penalty)
        } else if st.in_flight >= cfg.max_concurrent as u64 {
            Some(Reject::Concurrency)
        } else {
            let win = st.points.entry(endpoint.to_string()).or_default();
            while win
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) >= Duration::from_secs(60))
            {
                win.pop_front();
            }
            let used: u32 = win.iter().map(|(_, p)| p).sum();
            if used + points > cfg.points_per_minute {
                Some(Reject::Points)
            } else {
                win.push_back((now, points));
                None
            }
        };
        if let Some(r) = reject {
            if r != Reject::Penalty {
                let secs = cfg.retry_after_secs.unwrap_or(60);
                st.penalty_until = Some(now + Duration::from_secs(secs));
            }
            self.stats.secondary_limited += 1;
            self.token_stats(display).secondary_limited += 1;
            return Err(r);
        }
        st.in_flight += 1;
        let tok_in_flight = st.in_flight;
        self.in_flight += 1;
        self.stats.max_in_flight = self.stats.max_in_flight.max(self.in_flight);
        let ts = self.token_stats(display);
        ts.max_in_flight = ts.max_in_flight.max(tok_in_flight);
        Ok(())
    }

    pub fn release(&mut self, key: &str) {
        if let Some(st) = self.tokens.get_mut(key) {
            st.in_flight = st.in_flight.saturating_sub(1);
        }
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Current budget of `bucket` for `key` (not charged).
    pub fn rate(&mut self, key: &str, bucket: &str, limit: u32) -> RateInfo {
        let resource = static_bucket(bucket);
        let now = now_epoch();
        let b = self
            .tokens
            .entry(key.to_string())
            .or_default()
            .budgets
            .entry(resource)
            .or_default();
        if now >= b.reset {
            b.used = 0;
            b.reset = now + window(resource);
        }
        RateInfo {
            limit,
            remaining: limit.saturating_sub(b.used),
            used: b.used,
            reset: b.reset,
            resource,
        }
    }

    /// Charge one unit of `bucket` to `key` and return the new budget.
    pub fn charge(&mut self, key: &str, display: &str, bucket: &str, limit: u32) -> RateInfo {
        let info = self.rate(key, bucket, limit);
        if let Some(b) = self
            .tokens
            .get_mut(key)
            .and_then(|t| t.budgets.get_mut(info.resource))
        {
            b.used += 1;
        }
        *self
            .token_stats(display)
            .charged
            .entry(info.resource.to_string())
            .or_default() += 1;
        RateInfo {
            remaining: info.remaining.saturating_sub(1),
            used: info.used + 1,
            ..info
        }
    }

    /// Take one forced secondary answer if any are pending.
    pub fn take_forced(&mut self) -> bool {
        let f = self.force_secondary > 0;
        self.force_secondary = self.force_secondary.saturating_sub(1);
        f
    }

    /// Take one injected server error status if any are pending.
    pub fn take_injected(&mut self) -> Option<u16> {
        if self.inject.0 == 0 {
            return None;
        }
        self.inject.0 -= 1;
        Some(self.inject.1)
    }

    /// Zero counters and limiter state, keeping requests in flight.
    pub fn reset(&mut self) {
        self.stats = Stats {
            max_in_flight: self.in_flight,
            ..Stats::default()
        };
        for st in self.tokens.values_mut() {
            st.penalty_until = None;
            st.points.clear();
            st.budgets.clear();
        }
        self.tokens.retain(|_, st| st.in_flight > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_window_and_penalty() {
        let cfg = FakeConfig {
            points_per_minute: 10,
            retry_after_secs: Some(0),
            ..FakeConfig::default()
        };
        let mut g = Gate::default();
        assert!(g.admit("t", "t…", "POST /x", 5, &cfg, false).is_ok());
        assert!(g.admit("t", "t…", "POST /x", 5, &cfg, false).is_ok());
        assert_eq!(
            g.admit("t", "t…", "POST /x", 5, &cfg, false),
            Err(Reject::Points)
        );
        // other endpoint unaffected once the (zero-length) penalty is over
        assert!(g.admit("t", "t…", "GET /y", 1, &cfg, false).is_ok());
        assert_eq!(g.stats.secondary_limited, 1);
        assert_eq!(g.stats.max_in_flight, 3);
    }

    #[test]
    fn charge_counts_down() {
        let mut g = Gate::default();
        let a = g.charge("t", "t…", "core", 3);
        assert_eq!((a.remaining, a.used, a.resource), (2, 1, "core"));
        let b = g.rate("t", "core", 3);
        assert_eq!(b.remaining, 2);
        g.reset();
        assert_eq!(g.rate("t", "core", 3).remaining, 3);
    }
}
