//! The one pooled outbound HTTP client and the upstream-call helper: per-attempt lane
//! admission, conditional GETs through the shared cache with single-flight, retries with
//! exponential back-off and jitter, Retry-After handling, and cross-origin redirects
//! re-issued without credentials: every header that can carry one (marked sensitive,
//! `Authorization`, `Cookie`, API-key and token headers, see [`is_credential_header`]) is
//! dropped at the first hop to another origin. An [`Upstream`] built with
//! [`Upstream::with_guard`] also checks every address it connects to (after DNS, through
//! its resolver, and literal IPs before each hop) and connects only to checked ones.
//!
//! This file owns the client, the request/response shapes and the call engine; credential
//! headers and the redirect policy live in `credentials`, the address guard in `guard`,
//! response classification and retry budgets in `retry`.
//! Owns transport mechanics only. It must not know which upstream it talks to (callers
//! classify responses through `ResponseObserver`) and imports nothing from `server`,
//! `transport` or any toolset.

mod body;
mod credentials;
mod guard;
mod retry;
#[cfg(test)]
mod tests;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use reqwest::Method;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::runtime::budget::{Budget, BudgetExceeded, Held};
use crate::runtime::cache::{CacheKey, ConditionalCache, StoredResponse};
use crate::runtime::executor::{ExecError, Lane};
use crate::runtime::telemetry;

pub use body::BodyLimit;
use body::{BodyError, BoundedBody};
pub use credentials::{is_credential_header, redirect_policy, strip_credentials};
use guard::GuardedResolver;
pub use guard::{AddressGuard, AddressRefused};
pub use retry::{DefaultObserver, ResponseObserver, RetryPolicy, Verdict, retry_after};

const MAX_REDIRECTS: usize = 5;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const ERROR_BODY_SNIPPET: usize = 2048;

#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("could not build the HTTP client: {message}")]
    Client { message: String },
    #[error(
        "{host} is rate limiting this request; try again in {retry_after_secs} s (gave up after {attempts} attempt(s) and {waited_secs} s of waiting)"
    )]
    RateLimited {
        host: String,
        retry_after_secs: u64,
        attempts: u32,
        waited_secs: u64,
    },
    #[error("request to {host} failed after {attempts} attempt(s): {message}")]
    Transport {
        host: String,
        attempts: u32,
        message: String,
    },
    #[error("{host} answered {status}: {body}")]
    Rejected {
        host: String,
        status: u16,
        body: String,
    },
    #[error("the answer from {host} does not fit: {over}")]
    TooLarge { host: String, over: BudgetExceeded },
    #[error("the request to {host} was cancelled")]
    Cancelled { host: String },
    #[error("the request deadline passed while waiting for {host}")]
    Deadline { host: String },
    #[error(transparent)]
    Lane(#[from] ExecError),
}

impl UpstreamError {
    /// The failure's kind, a fixed word (span attribute `error.type`).
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Client { .. } => "client",
            UpstreamError::RateLimited { .. } => "rate_limited",
            UpstreamError::Transport { .. } => "transport",
            UpstreamError::Rejected { .. } => "rejected",
            UpstreamError::TooLarge { .. } => "too_large",
            UpstreamError::Cancelled { .. } => "cancelled",
            UpstreamError::Deadline { .. } => "deadline",
            UpstreamError::Lane(_) => "lane",
        }
    }
}

#[derive(Clone)]
pub struct UpstreamRequest {
    pub method: Method,
    pub url: Url,
    /// Includes Authorization when the call is authenticated.
    pub headers: HeaderMap,
    /// Credential fingerprint (`cache::fingerprint`), never the secret.
    pub credential: String,
    pub body: Option<Bytes>,
    pub lane: Arc<Lane>,
    pub deadline: Instant,
    pub cancel: CancellationToken,
    pub retry: RetryPolicy,
    pub use_cache: bool,
    /// The calling tool's memory budget: the body is charged to it as it arrives.
    pub budget: Budget,
    /// How much of the body to keep.
    pub keep: BodyLimit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Fetched from upstream (and stored when storable).
    Miss,
    /// Upstream answered 304; the stored body was served.
    Revalidated,
    /// Not eligible for the cache.
    Bypass,
    /// Joined an identical in-flight request.
    Shared,
}

impl CacheOutcome {
    /// The outcome as a word (span attribute `cortex.cache`).
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Miss => "miss",
            CacheOutcome::Revalidated => "revalidated",
            CacheOutcome::Bypass => "bypass",
            CacheOutcome::Shared => "shared",
        }
    }
}

#[derive(Debug, Clone)]
pub struct UpstreamResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Bytes dropped from the front of the body under [`BodyLimit::Tail`].
    pub dropped: u64,
    /// Keeps the body charged to the caller's budget while the response lives.
    pub hold: Option<Arc<Held>>,
    pub outcome: CacheOutcome,
    pub attempts: u32,
}

impl UpstreamResponse {
    fn new(status: u16, headers: HeaderMap, body: BoundedBody, attempts: u32) -> Self {
        UpstreamResponse {
            status,
            headers,
            body: body.bytes,
            dropped: body.dropped,
            hold: body.hold,
            outcome: CacheOutcome::Bypass,
            attempts,
        }
    }
}

/// One failed attempt at the transport level.
struct AttemptError {
    message: String,
    retryable: bool,
    /// The body did not fit the call's budget (never retried).
    too_large: Option<BudgetExceeded>,
}

impl AttemptError {
    fn fatal(message: String) -> Self {
        AttemptError {
            message,
            retryable: false,
            too_large: None,
        }
    }
}

impl From<BodyError> for AttemptError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::Transport(e) => e.into(),
            BodyError::TooLarge(over) => AttemptError {
                message: over.to_string(),
                retryable: false,
                too_large: Some(over),
            },
        }
    }
}

impl From<reqwest::Error> for AttemptError {
    fn from(e: reqwest::Error) -> Self {
        AttemptError {
            retryable: e.is_timeout() || e.is_connect(),
            message: e.without_url().to_string(),
            too_large: None,
        }
    }
}

type Raw = (u16, HeaderMap, BoundedBody);

/// The pooled client plus the conditional cache; cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    cache: ConditionalCache,
    guard: Option<Arc<dyn AddressGuard>>,
}

fn host_of(url: &Url) -> String {
    url.host_str().unwrap_or("unknown").to_string()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Every header whose name ends in `api-version`, joined, for the cache key.
fn api_version(headers: &HeaderMap) -> String {
    let mut parts: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n.as_str().ends_with("api-version"))
        .map(|(n, v)| format!("{}={}", n, v.to_str().unwrap_or("")))
        .collect();
    parts.sort();
    parts.join(";")
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_SNIPPET)]);
    text.into_owned()
}

fn fits_deadline(deadline: Instant, wait: Duration) -> bool {
    Instant::now()
        .checked_add(wait)
        .is_some_and(|at| at < deadline)
}

impl Upstream {
    pub fn new(user_agent: &str, cache: ConditionalCache) -> Result<Self, UpstreamError> {
        Self::build(user_agent, cache, None)
    }

    /// A client (sharing `cache`) that connects only to addresses `guard` allows: names
    /// are resolved by a filtering resolver and literal IPs checked before each hop. It
    /// ignores HTTP(S)_PROXY, since through a proxy the peer could not be checked.
    pub fn with_guard(
        user_agent: &str,
        cache: ConditionalCache,
        guard: Arc<dyn AddressGuard>,
    ) -> Result<Self, UpstreamError> {
        Self::build(user_agent, cache, Some(guard))
    }

    fn build(
        user_agent: &str,
        cache: ConditionalCache,
        guard: Option<Arc<dyn AddressGuard>>,
    ) -> Result<Self, UpstreamError> {
        // Same-origin redirects are followed here; cross-origin ones stop and are
        // re-issued by `attempt` without credentials.
        let mut builder = reqwest::Client::builder()
            .user_agent(user_agent)
            .timeout(CLIENT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(60))
            .redirect(redirect_policy());
        if let Some(g) = &guard {
            builder = builder
                .no_proxy()
                .dns_resolver(Arc::new(GuardedResolver(g.clone())));
        }
        let client = builder.build().map_err(|e| UpstreamError::Client {
            message: error_chain(&e),
        })?;
        Ok(Upstream {
            client,
            cache,
            guard,
        })
    }

    pub fn cache(&self) -> &ConditionalCache {
        &self.cache
    }

    /// Sends `req`: cached, coalesced conditional GETs when `use_cache`, retries per the
    /// policy and the observer's verdicts, each attempt admitted by `req.lane`. With
    /// traces exported, the request is a span (child of the calling tool's) whose W3C
    /// `traceparent` goes upstream.
    pub async fn send(
        &self,
        mut req: UpstreamRequest,
        observer: Arc<dyn ResponseObserver>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        use tracing::Instrument;
        let span = telemetry::upstream_span(req.method.as_str(), &host_of(&req.url));
        telemetry::inject(&span, &mut req.headers);
        let result = self
            .send_untraced(req, observer)
            .instrument(span.clone())
            .await;
        match &result {
            Ok(resp) => telemetry::record_upstream_answer(
                &span,
                resp.status,
                resp.outcome.as_str(),
                resp.attempts,
            ),
            Err(e) => {
                if let UpstreamError::Rejected { status, .. } = e {
                    span.record("http.response.status_code", *status);
                }
                telemetry::record_upstream_failure(&span, e.kind());
            }
        }
        result
    }

    async fn send_untraced(
        &self,
        req: UpstreamRequest,
        observer: Arc<dyn ResponseObserver>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        if !(req.use_cache && req.method == Method::GET && req.body.is_none()) {
            let mut resp = self.execute(&req, observer.as_ref(), None).await?;
            resp.outcome = CacheOutcome::Bypass;
            return Ok(resp);
        }
        let key = CacheKey::new(
            &req.credential,
            req.method.as_str(),
            req.url.as_str(),
            header_str(&req.headers, "accept"),
            &format!("{}{}", api_version(&req.headers), req.keep.cache_key_part()),
        );
        let host = host_of(&req.url);
        let cancel = req.cancel.clone();
        let deadline = req.deadline;
        let fallback = req.clone();
        let this = self.clone();
        let obs = observer.clone();
        let flight = self.cache.single_flight(&key, move || async move {
            this.cached_get(key, &req, obs.as_ref()).await
        });
        let (result, joined) = tokio::select! {
            r = flight => r,
            _ = cancel.cancelled() => return Err(UpstreamError::Cancelled { host }),
            _ = tokio::time::sleep_until(deadline.into()) => return Err(UpstreamError::Deadline { host }),
        };
        if !joined {
            return result;
        }
        match result {
            // The flight's starter was cancelled, not us: fetch on our own.
            Err(
                UpstreamError::Cancelled { .. } | UpstreamError::Lane(ExecError::Cancelled { .. }),
            ) if !cancel.is_cancelled() => self.cached_get(key, &fallback, observer.as_ref()).await,
            other => other.map(|mut r| {
                r.outcome = CacheOutcome::Shared;
                r
            }),
        }
    }

    async fn cached_get(
        &self,
        key: CacheKey,
        req: &UpstreamRequest,
        observer: &dyn ResponseObserver,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let stored = self.cache.get(&key).await;
        let tier = self.cache.shared_tier().cloned();
        if let Some(fresh) = stored
            .as_ref()
            .filter(|s| tier.is_some() && s.stored_at.elapsed() < SHARED_FRESH)
        {
            // Replicas sharing a cache: fetched by one of them an instant ago, so as if
            // this call had joined that fetch (a lone process always revalidates).
            return Ok(from_stored(
                fresh,
                HeaderMap::new(),
                0,
                CacheOutcome::Shared,
            ));
        }
        let mut locked = None;
        if stored.is_none()
            && let Some(tier) = tier
        {
            if tier.lock(&key).await {
                locked = Some(tier);
            } else if let Some(fresh) = self.wait_for_other_replica(&key, &tier, req).await {
                // Another replica fetched it an instant ago: served without a request.
                return Ok(from_stored(
                    &fresh,
                    HeaderMap::new(),
                    0,
                    CacheOutcome::Shared,
                ));
            }
        }
        let result = self.fetch_and_store(key, req, observer, stored).await;
        if let Some(tier) = locked {
            tier.unlock(&key).await;
        }
        result
    }

    /// While another replica holds `key`'s fetch lock, waits (polling, bounded by the
    /// lock's lifetime and the request's deadline) for the entry it stores; `None` when
    /// it let go without one (an error, a response that is not stored).
    async fn wait_for_other_replica(
        &self,
        key: &CacheKey,
        tier: &Arc<dyn crate::runtime::cache::SharedTier>,
        req: &UpstreamRequest,
    ) -> Option<Arc<StoredResponse>> {
        let until = (std::time::Instant::now() + SHARED_FETCH_WAIT).min(req.deadline);
        while std::time::Instant::now() < until && !req.cancel.is_cancelled() {
            tokio::time::sleep(SHARED_FETCH_POLL).await;
            if let Some(fresh) = self.cache.get_shared(key).await {
                return Some(fresh);
            }
            if !tier.locked(key).await {
                return self.cache.get_shared(key).await;
            }
        }
        None
    }

    async fn fetch_and_store(
        &self,
        key: CacheKey,
        req: &UpstreamRequest,
        observer: &dyn ResponseObserver,
        stored: Option<Arc<StoredResponse>>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let mut resp = self.execute(req, observer, stored.as_deref()).await?;
        resp.outcome = CacheOutcome::Miss;
        match (resp.status, stored) {
            (304, Some(stored)) => {
                self.cache.note_revalidated();
                Ok(from_stored(
                    &stored,
                    resp.headers,
                    resp.attempts,
                    CacheOutcome::Revalidated,
                ))
            }
            // A tail of the body is not the resource: never stored.
            (200, _) if resp.dropped == 0 => {
                if let Err(e) = self
                    .cache
                    .insert(key, 200, &resp.headers, &[], resp.body.clone())
                    .await
                {
                    tracing::trace!(url = %crate::config::redact_url(&req.url), "not cached: {e}");
                }
                Ok(resp)
            }
            _ => Ok(resp),
        }
    }

    /// The retry loop around single attempts.
    async fn execute(
        &self,
        req: &UpstreamRequest,
        observer: &dyn ResponseObserver,
        stored: Option<&StoredResponse>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let host = host_of(&req.url);
        let idempotent = matches!(req.method, Method::GET | Method::HEAD);
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(req.retry.base)
            .with_max_delay(MAX_BACKOFF)
            .with_jitter()
            .without_max_times()
            .build();
        let mut error_backoff = ExponentialBuilder::default()
            .with_min_delay(req.retry.base)
            .with_max_delay(req.retry.max_error_wait)
            .with_jitter()
            .without_max_times()
            .build();
        let mut attempts = 0u32;
        let mut limit_retries = 0u32;
        let mut error_retries = 0u32;
        let mut waited = Duration::ZERO;
        let mut error_waited = Duration::ZERO;
        loop {
            attempts += 1;
            let (started, outcome) = req
                .lane
                .run(req.deadline, &req.cancel, async {
                    (Instant::now(), self.attempt(req, stored).await)
                })
                .await?;
            // A failure may be retried while its own budget (count and total wait) lasts.
            let mut error_retry = |error_waited: &mut Duration| {
                let wait = error_backoff.next().unwrap_or(req.retry.max_error_wait);
                let ok = idempotent
                    && error_retries < req.retry.max_error_retries
                    && *error_waited + wait <= req.retry.max_error_wait
                    && fits_deadline(req.deadline, wait);
                ok.then(|| {
                    error_retries += 1;
                    *error_waited += wait;
                    wait
                })
            };
            let wait = match outcome {
                Ok((status, headers, body)) => {
                    metrics::counter!("cortex_upstream_requests_total",
                        "host" => host.clone(), "status" => status.to_string())
                    .increment(1);
                    let verdict = observer.observe(status, &headers, &body.bytes);
                    // Adaptive lanes learn from verdicts: a limit answer is congestion,
                    // an accepted answer below 500 a success.
                    match verdict {
                        Verdict::RetryAfter(_) => req.lane.congested(started),
                        Verdict::Accept if status < 500 => req.lane.succeeded(started),
                        _ => {}
                    }
                    match verdict {
                        Verdict::RetryAfter(d) => {
                            if let Some(until) = Instant::now().checked_add(d) {
                                req.lane.pause_until(until);
                            }
                            let wait = d.max(backoff.next().unwrap_or(MAX_BACKOFF));
                            if !(limit_retries < req.retry.max_retries
                                && waited + wait <= req.retry.max_total_wait
                                && fits_deadline(req.deadline, wait))
                            {
                                return Err(UpstreamError::RateLimited {
                                    host,
                                    retry_after_secs: d.as_secs() + u64::from(d.subsec_nanos() > 0),
                                    attempts,
                                    waited_secs: waited.as_secs(),
                                });
                            }
                            limit_retries += 1;
                            waited += wait;
                            wait
                        }
                        Verdict::Fail => {
                            return Err(UpstreamError::Rejected {
                                host,
                                status,
                                body: snippet(&body.bytes),
                            });
                        }
                        Verdict::Accept if status >= 500 => match error_retry(&mut error_waited) {
                            Some(wait) => {
                                tracing::debug!(%host, status, attempts, "retrying after server error");
                                wait
                            }
                            None => {
                                return Ok(UpstreamResponse::new(status, headers, body, attempts));
                            }
                        },
                        Verdict::Accept => {
                            return Ok(UpstreamResponse::new(status, headers, body, attempts));
                        }
                    }
                }
                Err(e) => {
                    metrics::counter!("cortex_upstream_requests_total",
                        "host" => host.clone(), "status" => "error")
                    .increment(1);
                    let retry = if e.retryable {
                        error_retry(&mut error_waited)
                    } else {
                        None
                    };
                    if let Some(over) = e.too_large {
                        return Err(UpstreamError::TooLarge { host, over });
                    }
                    let Some(wait) = retry else {
                        return Err(UpstreamError::Transport {
                            host,
                            attempts,
                            message: e.message,
                        });
                    };
                    tracing::debug!(%host, attempts, "retrying after {}", e.message);
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = req.cancel.cancelled() => return Err(UpstreamError::Cancelled { host }),
            }
        }
    }

    /// One attempt: the request (conditional when `stored`), following cross-origin
    /// redirects without credentials, and the whole body.
    async fn attempt(
        &self,
        req: &UpstreamRequest,
        stored: Option<&StoredResponse>,
    ) -> Result<Raw, AttemptError> {
        let mut method = req.method.clone();
        let mut url = req.url.clone();
        let mut headers = req.headers.clone();
        let mut body = req.body.clone();
        if let Some(s) = stored {
            if let Some(v) = s.etag().and_then(|v| HeaderValue::from_str(v).ok()) {
                headers.insert(header::IF_NONE_MATCH, v);
            }
            if let Some(v) = s
                .last_modified()
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                headers.insert(header::IF_MODIFIED_SINCE, v);
            }
        }
        let mut hops = 0usize;
        loop {
            let remaining = req.deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(AttemptError::fatal(
                    "the request deadline passed".to_string(),
                ));
            }
            self.check_literal(&url)?;
            let mut rb = self
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone())
                .timeout(remaining.min(CLIENT_TIMEOUT));
            if let Some(b) = &body {
                rb = rb.body(b.clone());
            }
            let resp = rb.send().await.map_err(|e| self.send_error(e))?;
            let status = resp.status();
            let location = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| resp.url().join(l).ok());
            if let (true, Some(next)) = (
                status.is_redirection() && status != StatusCode::NOT_MODIFIED,
                location,
            ) {
                if hops >= MAX_REDIRECTS {
                    return Err(AttemptError::fatal(format!(
                        "more than {MAX_REDIRECTS} redirects"
                    )));
                }
                hops += 1;
                strip_credentials(&mut headers);
                if !matches!(status.as_u16(), 307 | 308) && method != Method::HEAD {
                    method = Method::GET;
                    body = None;
                    headers.remove(header::CONTENT_TYPE);
                    headers.remove(header::CONTENT_LENGTH);
                }
                url = next;
                continue;
            }
            let out_headers = resp.headers().clone();
            let body = body::read(resp, &req.budget, req.keep, &host_of(&url)).await?;
            return Ok((status.as_u16(), out_headers, body));
        }
    }
}

/// `e` and its sources (reqwest's builder error alone says only "builder error"; the
/// cause, e.g. that no root certificates could be loaded, is in the source chain).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// How long a replica waits for another one that holds a key's shared fetch lock.
const SHARED_FETCH_WAIT: Duration = crate::runtime::cache::SHARED_LOCK_FOR;
const SHARED_FETCH_POLL: Duration = Duration::from_millis(15);
/// With a shared cache, an entry fetched this recently (by any replica) is served
/// without revalidating it: what joining that fetch would have returned.
const SHARED_FRESH: Duration = Duration::from_secs(1);

/// A response served from `stored`: its kept headers, then `fresh` ones (a 304's),
/// without the framing headers.
fn from_stored(
    stored: &StoredResponse,
    fresh: HeaderMap,
    attempts: u32,
    outcome: CacheOutcome,
) -> UpstreamResponse {
    let mut headers = HeaderMap::new();
    for (name, value) in &stored.headers {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(n, v);
        }
    }
    for (name, value) in &fresh {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            headers.insert(name.clone(), value.clone());
        }
    }
    UpstreamResponse {
        status: stored.status,
        headers,
        body: stored.body.clone(),
        dropped: 0,
        hold: None,
        outcome,
        attempts,
    }
}
