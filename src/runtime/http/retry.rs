//! How responses are classified and retried: the caller's [`ResponseObserver`] and its
//! [`Verdict`], the default observer, Retry-After parsing and the [`RetryPolicy`]
//! budgets.
//!
//! Owns these rules only; it must not send requests (the call engine in `mod.rs` does)
//! nor know which upstream it talks to.

use std::time::Duration;

use headers::Header;
use http::{HeaderMap, header};

/// What the caller's observer makes of one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Hand the response back (5xx on idempotent requests is still retried).
    Accept,
    /// The upstream rejected the request before running it: safe to retry for any method
    /// after this delay.
    RetryAfter(Duration),
    /// Stop now with `UpstreamError::Rejected`.
    Fail,
}

/// Lets callers classify responses (rate limits, abuse detection) without this module
/// knowing the upstream.
pub trait ResponseObserver: Send + Sync {
    /// Sees every response (including 304 and errors) before it is retried or returned.
    fn observe(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> Verdict;
}

/// 429/503 carrying Retry-After → `RetryAfter`, anything else → `Accept`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultObserver;

impl ResponseObserver for DefaultObserver {
    fn observe(&self, status: u16, headers: &HeaderMap, _body: &[u8]) -> Verdict {
        match (status, retry_after(headers)) {
            (429 | 503, Some(d)) => Verdict::RetryAfter(d),
            _ => Verdict::Accept,
        }
    }
}

/// Retry-After as delta-seconds or an HTTP date (a past date is zero).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?;
    if let Ok(secs) = value.to_str().unwrap_or("").trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = headers::LastModified::decode(&mut std::iter::once(value)).ok()?;
    let at: std::time::SystemTime = date.into();
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Two separate budgets: waits the upstream asked for (Retry-After, rate limits) and
/// retries after failures (5xx, transport errors; idempotent requests only), so a
/// persistent failure ends quickly even where rate-limit waits may be long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after Retry-After answers.
    pub max_retries: u32,
    pub base: Duration,
    /// Longest total wait on Retry-After answers.
    pub max_total_wait: Duration,
    /// Retries after 5xx answers or transport errors.
    pub max_error_retries: u32,
    /// Longest total wait spent on those retries.
    pub max_error_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base: Duration::from_millis(200),
            max_total_wait: Duration::from_secs(90),
            max_error_retries: 3,
            max_error_wait: Duration::from_secs(10),
        }
    }
}
