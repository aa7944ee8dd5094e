//! A state folded from one stream, kept the same on every process that shares the
//! stream's backend (`--store redis://…`): profiles, reviews, artifacts, graphs, PRP
//! runs and teaching examples.
//!
//! Owns the order in which records reach a store's state ([`Fold`]). On a local backend
//! one process writes: a store applies its own record once it is durable, as before.
//! On a shared backend every record, its own included, is applied in log order and once:
//! by the writer up to its own record before it answers (read-your-writes), by a reader
//! that asks to catch up (one read of the store), and by a follower that tails the
//! stream so memory stays current without being asked. Must not know what the records
//! mean, and never writes a record itself.

use std::sync::{Arc, Weak};

use futures::StreamExt;
use serde::{Serialize, de::DeserializeOwned};

use super::{Backend, Compaction, Entry, Position, Replay, StoreError, Stream, StreamOptions};

/// Most attempts of a read-modify-write before it gives up (others kept appending).
const MAX_ATTEMPTS: usize = 64;

/// The longest a read-modify-write waits in all between attempts.
const MAX_CONFLICT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The pause after a lost conditional append: exponential with jitter, so that writers
/// that collided do not collide again in lockstep (without it, one process could lose
/// every round to a faster one).
fn conflict_backoff() -> impl Iterator<Item = std::time::Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(1))
        .with_max_delay(std::time::Duration::from_millis(25))
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(MAX_ATTEMPTS - 1)
        .with_total_delay(Some(MAX_CONFLICT_WAIT))
        .build()
}

/// How long a follower waits before tailing again after a store error.
const RETRY_AFTER_ERROR: std::time::Duration = std::time::Duration::from_secs(1);

/// A store's in-memory state, rebuilt from its records (interior mutability: the
/// replicated stream calls it from its follower as well as from the writer).
pub trait Fold<E>: Send + Sync + 'static {
    /// Applies the next record, in log order.
    fn apply(&self, record: E);
    /// Replaces the whole state with a snapshot's records (they stand for every record
    /// up to the snapshot; a follower that fell behind a compaction gets one).
    fn reset(&self, records: Vec<E>);
}

/// One stream whose records every sharing process applies in the same order.
pub struct Replicated<E> {
    stream: Stream<E>,
    shared: bool,
    /// The last position the state reflects (shared backend only).
    applied: Arc<tokio::sync::Mutex<Position>>,
}

impl<E> Replicated<E>
where
    E: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Opens `name` on `backend` and returns what it holds, for the store to rebuild its
    /// state from (then [`Replicated::follow`] once it is shared in an `Arc`).
    pub fn open_now(
        backend: &dyn Backend,
        name: &str,
        options: StreamOptions,
        compaction: Compaction<E>,
    ) -> Result<(Self, Replay<E>), StoreError> {
        let (stream, replay) = Stream::open_now(backend, name, options, compaction)?;
        let end = replay.end();
        Ok((
            Replicated {
                stream,
                shared: backend.is_shared(),
                applied: Arc::new(tokio::sync::Mutex::new(end)),
            },
            replay,
        ))
    }

    /// Whether other processes append to this stream.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Appends `record` and applies it to `state`: at once on a local backend; on a
    /// shared one, after every record before it (so `state` holds the record and what
    /// others wrote first when this returns). Resolves once the record is durable.
    pub async fn append(&self, record: E, state: &dyn Fold<E>) -> Result<Position, StoreError> {
        let position = self.stream.append(&record).await?;
        if !self.shared {
            state.apply(record);
            return Ok(position);
        }
        let mut applied = self.applied.lock().await;
        if applied.0 + 1 == position.0 {
            state.apply(record);
            *applied = position;
            return Ok(position);
        }
        self.read_into(&mut applied, state).await?;
        if *applied < position {
            // The read ended before our record (a snapshot cut at an earlier position).
            state.apply(record);
            *applied = position;
        }
        Ok(position)
    }

    /// A read-modify-write: `make` builds the record from `state` as it is, and the
    /// record is appended only if nothing else was appended in between — on a shared
    /// backend, after applying what others wrote, and again from the new state when
    /// another process appended first (so two replicas changing one thing at once both
    /// land, in turn). `make`'s own error is returned as the inner `Err`, nothing
    /// appended. On a local backend the caller serialises its changes itself.
    pub async fn append_current<T>(
        &self,
        state: &dyn Fold<E>,
        mut make: impl FnMut() -> Result<E, T>,
    ) -> Result<Result<Position, T>, StoreError> {
        if !self.shared {
            let record = match make() {
                Ok(record) => record,
                Err(e) => return Ok(Err(e)),
            };
            return self.append(record, state).await.map(Ok);
        }
        let mut backoff = conflict_backoff();
        let mut attempts = 0;
        loop {
            attempts += 1;
            {
                let mut applied = self.applied.lock().await;
                self.read_into(&mut applied, state).await?;
                let record = match make() {
                    Ok(record) => record,
                    Err(e) => return Ok(Err(e)),
                };
                if let Some(position) = self.stream.append_if_at(&record, *applied).await? {
                    state.apply(record);
                    *applied = position;
                    return Ok(Ok(position));
                }
            }
            match backoff.next() {
                Some(pause) => tokio::time::sleep(pause).await,
                None => break,
            }
        }
        Err(StoreError::Backend(format!(
            "stream {}: other replicas kept writing during {attempts} attempts; try again",
            self.stream.name()
        )))
    }

    /// On a shared backend, applies to `state` every record acknowledged anywhere before
    /// this call (one read of the store); nothing on a local one.
    pub async fn catch_up(&self, state: &dyn Fold<E>) -> Result<(), StoreError> {
        if !self.shared {
            return Ok(());
        }
        let mut applied = self.applied.lock().await;
        self.read_into(&mut applied, state).await
    }

    /// [`Replicated::catch_up`] for a reader that answers from what it holds when the
    /// store does not answer (the failure is logged).
    pub async fn catch_up_or_log(&self, state: &dyn Fold<E>) {
        if let Err(e) = self.catch_up(state).await {
            tracing::warn!(stream = self.stream.name(), error = %e, "answering from this replica's copy: the shared store did not answer");
        }
    }

    async fn read_into(
        &self,
        applied: &mut Position,
        state: &dyn Fold<E>,
    ) -> Result<(), StoreError> {
        let replay = self.stream.read_after(*applied).await?;
        apply_replay(self.stream.name(), applied, state, replay);
        Ok(())
    }

    /// On a shared backend, starts applying to `state` the records other processes
    /// append, as they arrive (nothing on a local one). The follower stops when `state`
    /// is dropped or the stream closes.
    pub fn follow<S: Fold<E>>(&self, state: &Arc<S>) {
        if !self.shared {
            return;
        }
        let stream = self.stream.clone();
        let applied = self.applied.clone();
        let state: Weak<S> = Arc::downgrade(state);
        tokio::spawn(async move {
            // Logged once per outage, not once per retry.
            let mut failing = false;
            loop {
                let from = *applied.lock().await;
                let mut tail = stream.tail(from);
                let mut failed = false;
                while let Some(entry) = tail.next().await {
                    let Some(state) = state.upgrade() else { return };
                    match entry {
                        Ok(entry) => {
                            if std::mem::take(&mut failing) {
                                tracing::info!(
                                    stream = stream.name(),
                                    "the shared stream is readable again"
                                );
                            }
                            apply_entry(&mut *applied.lock().await, &*state, entry)
                        }
                        Err(e) => {
                            if !failing {
                                tracing::warn!(stream = stream.name(), error = %e, "following the shared stream failed; retrying every second");
                            }
                            failing = true;
                            failed = true;
                            break;
                        }
                    }
                }
                // A tail ends without an error only when the stream closed.
                if !failed || state.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(RETRY_AFTER_ERROR).await;
            }
        });
    }

    /// The underlying stream (appends that must not be applied, compaction, close).
    pub fn stream(&self) -> &Stream<E> {
        &self.stream
    }

    /// Makes queued appends durable and closes the stream.
    pub async fn close(&self) {
        self.stream.close().await
    }
}

fn apply_replay<E: 'static>(
    name: &str,
    applied: &mut Position,
    state: &dyn Fold<E>,
    replay: Replay<E>,
) {
    let end = replay.end();
    for (position, reason) in &replay.undecodable {
        tracing::warn!(stream = name, position = position.0, %reason, "skipped a record this build cannot read");
    }
    if let Some((position, records)) = replay.snapshot {
        apply_entry(applied, state, Entry::Snapshot { position, records });
    }
    for (position, record) in replay.records {
        apply_entry(applied, state, Entry::Record { position, record });
    }
    *applied = (*applied).max(end);
}

/// Applies `entry` unless `state` already reflects it.
fn apply_entry<E: 'static>(applied: &mut Position, state: &dyn Fold<E>, entry: Entry<E>) {
    match entry {
        Entry::Snapshot { position, records } if position > *applied => {
            state.reset(records);
            *applied = position;
        }
        Entry::Record { position, record } if position > *applied => {
            state.apply(record);
            *applied = position;
        }
        _ => {}
    }
}
