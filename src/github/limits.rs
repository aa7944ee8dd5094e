//! GitHub's limits, per credential: the executor lanes every request goes through and
//! the rate-limit state fed by the headers of every response.
//!
//! Owns lane shapes (`read`, `search`, `code_search`, `write`, `auth`), bucket budgets,
//! and the classification of limited answers (primary exhausted, secondary limit, plain
//! 403). It must not build requests or know any endpoint. The `read`, `search`,
//! `code_search` and `write` lanes are adaptive (see `runtime::executor`): the upstream
//! helper feeds them this module's verdicts, so a secondary-limit answer halves the
//! window and successes widen it again, never above the configured maximum.
//!
//! GraphQL mutations take the `write` lane: GitHub counts them against the same
//! content-creation limits as REST writes. Their primary budget is the `graphql` bucket
//! (`x-ratelimit-resource: graphql`), recorded like the others; when it runs out the
//! lane that spends it, `write`, waits for its reset.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use http::HeaderMap;
use parking_lot::Mutex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[cfg(feature = "redis")]
use super::shared_limits::SharedBudget;
use crate::config::GithubConcurrency;
use crate::runtime::{
    executor::{Executor, Lane, LaneConfig, LaneStats},
    http::{ResponseObserver, Verdict, retry_after},
};

/// Pause after a secondary-limit answer that carries no Retry-After (GitHub's advice).
pub const SECONDARY_DEFAULT_PAUSE: Duration = Duration::from_secs(60);
/// Requests of one credential in flight across all its lanes (GitHub allows 100).
pub const CREDENTIAL_CAP: usize = 64;

/// Which lane a request takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneKind {
    Read,
    Search,
    CodeSearch,
    Write,
    Auth,
}

/// The lanes of one credential.
pub struct CredentialLanes {
    read: Arc<Lane>,
    search: Arc<Lane>,
    code_search: Arc<Lane>,
    write: Arc<Lane>,
    auth: Arc<Lane>,
}

/// The configuration of an adaptive lane of `kind` (every kind but `Auth`).
fn lane_config(kind: LaneKind, max: GithubConcurrency) -> LaneConfig {
    // GitHub counts a request when it arrives, the lane when it starts: a request that
    // left later may arrive sooner, so the windows are a second longer than GitHub's
    // (with exactly 60 s, a burst past 900 reads met secondary limits at the minute's edge).
    let minute = Duration::from_secs(61);
    // Windows start at a quarter of their maximum and widen on success.
    match kind {
        // 900 points per minute per endpoint is GitHub's secondary rule; holding all
        // reads of a credential under it keeps every endpoint under it too.
        LaneKind::Read => LaneConfig::concurrency(max.read)
            .adaptive(max.read / 4)
            .rate(900, minute)
            .queue(8192),
        LaneKind::Search => LaneConfig::concurrency(max.search)
            .adaptive(max.search / 4)
            .rate(30, minute),
        LaneKind::CodeSearch => LaneConfig::concurrency(max.code_search)
            .adaptive(max.code_search / 4)
            .rate(9, minute),
        LaneKind::Write => LaneConfig::concurrency(max.write)
            .adaptive(max.write / 4)
            .spacing(Duration::from_secs(1))
            .rate(80, minute)
            .rate(500, Duration::from_secs(3600)),
        LaneKind::Auth => LaneConfig::concurrency(1),
    }
}

/// The adaptive lanes, by name, with the primary buckets each spends (what a shared
/// store coordinates: feature `redis`).
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
const SPENDING_LANES: [(LaneKind, &str, &[&str]); 4] = [
    (LaneKind::Read, "read", &["core"]),
    (LaneKind::Search, "search", &["search"]),
    (LaneKind::CodeSearch, "code_search", &["code_search"]),
    (LaneKind::Write, "write", &["core", "graphql"]),
];

impl CredentialLanes {
    /// Lanes named `github:<id>:<kind>`; `id` is a fingerprint, never the secret.
    pub fn new(executor: &Executor, id: &str, max: GithubConcurrency) -> Self {
        let group = format!("github:{id}");
        let lane = |kind: &str, kind_of: LaneKind| {
            executor.grouped_lane(&format!("{group}:{kind}"), &group, CREDENTIAL_CAP, || {
                lane_config(kind_of, max)
            })
        };
        CredentialLanes {
            read: lane("read", LaneKind::Read),
            search: lane("search", LaneKind::Search),
            code_search: lane("code_search", LaneKind::CodeSearch),
            write: lane("write", LaneKind::Write),
            auth: executor.lane(&format!("{group}:auth"), || {
                lane_config(LaneKind::Auth, max)
            }),
        }
    }

    pub fn get(&self, kind: LaneKind) -> &Arc<Lane> {
        match kind {
            LaneKind::Read => &self.read,
            LaneKind::Search => &self.search,
            LaneKind::CodeSearch => &self.code_search,
            LaneKind::Write => &self.write,
            LaneKind::Auth => &self.auth,
        }
    }

    fn all(&self) -> [&Arc<Lane>; 5] {
        [
            &self.read,
            &self.search,
            &self.code_search,
            &self.write,
            &self.auth,
        ]
    }

    /// Lanes that spend a bucket's budget.
    fn for_bucket(&self, bucket: &str) -> Vec<&Arc<Lane>> {
        match bucket {
            "core" => vec![&self.read, &self.write],
            "graphql" => vec![&self.write],
            "search" => vec![&self.search],
            "code_search" => vec![&self.code_search],
            _ => Vec::new(),
        }
    }

    pub fn stats(&self) -> Vec<LaneStats> {
        self.all().iter().map(|l| l.stats()).collect()
    }
}

/// One bucket's budget as last reported by GitHub.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Bucket {
    #[serde(default)]
    pub resource: String,
    pub limit: u64,
    pub remaining: u64,
    pub used: u64,
    /// When the budget resets, epoch seconds.
    pub reset: u64,
}

/// Rate-limit state of one credential; also the `ResponseObserver` of its requests.
pub struct Limits {
    id: String,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    max: GithubConcurrency,
    lanes: CredentialLanes,
    buckets: Mutex<BTreeMap<String, Bucket>>,
    secondary_hits: AtomicU64,
    paused_until: Arc<Mutex<Option<Instant>>>,
    /// The budget shared with other replicas, on a shared store only.
    #[cfg(feature = "redis")]
    shared: std::sync::OnceLock<Arc<SharedBudget>>,
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// True when a 403/429 body or headers say it is a secondary limit.
fn is_secondary(headers: &HeaderMap, body: &[u8]) -> bool {
    if retry_after(headers).is_some() {
        return true;
    }
    let head = &body[..body.len().min(4096)];
    String::from_utf8_lossy(head)
        .to_ascii_lowercase()
        .contains("secondary rate limit")
}

impl Limits {
    pub fn new(executor: &Executor, id: &str, max: GithubConcurrency) -> Self {
        Limits {
            id: id.to_string(),
            max,
            lanes: CredentialLanes::new(executor, id, max),
            buckets: Mutex::default(),
            secondary_hits: AtomicU64::new(0),
            paused_until: Arc::default(),
            #[cfg(feature = "redis")]
            shared: std::sync::OnceLock::new(),
        }
    }

    /// Shares this credential's budget with every replica on `budget`'s store: each
    /// spending lane's window and pacing become cluster-wide (the configured maxima then
    /// bound all replicas together), and pauses (secondary limits, exhausted buckets)
    /// reach every replica. The auth lane stays local.
    #[cfg(feature = "redis")]
    pub fn share(&self, budget: Arc<SharedBudget>) {
        if self.shared.set(budget.clone()).is_err() {
            return;
        }
        // A pause found on the store pauses this replica's lanes too (weakly held: the
        // lanes hold the admission that holds this hook).
        let lanes: Vec<std::sync::Weak<Lane>> =
            self.lanes.all().iter().map(|l| Arc::downgrade(l)).collect();
        let paused_until = self.paused_until.clone();
        let on_pause: super::shared_limits::PauseHook = Arc::new(move |wait| {
            let Some(until) = Instant::now().checked_add(wait) else {
                return;
            };
            for lane in lanes.iter().filter_map(std::sync::Weak::upgrade) {
                lane.pause_until(until);
            }
            let mut paused = paused_until.lock();
            if paused.is_none_or(|p| p < until) {
                *paused = Some(until);
            }
        });
        for (kind, name, buckets) in SPENDING_LANES {
            let admission = budget
                .lane(name, &lane_config(kind, self.max), buckets)
                .on_pause(on_pause.clone());
            self.lanes.get(kind).share(Arc::new(admission));
        }
    }

    pub fn lane(&self, kind: LaneKind) -> &Arc<Lane> {
        self.lanes.get(kind)
    }

    /// The credential's short fingerprint (never the secret).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn lane_stats(&self) -> Vec<LaneStats> {
        self.lanes.stats()
    }

    pub fn buckets(&self) -> Vec<Bucket> {
        self.buckets.lock().values().cloned().collect()
    }

    pub fn secondary_hits(&self) -> u64 {
        self.secondary_hits.load(Ordering::Relaxed)
    }

    /// Remaining time of a credential-wide pause (secondary limit), if any.
    pub fn paused_for(&self) -> Option<Duration> {
        let until = (*self.paused_until.lock())?;
        let left = until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// Records the `x-ratelimit-*` headers; pauses the bucket's lanes when it is empty.
    /// Returns the bucket's budget when the response carried one.
    fn record(&self, headers: &HeaderMap) -> Option<Bucket> {
        let remaining = header_u64(headers, "x-ratelimit-remaining")?;
        let resource = headers
            .get("x-ratelimit-resource")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("core")
            .to_string();
        let bucket = Bucket {
            limit: header_u64(headers, "x-ratelimit-limit").unwrap_or(0),
            used: header_u64(headers, "x-ratelimit-used").unwrap_or(0),
            reset: header_u64(headers, "x-ratelimit-reset").unwrap_or(0),
            remaining,
            resource: resource.clone(),
        };
        metrics::gauge!("cortex_github_ratelimit_remaining",
            "credential" => self.id.clone(), "bucket" => resource.clone())
        .set(remaining as f64);
        if remaining == 0 {
            let wait = Duration::from_secs(bucket.reset.saturating_sub(now_epoch()) + 1);
            #[cfg(feature = "redis")]
            if let Some(shared) = self.shared.get() {
                shared.exhausted(&resource, wait);
            }
            if let Some(until) = Instant::now().checked_add(wait) {
                for lane in self.lanes.for_bucket(&resource) {
                    lane.pause_until(until);
                }
            }
        }
        self.buckets.lock().insert(resource, bucket.clone());
        Some(bucket)
    }

    fn pause_credential(&self, wait: Duration) {
        #[cfg(feature = "redis")]
        if let Some(shared) = self.shared.get() {
            shared.pause(wait);
        }
        let Some(until) = Instant::now().checked_add(wait) else {
            return;
        };
        for lane in self.lanes.all() {
            lane.pause_until(until);
        }
        let mut paused = self.paused_until.lock();
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }
}

impl ResponseObserver for Limits {
    fn observe(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> Verdict {
        let bucket = self.record(headers);
        if !matches!(status, 403 | 429) {
            return Verdict::Accept;
        }
        if is_secondary(headers, body) {
            let wait = retry_after(headers).unwrap_or(SECONDARY_DEFAULT_PAUSE);
            self.secondary_hits.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("cortex_github_secondary_limited_total", "credential" => self.id.clone())
                .increment(1);
            tracing::warn!(credential = %self.id, wait_s = wait.as_secs(), "GitHub secondary rate limit; pausing every lane of this credential");
            self.pause_credential(wait);
            return Verdict::RetryAfter(wait);
        }
        match bucket {
            Some(b) if b.remaining == 0 => {
                let wait = Duration::from_secs(b.reset.saturating_sub(now_epoch()) + 1);
                tracing::warn!(credential = %self.id, bucket = %b.resource, wait_s = wait.as_secs(), "GitHub primary rate limit exhausted");
                Verdict::RetryAfter(wait)
            }
            // A plain 403 is a permission problem, not a limit.
            _ => Verdict::Accept,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[tokio::test]
    async fn plain_forbidden_is_not_a_limit() {
        let limits = Limits::new(&Executor::default(), "t1", GithubConcurrency::default());
        let h = headers(&[
            ("x-ratelimit-remaining", "4999"),
            ("x-ratelimit-reset", "0"),
        ]);
        let v = limits.observe(
            403,
            &h,
            br#"{"message":"Resource not accessible by integration"}"#,
        );
        assert_eq!(v, Verdict::Accept);
        assert!(limits.paused_for().is_none());
    }

    #[tokio::test]
    async fn secondary_pauses_every_lane() {
        let limits = Limits::new(&Executor::default(), "t2", GithubConcurrency::default());
        let v = limits.observe(
            403,
            &HeaderMap::new(),
            b"You have exceeded a secondary rate limit",
        );
        assert_eq!(v, Verdict::RetryAfter(SECONDARY_DEFAULT_PAUSE));
        for kind in [LaneKind::Read, LaneKind::Search, LaneKind::Write] {
            assert!(limits.lane(kind).paused_until().is_some());
        }
        let v = limits.observe(429, &headers(&[("retry-after", "7")]), b"");
        assert_eq!(v, Verdict::RetryAfter(Duration::from_secs(7)));
    }

    #[tokio::test]
    async fn empty_bucket_pauses_only_its_lanes() {
        let limits = Limits::new(&Executor::default(), "t3", GithubConcurrency::default());
        let reset = (now_epoch() + 30).to_string();
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-limit", "30"),
            ("x-ratelimit-resource", "search"),
            ("x-ratelimit-reset", &reset),
        ]);
        assert_eq!(limits.observe(200, &h, b"{}"), Verdict::Accept);
        assert!(limits.lane(LaneKind::Search).paused_until().is_some());
        assert!(limits.lane(LaneKind::Read).paused_until().is_none());
        assert!(matches!(
            limits.observe(403, &h, b"{\"message\":\"API rate limit exceeded\"}"),
            Verdict::RetryAfter(_)
        ));
    }

    #[tokio::test]
    async fn an_empty_graphql_bucket_holds_the_write_lane_only() {
        let limits = Limits::new(&Executor::default(), "t4", GithubConcurrency::default());
        let reset = (now_epoch() + 30).to_string();
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-resource", "graphql"),
            ("x-ratelimit-reset", &reset),
        ]);
        assert_eq!(limits.observe(200, &h, b"{}"), Verdict::Accept);
        assert!(limits.lane(LaneKind::Write).paused_until().is_some());
        assert!(limits.lane(LaneKind::Read).paused_until().is_none());
        let graphql = limits
            .buckets()
            .into_iter()
            .find(|b| b.resource == "graphql");
        assert_eq!(graphql.map(|b| b.limit), Some(5000));
    }
}
