//! The event-sourced store: named streams of JSON records, each an append-only log with a
//! snapshot, behind one async seam so the log need not be a local file.
//!
//! Owns the seam — [`Backend`] (opens streams by name) and [`Log`] (one open stream:
//! append → durable [`Position`], read after a position, wait for new records, snapshot
//! and trim) — its error type, and the typed layer every store uses ([`Stream`]: records
//! of one Rust type, replay, tail, compaction by a [`Compaction`] rule) and
//! [`Replicated`] (a store's state kept the same by every process sharing a stream).
//! Backends: [`local`], the NDJSON file journal with group commit and quarantine of
//! damaged lines (the default); [`memory`] keeps streams in the process (the typed
//! layer's tests run on both); `redis` (cargo feature `redis`, `--store redis://…`) keeps
//! them in Redis Streams, shared by every process on one Redis, and passes the same
//! conformance tests.
//! Must not touch any toolset, server or transport module, and knows nothing
//! about what the records mean.
//!
//! # The seam, and what a second backend must provide
//!
//! - **Positions** are dense and start at 1 per stream; an append of `n` records returns
//!   the first of `n` consecutive positions, and resolves only once they are durable
//!   (local: written and fsynced under [`Fsync`]; a Redis backend: once the server
//!   answers — it assigns positions in one script, `INCR` of the stream's counter then
//!   `XADD` with id `0-<n>`, so every process sees the same numbers).
//! - **Snapshots** stand for every record up to their position. [`Log::compact`] picks
//!   a cut (the appends acknowledged so far), hands every record up to it to a
//!   [`Retain`] function and makes what it keeps the new snapshot, then trims the log up
//!   to the cut; records appended meanwhile stay. Redis: read to the cut, `SET` the
//!   snapshot, `XTRIM MINID`.
//! - **Reads** ([`Log::read_after`]) return the records after a position; a reader that
//!   fell behind a snapshot gets the snapshot first (it must replace what it held).
//!   [`Log::durable`] resolves as new records become durable, so [`Stream::tail`] works
//!   the same over a file or a network log (Redis: `XREAD BLOCK`).
//! - **Listing** ([`Backend::streams`]) names every stream the backend holds (Redis:
//!   `SCAN` of the streams' keys under the backend's prefix), for an owner with one
//!   stream per key.
//! - Everything is async and nothing assumes a file; only [`local`] knows paths.
//!
//! Owners use [`Stream`], or [`Log`] directly when records are not of one Rust type (the
//! event bus, [`super::events`]). The untyped [`local::Journal`] handle (and its
//! `runtime::journal` name) is what [`local`] builds its [`Log`] from; only benches and
//! tests use it directly.

pub mod local;
pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;
mod replicated;
#[cfg(test)]
mod tests;
mod typed;

use std::{future::Future, pin::Pin, sync::Arc};

use serde_json::Value;

pub use crate::config::Fsync;
pub use local::LocalBackend;
pub use memory::MemoryBackend;
#[cfg(feature = "redis")]
pub use redis::RedisBackend;
pub use replicated::{Fold, Replicated};
pub use typed::{Compaction, Entry, Replay, Stream, Tail};

/// A boxed future, so the seam's traits stay object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A record's place in its stream: dense, starting at 1; 0 means "before the first".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position(pub u64);

impl Position {
    /// Before the first record.
    pub const START: Position = Position(0);

    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Errors of the store and its backends.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("journal i/o error on {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt journal {file}:{line}: {reason}")]
    Corrupt {
        file: std::path::PathBuf,
        line: usize,
        reason: String,
    },
    #[error("failed to serialize journal record: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("journal write failed: {0}")]
    WriteFailed(String),
    #[error("journal is closed")]
    Closed,
    #[error("invalid journal stream name {0:?}")]
    InvalidStream(String),
    #[error("store backend failed: {0}")]
    Backend(String),
    /// A Redis backend's failure: `store` is its URL with the password masked and its key
    /// prefix; `message` never holds the password either.
    #[error("redis store {store}: {message} (the call can be retried once the store answers)")]
    Redis { store: String, message: String },
}

/// Options of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    /// Log size (bytes, as the backend counts them) after which
    /// [`Log::needs_compaction`] reports `true`.
    pub max_segment_bytes: u64,
    /// When appends are made durable before they are acknowledged.
    pub policy: Fsync,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            max_segment_bytes: 64 * 1024 * 1024,
            policy: Fsync::Batch,
        }
    }
}

impl StreamOptions {
    pub fn new(policy: Fsync, max_segment_bytes: u64) -> Self {
        Self {
            max_segment_bytes,
            policy,
        }
    }
}

/// Chooses, from every record of a stream up to a compaction's cut (snapshot records,
/// then log records, in order), the records the new snapshot keeps.
pub type Retain = Box<dyn FnOnce(Vec<Value>) -> Vec<Value> + Send>;

/// What a read returns.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Read {
    /// Present when the read started before the stream's snapshot: its records, standing
    /// for every record up to `.0`. A reader replaces what it held with them.
    pub snapshot: Option<(Position, Vec<Value>)>,
    /// The durable records after the start (and after the snapshot), in order.
    pub records: Vec<(Position, Value)>,
}

impl Read {
    /// The snapshot's records, then the others: what a store rebuilds its state from.
    pub fn into_values(self) -> Vec<Value> {
        let mut out = self.snapshot.map(|(_, r)| r).unwrap_or_default();
        out.extend(self.records.into_iter().map(|(_, r)| r));
        out
    }

    /// The last position this read accounts for (`after` when it is empty).
    pub fn end(&self, after: Position) -> Position {
        let snap = self
            .snapshot
            .as_ref()
            .map_or(after, |(p, _)| (*p).max(after));
        self.records.last().map_or(snap, |(p, _)| (*p).max(snap))
    }
}

/// One open stream of a backend. Cheap to share (`Arc<dyn Log>`).
pub trait Log: Send + Sync + 'static {
    /// The stream's name.
    fn name(&self) -> &str;

    /// Appends pre-serialized JSON records contiguously; resolves with the first one's
    /// position once all are durable.
    fn append(&self, records: Vec<Vec<u8>>) -> BoxFuture<'_, Result<Position, StoreError>>;

    /// [`Log::append`] only if the stream's last position is `expected` when the records
    /// would be added (`None`: another writer appended first; nothing was added). For a
    /// read-modify-write across processes sharing a stream; a backend only one process
    /// writes does not offer it.
    fn append_if_at(
        &self,
        records: Vec<Vec<u8>>,
        expected: Position,
    ) -> BoxFuture<'_, Result<Option<Position>, StoreError>> {
        let _ = (records, expected);
        Box::pin(async {
            Err(StoreError::Backend(
                "this store appends unconditionally only (one process writes it)".into(),
            ))
        })
    }

    /// The last durable position (0 when empty).
    fn last_position(&self) -> Position;

    /// Resolves with the last durable position once it is past `after` (at once when it
    /// already is), or with [`StoreError::Closed`] when the stream closes first.
    fn durable(&self, after: Position) -> BoxFuture<'_, Result<Position, StoreError>>;

    /// The durable records after `after` (the snapshot first, when `after` is before it).
    fn read_after(&self, after: Position) -> BoxFuture<'_, Result<Read, StoreError>>;

    /// Whether the log has grown past [`StreamOptions::max_segment_bytes`].
    fn needs_compaction(&self) -> bool;

    /// Compacts now: every record acknowledged before this call goes through `retain`,
    /// what it keeps becomes the snapshot, and the log is trimmed to the records after
    /// the cut. Appends wait meanwhile (local; on Redis, other processes' appends go on
    /// and stay after the cut).
    fn compact(&self, retain: Retain) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Queues the same compaction in the background, only if the log is still over size
    /// when it runs; returns `false` (dropping `retain`) when one is already queued.
    /// Failures are logged and leave the stream as it was.
    fn compact_in_background(&self, retain: Retain) -> bool;

    /// Makes queued appends durable and closes the stream; later appends fail with
    /// [`StoreError::Closed`]. Idempotent.
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// An opened stream and everything it held.
pub type Opened = (Arc<dyn Log>, Read);

/// Where streams live: opens one by name, replaying it.
pub trait Backend: Send + Sync + 'static {
    /// The names of the streams the backend holds (in no particular order), for an owner
    /// that keeps one stream per key and reopens them all (the event bus).
    fn streams(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>>;

    /// Opens (creating) `stream`, repairing what a crash left behind, and returns its
    /// handle with everything it holds (`read_after(START)`).
    fn open<'a>(
        &'a self,
        stream: &'a str,
        options: StreamOptions,
    ) -> BoxFuture<'a, Result<Opened, StoreError>>;

    /// [`Backend::open`] for a constructor that is not async. The default blocks this
    /// worker thread on the future (multi-threaded tokio runtime only); the local
    /// backend opens its files without one.
    fn open_now(&self, stream: &str, options: StreamOptions) -> Result<Opened, StoreError> {
        block_on_here(self.open(stream, options))
    }

    /// [`Backend::streams`] for a constructor that is not async.
    fn streams_now(&self) -> Result<Vec<String>, StoreError> {
        block_on_here(self.streams())
    }

    /// Whether other processes append to the same streams (a networked backend): an
    /// owner then follows its streams to learn their records.
    fn is_shared(&self) -> bool {
        false
    }

    /// The next value of a counter shared by every process on the backend (`None`: the
    /// backend has no such counter, the process counts alone).
    fn next_in_sequence<'a>(
        &'a self,
        _name: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(async { Ok(None) })
    }

    /// Keeps `bytes` under `key`, a content address (the same key always names the same
    /// bytes, so a second put is a no-op). Only a shared backend keeps blobs: a local
    /// owner keeps its own files, and the default refuses.
    fn put_blob<'a>(
        &'a self,
        key: &'a str,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = (key, bytes);
        Box::pin(async { Err(StoreError::Backend("this store keeps no blobs".into())) })
    }

    /// The bytes [`Backend::put_blob`] kept under `key` (`None`: none are).
    fn get_blob<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        let _ = key;
        Box::pin(async { Err(StoreError::Backend("this store keeps no blobs".into())) })
    }

    /// Whether the backend answers now (readiness); local files always do.
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Runs `future` to completion from synchronous code inside a multi-threaded tokio
/// runtime (the server's), without stalling its other tasks.
pub fn block_on_here<T>(future: BoxFuture<'_, T>) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => tokio::task::block_in_place(|| handle.block_on(future)),
        Err(_) => futures::executor::block_on(future),
    }
}

/// Makes every `rediss://` connection of the process trust the certificate authorities
/// in `ca` (`--store-tls-ca`; none: the system's roots).
#[cfg(feature = "redis")]
fn trust_store_ca(ca: Option<&std::path::Path>) -> Result<(), StoreError> {
    if let Some(path) = ca {
        let pem = std::fs::read(path).map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        crate::runtime::redis_link::trust_tls_roots(pem);
    }
    Ok(())
}

/// Where the process's stores live (`--store`): one [`Backend`] per owner namespace
/// (`events`, `asbr`, `integrations`, …) — a directory of the state dir on the local
/// backend, a key prefix on Redis. Cheap to clone.
#[derive(Clone)]
pub struct Stores {
    kind: StoresKind,
}

#[derive(Clone)]
enum StoresKind {
    Local(std::path::PathBuf),
    #[cfg(feature = "redis")]
    Redis(Arc<RedisBackend>),
}

impl Stores {
    /// Local files under `state_dir` (a namespace is a directory there).
    pub fn local(state_dir: impl Into<std::path::PathBuf>) -> Self {
        Stores {
            kind: StoresKind::Local(state_dir.into()),
        }
    }

    /// The stores `settings` name, local ones under `state_dir`.
    pub fn from_settings(
        settings: &crate::config::StoreSettings,
        state_dir: &std::path::Path,
    ) -> Result<Self, StoreError> {
        match settings {
            crate::config::StoreSettings::Local => Ok(Self::local(state_dir)),
            #[cfg(feature = "redis")]
            crate::config::StoreSettings::Redis {
                url,
                prefix,
                wait_replicas,
                tls_ca,
                ..
            } => Ok(Stores {
                kind: StoresKind::Redis(Arc::new({
                    trust_store_ca(tls_ca.as_deref())?;
                    RedisBackend::new(url.expose(), prefix)?.with_wait_replicas(*wait_replicas)
                })),
            }),
            #[cfg(not(feature = "redis"))]
            crate::config::StoreSettings::Redis { .. } => Err(StoreError::Backend(
                "this build has no Redis support (cargo feature `redis`)".into(),
            )),
        }
    }

    /// The backend of one owner's streams.
    pub fn backend(&self, namespace: &str) -> Arc<dyn Backend> {
        match &self.kind {
            StoresKind::Local(dir) => Arc::new(LocalBackend::new(dir.join(namespace))),
            #[cfg(feature = "redis")]
            StoresKind::Redis(redis) => Arc::new(redis.namespace(namespace)),
        }
    }

    /// Whether replicas share these stores.
    pub fn is_shared(&self) -> bool {
        !matches!(self.kind, StoresKind::Local(_))
    }

    /// How the stores are named in `health` and errors (no password).
    pub fn describe(&self) -> String {
        match &self.kind {
            StoresKind::Local(dir) => format!("local files under {}", dir.display()),
            #[cfg(feature = "redis")]
            StoresKind::Redis(redis) => format!("redis {}", redis.shown()),
        }
    }

    /// Whether the stores answer now (the readiness check).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match &self.kind {
            StoresKind::Local(_) => Ok(()),
            #[cfg(feature = "redis")]
            StoresKind::Redis(redis) => redis.ping().await,
        }
    }
}
