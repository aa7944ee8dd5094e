//! The Redis Streams backend (cargo feature `redis`): every stream of the store is a Redis
//! stream, so several processes pointed at one Redis share the same logs (`--store
//! redis://…`, built by [`super::Stores`]).
//!
//! Owns its keys on the Redis server and the connections to it; must not touch files, any
//! toolset, the server or the transport, and knows nothing about what the records mean.
//!
//! # Layout
//!
//! Under a prefix ([`DEFAULT_PREFIX`], so several deployments can share one Redis), a
//! stream `kv` is three keys:
//! - `<prefix>kv:log`, the Redis stream: one entry per record, id `0-<position>`, the
//!   record's JSON in field `r`;
//! - `<prefix>kv:meta`, a hash: `last` (the last position handed out), `bytes` (the size
//!   of the records in the log, for [`Log::needs_compaction`]) and `cut` (the snapshot's
//!   position, absent before the first compaction);
//! - `<prefix>kv:snapshot`, a string: `{"cut": n, "records": [...]}`.
//!
//! Appends run one Lua script (`HINCRBY last`, then `XADD` with explicit ids), so
//! positions stay dense and distinct across processes, and are durable once Redis answers
//! (as durable as the server's own persistence settings make them). Reads run one script
//! too, so a concurrent compaction never shows a trimmed log beside the old snapshot.
//! Compaction reads everything up to the last position (the cut), keeps what [`Retain`]
//! keeps, and in one script stores the snapshot and `XTRIM MINID`s the log past the cut
//! — unless another process already compacted further. Appends are not held during a
//! compaction: records after the cut simply stay in the log. [`Log::durable`] waits with
//! `XREAD BLOCK` (one second at a time, on a connection of its own per open stream) so
//! it sees other processes' appends and wakes on close. Every command has a connect and
//! a response timeout: an unreachable Redis is an error naming the store (URL with its
//! password masked, and prefix) within a second or two.

#[cfg(test)]
mod tests;

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use ::redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Mutex as AsyncMutex, watch};

use crate::runtime::redis_link::{LinkError, RESPONSE_TIMEOUT, RedisLink as Connector};

use super::{
    Backend, BoxFuture, Log, Opened, Position, Read, Retain, StoreError, StreamOptions,
    local::validate_stream,
};

/// The key prefix when none is given.
pub const DEFAULT_PREFIX: &str = "cortex:";

/// Compaction reads a whole stream and writes its snapshot: its own, longer deadline.
const COMPACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one `XREAD BLOCK` waits before [`Log::durable`] asks again.
const BLOCK: Duration = Duration::from_secs(1);
/// The stream entry field holding a record.
const FIELD: &str = "r";

/// KEYS: meta, log. ARGV: the records. Returns {first position, bytes in the log}.
const APPEND: &str = r"
local n = #ARGV
local last = redis.call('HINCRBY', KEYS[1], 'last', n)
local first = last - n + 1
local bytes = 0
for i = 1, n do
  redis.call('XADD', KEYS[2], string.format('0-%d', first + i - 1), 'r', ARGV[i])
  bytes = bytes + string.len(ARGV[i]) + 1
end
local total = redis.call('HINCRBY', KEYS[1], 'bytes', bytes)
return {first, total}
";

/// KEYS: meta, log. ARGV: the position the stream must be at, then the records. Appends
/// as [`APPEND`] only when the stream's last position is that one. Returns {first
/// position, bytes in the log}, or {0, the last position} when it is not.
const APPEND_IF_AT: &str = r"
local expected = tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'last')) or 0
if current ~= expected then return {0, current} end
local n = #ARGV - 1
local last = redis.call('HINCRBY', KEYS[1], 'last', n)
local first = last - n + 1
local bytes = 0
for i = 1, n do
  redis.call('XADD', KEYS[2], string.format('0-%d', first + i - 1), 'r', ARGV[i + 1])
  bytes = bytes + string.len(ARGV[i + 1]) + 1
end
local total = redis.call('HINCRBY', KEYS[1], 'bytes', bytes)
return {first, total}
";

/// KEYS: meta, log, snapshot. ARGV: after. Returns {snapshot or nil (only when `after`
/// is 0 or before the cut), the entries after max(after, cut), last, bytes}.
const READ: &str = r"
local after = tonumber(ARGV[1])
local meta = redis.call('HMGET', KEYS[1], 'last', 'bytes', 'cut')
local cut = tonumber(meta[3]) or 0
local snapshot = false
if after < cut or after == 0 then
  snapshot = redis.call('GET', KEYS[3])
end
local from = math.max(after, cut)
local entries = redis.call('XRANGE', KEYS[2], string.format('0-%d', from + 1), '+')
return {snapshot, entries, tonumber(meta[1]) or 0, tonumber(meta[2]) or 0}
";

/// KEYS: meta, log, snapshot. ARGV: cut, the snapshot document. Stores the snapshot and
/// trims the log up to the cut, unless a snapshot at or past the cut exists. Returns
/// {1 when applied else 0, bytes left in the log}.
const COMPACT: &str = r"
local cut = tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'cut')) or -1
if current >= cut then
  return {0, tonumber(redis.call('HGET', KEYS[1], 'bytes')) or 0}
end
local trimmed = 0
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', string.format('0-%d', cut))) do
  for i = 2, #entry[2], 2 do
    trimmed = trimmed + string.len(entry[2][i]) + 1
  end
end
redis.call('SET', KEYS[3], ARGV[2])
redis.call('HSET', KEYS[1], 'cut', string.format('%d', cut))
redis.call('XTRIM', KEYS[2], 'MINID', string.format('0-%d', cut + 1))
local left = redis.call('HINCRBY', KEYS[1], 'bytes', -trimmed)
if left < 0 then
  redis.call('HSET', KEYS[1], 'bytes', '0')
  left = 0
end
return {1, left}
";

impl From<LinkError> for StoreError {
    fn from(e: LinkError) -> Self {
        StoreError::Redis {
            store: e.store,
            message: e.message,
        }
    }
}

/// The stored snapshot.
#[derive(Serialize, Deserialize)]
struct SnapshotDoc {
    cut: u64,
    records: Vec<Value>,
}

/// `*?[]\` escaped for a `SCAN MATCH` pattern.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The keys of one stream.
struct Keys {
    meta: String,
    log: String,
    snapshot: String,
}

impl Keys {
    fn new(prefix: &str, stream: &str) -> Self {
        Keys {
            meta: format!("{prefix}{stream}:meta"),
            log: format!("{prefix}{stream}:log"),
            snapshot: format!("{prefix}{stream}:snapshot"),
        }
    }

    fn all(&self) -> [&str; 3] {
        [&self.meta, &self.log, &self.snapshot]
    }
}

/// What the read script returned.
struct Fetched {
    read: Read,
    last: u64,
    bytes: u64,
}

type ReadReply = (Option<Vec<u8>>, Vec<(String, Vec<Vec<u8>>)>, u64, u64);

/// The stream shared by a handle and its background compaction.
struct Inner {
    name: String,
    keys: Keys,
    redis: Arc<Connector>,
    /// The last position known durable; `durable` waiters watch it.
    last: watch::Sender<u64>,
    bytes: AtomicU64,
    max_bytes: u64,
    closed: AtomicBool,
    compaction_queued: AtomicBool,
    /// Held by a compaction; `close` waits for it.
    compacting: AsyncMutex<()>,
    /// The connection `XREAD BLOCK` waits on (a blocked command holds its connection).
    blocking: AsyncMutex<Option<MultiplexedConnection>>,
    /// Redis replicas an append waits for (`WAIT`), 0 for none.
    wait_replicas: u32,
}

impl Inner {
    fn error(&self, doing: &str, message: impl std::fmt::Display) -> StoreError {
        self.redis
            .error(&format!("stream {:?}: {doing}", self.name), message)
            .into()
    }

    fn learn_last(&self, last: u64) {
        self.last.send_if_modified(|known| {
            let newer = last > *known;
            if newer {
                *known = last;
            }
            newer
        });
    }

    /// The records after `after` (the snapshot first when `after` is before it, or 0),
    /// with the stream's last position and size, in one atomic read.
    async fn fetch(&self, after: u64) -> Result<Fetched, StoreError> {
        let doing = format!("stream {:?}: reading", self.name);
        let args = [after.to_string().into_bytes()];
        let reply: ReadReply = self
            .redis
            .eval(&doing, READ, &self.keys.all(), args)
            .await?;
        self.decode_fetched(after, reply)
    }

    /// [`Inner::fetch`] with the compaction's deadline.
    async fn fetch_all_for_compaction(&self) -> Result<Fetched, StoreError> {
        let doing = format!("stream {:?}: reading to compact", self.name);
        let args = [b"0".to_vec()];
        let reply: ReadReply = self
            .redis
            .eval_long(&doing, COMPACTION_TIMEOUT, READ, &self.keys.all(), args)
            .await?;
        self.decode_fetched(0, reply)
    }

    fn decode_fetched(&self, after: u64, reply: ReadReply) -> Result<Fetched, StoreError> {
        let (snapshot, entries, last, bytes) = reply;
        let snapshot = match snapshot {
            Some(raw) => {
                let doc: SnapshotDoc = serde_json::from_slice(&raw)
                    .map_err(|e| self.error("its snapshot is not valid", e))?;
                Some((doc.cut, doc.records))
            }
            None => None,
        }
        .filter(|(cut, records)| after < *cut || (after == 0 && !records.is_empty()));
        let from = snapshot
            .as_ref()
            .map_or(after, |(cut, _)| (*cut).max(after));
        let mut records = Vec::with_capacity(entries.len());
        for (id, fields) in entries {
            let position = parse_id(&id).ok_or_else(|| self.error("foreign entry", &id))?;
            if position <= from {
                continue;
            }
            let raw =
                record_field(&fields).ok_or_else(|| self.error("entry without a record", &id))?;
            let value = serde_json::from_slice(raw)
                .map_err(|e| self.error(&format!("entry {id} is not JSON"), e))?;
            records.push((Position(position), value));
        }
        Ok(Fetched {
            read: Read {
                snapshot: snapshot.map(|(cut, records)| (Position(cut), records)),
                records,
            },
            last,
            bytes,
        })
    }

    async fn append(&self, records: Vec<Vec<u8>>) -> Result<Position, StoreError> {
        self.append_at(records, None)
            .await
            .map(|appended| appended.unwrap_or_default())
    }

    /// Appends `records`, only when the stream is at `expected` when given (`None`:
    /// it was elsewhere, nothing appended).
    async fn append_at(
        &self,
        records: Vec<Vec<u8>>,
        expected: Option<Position>,
    ) -> Result<Option<Position>, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        for r in &records {
            serde_json::from_slice::<serde::de::IgnoredAny>(r)?;
        }
        let count = records.len() as u64;
        let doing = format!("stream {:?}: appending", self.name);
        let keys = [&*self.keys.meta, &*self.keys.log];
        // {first position, bytes}, or {0, the stream's last position} when not at `expected`.
        let (first, bytes): (u64, u64) = match expected {
            None => self.redis.eval(&doing, APPEND, &keys, records).await?,
            Some(at) => {
                let args = std::iter::once(at.0.to_string().into_bytes()).chain(records);
                self.redis.eval(&doing, APPEND_IF_AT, &keys, args).await?
            }
        };
        if first == 0 {
            let current = bytes;
            self.learn_last(current);
            return Ok(None);
        }
        if self.wait_replicas > 0 {
            let doing = format!("stream {:?}: waiting for Redis replicas", self.name);
            self.redis.wait_replicas(&doing, self.wait_replicas).await?;
        }
        self.bytes.store(bytes, Ordering::Release);
        self.learn_last((first + count).saturating_sub(1));
        Ok(Some(Position(first)))
    }

    /// Waits (at most [`BLOCK`]) for an entry past `known`, then learns the last
    /// position. Returns at once when the stream closed.
    async fn wait_for_append(&self, known: u64) -> Result<(), StoreError> {
        let mut blocking = self.blocking.lock().await;
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let conn = match &mut *blocking {
            Some(conn) => conn,
            None => blocking.insert(self.redis.connect(BLOCK + RESPONSE_TIMEOUT).await?),
        };
        let reply = ::redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS")
            .arg(&self.keys.log)
            .arg(format!("0-{known}"))
            .query_async::<::redis::Value>(conn)
            .await;
        self.redis.note(&reply);
        match reply {
            Ok(::redis::Value::Nil) => Ok(()),
            Ok(_) => {
                drop(blocking);
                let last: Option<u64> = self
                    .redis
                    .query(
                        &format!("stream {:?}: reading its last position", self.name),
                        ::redis::cmd("HGET").arg(&self.keys.meta).arg("last"),
                    )
                    .await?;
                self.learn_last(last.unwrap_or(0));
                Ok(())
            }
            Err(e) => {
                blocking.take();
                Err(self.error("waiting for appends", e))
            }
        }
    }

    async fn durable(&self, after: Position) -> Result<Position, StoreError> {
        let mut rx = self.last.subscribe();
        loop {
            let last = *rx.borrow_and_update();
            if last > after.0 {
                return Ok(Position(last));
            }
            if self.closed.load(Ordering::Acquire) {
                return Err(StoreError::Closed);
            }
            tokio::select! {
                changed = rx.changed() => changed.map_err(|_| StoreError::Closed)?,
                waited = self.wait_for_append(last) => waited?,
            }
        }
    }

    fn needs_compaction(&self) -> bool {
        self.bytes.load(Ordering::Acquire) > self.max_bytes
    }

    /// Snapshot and trim up to the last position; the caller holds `compacting`.
    async fn compact_locked(&self, retain: Retain) -> Result<(), StoreError> {
        let fetched = self.fetch_all_for_compaction().await?;
        let cut = fetched.last;
        let kept = retain(fetched.read.into_values());
        let doc = serde_json::to_vec(&SnapshotDoc { cut, records: kept })?;
        let (_applied, bytes): (u64, u64) = self
            .redis
            .eval_long(
                &format!("stream {:?}: compacting", self.name),
                COMPACTION_TIMEOUT,
                COMPACT,
                &self.keys.all(),
                [cut.to_string().into_bytes(), doc],
            )
            .await?;
        self.bytes.store(bytes, Ordering::Release);
        self.learn_last(cut);
        Ok(())
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.last.send_modify(|_| {});
        let _done = self.compacting.lock().await;
        // A waiter that is not being polled may hold it: it then drops it with itself.
        if let Ok(mut blocking) = self.blocking.try_lock() {
            blocking.take();
        }
    }
}

/// `0-<n>` → n.
fn parse_id(id: &str) -> Option<u64> {
    id.strip_prefix("0-")?.parse().ok()
}

/// The value of field [`FIELD`] in a flat field/value list.
fn record_field(fields: &[Vec<u8>]) -> Option<&[u8]> {
    fields
        .chunks(2)
        .find(|pair| pair.len() == 2 && pair[0] == FIELD.as_bytes())
        .map(|pair| pair[1].as_slice())
}

/// One open stream.
struct RedisLog {
    inner: Arc<Inner>,
}

impl Log for RedisLog {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn append(&self, records: Vec<Vec<u8>>) -> BoxFuture<'_, Result<Position, StoreError>> {
        Box::pin(self.inner.append(records))
    }

    fn append_if_at(
        &self,
        records: Vec<Vec<u8>>,
        expected: Position,
    ) -> BoxFuture<'_, Result<Option<Position>, StoreError>> {
        Box::pin(self.inner.append_at(records, Some(expected)))
    }

    fn last_position(&self) -> Position {
        Position(*self.inner.last.borrow())
    }

    fn durable(&self, after: Position) -> BoxFuture<'_, Result<Position, StoreError>> {
        Box::pin(self.inner.durable(after))
    }

    fn read_after(&self, after: Position) -> BoxFuture<'_, Result<Read, StoreError>> {
        Box::pin(async move {
            let fetched = self.inner.fetch(after.0).await?;
            self.inner.learn_last(fetched.last);
            self.inner.bytes.store(fetched.bytes, Ordering::Release);
            Ok(fetched.read)
        })
    }

    fn needs_compaction(&self) -> bool {
        self.inner.needs_compaction()
    }

    fn compact(&self, retain: Retain) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let _one = self.inner.compacting.lock().await;
            self.inner.compact_locked(retain).await
        })
    }

    fn compact_in_background(&self, retain: Retain) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        if self.inner.compaction_queued.swap(true, Ordering::AcqRel) {
            return false;
        }
        let inner = self.inner.clone();
        runtime.spawn(async move {
            let _one = inner.compacting.lock().await;
            inner.compaction_queued.store(false, Ordering::Release);
            if inner.closed.load(Ordering::Acquire) || !inner.needs_compaction() {
                return;
            }
            if let Err(e) = inner.compact_locked(retain).await {
                tracing::warn!(stream = %inner.name, error = %e, "background compaction failed");
            }
        });
        true
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.inner.close())
    }
}

/// Streams kept in one Redis, under a key prefix.
pub struct RedisBackend {
    redis: Arc<Connector>,
    prefix: String,
    wait_replicas: u32,
}

impl RedisBackend {
    /// A backend on the Redis at `url` (`redis://[user:password@]host:port/db`) keeping
    /// its keys under `prefix`. Connects on first use.
    pub fn new(url: &str, prefix: &str) -> Result<Self, StoreError> {
        Ok(RedisBackend {
            redis: Arc::new(Connector::new(url, prefix)?),
            prefix: prefix.to_string(),
            wait_replicas: 0,
        })
    }

    /// This backend acknowledging appends only once `replicas` Redis replicas have them.
    pub fn with_wait_replicas(mut self, replicas: u32) -> Self {
        self.wait_replicas = replicas;
        self
    }

    /// A backend on the same server and connections whose keys sit under
    /// `<prefix><namespace>:` (one owner's streams apart from another's).
    pub fn namespace(&self, namespace: &str) -> RedisBackend {
        RedisBackend {
            redis: self.redis.clone(),
            prefix: format!("{}{namespace}:", self.prefix),
            wait_replicas: self.wait_replicas,
        }
    }

    /// The store as errors name it (the URL's password masked).
    pub fn shown(&self) -> &str {
        self.redis.shown()
    }

    /// Whether Redis answers (`PING`), within the store's deadline.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _pong: String = self.redis.query("ping", &::redis::cmd("PING")).await?;
        Ok(())
    }

    /// The next value of the counter `name` (1 first), shared by every process on this
    /// Redis and prefix.
    pub async fn next_in_sequence(&self, name: &str) -> Result<u64, StoreError> {
        let key = format!("{}seq:{name}", self.prefix);
        Ok(self
            .redis
            .query(&format!("counter {name:?}"), ::redis::cmd("INCR").arg(key))
            .await?)
    }
}

impl Backend for RedisBackend {
    fn is_shared(&self) -> bool {
        true
    }

    fn next_in_sequence<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(async move { RedisBackend::next_in_sequence(self, name).await.map(Some) })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(RedisBackend::ping(self))
    }

    fn put_blob<'a>(
        &'a self,
        key: &'a str,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let _: ::redis::Value = self
                .redis
                .query(
                    &format!("blob {key:?}: writing"),
                    ::redis::cmd("SET")
                        .arg(format!("{}blob:{key}", self.prefix))
                        .arg(bytes)
                        .arg("NX"),
                )
                .await?;
            Ok(())
        })
    }

    fn get_blob<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            Ok(self
                .redis
                .query(
                    &format!("blob {key:?}: reading"),
                    ::redis::cmd("GET").arg(format!("{}blob:{key}", self.prefix)),
                )
                .await?)
        })
    }

    fn streams(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            let pattern = format!("{}*:meta", glob_escape(&self.prefix));
            let mut names = BTreeSet::new();
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = self
                    .redis
                    .query(
                        "listing streams",
                        ::redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(&pattern)
                            .arg("COUNT")
                            .arg(500),
                    )
                    .await?;
                names.extend(keys.iter().filter_map(|key| {
                    let name = key.strip_prefix(&self.prefix)?.strip_suffix(":meta")?;
                    validate_stream(name).is_ok().then(|| name.to_string())
                }));
                if next == 0 {
                    return Ok(names.into_iter().collect());
                }
                cursor = next;
            }
        })
    }

    fn open<'a>(
        &'a self,
        stream: &'a str,
        options: StreamOptions,
    ) -> BoxFuture<'a, Result<Opened, StoreError>> {
        Box::pin(async move {
            validate_stream(stream)?;
            let keys = Keys::new(&self.prefix, stream);
            let () = self
                .redis
                .query(
                    &format!("stream {stream:?}: creating"),
                    ::redis::cmd("HSETNX").arg(&keys.meta).arg("last").arg(0),
                )
                .await
                .map(|_: u64| ())?;
            let inner = Arc::new(Inner {
                name: stream.to_string(),
                keys,
                redis: self.redis.clone(),
                last: watch::Sender::new(0),
                bytes: AtomicU64::new(0),
                max_bytes: options.max_segment_bytes,
                closed: AtomicBool::new(false),
                compaction_queued: AtomicBool::new(false),
                compacting: AsyncMutex::new(()),
                blocking: AsyncMutex::new(None),
                wait_replicas: self.wait_replicas,
            });
            let fetched = inner.fetch(0).await?;
            inner.learn_last(fetched.last);
            inner.bytes.store(fetched.bytes, Ordering::Release);
            let log: Arc<dyn Log> = Arc::new(RedisLog { inner });
            Ok((log, fetched.read))
        })
    }
}
