//! The typed layer over the seam: [`Stream<E>`] appends and replays records of one Rust
//! type, tails a stream from a position, and compacts it by a [`Compaction`] rule.
//!
//! Owns encoding records as JSON and decoding them back (a record that does not decode
//! is reported, skipped by replay and kept by compaction, never dropped), and when to
//! compact. Must not touch the bytes of any backend.

use std::{collections::VecDeque, marker::PhantomData, sync::Arc};

use futures::stream::BoxStream;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::{Backend, LocalBackend, Log, Position, Read, Retain, StoreError, StreamOptions};

/// What a compaction keeps: from every record up to the cut, in order, the records that
/// rebuild the same state (the last write per key, the live window, nothing at all).
/// The result becomes the snapshot; the log is trimmed to the records after the cut.
pub struct Compaction<E> {
    retain: Arc<dyn Fn(Vec<E>) -> Vec<E> + Send + Sync>,
}

impl<E> Clone for Compaction<E> {
    fn clone(&self) -> Self {
        Compaction {
            retain: self.retain.clone(),
        }
    }
}

impl<E: Serialize + DeserializeOwned + Send + 'static> Compaction<E> {
    pub fn new(retain: impl Fn(Vec<E>) -> Vec<E> + Send + Sync + 'static) -> Self {
        Compaction {
            retain: Arc::new(retain),
        }
    }

    /// Keeps the last record of each key, in the order of those last records.
    pub fn last_per_key<K: std::hash::Hash + Eq>(
        key: impl Fn(&E) -> K + Send + Sync + 'static,
    ) -> Self {
        Self::new(move |records| {
            let mut last = std::collections::HashMap::new();
            for (i, r) in records.iter().enumerate() {
                last.insert(key(r), i);
            }
            records
                .into_iter()
                .enumerate()
                .filter(|(i, r)| last.get(&key(r)) == Some(i))
                .map(|(_, r)| r)
                .collect()
        })
    }

    /// Keeps nothing: the records only matter until the next compaction.
    pub fn discard() -> Self {
        Self::new(|_| Vec::new())
    }

    /// The untyped [`Retain`] for the backend: records that do not decode as `E` are
    /// kept (first) as they were, so a compaction never loses what it cannot read.
    fn untyped(&self, stream: String) -> Retain {
        let retain = self.retain.clone();
        Box::new(move |values: Vec<Value>| {
            let mut kept = Vec::new();
            let mut typed = Vec::with_capacity(values.len());
            for v in values {
                match E::deserialize(&v) {
                    Ok(e) => typed.push(e),
                    Err(e) => {
                        tracing::warn!(%stream, error = %e, "compaction keeps a record it cannot read");
                        kept.push(v);
                    }
                }
            }
            for e in retain(typed) {
                match serde_json::to_value(&e) {
                    Ok(v) => kept.push(v),
                    Err(err) => {
                        tracing::error!(%stream, error = %err, "compaction could not encode a kept record")
                    }
                }
            }
            kept
        })
    }
}

/// A typed read: what [`Read`] holds, decoded.
#[derive(Debug)]
pub struct Replay<E> {
    /// The snapshot when the read started before it: its records stand for everything
    /// up to its position (a reader replaces what it held with them).
    pub snapshot: Option<(Position, Vec<E>)>,
    /// The records after it, with their positions.
    pub records: Vec<(Position, E)>,
    /// Records that did not decode as `E` (position, or that of the snapshot for its own
    /// records; and why), skipped here.
    pub undecodable: Vec<(Position, String)>,
}

impl<E: DeserializeOwned> Replay<E> {
    fn decode(read: Read) -> Self {
        let mut undecodable = Vec::new();
        let mut decode = |p: Position, v: Value| match serde_json::from_value::<E>(v) {
            Ok(e) => Some(e),
            Err(err) => {
                undecodable.push((p, err.to_string()));
                None
            }
        };
        let snapshot = read.snapshot.map(|(p, records)| {
            let records = records.into_iter().filter_map(|v| decode(p, v)).collect();
            (p, records)
        });
        let records = read
            .records
            .into_iter()
            .filter_map(|(p, v)| decode(p, v).map(|e| (p, e)))
            .collect();
        Replay {
            snapshot,
            records,
            undecodable,
        }
    }
}

impl<E> Replay<E> {
    /// The last position this replay accounts for (0 for an empty stream).
    pub fn end(&self) -> Position {
        let snap = self.snapshot.as_ref().map_or(Position::START, |(p, _)| *p);
        let skipped = self.undecodable.iter().map(|(p, _)| *p).max();
        let last = self.records.last().map(|(p, _)| *p);
        snap.max(skipped.unwrap_or_default())
            .max(last.unwrap_or_default())
    }

    /// The snapshot's records, then the others: what a store rebuilds its state from.
    pub fn into_records(self) -> Vec<E> {
        let mut out = self.snapshot.map(|(_, r)| r).unwrap_or_default();
        out.extend(self.records.into_iter().map(|(_, r)| r));
        out
    }
}

/// One item of a [`Tail`].
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<E> {
    /// The tail fell behind a compaction: replace what was held with these records,
    /// which stand for everything up to `position`.
    Snapshot { position: Position, records: Vec<E> },
    /// The next durable record.
    Record { position: Position, record: E },
}

/// Durable entries as they arrive; ends when the stream closes.
pub type Tail<E> = BoxStream<'static, Result<Entry<E>, StoreError>>;

/// A stream of records of type `E` on any backend. Cheap to clone.
pub struct Stream<E> {
    log: Arc<dyn Log>,
    compaction: Compaction<E>,
    _records: PhantomData<fn() -> E>,
}

impl<E> Clone for Stream<E> {
    fn clone(&self) -> Self {
        Stream {
            log: self.log.clone(),
            compaction: self.compaction.clone(),
            _records: PhantomData,
        }
    }
}

impl<E> std::fmt::Debug for Stream<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("name", &self.log.name())
            .field("last_position", &self.log.last_position())
            .finish()
    }
}

impl<E: Serialize + DeserializeOwned + Send + 'static> Stream<E> {
    /// A typed stream over an open log, compacted by `compaction` whenever the log grows
    /// past its size limit after an append.
    pub fn new(log: Arc<dyn Log>, compaction: Compaction<E>) -> Self {
        Stream {
            log,
            compaction,
            _records: PhantomData,
        }
    }

    /// Opens `name` on `backend`, returning the stream and what it holds.
    pub async fn open(
        backend: &dyn Backend,
        name: &str,
        options: StreamOptions,
        compaction: Compaction<E>,
    ) -> Result<(Self, Replay<E>), StoreError> {
        let (log, read) = backend.open(name, options).await?;
        Ok((Self::new(log, compaction), Replay::decode(read)))
    }

    /// [`Stream::open`] for constructors that are not async ([`Backend::open_now`]).
    pub fn open_now(
        backend: &dyn Backend,
        name: &str,
        options: StreamOptions,
        compaction: Compaction<E>,
    ) -> Result<(Self, Replay<E>), StoreError> {
        let (log, read) = backend.open_now(name, options)?;
        Ok((Self::new(log, compaction), Replay::decode(read)))
    }

    /// [`Stream::open`] on the local backend, for constructors that are not async.
    pub fn open_local(
        backend: &LocalBackend,
        name: &str,
        options: StreamOptions,
        compaction: Compaction<E>,
    ) -> Result<(Self, Replay<E>), StoreError> {
        let (log, read) = backend.open_now(name, options)?;
        Ok((Self::new(log, compaction), Replay::decode(read)))
    }

    pub fn name(&self) -> &str {
        self.log.name()
    }

    /// The seam this stream writes through.
    pub fn log(&self) -> &Arc<dyn Log> {
        &self.log
    }

    /// Appends `record`; resolves with its position once it is durable. Queues a
    /// background compaction when the log has grown past its limit.
    pub async fn append(&self, record: &E) -> Result<Position, StoreError> {
        let line = serde_json::to_vec(record)?;
        let position = self.log.append(vec![line]).await?;
        self.compact_if_needed();
        Ok(position)
    }

    /// Appends `record` only if the stream is still at `expected` (`None`: another
    /// process appended first; see [`super::Log::append_if_at`]).
    pub async fn append_if_at(
        &self,
        record: &E,
        expected: Position,
    ) -> Result<Option<Position>, StoreError> {
        let line = serde_json::to_vec(record)?;
        let position = self.log.append_if_at(vec![line], expected).await?;
        if position.is_some() {
            self.compact_if_needed();
        }
        Ok(position)
    }

    /// Appends `records` contiguously; resolves with the first one's position.
    pub async fn append_many(&self, records: &[E]) -> Result<Position, StoreError> {
        let lines = records
            .iter()
            .map(serde_json::to_vec)
            .collect::<Result<Vec<_>, _>>()?;
        let position = self.log.append(lines).await?;
        self.compact_if_needed();
        Ok(position)
    }

    /// The last durable position.
    pub fn last_position(&self) -> Position {
        self.log.last_position()
    }

    /// The durable records after `after` (the snapshot first when `after` is before it).
    pub async fn read_after(&self, after: Position) -> Result<Replay<E>, StoreError> {
        Ok(Replay::decode(self.log.read_after(after).await?))
    }

    /// Every durable entry after `after`, then each new one as it becomes durable.
    /// Records that do not decode are skipped (and logged).
    pub fn tail(&self, after: Position) -> Tail<E> {
        let state = (self.log.clone(), after, VecDeque::<Entry<E>>::new());
        Box::pin(futures::stream::unfold(Some(state), |state| async move {
            let (log, mut at, mut queued) = state?;
            loop {
                if let Some(entry) = queued.pop_front() {
                    return Some((Ok(entry), Some((log, at, queued))));
                }
                let read = match log.durable(at).await {
                    Ok(_) => log.read_after(at).await,
                    Err(StoreError::Closed) => return None,
                    Err(e) => Err(e),
                };
                let read = match read {
                    Ok(read) => read,
                    Err(e) => return Some((Err(e), None)),
                };
                at = read.end(at);
                let replay = Replay::<E>::decode(read);
                for (p, reason) in &replay.undecodable {
                    tracing::warn!(stream = log.name(), position = p.0, %reason, "tail skipped a record");
                }
                if let Some((position, records)) = replay.snapshot {
                    queued.push_back(Entry::Snapshot { position, records });
                }
                queued.extend(
                    replay
                        .records
                        .into_iter()
                        .map(|(position, record)| Entry::Record { position, record }),
                );
            }
        }))
    }

    /// Whether the log has grown past its limit.
    pub fn needs_compaction(&self) -> bool {
        self.log.needs_compaction()
    }

    /// Snapshot and trim now: the records acknowledged so far go through the stream's
    /// [`Compaction`]; appends wait meanwhile.
    pub async fn compact(&self) -> Result<(), StoreError> {
        let retain = self.compaction.untyped(self.name().to_string());
        self.log.compact(retain).await
    }

    fn compact_if_needed(&self) {
        if self.log.needs_compaction() {
            let retain = self.compaction.untyped(self.name().to_string());
            self.log.compact_in_background(retain);
        }
    }

    /// Makes queued appends (and a background compaction) durable and closes the
    /// stream, compacting it first when it is still over its limit (a background
    /// compaction may lag behind fast appends: its snapshot is fsynced), so the next
    /// open replays little.
    pub async fn close(&self) {
        if self.log.needs_compaction()
            && let Err(e) = self.compact().await
        {
            tracing::warn!(stream = self.name(), error = %e, "compaction on close failed");
        }
        self.log.close().await
    }
}
