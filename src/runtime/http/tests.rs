//! Tests of the upstream-call helper against fake servers: cache revalidation,
//! single-flight, retries and back-off, Retry-After, credential-dropping redirects.
use super::*;
use crate::runtime::cache::fingerprint;
use crate::runtime::executor::{Executor, LaneConfig};
use axum::{Router, response::IntoResponse, routing::any};
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone, Default)]
struct Seen {
    hits: Arc<AtomicUsize>,
    inm: Arc<parking_lot::Mutex<Vec<Option<String>>>>,
    auth: Arc<parking_lot::Mutex<Vec<bool>>>,
}

impl Seen {
    fn hit(&self, h: &HeaderMap) -> usize {
        let inm = h
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.inm.lock().push(inm);
        self.auth.lock().push(
            h.contains_key(header::AUTHORIZATION)
                || h.contains_key("x-api-key")
                || h.contains_key("x-vendor-key"),
        );
        self.hits.fetch_add(1, Ordering::SeqCst) + 1
    }
    fn count(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn fake(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(10),
        ..RetryPolicy::default()
    }
}

fn request(method: Method, url: &str) -> UpstreamRequest {
    let exec = Executor::default();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer secret-token"),
    );
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert("x-api-key", HeaderValue::from_static("key-1"));
    let mut custom = HeaderValue::from_static("key-2");
    custom.set_sensitive(true);
    headers.insert("x-vendor-key", custom);
    UpstreamRequest {
        method,
        url: Url::parse(url).unwrap(),
        headers,
        credential: fingerprint("secret-token"),
        body: None,
        lane: exec.lane("test", || LaneConfig::concurrency(8)),
        deadline: Instant::now() + Duration::from_secs(20),
        cancel: CancellationToken::new(),
        retry: fast_retry(),
        use_cache: true,
        budget: Budget::unlimited(),
        keep: BodyLimit::Whole,
    }
}

fn upstream() -> Upstream {
    Upstream::new("cortex-test", ConditionalCache::default()).unwrap()
}

fn obs() -> Arc<dyn ResponseObserver> {
    Arc::new(DefaultObserver)
}

/// A fake whose handler gets the request headers and its 1-based hit number.
async fn serve_with(
    seen: &Seen,
    f: impl Fn(&HeaderMap, usize) -> axum::response::Response + Clone + Send + Sync + 'static,
) -> String {
    let s = seen.clone();
    let route = any(move |h: HeaderMap| {
        let s = s.clone();
        let f = f.clone();
        async move {
            let n = s.hit(&h);
            f(&h, n)
        }
    });
    fake(Router::new().route("/r", route)).await
}

#[tokio::test]
async fn etag_revalidation_serves_stored_body() {
    let seen = Seen::default();
    let base = serve_with(&seen, |h, _| {
        if h.get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == b"\"v1\"")
        {
            (StatusCode::NOT_MODIFIED, [(header::ETAG, "\"v1\"")]).into_response()
        } else {
            (StatusCode::OK, [(header::ETAG, "\"v1\"")], "hello").into_response()
        }
    })
    .await;
    let up = upstream();
    let url = format!("{base}/r");
    let first = up.send(request(Method::GET, &url), obs()).await.unwrap();
    assert_eq!(first.outcome, CacheOutcome::Miss);
    assert_eq!(&first.body[..], b"hello");
    let second = up.send(request(Method::GET, &url), obs()).await.unwrap();
    assert_eq!(second.outcome, CacheOutcome::Revalidated);
    assert_eq!(second.status, 200);
    assert_eq!(&second.body[..], b"hello");
    assert_eq!(seen.count(), 2);
    assert_eq!(seen.inm.lock()[1].as_deref(), Some("\"v1\""));
}

#[tokio::test]
async fn no_store_is_not_cached() {
    let seen = Seen::default();
    let base = serve_with(&seen, |_, n| {
        let body = format!("v{n}");
        (
            StatusCode::OK,
            [(header::ETAG, "\"x\""), (header::CACHE_CONTROL, "no-store")],
            body,
        )
            .into_response()
    })
    .await;
    let up = upstream();
    let url = format!("{base}/r");
    up.send(request(Method::GET, &url), obs()).await.unwrap();
    let second = up.send(request(Method::GET, &url), obs()).await.unwrap();
    assert_eq!(second.outcome, CacheOutcome::Miss);
    assert_eq!(&second.body[..], b"v2");
    assert_eq!(seen.inm.lock()[1], None);
}

#[tokio::test]
async fn identical_concurrent_gets_share_one_request() {
    let seen = Seen::default();
    let s = seen.clone();
    let route = any(move |h: HeaderMap| {
        let s = s.clone();
        async move {
            s.hit(&h);
            tokio::time::sleep(Duration::from_millis(300)).await;
            (StatusCode::OK, [(header::ETAG, "\"c\"")], "shared").into_response()
        }
    });
    let base = fake(Router::new().route("/r", route)).await;
    let up = upstream();
    let url = format!("{base}/r");
    let calls = (0..20).map(|_| up.send(request(Method::GET, &url), obs()));
    let outs = futures::future::join_all(calls).await;
    assert_eq!(seen.count(), 1);
    let outs: Vec<_> = outs.into_iter().map(|r| r.unwrap()).collect();
    assert!(outs.iter().all(|r| &r.body[..] == b"shared"));
    let shared = outs
        .iter()
        .filter(|r| r.outcome == CacheOutcome::Shared)
        .count();
    assert_eq!(shared, 19);
}

#[tokio::test]
async fn get_retried_on_500_then_succeeds() {
    let seen = Seen::default();
    let base = serve_with(&seen, |_, n| {
        if n == 1 {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        } else {
            (StatusCode::OK, "ok").into_response()
        }
    })
    .await;
    let resp = upstream()
        .send(request(Method::GET, &format!("{base}/r")), obs())
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.attempts, 2);
    assert_eq!(seen.count(), 2);
}

#[tokio::test]
async fn a_persistent_500_is_retried_within_its_own_budget() {
    let seen = Seen::default();
    let base = serve_with(&seen, |_, _| StatusCode::BAD_GATEWAY.into_response()).await;
    let mut req = request(Method::GET, &format!("{base}/r"));
    // Long rate-limit allowances do not stretch the failure retries.
    req.retry.max_retries = 8;
    req.retry.max_total_wait = Duration::from_secs(3600);
    let resp = upstream().send(req, obs()).await.unwrap();
    assert_eq!(resp.status, 502);
    assert_eq!(resp.attempts, 1 + RetryPolicy::default().max_error_retries);
    assert_eq!(seen.count(), 4);
}

#[tokio::test]
async fn post_not_retried_on_500() {
    let seen = Seen::default();
    let base = serve_with(&seen, |_, _| {
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    })
    .await;
    let resp = upstream()
        .send(request(Method::POST, &format!("{base}/r")), obs())
        .await
        .unwrap();
    assert_eq!(resp.status, 500);
    assert_eq!(resp.attempts, 1);
    assert_eq!(resp.outcome, CacheOutcome::Bypass);
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn post_retried_after_429_retry_after() {
    let seen = Seen::default();
    let base = serve_with(&seen, |_, n| {
        if n == 1 {
            (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")]).into_response()
        } else {
            (StatusCode::CREATED, "made").into_response()
        }
    })
    .await;
    let started = Instant::now();
    let resp = upstream()
        .send(request(Method::POST, &format!("{base}/r")), obs())
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(resp.status, 201);
    assert_eq!(resp.attempts, 2);
    assert_eq!(seen.count(), 2);
}

#[tokio::test]
async fn retry_after_beyond_budget_is_rate_limited_quickly() {
    let seen = Seen::default();
    let base = serve_with(&seen, |_, _| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "120")],
        )
            .into_response()
    })
    .await;
    let started = Instant::now();
    let err = upstream()
        .send(request(Method::GET, &format!("{base}/r")), obs())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    match &err {
        UpstreamError::RateLimited {
            retry_after_secs,
            attempts,
            ..
        } => {
            assert_eq!(*retry_after_secs, 120);
            assert_eq!(*attempts, 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("try again in 120 s"));
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn cross_origin_redirect_drops_every_credential_header() {
    let target = Seen::default();
    let target_base = serve_with(&target, |_, _| (StatusCode::OK, "there").into_response()).await;
    let origin = Seen::default();
    let location = format!("{target_base}/r");
    let base = serve_with(&origin, move |_, _| {
        (StatusCode::FOUND, [(header::LOCATION, location.clone())]).into_response()
    })
    .await;
    let resp = upstream()
        .send(request(Method::GET, &format!("{base}/r")), obs())
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(&resp.body[..], b"there");
    assert_eq!(*origin.auth.lock(), vec![true]);
    assert_eq!(*target.auth.lock(), vec![false]);
}

#[test]
fn cache_key_differs_by_credential() {
    let a = fingerprint("secret-a");
    let b = fingerprint("secret-b");
    assert!(!a.contains("secret"));
    let ka = CacheKey::new(&a, "GET", "https://h/x", "application/json", "");
    let kb = CacheKey::new(&b, "GET", "https://h/x", "application/json", "");
    assert_ne!(ka, kb);
}

/// A body of `n` bytes (lines of digits), sent as `chunks` stream chunks without a
/// `Content-Length`, or with one when `chunks` is 0.
fn big_body(n: usize, chunks: usize) -> axum::response::Response {
    let text: Vec<u8> = (0..n).map(|i| b'0' + (i % 10) as u8).collect();
    if chunks == 0 {
        return (StatusCode::OK, text).into_response();
    }
    let size = n.div_ceil(chunks);
    let parts: Vec<Result<Bytes, std::io::Error>> = text
        .chunks(size)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    axum::body::Body::from_stream(futures::stream::iter(parts)).into_response()
}

#[tokio::test]
async fn a_body_larger_than_the_call_budget_fails_naming_the_budget() {
    for chunks in [0, 64] {
        let seen = Seen::default();
        let base = serve_with(&seen, move |_, _| big_body(3 << 20, chunks)).await;
        let mut req = request(Method::GET, &format!("{base}/r"));
        let budget = Budget::new(1 << 20);
        req.budget = budget.clone();
        let err = upstream().send(req, obs()).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, UpstreamError::TooLarge { .. }), "{text}");
        assert!(text.contains("--call-memory-budget-bytes"), "{text}");
        assert!(text.contains("127.0.0.1"), "names the host: {text}");
        assert_eq!(seen.count(), 1, "not retried");
        assert_eq!(budget.used(), 0, "nothing stays charged after the failure");
    }
}

#[tokio::test]
async fn a_body_within_the_budget_stays_charged_while_the_response_lives() {
    let seen = Seen::default();
    let base = serve_with(&seen, |_, _| big_body(300_000, 16)).await;
    let mut req = request(Method::GET, &format!("{base}/r"));
    let budget = Budget::new(1 << 20);
    req.budget = budget.clone();
    req.use_cache = false;
    let resp = upstream().send(req, obs()).await.unwrap();
    assert_eq!(resp.body.len(), 300_000);
    assert_eq!(resp.dropped, 0);
    assert_eq!(budget.used(), 300_000);
    let copy = resp.clone();
    drop(resp);
    assert_eq!(budget.used(), 300_000, "a clone keeps the charge");
    drop(copy);
    assert_eq!(budget.used(), 0);
}

#[tokio::test]
async fn a_tail_keeps_the_last_bytes_within_the_budget_and_is_not_cached() {
    let seen = Seen::default();
    let n = 5 << 20;
    let base = serve_with(&seen, move |_, _| big_body(n, 80)).await;
    let up = upstream();
    for round in 1..=2 {
        let mut req = request(Method::GET, &format!("{base}/r"));
        let budget = Budget::new(1 << 20);
        req.budget = budget.clone();
        req.keep = BodyLimit::Tail(100_000);
        let resp = up.send(req, obs()).await.unwrap();
        assert_eq!(resp.body.len(), 100_000);
        assert_eq!(resp.dropped, (n - 100_000) as u64);
        let expected: Vec<u8> = (n - 100_000..n).map(|i| b'0' + (i % 10) as u8).collect();
        assert_eq!(&resp.body[..], &expected[..], "the last bytes, in order");
        assert!(budget.used() <= 100_000 + 1024, "{}", budget.used());
        assert_eq!(
            seen.count(),
            round,
            "a cut body is never served from the cache"
        );
    }
    assert!(seen.inm.lock().iter().all(Option::is_none));
}
