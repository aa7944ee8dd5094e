//! The conditional-request cache: stored upstream 200 responses keyed by credential
//! fingerprint, method, URL, Accept and API version, revalidated with If-None-Match /
//! If-Modified-Since, bounded by body bytes; plus single-flight so identical concurrent
//! requests share one in-flight future.
//!
//! With a [`SharedTier`] (on a Redis store: [`redis::RedisTier`]) the process's cache is
//! the first layer of one every replica shares: a local miss reads the shared entry, a
//! stored response is written there too (compressed, size-capped, with a TTL), and a
//! short lock per key lets one replica fetch while the others wait for its entry.
//!
//! Owns caching and request coalescing only. It must not know what the upstream is and
//! imports nothing from `server`, `transport` or any toolset; secrets are never stored,
//! only their fingerprints.

use std::{any::Any, collections::HashMap, future::Future, sync::Arc, time::Instant};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use headers::HeaderMapExt;
use http::HeaderMap;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

/// Default total cache size: 64 MiB of bodies.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Default largest single body that is stored: 1 MiB.
pub const DEFAULT_MAX_ENTRY_BYTES: usize = 1024 * 1024;
/// How long one replica may hold a key's shared fetch lock (others wait that long at
/// most for its entry).
pub const SHARED_LOCK_FOR: std::time::Duration = std::time::Duration::from_secs(5);
/// Bookkeeping bytes charged per entry on top of its body and headers.
const ENTRY_OVERHEAD: usize = 128;
/// Response headers always kept with a stored entry.
const KEPT_HEADERS: [&str; 4] = ["etag", "last-modified", "link", "content-type"];

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum CacheError {
    #[error("response is not storable (status {status}); it was passed through uncached")]
    NotStorable { status: u16 },
    #[error(
        "response body of {size} bytes exceeds the {max} byte per-entry limit; passed through uncached"
    )]
    TooLarge { size: usize, max: usize },
}

/// First 16 hex digits of the SHA-256 of `secret`; the secret itself is never kept.
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    hex::encode(&digest[..8])
}

/// A hash of everything that selects a distinct upstream representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    pub fn new(
        fingerprint: &str,
        method: &str,
        url: &str,
        accept: &str,
        api_version: &str,
    ) -> Self {
        let mut h = Sha256::new();
        for part in [fingerprint, method, url, accept, api_version] {
            // Length-prefixed so field boundaries cannot be shifted.
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        let digest = h.finalize();
        let mut out = [0u8; 32];
        out.copy_from_slice(&digest[..]);
        CacheKey(out)
    }
}

impl CacheKey {
    /// The key as 64 hex digits (a hash: it reveals nothing of what it selects).
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// A stored 200 response: status, the few headers worth keeping, body and when stored.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub status: u16,
    /// Lower-case names: etag, last-modified, link, content-type, plus any extra names.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// When it was fetched (for an entry another replica stored: when that replica did).
    pub stored_at: Instant,
    /// Read from the shared tier: another replica fetched it.
    pub from_other_replica: bool,
}

impl StoredResponse {
    /// Keeps the standard headers plus `extra` names (case-insensitive) from `headers`.
    pub fn from_parts(status: u16, headers: &HeaderMap, extra: &[&str], body: Bytes) -> Self {
        let mut kept = Vec::new();
        for (name, value) in headers {
            let n = name.as_str();
            let wanted =
                KEPT_HEADERS.contains(&n) || extra.iter().any(|e| e.eq_ignore_ascii_case(n));
            if let (true, Ok(v)) = (wanted, value.to_str()) {
                kept.push((n.to_string(), v.to_string()));
            }
        }
        StoredResponse {
            status,
            headers: kept,
            body,
            stored_at: Instant::now(),
            from_other_replica: false,
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn etag(&self) -> Option<&str> {
        self.header("etag")
    }

    pub fn last_modified(&self) -> Option<&str> {
        self.header("last-modified")
    }

    fn weight(&self) -> u32 {
        let headers: usize = self.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        u32::try_from(self.body.len() + headers + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
    }
}

type Flights = Mutex<HashMap<CacheKey, Box<dyn Any + Send + Sync>>>;

/// A cache every replica shares, behind the process's own. Failures are the tier's to
/// log: a lookup that fails is a miss, a write that fails is skipped.
pub trait SharedTier: Send + Sync + 'static {
    /// The shared entry of `key`, if any.
    fn get<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, Option<StoredResponse>>;
    /// Stores `stored` for `key`.
    fn put<'a>(&'a self, key: &'a CacheKey, stored: &'a StoredResponse) -> BoxFuture<'a, ()>;
    /// Takes the short fetch lock of `key` (`true`), or learns another replica holds it.
    fn lock<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, bool>;
    /// Releases the fetch lock of `key` taken by [`SharedTier::lock`].
    fn unlock<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, ()>;
    /// Whether some replica holds the fetch lock of `key`.
    fn locked<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, bool>;
}

struct Inner {
    entries: moka::future::Cache<CacheKey, Arc<StoredResponse>>,
    max_entry_bytes: usize,
    flights: Flights,
    shared: Option<Arc<dyn SharedTier>>,
}

/// The shared conditional cache; cheap to clone.
#[derive(Clone)]
pub struct ConditionalCache {
    inner: Arc<Inner>,
}

impl Default for ConditionalCache {
    fn default() -> Self {
        ConditionalCache::new(DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRY_BYTES)
    }
}

impl ConditionalCache {
    pub fn new(max_bytes: u64, max_entry_bytes: usize) -> Self {
        let entries = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_k: &CacheKey, v: &Arc<StoredResponse>| v.weight())
            .build();
        ConditionalCache {
            inner: Arc::new(Inner {
                entries,
                max_entry_bytes,
                flights: Mutex::new(HashMap::new()),
                shared: None,
            }),
        }
    }

    pub fn max_entry_bytes(&self) -> usize {
        self.inner.max_entry_bytes
    }

    /// Whether a response may be stored: a 200 without `no-store`, without `Vary: *`,
    /// with an ETag or Last-Modified, and with a body within the per-entry limit.
    pub fn storable(&self, status: u16, headers: &HeaderMap, body_len: usize) -> bool {
        self.check_storable(status, headers, body_len).is_ok()
    }

    fn check_storable(
        &self,
        status: u16,
        headers: &HeaderMap,
        body_len: usize,
    ) -> Result<(), CacheError> {
        if body_len > self.inner.max_entry_bytes {
            return Err(CacheError::TooLarge {
                size: body_len,
                max: self.inner.max_entry_bytes,
            });
        }
        let no_store = headers
            .typed_get::<headers::CacheControl>()
            .is_some_and(|cc| cc.no_store());
        let vary_star = headers.get_all(http::header::VARY).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|p| p.trim() == "*"))
                .unwrap_or(false)
        });
        let validator = headers.contains_key(http::header::ETAG)
            || headers.contains_key(http::header::LAST_MODIFIED);
        if status != 200 || no_store || vary_star || !validator {
            return Err(CacheError::NotStorable { status });
        }
        Ok(())
    }

    /// This cache in front of `tier`, shared by every replica.
    pub fn with_shared_tier(self, tier: Arc<dyn SharedTier>) -> Self {
        let inner = Inner {
            entries: self.inner.entries.clone(),
            max_entry_bytes: self.inner.max_entry_bytes,
            flights: Mutex::new(HashMap::new()),
            shared: Some(tier),
        };
        ConditionalCache {
            inner: Arc::new(inner),
        }
    }

    /// The shared tier, when replicas share this cache.
    pub fn shared_tier(&self) -> Option<&Arc<dyn SharedTier>> {
        self.inner.shared.as_ref()
    }

    /// The stored entry for `key` (the shared tier's on a local miss, kept here then),
    /// counting a hit or a miss.
    pub async fn get(&self, key: &CacheKey) -> Option<Arc<StoredResponse>> {
        let mut found = self.inner.entries.get(key).await;
        if found.is_none()
            && let Some(tier) = &self.inner.shared
            && let Some(stored) = tier.get(key).await
        {
            let stored = Arc::new(stored);
            self.inner.entries.insert(*key, stored.clone()).await;
            metrics::counter!("cortex_cache_shared_hits_total").increment(1);
            found = Some(stored);
        }
        if found.is_some() {
            metrics::counter!("cortex_cache_hits_total").increment(1);
        } else {
            metrics::counter!("cortex_cache_misses_total").increment(1);
        }
        found
    }

    /// The shared tier's entry for `key` only (what another replica stored meanwhile),
    /// kept here when found.
    pub async fn get_shared(&self, key: &CacheKey) -> Option<Arc<StoredResponse>> {
        let stored = Arc::new(self.inner.shared.as_ref()?.get(key).await?);
        self.inner.entries.insert(*key, stored.clone()).await;
        Some(stored)
    }

    /// Stores a response if it is storable; otherwise says why it was passed through.
    pub async fn insert(
        &self,
        key: CacheKey,
        status: u16,
        headers: &HeaderMap,
        extra_headers: &[&str],
        body: Bytes,
    ) -> Result<(), CacheError> {
        self.check_storable(status, headers, body.len())?;
        let stored = StoredResponse::from_parts(status, headers, extra_headers, body);
        if let Some(tier) = &self.inner.shared {
            tier.put(&key, &stored).await;
        }
        self.inner.entries.insert(key, Arc::new(stored)).await;
        self.update_gauge();
        Ok(())
    }

    pub async fn invalidate(&self, key: &CacheKey) {
        self.inner.entries.invalidate(key).await;
        self.update_gauge();
    }

    /// Counts a stored entry served after a 304 revalidation.
    pub fn note_revalidated(&self) {
        metrics::counter!("cortex_cache_revalidated_total").increment(1);
    }

    fn update_gauge(&self) {
        metrics::gauge!("cortex_cache_bytes").set(self.inner.entries.weighted_size() as f64);
    }

    /// Runs `make()` once for all identical concurrent callers of `key`; every caller gets
    /// a clone of the output, and `true` when it joined a flight another caller started.
    /// The flight is forgotten once it completes (or every caller has gone).
    pub async fn single_flight<T, F, Fut>(&self, key: &CacheKey, make: F) -> (T, bool)
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (shared, joined) = {
            let mut flights = self.inner.flights.lock();
            let existing = flights
                .get(key)
                .and_then(|b| b.downcast_ref::<Shared<BoxFuture<'static, T>>>())
                .cloned();
            match existing {
                Some(s) => (s, true),
                None => {
                    let s = make().boxed().shared();
                    flights.insert(*key, Box::new(s.clone()));
                    (s, false)
                }
            }
        };
        let _forget = FlightGuard {
            flights: &self.inner.flights,
            key: *key,
            mine: shared.clone(),
        };
        (shared.await, joined)
    }
}

/// Removes the flight from the table when its caller finishes or is dropped, unless a
/// newer flight has replaced it.
struct FlightGuard<'a, T: Clone + Send + Sync + 'static> {
    flights: &'a Flights,
    key: CacheKey,
    mine: Shared<BoxFuture<'static, T>>,
}

impl<T: Clone + Send + Sync + 'static> Drop for FlightGuard<'_, T> {
    fn drop(&mut self) {
        let mut flights = self.flights.lock();
        let same = flights
            .get(&self.key)
            .and_then(|b| b.downcast_ref::<Shared<BoxFuture<'static, T>>>())
            .is_some_and(|s| s.ptr_eq(&self.mine));
        if same {
            flights.remove(&self.key);
        }
    }
}

#[cfg(feature = "redis")]
pub mod redis;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_differs_by_credential_and_fingerprint_hides_secret() {
        let secret = "ghp_supersecrettoken123";
        let fp = fingerprint(secret);
        assert_eq!(fp.len(), 16);
        assert!(!fp.contains(secret) && !secret.contains(&fp));
        let a = CacheKey::new(&fp, "GET", "https://x/y", "application/json", "2022-11-28");
        let b = CacheKey::new(
            &fingerprint("other"),
            "GET",
            "https://x/y",
            "application/json",
            "2022-11-28",
        );
        let a2 = CacheKey::new(&fp, "GET", "https://x/y", "application/json", "2022-11-28");
        assert_ne!(a, b);
        assert_eq!(a, a2);
    }

    #[test]
    fn storable_rules() {
        let cache = ConditionalCache::new(1024 * 1024, 10);
        let mut h = HeaderMap::new();
        assert!(!cache.storable(200, &h, 1), "needs a validator");
        h.insert(http::header::ETAG, "\"v1\"".parse().unwrap());
        assert!(cache.storable(200, &h, 1));
        assert!(!cache.storable(201, &h, 1));
        assert!(!cache.storable(200, &h, 11), "too large");
        let mut v = h.clone();
        v.insert(http::header::VARY, "Accept, *".parse().unwrap());
        assert!(!cache.storable(200, &v, 1));
        let mut n = h.clone();
        n.insert(
            http::header::CACHE_CONTROL,
            "private, no-store".parse().unwrap(),
        );
        assert!(!cache.storable(200, &n, 1));
    }

    #[tokio::test]
    async fn insert_get_invalidate() {
        let cache = ConditionalCache::default();
        let key = CacheKey::new("fp", "GET", "u", "", "");
        let mut h = HeaderMap::new();
        h.insert(http::header::ETAG, "\"v1\"".parse().unwrap());
        h.insert("x-secret", "nope".parse().unwrap());
        h.insert("x-keep", "yes".parse().unwrap());
        cache
            .insert(key, 200, &h, &["X-Keep"], Bytes::from_static(b"hi"))
            .await
            .unwrap();
        let got = cache.get(&key).await.unwrap();
        assert_eq!(got.etag(), Some("\"v1\""));
        assert_eq!(got.header("x-keep"), Some("yes"));
        assert_eq!(got.header("x-secret"), None);
        assert_eq!(&got.body[..], b"hi");
        cache.invalidate(&key).await;
        assert!(cache.get(&key).await.is_none());
    }

    #[tokio::test]
    async fn single_flight_shares_and_forgets() {
        let cache = ConditionalCache::default();
        let key = CacheKey::new("fp", "GET", "u", "", "");
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let calls = (0..10).map(|_| {
            let runs = runs.clone();
            cache.single_flight(&key, move || async move {
                runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                7u32
            })
        });
        let outs = futures::future::join_all(calls).await;
        assert!(outs.iter().all(|(v, _)| *v == 7));
        assert_eq!(outs.iter().filter(|(_, joined)| !joined).count(), 1);
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(cache.inner.flights.lock().is_empty());
    }
}
