//! The bus on a shared backend (`--store redis://…`): several processes append to the
//! same streams, so each one follows every stream and takes the others' events into its
//! rings, subscriptions and long polls as if they were published here.
//!
//! Owns opening the bus on a shared backend, one follower task per stream (reading each
//! record once, in stream order, after the position it started from), the discovery of
//! streams another process created, and telling foreign events from this process's own
//! (an event id is "own" from just before its append until it is in the ring; a seq
//! already in the ring is never taken twice). Must not touch what the events mean.

use std::{
    sync::{Arc, Weak, atomic::Ordering},
    time::Duration,
};

use super::{BusInner, BusOptions, Event, EventBus, EventError};
use crate::runtime::store::{Backend, Log, Position, StoreError};

/// How often a bus looks for streams another process created.
const DISCOVERY_EVERY: Duration = Duration::from_secs(1);
/// Pause after a failed read before a follower tries again (the store is down).
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(500);

impl EventBus {
    /// A bus whose logs live on `backend`, opened from synchronous code
    /// ([`Backend::open_now`]): every bus stream is replayed into the rings; on a shared
    /// backend each is then followed, and streams other processes create are found.
    pub fn open_now(
        backend: Arc<dyn Backend>,
        options: BusOptions,
    ) -> Result<EventBus, EventError> {
        let shared = backend.is_shared();
        let mut bus = Self::build(Some(backend.clone()), None, options);
        if let Some(inner) = Arc::get_mut(&mut bus.inner) {
            inner.shared = shared;
        }
        for stream in backend.streams_now()? {
            if !bus.is_bus_stream(&stream) {
                continue;
            }
            let opened = backend.open_now(&stream, bus.inner.options.stream())?;
            let (log, end) = (opened.0.clone(), opened.1.end(Position::START));
            bus.install(&stream, opened);
            if shared {
                bus.follow(&stream, log, end);
            }
        }
        bus.replayed();
        if shared {
            bus.discover_streams();
        }
        Ok(bus)
    }

    /// Starts a follower of `stream` from after `after`, once per stream.
    pub(super) fn follow(&self, stream: &str, log: Arc<dyn Log>, after: Position) {
        {
            let mut followed = self.inner.followed.lock();
            if followed.contains_key(stream) {
                return;
            }
            followed.insert(stream.to_string(), after);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(stream, "no runtime: the event stream is not followed");
            return;
        };
        let bus = Arc::downgrade(&self.inner);
        runtime.spawn(follow_stream(bus, log, after));
    }

    /// Every [`DISCOVERY_EVERY`], opens (and so follows) the bus streams the backend
    /// holds that this process has not opened.
    fn discover_streams(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let bus = Arc::downgrade(&self.inner);
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(DISCOVERY_EVERY).await;
                let Some(bus) = upgrade(&bus) else { return };
                if bus.inner.closed.load(Ordering::Acquire) {
                    return;
                }
                bus.open_new_streams().await;
            }
        });
    }

    async fn open_new_streams(&self) {
        let Some(backend) = self.inner.backend.clone() else {
            return;
        };
        let streams = match backend.streams().await {
            Ok(streams) => streams,
            Err(e) => {
                tracing::debug!(error = %e, "listing event streams failed");
                return;
            }
        };
        for stream in streams {
            let known = self.inner.logs.lock().contains_key(&stream);
            if !known
                && self.is_bus_stream(&stream)
                && let Err(e) = self.log_for(&stream).await
            {
                tracing::debug!(stream, error = %e, "opening a new event stream failed");
            }
        }
    }

    /// Reads `stream` on the shared store past what its follower has taken in, takes
    /// those events in at once, and returns every event read (the caller's own included):
    /// after it, this process holds every event of the stream acknowledged before the
    /// call began. Nothing on a local store.
    pub async fn catch_up(&self, stream: &str) -> Result<Vec<Arc<Event>>, EventError> {
        if !self.inner.shared {
            return Ok(Vec::new());
        }
        let Some(log) = self.log_for(stream).await? else {
            return Ok(Vec::new());
        };
        let after = self
            .inner
            .followed
            .lock()
            .get(stream)
            .copied()
            .unwrap_or(Position::START);
        let read = log.read_after(after).await?;
        let mut events = Vec::new();
        for record in read.into_values() {
            if let Ok(event) = serde_json::from_value::<Event>(record) {
                let event = Arc::new(event);
                self.receive_foreign_shared(event.clone());
                events.push(event);
            }
        }
        Ok(events)
    }

    /// Takes in an event another process published: its seq counts, and unless this
    /// process published it or already holds it, it joins its ring and reaches
    /// subscribers and long polls.
    fn receive_foreign(&self, event: Event) {
        self.receive_foreign_shared(Arc::new(event));
    }

    fn receive_foreign_shared(&self, event: Arc<Event>) {
        if self.inner.own_pending.lock().contains(&event.id) {
            return;
        }
        self.inner.seq.fetch_max(event.seq, Ordering::AcqRel);
        if self.insert_ring(event.clone(), false) {
            self.notify(&event, true);
        }
    }

    /// Records that the follower of `stream` took in everything up to `at`.
    fn followed_to(&self, stream: &str, at: Position) {
        if let Some(known) = self.inner.followed.lock().get_mut(stream) {
            *known = (*known).max(at);
        }
    }
}

fn upgrade(bus: &Weak<BusInner>) -> Option<EventBus> {
    bus.upgrade().map(|inner| EventBus { inner })
}

/// Reads `log` after `at` as records become durable, handing each event to the bus,
/// until the log closes or the bus is gone. A failed read (the store is down) is tried
/// again after a pause, from the same position.
async fn follow_stream(bus: Weak<BusInner>, log: Arc<dyn Log>, mut at: Position) {
    let mut failing = false;
    loop {
        let read = match log.durable(at).await {
            Ok(_) => log.read_after(at).await,
            Err(StoreError::Closed) => return,
            Err(e) => Err(e),
        };
        let read = match read {
            Ok(read) => {
                if failing {
                    tracing::info!(stream = log.name(), "event stream readable again");
                    failing = false;
                }
                read
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(stream = log.name(), error = %e, "following an event stream failed; retrying");
                    failing = true;
                }
                tokio::time::sleep(RETRY_AFTER_FAILURE).await;
                continue;
            }
        };
        at = read.end(at);
        let Some(bus) = upgrade(&bus) else { return };
        for record in read.into_values() {
            match serde_json::from_value::<Event>(record) {
                Ok(event) => bus.receive_foreign(event),
                Err(e) => {
                    tracing::warn!(stream = log.name(), error = %e, "skipped a record that is not an event")
                }
            }
        }
        bus.followed_to(log.name(), at);
    }
}
