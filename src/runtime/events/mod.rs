//! Event bus: typed and dynamic publishing, journaled history, filtered
//! subscriptions, long-polling and an opt-in outbound HTTP sink.
//!
//! Owns: the [`Event`] envelope, global event sequence numbers, the topic
//! index used for fan-out, the in-memory recent ring per event type, one
//! [`Log`] per topic prefix (first dot-segment of the type, e.g. `github`
//! for `github.issue.action`), and the HTTP sink delivery loop.
//!
//! Must not touch: any toolset, server or transport module; it writes only through the
//! store seam ([`crate::runtime::store::Backend`] / [`Log`]), so the logs may live in
//! local files ([`LocalBackend`], what the server passes in: `<state>/events/`), in
//! memory ([`crate::runtime::store::MemoryBackend`]) or on a networked backend.
//!
//! Filters: `*` (or empty) matches every type, `github.*` matches types
//! starting with `github.`, `git*` matches types starting with `git`, and
//! anything else matches one exact type.
//!
//! Ordering: `seq` is unique and assigned in publish order. Concurrent
//! publishers may complete (and notify subscribers) slightly out of seq order;
//! [`EventBus::read_since`] always returns events sorted by seq.
//!
//! Durability: [`EventBus::publish`] returns once the backend acknowledged the append
//! as durable (local: written and fsynced under the [`Fsync`] policy); subscribers are
//! notified right after. A bus without a backend keeps only its rings.
//!
//! Retention: a stream's log is compacted once it passes
//! [`BusOptions::max_segment_bytes`] (default [`DEFAULT_MAX_SEGMENT_BYTES`]: a size
//! comparison after each append; the compaction runs in the background, see
//! [`Log::compact_in_background`]), or when [`EventBus::compact`] asks.
//! It keeps the newest events of each type that the rings hold
//! ([`BusOptions::ring_capacity`]), so rings and [`EventBus::read_since`] look the same
//! after a restart, and, for a stream an owner holds ([`EventBus::hold`]), every event
//! above the owner's floor. Seqs are kept, so the global seq stays monotonic.
//! [`EventBus::history`] of a stream nobody holds only covers that window.
//!
//! Layout: this module is the bus itself (envelope, seqs, rings, publish, subscribe,
//! read/long-poll); [`topics`] holds filters, the topic index and subscriptions;
//! [`history`] opens, replays and compacts the logs and serves [`EventBus::history`];
//! [`sink`] is the outbound HTTP sink.
//!
//! Only [`EventBus::attach_http_sink`] spawns a task; the local backend's logs have a
//! writer thread each.

mod follow;
mod history;
mod sink;
mod topics;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::store::{Backend, Fsync, LocalBackend, Log, Position, StoreError, StreamOptions};

pub use history::StreamHold;
pub use sink::{SinkHandle, SinkOptions, SinkReport};
pub use topics::Subscription;
use topics::{Filter, SubEntry, SubIndex, topic_prefix, validate_type};

/// Default number of recent events kept in memory per event type.
pub const DEFAULT_RING_CAPACITY: usize = 10_000;

/// Default segment size after which a stream's journal is compacted.
pub const DEFAULT_MAX_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// How the bus keeps events in memory and on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusOptions {
    pub policy: Fsync,
    /// Recent events kept in memory per event type (at least 1).
    pub ring_capacity: usize,
    /// Segment size after which a stream's journal is compacted.
    pub max_segment_bytes: u64,
}

impl BusOptions {
    pub fn new(policy: Fsync) -> Self {
        Self {
            policy,
            ring_capacity: DEFAULT_RING_CAPACITY,
            max_segment_bytes: DEFAULT_MAX_SEGMENT_BYTES,
        }
    }

    fn stream(&self) -> StreamOptions {
        StreamOptions::new(self.policy, self.max_segment_bytes)
    }
}

/// Errors produced by the event bus.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error(transparent)]
    Journal(#[from] StoreError),
    #[error("failed to serialize event payload: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("invalid event type {0:?}")]
    InvalidType(String),
    #[error("journal stream {stream:?} holds a record that is not an event: {reason}")]
    BadRecord { stream: String, reason: String },
}

/// The version of an event's data shape when the envelope names none: every event
/// journaled before envelopes carried [`Event::data_version`].
pub const FIRST_DATA_VERSION: u32 = 1;

fn first_data_version() -> u32 {
    FIRST_DATA_VERSION
}

/// Event envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// UUID v7.
    pub id: String,
    /// Dotted event type, also the topic (e.g. `github.issue.action`).
    pub r#type: String,
    /// Component that published the event.
    pub source: String,
    /// RFC 3339 publish time.
    pub time: String,
    /// Bus-wide sequence number.
    pub seq: u64,
    pub data: Value,
    /// The version of `data`'s shape for this `type` (1, raised when a field changes
    /// meaning or type or goes away); events journaled before it was kept read as 1.
    #[serde(default = "first_data_version")]
    #[schemars(range(min = 1))]
    pub data_version: u32,
    /// The principal whose object the event is about (see [`crate::runtime::principal`]):
    /// only it is shown the event. Absent: everyone may see it (a shared object, an event
    /// about no one's object, or one journaled before owners were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl Event {
    /// Whether `principal` may be shown this event.
    pub fn visible_to(&self, principal: &crate::runtime::principal::Principal) -> bool {
        principal.may_access(self.owner.as_deref(), false)
    }
}

/// A typed event payload: the one way to publish. Each toolset defines its payloads in
/// its own `events.rs`; the bus serializes them as the envelope's `data`.
pub trait EventPayload: Serialize + Send + Sync {
    /// The event type (topic) the payload is published under. A family of payloads
    /// published under several types (an enum, or a struct naming its kind) gives the
    /// filter matching all of them (e.g. `asbr.task.*`) and names each value's own type
    /// in [`EventPayload::event_type`].
    const TYPE: &'static str;
    /// The version of the data's shape, carried as the envelope's `dataVersion`: 1 for
    /// the first shape, raised when a field changes meaning, type or goes away (adding a
    /// field keeps it), so subscribers can tell shapes apart.
    const VERSION: u32;

    /// This value's event type: [`EventPayload::TYPE`] unless the payload is a family.
    fn event_type(&self) -> &str {
        Self::TYPE
    }
}

/// Recent events of one type, oldest first, and that type's published-events counter.
#[derive(Default)]
struct Ring {
    events: VecDeque<Arc<Event>>,
    /// Registered on the type's first publish, not during replay (which runs before the
    /// metrics recorder is installed), so publishing does not build a labelled key each time.
    published: Option<metrics::Counter>,
}

/// A stream's log, set once it is open.
type LogCell = Arc<tokio::sync::OnceCell<Arc<dyn Log>>>;

struct BusInner {
    /// Where the logs live; `None`: nowhere (the rings only).
    backend: Option<Arc<dyn Backend>>,
    /// The same backend when it is the local one, for [`EventBus::history`]'s reads.
    local: Option<LocalBackend>,
    options: BusOptions,
    /// One log per stream (topic prefix), opened once even when publishes race.
    logs: Mutex<HashMap<String, LogCell>>,
    /// The floors of every [`StreamHold`] per stream, kept for the bus's lifetime.
    holds: Mutex<HashMap<String, Vec<Arc<AtomicU64>>>>,
    seq: AtomicU64,
    ring_capacity: usize,
    rings: RwLock<HashMap<String, Ring>>,
    subs: RwLock<SubIndex>,
    latest: watch::Sender<u64>,
    /// Other processes append to the same logs (a shared backend): the bus follows
    /// every stream and takes their events in ([`follow`]).
    shared: bool,
    /// Ids of this process's events between the append and the ring (shared backend
    /// only): the follower leaves them to [`EventBus::publish_owned`].
    own_pending: Mutex<HashSet<String>>,
    /// Streams a follower task reads, with the position it has taken in up to.
    followed: Mutex<HashMap<String, Position>>,
    /// Set by [`EventBus::close`]: no stream is opened any more.
    closed: std::sync::atomic::AtomicBool,
}

/// The event bus. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<BusInner>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("journal_dir", &self.inner.local.as_ref().map(|l| l.dir()))
            .field("backend", &self.inner.backend.is_some())
            .field("seq", &self.last_seq())
            .finish()
    }
}

impl EventBus {
    /// Create a bus; with a `journal_dir`, its logs are local files there
    /// ([`EventBus::open_local`]) and existing journals are replayed so history and `seq`
    /// survive restarts.
    pub fn new(journal_dir: Option<PathBuf>, policy: Fsync) -> Result<EventBus, EventError> {
        Self::with_ring_capacity(journal_dir, policy, DEFAULT_RING_CAPACITY)
    }

    /// Like [`EventBus::new`] with a custom per-type ring capacity.
    pub fn with_ring_capacity(
        journal_dir: Option<PathBuf>,
        policy: Fsync,
        ring_capacity: usize,
    ) -> Result<EventBus, EventError> {
        let options = BusOptions {
            ring_capacity,
            ..BusOptions::new(policy)
        };
        Self::with_options(journal_dir, options)
    }

    /// Like [`EventBus::new`] with explicit [`BusOptions`].
    pub fn with_options(
        journal_dir: Option<PathBuf>,
        options: BusOptions,
    ) -> Result<EventBus, EventError> {
        match journal_dir {
            Some(dir) => Self::open_local(LocalBackend::new(dir), options),
            None => Ok(Self::build(None, None, options)),
        }
    }

    /// A bus whose logs live on `backend`, one stream per topic prefix: every stream the
    /// backend holds is opened and replayed into the rings, and `seq` continues after
    /// the highest replayed one.
    pub async fn open(
        backend: Arc<dyn Backend>,
        options: BusOptions,
    ) -> Result<EventBus, EventError> {
        let bus = Self::build(Some(backend.clone()), None, options);
        for stream in backend.streams().await? {
            if bus.is_bus_stream(&stream) {
                let opened = backend.open(&stream, bus.inner.options.stream()).await?;
                bus.install(&stream, opened);
            }
        }
        bus.replayed();
        Ok(bus)
    }

    /// [`EventBus::open`] on the local backend, for constructors that are not async
    /// (opening local files needs no future).
    pub fn open_local(backend: LocalBackend, options: BusOptions) -> Result<EventBus, EventError> {
        let bus = Self::build(
            Some(Arc::new(backend.clone())),
            Some(backend.clone()),
            options,
        );
        for stream in backend.streams_now()? {
            if bus.is_bus_stream(&stream) {
                let opened = backend.open_now(&stream, bus.inner.options.stream())?;
                bus.install(&stream, opened);
            }
        }
        bus.replayed();
        Ok(bus)
    }

    fn build(
        backend: Option<Arc<dyn Backend>>,
        local: Option<LocalBackend>,
        options: BusOptions,
    ) -> EventBus {
        let ring_capacity = options.ring_capacity.max(1);
        EventBus {
            inner: Arc::new(BusInner {
                backend,
                local,
                options: BusOptions {
                    ring_capacity,
                    ..options
                },
                logs: Mutex::new(HashMap::new()),
                holds: Mutex::new(HashMap::new()),
                seq: AtomicU64::new(0),
                ring_capacity,
                rings: RwLock::new(HashMap::new()),
                subs: RwLock::new(SubIndex::default()),
                latest: watch::channel(0).0,
                shared: false,
                own_pending: Mutex::new(HashSet::new()),
                followed: Mutex::new(HashMap::new()),
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Highest seq assigned so far.
    pub fn last_seq(&self) -> u64 {
        self.inner.seq.load(Ordering::Acquire)
    }

    /// Publish a typed payload under its type ([`EventPayload::event_type`]) with its
    /// shape's version. Returns once the event is durable in its log (if any);
    /// subscribers are notified right after. The returned event is the one the bus keeps
    /// and delivers (shared, not copied).
    pub async fn publish<P: EventPayload>(
        &self,
        source: &str,
        payload: &P,
    ) -> Result<Arc<Event>, EventError> {
        self.publish_as(source, payload, None).await
    }

    /// [`EventBus::publish`] of an event about `owner`'s object: only that principal is
    /// shown it (`None`: everyone is).
    pub async fn publish_as<P: EventPayload>(
        &self,
        source: &str,
        payload: &P,
        owner: Option<String>,
    ) -> Result<Arc<Event>, EventError> {
        let ty = payload.event_type();
        if !Filter::pattern_matches(P::TYPE, ty) {
            return Err(EventError::InvalidType(ty.to_string()));
        }
        let data = serde_json::to_value(payload)?;
        self.publish_owned(ty, source, data, P::VERSION, owner)
            .await
    }

    /// Publishes `data` as it is; only typed payloads reach it ([`EventBus::publish`]).
    async fn publish_owned(
        &self,
        r#type: &str,
        source: &str,
        data: Value,
        data_version: u32,
        owner: Option<String>,
    ) -> Result<Arc<Event>, EventError> {
        validate_type(r#type)?;
        let log = self.log_for(topic_prefix(r#type)).await?;
        let event = Arc::new(Event {
            id: uuid::Uuid::now_v7().to_string(),
            r#type: r#type.to_string(),
            source: source.to_string(),
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            seq: self.next_seq().await?,
            data,
            data_version,
            owner,
        });
        if let Some(log) = log {
            let appended = self.append_own(&log, &event).await;
            if appended.is_err() {
                self.inner.own_pending.lock().remove(&event.id);
            }
            appended?;
            if log.needs_compaction() {
                self.queue_compaction(&log);
            }
        }
        self.insert_ring(event.clone(), true);
        if self.inner.shared {
            self.inner.own_pending.lock().remove(&event.id);
        }
        self.notify(&event, false);
        Ok(event)
    }

    /// The next seq: counted in the process, or on a shared backend by its counter so
    /// seqs stay unique and ordered across every process.
    async fn next_seq(&self) -> Result<u64, EventError> {
        if self.inner.shared
            && let Some(backend) = &self.inner.backend
            && let Some(seq) = backend.next_in_sequence("bus").await?
        {
            self.inner.seq.fetch_max(seq, Ordering::AcqRel);
            return Ok(seq);
        }
        Ok(self.inner.seq.fetch_add(1, Ordering::AcqRel) + 1)
    }

    /// Appends `event`, marked as this process's own while the follower may see it.
    async fn append_own(&self, log: &Arc<dyn Log>, event: &Event) -> Result<(), EventError> {
        if self.inner.shared {
            self.inner.own_pending.lock().insert(event.id.clone());
        }
        log.append(vec![serde_json::to_vec(event)?]).await?;
        Ok(())
    }

    /// Adds `event` to its type's ring (in seq order); `count` it as published. Returns
    /// `false` (changing nothing) when the ring already holds its seq.
    fn insert_ring(&self, event: Arc<Event>, count: bool) -> bool {
        let mut rings = self.inner.rings.write();
        if !rings.contains_key(&event.r#type) {
            rings.insert(event.r#type.clone(), Ring::default());
        }
        let Some(ring) = rings.get_mut(&event.r#type) else {
            return false;
        };
        if count {
            ring.published
                .get_or_insert_with(|| {
                    metrics::counter!("cortex_events_published_total", "type" => event.r#type.clone())
                })
                .increment(1);
        }
        let events = &mut ring.events;
        if events.back().is_none_or(|last| last.seq < event.seq) {
            events.push_back(event);
        } else {
            let pos = events.partition_point(|e| e.seq < event.seq);
            if events.get(pos).is_some_and(|e| e.seq == event.seq) {
                return false;
            }
            events.insert(pos, event);
        }
        if events.len() > self.inner.ring_capacity {
            events.pop_front();
        }
        true
    }

    fn notify(&self, event: &Arc<Event>, foreign: bool) {
        let dead = self.inner.subs.read().fan_out(event, foreign);
        if dead {
            self.inner.subs.write().prune();
        }
        // Only long polls ([`EventBus::wait_for`]) listen, and waking nobody still locks
        // every waiter list of the channel: skip it when none is open. A poll that opens
        // after this check has already seen the event in its ring (inserted before).
        if self.inner.latest.receiver_count() > 0 {
            self.inner.latest.send_modify(|v| *v = (*v).max(event.seq));
        }
    }

    /// Subscribe to events matching `filter` with a bounded buffer.
    pub fn subscribe(&self, filter: &str, buffer: usize) -> Subscription {
        self.subscribe_with(filter, buffer, false)
    }

    /// Subscribe to the events matching `filter` that other processes published on a
    /// shared store (none on a local one): what an owner of event-sourced state applies
    /// to stay the same as theirs.
    pub fn subscribe_foreign(&self, filter: &str, buffer: usize) -> Subscription {
        self.subscribe_with(filter, buffer, true)
    }

    /// Whether other processes publish on the same logs.
    pub fn is_shared(&self) -> bool {
        self.inner.shared
    }

    fn subscribe_with(&self, filter: &str, buffer: usize, foreign_only: bool) -> Subscription {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        let lagged = Arc::new(AtomicU64::new(0));
        let delivered = Arc::new(AtomicU64::new(0));
        let entry = SubEntry {
            tx,
            lagged: lagged.clone(),
            delivered: delivered.clone(),
            foreign_only,
        };
        self.inner.subs.write().insert(Filter::parse(filter), entry);
        Subscription {
            rx,
            lagged,
            delivered,
        }
    }

    /// Recent events (from the in-memory rings) matching `topic_filter` with
    /// `seq > since_seq`, oldest first, at most `limit`.
    pub fn read_since(&self, topic_filter: &str, since_seq: u64, limit: usize) -> Vec<Arc<Event>> {
        let filter = Filter::parse(topic_filter);
        let rings = self.inner.rings.read();
        let mut out: Vec<Arc<Event>> = Vec::new();
        let mut take = |ring: &Ring| {
            let start = ring.events.partition_point(|e| e.seq <= since_seq);
            out.extend(ring.events.range(start..).take(limit).cloned());
        };
        match &filter {
            Filter::Exact(ty) => {
                if let Some(ring) = rings.get(ty) {
                    take(ring);
                }
            }
            _ => rings
                .iter()
                .filter(|(ty, _)| filter.matches(ty))
                .for_each(|(_, ring)| take(ring)),
        }
        out.sort_by_key(|e| e.seq);
        out.truncate(limit);
        out
    }

    /// The topics with a recent event `principal` may see, starting with `prefix`, in
    /// name order, at most `limit` (argument completion of `events://{topic}`).
    pub fn topics_visible_to(
        &self,
        principal: &crate::runtime::principal::Principal,
        prefix: &str,
        limit: usize,
    ) -> Vec<String> {
        let rings = self.inner.rings.read();
        let mut topics: Vec<String> = rings
            .iter()
            .filter(|(ty, _)| ty.starts_with(prefix))
            .filter(|(_, ring)| ring.events.iter().any(|e| e.visible_to(principal)))
            .map(|(ty, _)| ty.to_string())
            .collect();
        topics.sort();
        topics.truncate(limit);
        topics
    }

    /// Long-poll: events matching `filter` newer than `since_seq`, returned
    /// immediately if any exist, else after the first one arrives or empty
    /// after `timeout`.
    pub async fn wait_for(
        &self,
        filter: &str,
        since_seq: u64,
        timeout: Duration,
    ) -> Vec<Arc<Event>> {
        let deadline = Instant::now() + timeout;
        let mut changes = self.inner.latest.subscribe();
        loop {
            let found = self.read_since(filter, since_seq, usize::MAX);
            if !found.is_empty() {
                return found;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                _ => return Vec::new(),
            }
        }
    }

    /// Make queued appends durable and close every log. Publishing afterwards fails.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let logs: Vec<Arc<dyn Log>> = self.open_logs().into_values().collect();
        for log in logs {
            log.close().await;
        }
    }
}

#[cfg(test)]
impl EventBus {
    /// Untyped data for the bus's own tests (as version 1).
    async fn publish_value(
        &self,
        r#type: &str,
        source: &str,
        data: Value,
    ) -> Result<Arc<Event>, EventError> {
        self.publish_owned(r#type, source, data, FIRST_DATA_VERSION, None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Serialize)]
    struct IssueAction {
        number: u64,
    }

    impl EventPayload for IssueAction {
        const TYPE: &'static str = "github.issue.action";
        const VERSION: u32 = 3;
    }

    /// A family: one payload type published under several event types.
    #[derive(Serialize)]
    struct Step {
        kind: &'static str,
    }

    impl EventPayload for Step {
        const TYPE: &'static str = "job.step.*";
        const VERSION: u32 = 1;
        fn event_type(&self) -> &str {
            self.kind
        }
    }

    pub(super) fn bus() -> EventBus {
        EventBus::new(None, Fsync::Never).unwrap()
    }

    #[tokio::test]
    async fn publish_reaches_subscriber() {
        let bus = bus();
        let mut sub = bus.subscribe("github.issue.action", 8);
        let ev = bus
            .publish("test", &IssueAction { number: 7 })
            .await
            .unwrap();
        assert_eq!(ev.seq, 1);
        let got = sub.recv().await.unwrap();
        assert_eq!(*got, *ev);
        assert_eq!(got.data, json!({"number": 7}));
        assert_eq!(got.data_version, 3);
        let wire = serde_json::to_value(&got).unwrap();
        assert_eq!(wire["type"], "github.issue.action");
        assert_eq!(wire["dataVersion"], 3);
    }

    #[tokio::test]
    async fn a_family_publishes_each_value_under_its_own_type_inside_its_filter() {
        let bus = bus();
        let ev = bus
            .publish(
                "t",
                &Step {
                    kind: "job.step.done",
                },
            )
            .await
            .unwrap();
        assert_eq!((ev.r#type.as_str(), ev.data_version), ("job.step.done", 1));
        assert!(matches!(
            bus.publish("t", &Step { kind: "other.step" }).await,
            Err(EventError::InvalidType(_))
        ));
        assert_eq!(bus.last_seq(), 1);
    }

    #[tokio::test]
    async fn wait_for_wakes_on_new_event() {
        let bus = bus();
        let quick = bus.wait_for("x.*", 0, Duration::from_millis(20)).await;
        assert!(quick.is_empty());
        let waiter = {
            let bus = bus.clone();
            tokio::spawn(async move { bus.wait_for("x.*", 0, Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        bus.publish_value("y.other", "t", json!(0)).await.unwrap();
        bus.publish_value("x.one", "t", json!(1)).await.unwrap();
        let got = waiter.await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].r#type, "x.one");
        let immediate = bus.wait_for("x.*", 0, Duration::from_secs(10)).await;
        assert_eq!(immediate.len(), 1);
    }
}
