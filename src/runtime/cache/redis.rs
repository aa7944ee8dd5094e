//! The conditional cache's shared tier on Redis (cargo feature `redis`): one key per
//! cached representation, `<prefix>cache:<key hex>`, holding the status, the kept
//! headers and the body, LZ4-compressed, expiring after [`TTL`]; bodies past the cache's
//! per-entry limit are never written. A fetch lock is `<prefix>cache-lock:<key hex>`
//! (`SET NX PX`), held while one replica fetches.
//!
//! Owns the entry encoding and the Redis commands; must not know what the upstream is.
//! A Redis failure is a miss (or a skipped write), logged at debug: the cache is an
//! optimisation, never a reason for a call to fail. Keys carry the cache key's hash
//! only, which already hides the credential behind its fingerprint.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{CacheKey, SharedTier, StoredResponse};
use crate::runtime::redis_link::RedisLink;

/// How long a shared entry lives (it is revalidated with its ETag before use anyway).
pub const TTL: Duration = Duration::from_secs(6 * 60 * 60);
use super::SHARED_LOCK_FOR as LOCK_FOR;

#[derive(Serialize, Deserialize)]
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
    /// Unix milliseconds when the storing replica fetched it.
    #[serde(default)]
    fetched_ms: u64,
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The shared tier on one Redis.
pub struct RedisTier {
    link: RedisLink,
    prefix: String,
    max_entry_bytes: usize,
}

impl RedisTier {
    /// A tier on the Redis at `url`, keys under `prefix`, entries up to
    /// `max_entry_bytes` of body. Connects on first use.
    pub fn new(url: &str, prefix: &str, max_entry_bytes: usize) -> Result<Arc<Self>, String> {
        let link = RedisLink::new(url, prefix).map_err(|e| e.to_string())?;
        Ok(Arc::new(RedisTier {
            link,
            prefix: prefix.to_string(),
            max_entry_bytes,
        }))
    }

    /// Runs `cmd`; a failure is logged (without the password) and read as nothing.
    async fn run<T: ::redis::FromRedisValue>(&self, cmd: &::redis::Cmd) -> Option<T> {
        match self.link.query("shared cache", cmd).await {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::debug!(error = %e, "shared cache command failed");
                None
            }
        }
    }

    fn entry_key(&self, key: &CacheKey) -> String {
        format!("{}cache:{}", self.prefix, key.hex())
    }

    fn lock_key(&self, key: &CacheKey) -> String {
        format!("{}cache-lock:{}", self.prefix, key.hex())
    }
}

/// `head JSON` NUL `body`, LZ4-compressed with its size in front.
fn encode(stored: &StoredResponse) -> Option<Vec<u8>> {
    let fetched_ms = unix_ms().saturating_sub(stored.stored_at.elapsed().as_millis() as u64);
    let head = serde_json::to_vec(&Head {
        status: stored.status,
        headers: stored.headers.clone(),
        fetched_ms,
    })
    .ok()?;
    let mut plain = head;
    plain.push(0);
    plain.extend_from_slice(&stored.body);
    Some(lz4_flex::compress_prepend_size(&plain))
}

fn claimed_size(raw: &[u8]) -> usize {
    raw.get(..4)
        .and_then(|b| b.try_into().ok())
        .map_or(usize::MAX, |b| u32::from_le_bytes(b) as usize)
}

/// Bytes of an entry's head (status, headers, fetch time) allowed on top of its body.
const MAX_HEAD_BYTES: usize = 256 * 1024;

/// An entry read back; `None` when it does not decode or claims to be larger than any
/// entry this tier writes (`max_plain`: checked before decompressing, so a damaged or
/// foreign value cannot make a replica allocate what its size prefix says).
fn decode(raw: &[u8], max_plain: usize) -> Option<StoredResponse> {
    if claimed_size(raw) > max_plain {
        return None;
    }
    let plain = lz4_flex::decompress_size_prepended(raw).ok()?;
    let split = plain.iter().position(|b| *b == 0)?;
    let head: Head = serde_json::from_slice(&plain[..split]).ok()?;
    let age = Duration::from_millis(unix_ms().saturating_sub(head.fetched_ms));
    let now = std::time::Instant::now();
    Some(StoredResponse {
        status: head.status,
        headers: head.headers,
        body: Bytes::copy_from_slice(&plain[split + 1..]),
        stored_at: now.checked_sub(age).unwrap_or(now),
        from_other_replica: true,
    })
}

impl SharedTier for RedisTier {
    fn get<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, Option<StoredResponse>> {
        Box::pin(async move {
            let raw: Option<Vec<u8>> = self
                .run(::redis::cmd("GET").arg(self.entry_key(key)))
                .await?;
            decode(&raw?, self.max_entry_bytes + MAX_HEAD_BYTES)
        })
    }

    fn put<'a>(&'a self, key: &'a CacheKey, stored: &'a StoredResponse) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if stored.body.len() > self.max_entry_bytes {
                return;
            }
            let Some(raw) = encode(stored) else { return };
            if claimed_size(&raw) > self.max_entry_bytes + MAX_HEAD_BYTES {
                return; // headers past any real response's: never read back, so never kept
            }
            let _: Option<()> = self
                .run(
                    ::redis::cmd("SET")
                        .arg(self.entry_key(key))
                        .arg(raw)
                        .arg("PX")
                        .arg(TTL.as_millis() as u64),
                )
                .await;
        })
    }

    fn lock<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let set: Option<Option<String>> = self
                .run(
                    ::redis::cmd("SET")
                        .arg(self.lock_key(key))
                        .arg(1)
                        .arg("NX")
                        .arg("PX")
                        .arg(LOCK_FOR.as_millis() as u64),
                )
                .await;
            // Redis unreachable: fetch alone rather than wait for nobody.
            set.is_none_or(|reply| reply.is_some())
        })
    }

    fn locked<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let n: Option<u64> = self
                .run(::redis::cmd("EXISTS").arg(self.lock_key(key)))
                .await;
            n.is_some_and(|n| n > 0)
        })
    }

    fn unlock<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _: Option<u64> = self.run(::redis::cmd("DEL").arg(self.lock_key(key))).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_survives_encoding_and_compresses() {
        let stored = StoredResponse {
            status: 200,
            headers: vec![("etag".into(), "\"abc\"".into())],
            body: Bytes::from(vec![b'x'; 10_000]),
            stored_at: std::time::Instant::now(),
            from_other_replica: false,
        };
        let raw = encode(&stored).unwrap();
        assert!(raw.len() < 1_000, "{}", raw.len());
        let back = decode(&raw, 20_000).unwrap();
        assert_eq!(back.status, 200);
        assert_eq!(back.etag(), Some("\"abc\""));
        assert_eq!(back.body, stored.body);
        assert!(back.from_other_replica);
        assert!(back.stored_at.elapsed() < Duration::from_secs(5));
        assert!(decode(b"not lz4", 20_000).is_none());
        // An entry claiming more than the tier ever writes is refused before decompressing.
        assert!(decode(&raw, 5_000).is_none());
        let mut forged = u32::MAX.to_le_bytes().to_vec();
        forged.extend_from_slice(&raw[4..]);
        assert!(decode(&forged, 20_000).is_none());
    }
}
