//! Per-integration call statistics in time buckets: one bucket per minute holding a
//! latency histogram (HdrHistogram, microseconds, 2 significant digits, ~12 KiB), the
//! call count and the error count. At most [`RETENTION_MINUTES`] buckets are kept per
//! integration (older ones are dropped as new minutes start) and at most [`MAX_BUCKETS`]
//! in all (past that, the oldest bucket of the busiest series goes), so memory stays
//! under ~55 MiB however many integrations there are, and a query merges at most 1,440
//! buckets — never a scan over call history.
//!
//! Owns recording and range queries only. It must not touch the registry, events or
//! tool wiring.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use schemars::JsonSchema;
use serde::Serialize;

/// Buckets kept per integration: 24 hours of minutes.
pub const RETENTION_MINUTES: i64 = 24 * 60;
/// Buckets kept across all integrations.
pub const MAX_BUCKETS: usize = 4096;
const MAX_MICROS: u64 = 3_600_000_000;

struct Bucket {
    minute: i64,
    latency: Histogram<u32>,
    calls: u64,
    errors: u64,
}

impl Bucket {
    fn new(minute: i64) -> Self {
        Bucket {
            minute,
            latency: Histogram::new_with_bounds(1, MAX_MICROS, 2).expect("static bounds are valid"),
            calls: 0,
            errors: 0,
        }
    }
}

/// Figures for one range.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    pub calls: u64,
    pub errors: u64,
    /// Milliseconds (2 significant digits).
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Successful calls / calls; absent when there were none.
    pub success_rate: Option<f64>,
    /// Minute buckets that held calls in the range.
    pub buckets: usize,
}

#[derive(Default)]
struct Series {
    by_id: HashMap<String, VecDeque<Bucket>>,
    /// Buckets across all integrations.
    total: usize,
}

impl Series {
    /// Drops the oldest bucket of the longest series while more than [`MAX_BUCKETS`] live.
    fn enforce_budget(&mut self) {
        while self.total > MAX_BUCKETS {
            let Some(longest) = self.by_id.values_mut().max_by_key(|b| b.len()) else {
                return;
            };
            longest.pop_front();
            self.total -= 1;
        }
    }

    /// The bucket of `minute` for `id`, created when missing (None when older than the
    /// retention or evicted by the budget).
    fn bucket(&mut self, id: &str, minute: i64) -> Option<&mut Bucket> {
        let buckets = self.by_id.entry(id.to_string()).or_default();
        let pos = buckets.partition_point(|b| b.minute < minute);
        if buckets.get(pos).is_none_or(|b| b.minute != minute) {
            let newest = buckets.back().map_or(minute, |b| b.minute.max(minute));
            if minute <= newest - RETENTION_MINUTES {
                return None;
            }
            buckets.insert(pos, Bucket::new(minute));
            self.total += 1;
            while buckets
                .front()
                .is_some_and(|b| b.minute <= newest - RETENTION_MINUTES)
            {
                buckets.pop_front();
                self.total -= 1;
            }
            self.enforce_budget();
        }
        let buckets = self.by_id.get_mut(id)?;
        let pos = buckets.partition_point(|b| b.minute < minute);
        buckets.get_mut(pos).filter(|b| b.minute == minute)
    }
}

#[derive(Default)]
pub struct Monitor {
    series: Mutex<Series>,
}

fn minute_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(60)
}

impl Monitor {
    /// Records one call that ended at `at`.
    pub fn record(&self, id: &str, at: DateTime<Utc>, latency: std::time::Duration, ok: bool) {
        let mut series = self.series.lock();
        let Some(bucket) = series.bucket(id, minute_of(at)) else {
            return;
        };
        let micros = (latency.as_micros() as u64).clamp(1, MAX_MICROS);
        bucket.latency.saturating_record(micros);
        bucket.calls += 1;
        bucket.errors += u64::from(!ok);
    }

    /// Merged figures of the buckets whose minute overlaps `[start, end]`.
    pub fn query(&self, id: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Figures {
        let (from, to) = (minute_of(start), minute_of(end));
        let series = self.series.lock();
        let mut merged: Histogram<u32> =
            Histogram::new_with_bounds(1, MAX_MICROS, 2).expect("static bounds are valid");
        let (mut calls, mut errors, mut used) = (0, 0, 0);
        for b in series
            .by_id
            .get(id)
            .into_iter()
            .flatten()
            .filter(|b| b.minute >= from && b.minute <= to)
        {
            let _ = merged.add(&b.latency);
            calls += b.calls;
            errors += b.errors;
            used += 1;
        }
        let pct = |q: f64| (calls > 0).then(|| merged.value_at_quantile(q) as f64 / 1000.0);
        Figures {
            calls,
            errors,
            p50_ms: pct(0.50),
            p95_ms: pct(0.95),
            p99_ms: pct(0.99),
            success_rate: (calls > 0).then(|| (calls - errors) as f64 / calls as f64),
            buckets: used,
        }
    }

    pub fn forget(&self, id: &str) {
        let mut series = self.series.lock();
        if let Some(gone) = series.by_id.remove(id) {
            series.total -= gone.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn figures_match_recorded_calls_and_retention_is_bounded() {
        let m = Monitor::default();
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:10Z")
            .unwrap()
            .with_timezone(&Utc);
        for i in 0..100u64 {
            m.record("a", t0, Duration::from_millis(i + 1), i % 10 != 0);
        }
        let f = m.query("a", t0, t0);
        assert_eq!((f.calls, f.errors, f.buckets), (100, 10, 1));
        assert_eq!(f.success_rate, Some(0.9));
        let p50 = f.p50_ms.unwrap();
        assert!((49.0..=51.0).contains(&p50), "{p50}");
        for minute in 0..(RETENTION_MINUTES + 50) {
            m.record(
                "a",
                t0 + chrono::Duration::minutes(minute),
                Duration::from_millis(1),
                true,
            );
        }
        assert_eq!(m.series.lock().by_id["a"].len(), RETENTION_MINUTES as usize);
        assert_eq!(m.query("a", t0, t0).calls, 0);
        for n in 0..10 {
            for minute in 0..1000 {
                let at = t0 + chrono::Duration::minutes(minute);
                m.record(&format!("b{n}"), at, Duration::from_millis(1), true);
            }
        }
        let s = m.series.lock();
        assert_eq!(s.total, MAX_BUCKETS);
        assert_eq!(s.total, s.by_id.values().map(VecDeque::len).sum::<usize>());
    }
}
