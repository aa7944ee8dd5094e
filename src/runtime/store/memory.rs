//! The in-memory backend: streams held in the process, gone when it exits. It keeps the
//! seam honest (the typed layer and its tests run on a backend that is not a file) and
//! serves embedders that want no state directory.
//!
//! Owns only its maps; must not touch files, any toolset, the server or the transport.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::watch;

use super::{Backend, BoxFuture, Log, Opened, Position, Read, Retain, StoreError, StreamOptions};

#[derive(Default)]
struct State {
    snapshot: Option<(u64, Vec<Value>)>,
    records: Vec<(u64, Value)>,
    last: u64,
    /// Bytes appended since the last compaction.
    bytes: u64,
}

impl State {
    fn read_after(&self, after: u64) -> Read {
        let snapshot = self
            .snapshot
            .as_ref()
            .filter(|(at, records)| after < *at || (after == 0 && !records.is_empty()));
        let from = snapshot.map_or(after, |(at, _)| (*at).max(after));
        Read {
            snapshot: snapshot.map(|(at, records)| (Position(*at), records.clone())),
            records: self
                .records
                .iter()
                .filter(|(p, _)| *p > from)
                .map(|(p, v)| (Position(*p), v.clone()))
                .collect(),
        }
    }

    fn compact(&mut self, retain: Retain) {
        let mut all = self.snapshot.take().map(|(_, r)| r).unwrap_or_default();
        all.extend(self.records.drain(..).map(|(_, v)| v));
        self.snapshot = Some((self.last, retain(all)));
        self.bytes = 0;
    }
}

/// A stream's contents, shared by every handle opened on it.
struct Shared {
    state: Mutex<State>,
    durable: watch::Sender<u64>,
}

/// One open handle.
struct MemoryLog {
    name: String,
    shared: Arc<Shared>,
    closed: AtomicBool,
    max_bytes: u64,
}

impl Log for MemoryLog {
    fn name(&self) -> &str {
        &self.name
    }

    fn append(&self, records: Vec<Vec<u8>>) -> BoxFuture<'_, Result<Position, StoreError>> {
        Box::pin(async move {
            if self.closed.load(Ordering::Acquire) {
                return Err(StoreError::Closed);
            }
            let values = records
                .iter()
                .map(|r| serde_json::from_slice::<Value>(r))
                .collect::<Result<Vec<_>, _>>()?;
            let mut state = self.shared.state.lock();
            let first = state.last + 1;
            for (v, raw) in values.into_iter().zip(&records) {
                state.last += 1;
                state.bytes += raw.len() as u64 + 1;
                let at = state.last;
                state.records.push((at, v));
            }
            self.shared.durable.send_replace(state.last);
            Ok(Position(first))
        })
    }

    fn last_position(&self) -> Position {
        Position(self.shared.state.lock().last)
    }

    fn durable(&self, after: Position) -> BoxFuture<'_, Result<Position, StoreError>> {
        let mut rx = self.shared.durable.subscribe();
        Box::pin(async move {
            loop {
                let last = *rx.borrow_and_update();
                if last > after.0 {
                    return Ok(Position(last));
                }
                if self.closed.load(Ordering::Acquire) {
                    return Err(StoreError::Closed);
                }
                rx.changed().await.map_err(|_| StoreError::Closed)?;
            }
        })
    }

    fn read_after(&self, after: Position) -> BoxFuture<'_, Result<Read, StoreError>> {
        let read = self.shared.state.lock().read_after(after.0);
        Box::pin(async move { Ok(read) })
    }

    fn needs_compaction(&self) -> bool {
        self.shared.state.lock().bytes > self.max_bytes
    }

    fn compact(&self, retain: Retain) -> BoxFuture<'_, Result<(), StoreError>> {
        self.shared.state.lock().compact(retain);
        Box::pin(async { Ok(()) })
    }

    fn compact_in_background(&self, retain: Retain) -> bool {
        let mut state = self.shared.state.lock();
        if state.bytes > self.max_bytes {
            state.compact(retain);
        }
        true
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        self.closed.store(true, Ordering::Release);
        self.shared.durable.send_modify(|_| {});
        Box::pin(async {})
    }
}

/// Streams kept in memory for as long as the backend lives; reopening a stream sees
/// what earlier handles appended.
#[derive(Default)]
pub struct MemoryBackend {
    streams: Mutex<HashMap<String, Arc<Shared>>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Backend for MemoryBackend {
    fn streams(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        let names = self.streams.lock().keys().cloned().collect();
        Box::pin(async move { Ok(names) })
    }

    fn open<'a>(
        &'a self,
        stream: &'a str,
        options: StreamOptions,
    ) -> BoxFuture<'a, Result<Opened, StoreError>> {
        let shared = self
            .streams
            .lock()
            .entry(stream.to_string())
            .or_insert_with(|| {
                Arc::new(Shared {
                    state: Mutex::new(State::default()),
                    durable: watch::Sender::new(0),
                })
            })
            .clone();
        let read = shared.state.lock().read_after(0);
        let log = MemoryLog {
            name: stream.to_string(),
            shared,
            closed: AtomicBool::new(false),
            max_bytes: options.max_segment_bytes,
        };
        Box::pin(async move { Ok((Arc::new(log) as Arc<dyn Log>, read)) })
    }
}
