//! Event bus: typed and dynamic publishing, journaled history, filtered
//! subscriptions, long-polling and an opt-in outbound HTTP sink.
//!
//! Owns: the [`Event`] envelope, global event sequence numbers, the topic
//! index used for fan-out, the in-memory recent ring per event type, one
//! [`Journal`] per topic prefix (first dot-segment of the type, e.g. `github`
//! for `github.issue.action`), and the HTTP sink delivery loop.
//!
//! Must not touch: any toolset, server or transport module; it only depends
//! on [`crate::runtime::journal`].
//!
//! Filters: `*` (or empty) matches every type, `github.*` matches types
//! starting with `github.`, `git*` matches types starting with `git`, and
//! anything else matches one exact type.
//!
//! Ordering: `seq` is unique and assigned in publish order. Concurrent
//! publishers may complete (and notify subscribers) slightly out of seq order;
//! [`EventBus::read_since`] always returns events sorted by seq.
//!
//! Retention: a stream's journal is compacted once its segment passes
//! [`BusOptions::max_segment_bytes`] (default [`DEFAULT_MAX_SEGMENT_BYTES`]: a size
//! comparison after each append; the rewrite runs on a helper thread of the stream's
//! journal, see [`Journal::compact_retaining`]), or when [`EventBus::compact`] asks.
//! It keeps the newest events of each type that the rings hold
//! ([`BusOptions::ring_capacity`]), so rings and [`EventBus::read_since`] look the same
//! after a restart, and, for a stream an owner holds ([`EventBus::hold`]), every event
//! above the owner's floor. Seqs are kept, so the global seq stays monotonic.
//! [`EventBus::history`] of a stream nobody holds only covers that window.
//!
//! Each journal stream has its own writer thread (see [`crate::runtime::journal`]);
//! only [`EventBus::attach_http_sink`] spawns a task and needs a tokio runtime.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::journal::{FsyncPolicy, Journal, JournalError, JournalOptions, Retain};

/// Default number of recent events kept in memory per event type.
pub const DEFAULT_RING_CAPACITY: usize = 10_000;

/// Default segment size after which a stream's journal is compacted.
pub const DEFAULT_MAX_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// How the bus keeps events in memory and on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusOptions {
    pub policy: FsyncPolicy,
    /// Recent events kept in memory per event type (at least 1).
    pub ring_capacity: usize,
    /// Segment size after which a stream's journal is compacted.
    pub max_segment_bytes: u64,
}

impl BusOptions {
    pub fn new(policy: FsyncPolicy) -> Self {
        Self {
            policy,
            ring_capacity: DEFAULT_RING_CAPACITY,
            max_segment_bytes: DEFAULT_MAX_SEGMENT_BYTES,
        }
    }

    fn journal(&self) -> JournalOptions {
        JournalOptions {
            max_segment_bytes: self.max_segment_bytes,
            policy: self.policy,
        }
    }
}

/// An owner's claim on a stream's journal (see [`EventBus::hold`]): compaction keeps
/// every event of the stream above the floor, which starts at 0 (everything is kept).
#[derive(Debug, Clone)]
pub struct StreamHold {
    floor: Arc<AtomicU64>,
}

impl StreamHold {
    /// The owner no longer needs the events with `seq <= through` (it has durably
    /// recorded what they did); compaction may drop them. The floor never goes down.
    pub fn release_through(&self, through: u64) {
        self.floor.fetch_max(through, Ordering::AcqRel);
    }
}

/// Errors produced by the event bus.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("failed to serialize event payload: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("invalid event type {0:?}")]
    InvalidType(String),
    #[error("journal stream {stream:?} holds a record that is not an event: {reason}")]
    BadRecord { stream: String, reason: String },
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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

/// A typed event payload; `TYPE` is its event type / topic.
pub trait EventPayload: Serialize + Send + Sync + 'static {
    const TYPE: &'static str;
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Filter {
    All,
    Prefix(String),
    Exact(String),
}

impl Filter {
    fn parse(filter: &str) -> Self {
        let filter = filter.trim();
        if filter.is_empty() || filter == "*" {
            Filter::All
        } else if let Some(prefix) = filter.strip_suffix('*') {
            Filter::Prefix(prefix.to_string())
        } else {
            Filter::Exact(filter.to_string())
        }
    }

    fn matches(&self, ty: &str) -> bool {
        match self {
            Filter::All => true,
            Filter::Prefix(p) => ty.starts_with(p.as_str()),
            Filter::Exact(e) => ty == e,
        }
    }
}

fn topic_prefix(ty: &str) -> &str {
    ty.split('.').next().unwrap_or(ty)
}

fn validate_type(ty: &str) -> Result<(), EventError> {
    let prefix = topic_prefix(ty);
    let prefix_ok = !prefix.is_empty()
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    let ty_ok = ty.len() <= 256
        && !ty.ends_with('.')
        && !ty
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '*');
    if prefix_ok && ty_ok {
        Ok(())
    } else {
        Err(EventError::InvalidType(ty.to_string()))
    }
}

struct SubEntry {
    tx: mpsc::Sender<Arc<Event>>,
    lagged: Arc<AtomicU64>,
}

impl SubEntry {
    /// Deliver without blocking; returns `false` if the subscriber is gone.
    fn offer(&self, event: &Arc<Event>) -> bool {
        match self.tx.try_send(Arc::clone(event)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.lagged.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("cortex_events_dropped_total").increment(1);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// Subscribers indexed by filter kind so fan-out only visits matches.
#[derive(Default)]
struct SubIndex {
    exact: HashMap<String, Vec<SubEntry>>,
    prefix: HashMap<String, Vec<SubEntry>>,
    /// The distinct byte lengths of the keys of `prefix`, ascending: fan-out looks up
    /// only the prefixes of an event type that have one of these lengths.
    prefix_lens: Vec<usize>,
    all: Vec<SubEntry>,
}

impl SubIndex {
    fn insert(&mut self, filter: Filter, entry: SubEntry) {
        match filter {
            Filter::All => self.all.push(entry),
            Filter::Prefix(p) => {
                if let Err(at) = self.prefix_lens.binary_search(&p.len()) {
                    self.prefix_lens.insert(at, p.len());
                }
                self.prefix.entry(p).or_default().push(entry)
            }
            Filter::Exact(e) => self.exact.entry(e).or_default().push(entry),
        }
    }

    /// Offer `event` to every matching subscriber; returns `true` if a
    /// closed subscriber was seen.
    fn fan_out(&self, event: &Arc<Event>) -> bool {
        let ty = event.r#type.as_str();
        let mut dead = false;
        let mut offer_all = |list: &[SubEntry]| {
            for entry in list {
                dead |= !entry.offer(event);
            }
        };
        offer_all(&self.all);
        if let Some(list) = self.exact.get(ty) {
            offer_all(list);
        }
        for &len in self.prefix_lens.iter().take_while(|&&len| len <= ty.len()) {
            if let Some(list) = ty.get(..len).and_then(|p| self.prefix.get(p)) {
                offer_all(list);
            }
        }
        dead
    }

    fn prune(&mut self) {
        self.all.retain(|e| !e.tx.is_closed());
        for map in [&mut self.exact, &mut self.prefix] {
            map.retain(|_, list| {
                list.retain(|e| !e.tx.is_closed());
                !list.is_empty()
            });
        }
        self.prefix_lens = self.prefix.keys().map(String::len).collect();
        self.prefix_lens.sort_unstable();
        self.prefix_lens.dedup();
    }
}

/// A filtered subscription. Events that do not fit in its buffer are
/// dropped for this subscriber and counted in [`Subscription::lagged`].
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<Arc<Event>>,
    lagged: Arc<AtomicU64>,
}

impl Subscription {
    /// Next event, or `None` once the bus is gone.
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        self.rx.recv().await
    }

    /// Next buffered event without waiting.
    pub fn try_recv(&mut self) -> Option<Arc<Event>> {
        self.rx.try_recv().ok()
    }

    /// Number of events dropped because the buffer was full.
    pub fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
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

struct BusInner {
    journal_dir: Option<PathBuf>,
    options: BusOptions,
    journals: Mutex<HashMap<String, Journal>>,
    /// The floors of every [`StreamHold`] per stream, kept for the bus's lifetime.
    holds: Mutex<HashMap<String, Vec<Arc<AtomicU64>>>>,
    seq: AtomicU64,
    ring_capacity: usize,
    rings: RwLock<HashMap<String, Ring>>,
    subs: RwLock<SubIndex>,
    latest: watch::Sender<u64>,
}

/// The event bus. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<BusInner>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("journal_dir", &self.inner.journal_dir)
            .field("seq", &self.last_seq())
            .finish()
    }
}

impl EventBus {
    /// Create a bus; with a `journal_dir`, existing journals are replayed so
    /// history and `seq` survive restarts.
    pub fn new(journal_dir: Option<PathBuf>, policy: FsyncPolicy) -> Result<EventBus, EventError> {
        Self::with_ring_capacity(journal_dir, policy, DEFAULT_RING_CAPACITY)
    }

    /// Like [`EventBus::new`] with a custom per-type ring capacity.
    pub fn with_ring_capacity(
        journal_dir: Option<PathBuf>,
        policy: FsyncPolicy,
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
        let ring_capacity = options.ring_capacity.max(1);
        let bus = EventBus {
            inner: Arc::new(BusInner {
                journal_dir: journal_dir.clone(),
                options: BusOptions {
                    ring_capacity,
                    ..options
                },
                journals: Mutex::new(HashMap::new()),
                holds: Mutex::new(HashMap::new()),
                seq: AtomicU64::new(0),
                ring_capacity,
                rings: RwLock::new(HashMap::new()),
                subs: RwLock::new(SubIndex::default()),
                latest: watch::channel(0).0,
            }),
        };
        if let Some(dir) = journal_dir {
            bus.replay(&dir)?;
        }
        Ok(bus)
    }

    fn replay(&self, dir: &Path) -> Result<(), EventError> {
        for stream in list_streams(dir)? {
            let (journal, records) =
                Journal::open_with(dir, &stream, self.inner.options.journal())?;
            let mut not_events = Vec::new();
            for (i, record) in records.into_iter().enumerate() {
                match serde_json::from_value::<Event>(record) {
                    Ok(event) => {
                        self.inner.seq.fetch_max(event.seq, Ordering::AcqRel);
                        self.insert_ring(Arc::new(event), false);
                    }
                    Err(e) => not_events.push(format!("record {}: {e}", i + 1)),
                }
            }
            if let Some(first) = not_events.first() {
                // Well-formed journal lines whose record is not an event: skipped (and
                // kept on disk), every event of the stream is still served.
                super::damage::report(super::damage::Damage::new(
                    format!("event stream {stream}"),
                    &dir.join(format!("{stream}.ndjson")),
                    format!(
                        "{} record(s) are not events and were skipped ({first})",
                        not_events.len()
                    ),
                ));
            }
            self.inner.journals.lock().insert(stream, journal);
        }
        self.inner.latest.send_replace(self.last_seq());
        Ok(())
    }

    /// Every journaled event of the `prefix` stream (e.g. `asbr`) with `seq > after_seq`,
    /// read from disk in seq order: for a toolset rebuilding its state at start-up, before
    /// it publishes. Without a journal directory, what the in-memory rings hold.
    pub fn history(&self, prefix: &str, after_seq: u64) -> Result<Vec<Event>, EventError> {
        let Some(dir) = &self.inner.journal_dir else {
            let filter = format!("{prefix}.*");
            let recent = self.read_since(&filter, after_seq, usize::MAX);
            return Ok(recent.iter().map(|e| Event::clone(e)).collect());
        };
        let mut events = Vec::new();
        // Records that are not events were reported when the bus replayed the stream.
        Journal::read_each(dir, prefix, &mut |record| {
            if let Ok(event) = serde_json::from_value::<Event>(record)
                && event.seq > after_seq
            {
                events.push(event);
            }
        })?;
        events.sort_by_key(|e| e.seq);
        Ok(events)
    }

    /// Highest seq assigned so far.
    pub fn last_seq(&self) -> u64 {
        self.inner.seq.load(Ordering::Acquire)
    }

    /// Publish a typed payload under `P::TYPE`.
    pub async fn publish<P: EventPayload>(
        &self,
        source: &str,
        payload: &P,
    ) -> Result<Arc<Event>, EventError> {
        let data = serde_json::to_value(payload)?;
        self.publish_value(P::TYPE, source, data).await
    }

    /// [`EventBus::publish`] of an event about `owner`'s object: only that principal is
    /// shown it (`None`: everyone is).
    pub async fn publish_as<P: EventPayload>(
        &self,
        source: &str,
        payload: &P,
        owner: Option<String>,
    ) -> Result<Arc<Event>, EventError> {
        let data = serde_json::to_value(payload)?;
        self.publish_owned(P::TYPE, source, data, owner).await
    }

    /// Publish a dynamic event. Returns once the event is durable in its
    /// journal (if any); subscribers are notified right after. The returned event is
    /// the one the bus keeps and delivers (shared, not copied).
    pub async fn publish_value(
        &self,
        r#type: &str,
        source: &str,
        data: Value,
    ) -> Result<Arc<Event>, EventError> {
        self.publish_owned(r#type, source, data, None).await
    }

    /// [`EventBus::publish_value`] of an event about `owner`'s object: only that
    /// principal is shown it (`None`: everyone is).
    pub async fn publish_owned(
        &self,
        r#type: &str,
        source: &str,
        data: Value,
        owner: Option<String>,
    ) -> Result<Arc<Event>, EventError> {
        validate_type(r#type)?;
        let journal = self.journal_for(topic_prefix(r#type))?;
        let event = Arc::new(Event {
            id: uuid::Uuid::now_v7().to_string(),
            r#type: r#type.to_string(),
            source: source.to_string(),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            seq: self.inner.seq.fetch_add(1, Ordering::AcqRel) + 1,
            data,
            owner,
        });
        if let Some(journal) = journal {
            journal.append(&*event).await?;
            if journal.needs_compaction() {
                self.queue_compaction(&journal);
            }
        }
        self.insert_ring(event.clone(), true);
        self.notify(&event);
        Ok(event)
    }

    fn journal_for(&self, prefix: &str) -> Result<Option<Journal>, EventError> {
        let Some(dir) = &self.inner.journal_dir else {
            return Ok(None);
        };
        let mut journals = self.inner.journals.lock();
        if let Some(journal) = journals.get(prefix) {
            return Ok(Some(journal.clone()));
        }
        let (journal, _) = Journal::open_with(dir, prefix, self.inner.options.journal())?;
        journals.insert(prefix.to_string(), journal.clone());
        Ok(Some(journal))
    }

    /// Claims `stream` (a type's first segment, e.g. `asbr`) for an owner that rebuilds
    /// its state from [`EventBus::history`]: from now on compaction keeps every event of
    /// the stream above the returned hold's floor (all of them until it releases some).
    /// Claim before anything publishes on the stream. The claim lasts as long as the bus;
    /// several holds on one stream keep what any of them needs.
    pub fn hold(&self, stream: &str) -> StreamHold {
        let floor = Arc::new(AtomicU64::new(0));
        self.inner
            .holds
            .lock()
            .entry(stream.to_string())
            .or_default()
            .push(floor.clone());
        StreamHold { floor }
    }

    /// The seq above which `stream` keeps every event: the lowest floor of its holds,
    /// `None` when nobody holds it.
    fn retention_floor(&self, stream: &str) -> Option<u64> {
        let holds = self.inner.holds.lock();
        let floors = holds.get(stream)?;
        floors.iter().map(|f| f.load(Ordering::Acquire)).min()
    }

    /// Compacts `stream`'s journal now under the retention rule (see the module docs),
    /// whatever its size; publishes on it wait meanwhile. Nothing without a journal.
    pub async fn compact(&self, stream: &str) -> Result<(), EventError> {
        let journal = self.inner.journals.lock().get(stream).cloned();
        let Some(journal) = journal else {
            return Ok(());
        };
        let floor = self.retention_floor(stream);
        let capacity = self.inner.ring_capacity;
        let retain: Retain = Box::new(move |records| retain_events(records, capacity, floor));
        Ok(journal.compact_retained(retain).await?)
    }

    /// Asks `journal`'s writer to compact it (after the appends queued so far), keeping
    /// what [`retain_events`] keeps. Nothing when an owner holds everything.
    fn queue_compaction(&self, journal: &Journal) {
        if journal.compaction_pending() {
            return;
        }
        let floor = self.retention_floor(journal.stream());
        if floor == Some(0) {
            return;
        }
        let capacity = self.inner.ring_capacity;
        let retain: Retain = Box::new(move |records| retain_events(records, capacity, floor));
        journal.compact_retaining(retain);
    }

    /// Adds `event` to its type's ring (in seq order); `count` it as published.
    fn insert_ring(&self, event: Arc<Event>, count: bool) {
        let mut rings = self.inner.rings.write();
        if !rings.contains_key(&event.r#type) {
            rings.insert(event.r#type.clone(), Ring::default());
        }
        let Some(ring) = rings.get_mut(&event.r#type) else {
            return;
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
            events.insert(pos, event);
        }
        if events.len() > self.inner.ring_capacity {
            events.pop_front();
        }
    }

    fn notify(&self, event: &Arc<Event>) {
        let dead = self.inner.subs.read().fan_out(event);
        if dead {
            self.inner.subs.write().prune();
        }
        self.inner.latest.send_modify(|v| *v = (*v).max(event.seq));
    }

    /// Subscribe to events matching `filter` with a bounded buffer.
    pub fn subscribe(&self, filter: &str, buffer: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        let lagged = Arc::new(AtomicU64::new(0));
        let entry = SubEntry {
            tx,
            lagged: lagged.clone(),
        };
        self.inner.subs.write().insert(Filter::parse(filter), entry);
        Subscription { rx, lagged }
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

    /// Flush and stop every journal writer. Publishing afterwards fails.
    pub async fn close(&self) {
        let journals: Vec<Journal> = self.inner.journals.lock().values().cloned().collect();
        for journal in journals {
            journal.close().await;
        }
    }

    /// Forward events matching `filter` to an HTTP endpoint (see
    /// [`SinkOptions`]). Delivery is at-least-once; receivers de-duplicate by
    /// event id.
    pub fn attach_http_sink(
        &self,
        opts: SinkOptions,
        client: reqwest::Client,
        filter: &str,
    ) -> SinkHandle {
        let sub = self.subscribe(filter, opts.queue_bound.max(1));
        let lagged = sub.lagged.clone();
        let delivered = Arc::new(AtomicU64::new(0));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let sink = Sink {
            opts,
            client,
            delivered: delivered.clone(),
        };
        let task = tokio::spawn(sink.run(sub, shutdown_rx));
        SinkHandle {
            shutdown,
            task,
            delivered,
            lagged,
        }
    }
}

/// What compaction keeps of a stream's records (in their order): the `capacity` newest
/// events of each type (what the rings hold after a restart), every event with a seq
/// above `floor` when there is one, and any record that is not an event (replay reports
/// it; compaction does not hide it).
fn retain_events(records: Vec<Value>, capacity: usize, floor: Option<u64>) -> Vec<Value> {
    let keys: Vec<Option<(&str, u64)>> = records.iter().map(event_key).collect();
    let mut seqs_by_type: HashMap<&str, Vec<u64>> = HashMap::new();
    for &(ty, seq) in keys.iter().flatten() {
        seqs_by_type.entry(ty).or_default().push(seq);
    }
    // The lowest seq each type's ring keeps.
    let ring_floor: HashMap<&str, u64> = seqs_by_type
        .into_iter()
        .map(|(ty, mut seqs)| {
            seqs.sort_unstable_by(|a, b| b.cmp(a));
            let lowest = seqs[..seqs.len().min(capacity)].last().copied();
            (ty, lowest.unwrap_or(0))
        })
        .collect();
    let keep: Vec<bool> = keys
        .iter()
        .map(|key| match *key {
            None => true,
            Some((ty, seq)) => {
                floor.is_some_and(|f| seq > f) || ring_floor.get(ty).is_some_and(|&low| seq >= low)
            }
        })
        .collect();
    records
        .into_iter()
        .zip(keep)
        .filter_map(|(record, keep)| keep.then_some(record))
        .collect()
}

/// The type and seq of an event record.
fn event_key(record: &Value) -> Option<(&str, u64)> {
    let ty = record.get("type")?.as_str()?;
    let seq = record.get("seq")?.as_u64()?;
    Some((ty, seq))
}

fn list_streams(dir: &Path) -> Result<BTreeSet<String>, EventError> {
    let io = |source| EventError::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut streams = BTreeSet::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let name = entry.map_err(io)?.file_name();
        let name = name.to_string_lossy();
        let stream = name
            .strip_suffix(".snapshot.json")
            .or_else(|| name.strip_suffix(".ndjson"));
        match stream {
            Some(s) if validate_type(s).is_ok() && !s.contains('.') => {
                streams.insert(s.to_string());
            }
            Some(s) => tracing::warn!(stream = s, "ignoring unexpected journal file"),
            None => {}
        }
    }
    Ok(streams)
}

/// Outbound HTTP sink configuration.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    pub url: String,
    /// Maximum events per POST when batching (default 25).
    pub batch_max: usize,
    /// How long to wait to fill a batch (default 50 ms).
    pub batch_window: Duration,
    /// `false` (default): one event object per POST; `true`: JSON arrays.
    pub batching: bool,
    /// Sink queue size; when full the sink subscriber lags (default 10,000).
    pub queue_bound: usize,
    /// First retry delay (default 100 ms), doubled per failure.
    pub initial_backoff: Duration,
    /// Retry delay cap (default 30 s).
    pub max_backoff: Duration,
}

impl SinkOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            batch_max: 25,
            batch_window: Duration::from_millis(50),
            batching: false,
            queue_bound: 10_000,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Result of [`SinkHandle::drain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkReport {
    /// Events successfully POSTed.
    pub delivered: u64,
    /// Events never accepted because the sink queue was full.
    pub lagged: u64,
    /// `false` if the timeout hit before the queue was flushed.
    pub completed: bool,
}

/// Handle to a running sink. Dropping it stops the sink after it flushes
/// its queue in the background.
#[derive(Debug)]
pub struct SinkHandle {
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    delivered: Arc<AtomicU64>,
    lagged: Arc<AtomicU64>,
}

impl SinkHandle {
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    pub fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }

    /// Stop accepting events, flush the queue (retrying) for up to `timeout`.
    pub async fn drain(self, timeout: Duration) -> SinkReport {
        let _ = self.shutdown.send(true);
        let mut task = self.task;
        let completed = tokio::time::timeout(timeout, &mut task).await.is_ok();
        if !completed {
            task.abort();
            tracing::warn!("event sink drain timed out with undelivered events");
        }
        SinkReport {
            delivered: self.delivered.load(Ordering::Relaxed),
            lagged: self.lagged.load(Ordering::Relaxed),
            completed,
        }
    }
}

struct Sink {
    opts: SinkOptions,
    client: reqwest::Client,
    delivered: Arc<AtomicU64>,
}

impl Sink {
    async fn run(self, mut sub: Subscription, mut shutdown: watch::Receiver<bool>) {
        loop {
            let first = tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                ev = sub.rx.recv() => match ev {
                    Some(ev) => ev,
                    None => break,
                },
            };
            let batch = self.collect_batch(&mut sub.rx, first).await;
            self.deliver(&batch).await;
        }
        sub.rx.close();
        let mut rest = Vec::new();
        while let Some(ev) = sub.rx.recv().await {
            rest.push(ev);
        }
        for chunk in rest.chunks(self.batch_limit()) {
            self.deliver(chunk).await;
        }
    }

    fn batch_limit(&self) -> usize {
        if self.opts.batching {
            self.opts.batch_max.max(1)
        } else {
            1
        }
    }

    async fn collect_batch(
        &self,
        rx: &mut mpsc::Receiver<Arc<Event>>,
        first: Arc<Event>,
    ) -> Vec<Arc<Event>> {
        let mut batch = vec![first];
        let deadline = Instant::now() + self.opts.batch_window;
        let urgent = rx.len() > self.opts.queue_bound / 2;
        while batch.len() < self.batch_limit() {
            if let Ok(ev) = rx.try_recv() {
                batch.push(ev);
                continue;
            }
            if urgent {
                break;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(ev)) => batch.push(ev),
                _ => break,
            }
        }
        batch
    }

    fn encode(&self, batch: &[Arc<Event>]) -> Result<Bytes, serde_json::Error> {
        let body = match batch {
            [single] if !self.opts.batching => serde_json::to_vec(single)?,
            _ => serde_json::to_vec(batch)?,
        };
        Ok(Bytes::from(body))
    }

    /// POST `batch`, retrying with exponential back-off and jitter until it
    /// succeeds.
    async fn deliver(&self, batch: &[Arc<Event>]) {
        if batch.is_empty() {
            return;
        }
        let body = match self.encode(batch) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "event sink could not encode batch; skipping");
                return;
            }
        };
        let mut backoff = self.opts.initial_backoff.min(self.opts.max_backoff);
        loop {
            match self.post(body.clone()).await {
                Ok(()) => break,
                Err(reason) => {
                    let url = url::Url::parse(&self.opts.url)
                        .map(|u| crate::config::redact_url(&u))
                        .unwrap_or_else(|_| "[unparsable url]".into());
                    tracing::warn!(%url, %reason, "event sink POST failed; retrying");
                    metrics::counter!("cortex_events_sink_retries_total").increment(1);
                }
            }
            tokio::time::sleep(jitter(backoff)).await;
            backoff = (backoff * 2).min(self.opts.max_backoff);
        }
        self.delivered
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
    }

    async fn post(&self, body: Bytes) -> Result<(), String> {
        let resp = self
            .client
            .post(&self.opts.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            // The error text would otherwise carry the URL, secrets included.
            .map_err(|e| e.without_url().to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("status {}", resp.status()))
        }
    }
}

/// Half the delay plus a random part of the other half.
fn jitter(delay: Duration) -> Duration {
    let half = delay / 2;
    let span = half.as_micros().max(1) as u64;
    let random = uuid::Uuid::new_v4().as_u128() as u64 % span;
    half + Duration::from_micros(random)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashSet;

    #[derive(Serialize)]
    struct IssueAction {
        number: u64,
    }

    impl EventPayload for IssueAction {
        const TYPE: &'static str = "github.issue.action";
    }

    fn bus() -> EventBus {
        EventBus::new(None, FsyncPolicy::Never).unwrap()
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
        let wire = serde_json::to_value(&got).unwrap();
        assert_eq!(wire["type"], "github.issue.action");
    }

    #[tokio::test]
    async fn topic_index_routes_only_matches() {
        let bus = bus();
        let mut other = bus.subscribe("asbr.*", 8);
        let mut exact_other = bus.subscribe("github.pr.opened", 8);
        let mut prefix = bus.subscribe("github.*", 8);
        let mut loose = bus.subscribe("git*", 8);
        let mut all = bus.subscribe("*", 8);
        bus.publish_value("github.issue.action", "t", json!(1))
            .await
            .unwrap();
        assert!(other.try_recv().is_none());
        assert!(exact_other.try_recv().is_none());
        assert!(prefix.try_recv().is_some());
        assert!(loose.try_recv().is_some());
        assert!(all.try_recv().is_some());
        assert!(matches!(
            bus.publish_value("bad type", "t", json!(1)).await,
            Err(EventError::InvalidType(_))
        ));
        assert!(bus.publish_value("x.*", "t", json!(1)).await.is_err());
    }

    #[tokio::test]
    async fn prefix_filters_of_any_length_match_and_survive_pruning() {
        let bus = bus();
        let mut short = bus.subscribe("a*", 8);
        let mut multibyte = bus.subscribe("a.é*", 8);
        let mut whole = bus.subscribe("a.é.b*", 8);
        let mut other = bus.subscribe("a.x*", 8);
        let gone = bus.subscribe("zz*", 8);
        drop(gone);
        assert_eq!(bus.inner.subs.read().prefix_lens, vec![1, 2, 3, 4, 6]);
        bus.publish_value("a.é.b", "t", json!(1)).await.unwrap();
        for sub in [&mut short, &mut multibyte, &mut whole] {
            assert_eq!(sub.try_recv().unwrap().data, json!(1));
        }
        assert!(other.try_recv().is_none());
        drop(whole);
        bus.publish_value("a.é.b", "t", json!(2)).await.unwrap();
        assert_eq!(bus.inner.subs.read().prefix_lens, vec![1, 3, 4]);
        bus.publish_value("a.éz", "t", json!(3)).await.unwrap();
        assert_eq!(short.try_recv().unwrap().data, json!(2));
        assert_eq!(short.try_recv().unwrap().data, json!(3));
        assert_eq!(multibyte.try_recv().unwrap().data, json!(2));
        assert_eq!(multibyte.try_recv().unwrap().data, json!(3));
        assert!(other.try_recv().is_none());
    }

    #[tokio::test]
    async fn full_buffer_counts_lag_and_prunes_dropped() {
        let bus = bus();
        let mut sub = bus.subscribe("*", 1);
        let gone = bus.subscribe("a.b", 1);
        drop(gone);
        for i in 0..3 {
            bus.publish_value("a.b", "t", json!(i)).await.unwrap();
        }
        assert_eq!(sub.lagged(), 2);
        assert_eq!(sub.recv().await.unwrap().data, json!(0));
        assert!(bus.inner.subs.read().exact.is_empty());
    }

    #[tokio::test]
    async fn restart_replays_history_and_continues_seq() {
        let dir = tempfile::tempdir().unwrap();
        let path = Some(dir.path().to_path_buf());
        let bus = EventBus::new(path.clone(), FsyncPolicy::Batch).unwrap();
        bus.publish_value("github.a", "t", json!(1)).await.unwrap();
        bus.publish_value("asbr.b", "t", json!(2)).await.unwrap();
        bus.publish_value("github.c", "t", json!(3)).await.unwrap();
        bus.close().await;
        drop(bus);

        let bus = EventBus::new(path, FsyncPolicy::Batch).unwrap();
        let all = bus.read_since("*", 0, 100);
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(bus.read_since("github.*", 1, 100).len(), 1);
        assert_eq!(bus.read_since("asbr.b", 0, 100).len(), 1);
        assert_eq!(bus.read_since("*", 0, 2).len(), 2);
        let ev = bus.publish_value("asbr.b", "t", json!(4)).await.unwrap();
        assert_eq!(ev.seq, 4);
        bus.close().await;
    }

    fn small(dir: &Path) -> EventBus {
        let options = BusOptions {
            ring_capacity: 3,
            max_segment_bytes: 1024,
            ..BusOptions::new(FsyncPolicy::Never)
        };
        EventBus::with_options(Some(dir.to_path_buf()), options).unwrap()
    }

    fn seqs(events: &[Event]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    fn recent(bus: &EventBus, filter: &str, since: u64) -> Vec<Event> {
        let events = bus.read_since(filter, since, usize::MAX);
        events.iter().map(|e| Event::clone(e)).collect()
    }

    #[tokio::test]
    async fn compacted_streams_restart_with_the_same_rings_and_seq() {
        let dir = tempfile::tempdir().unwrap();
        let bus = small(dir.path());
        for i in 0..60 {
            let ty = ["github.a", "github.b", "mvp.c"][i % 3];
            bus.publish_value(ty, "t", json!({ "i": i })).await.unwrap();
        }
        // mvp passed 1 KiB: compacted on its own (closing finishes the compaction).
        bus.compact("github").await.unwrap();
        let rings = recent(&bus, "*", 0);
        assert_eq!(rings.len(), 9);
        let last = bus.last_seq();
        bus.close().await;
        drop(bus);

        assert!(dir.path().join("mvp.snapshot.json").exists());
        let mvp = seqs(&bus_history(dir.path(), "mvp"));
        assert!(mvp.len() < 20, "mvp was not compacted: {mvp:?}");
        assert!(mvp.ends_with(&[54, 57, 60]));
        let github = std::fs::metadata(dir.path().join("github.ndjson")).unwrap();
        assert_eq!(github.len(), 0);
        let kept = bus_history(dir.path(), "github");
        assert_eq!(kept, recent_from(&rings, "github.", 0));

        let bus = small(dir.path());
        assert_eq!(recent(&bus, "*", 0), rings);
        assert_eq!(bus.last_seq(), last);
        assert_eq!(
            recent(&bus, "github.a", 50),
            recent_from(&rings, "github.a", 50)
        );
        assert_eq!(recent(&bus, "mvp.*", 0), recent_from(&rings, "mvp.c", 0));
        let next = bus.publish_value("mvp.c", "t", json!("new")).await.unwrap();
        assert_eq!(next.seq, last + 1);
        for i in 0..30 {
            bus.publish_value("github.a", "t", json!(i)).await.unwrap();
        }
        let rings = recent(&bus, "*", 0);
        let last = bus.last_seq();
        bus.close().await;
        drop(bus);

        let bus = small(dir.path());
        assert_eq!(recent(&bus, "*", 0), rings);
        assert_eq!(bus.last_seq(), last);
        assert_eq!(last, 91);
        let next = bus.publish_value("github.b", "t", json!(0)).await.unwrap();
        assert_eq!(next.seq, last + 1);
        bus.close().await;
    }

    fn bus_history(dir: &Path, stream: &str) -> Vec<Event> {
        let bus =
            EventBus::with_options(Some(dir.to_path_buf()), BusOptions::new(FsyncPolicy::Never));
        bus.unwrap().history(stream, 0).unwrap()
    }

    /// `events` of type `ty` (or starting with it when it ends with a dot) after `since`.
    fn recent_from(events: &[Event], ty: &str, since: u64) -> Vec<Event> {
        let matches = |t: &str| t == ty || (ty.ends_with('.') && t.starts_with(ty));
        events
            .iter()
            .filter(|e| matches(&e.r#type) && e.seq > since)
            .cloned()
            .collect()
    }

    #[tokio::test]
    async fn a_held_stream_keeps_every_event_above_its_floor() {
        let dir = tempfile::tempdir().unwrap();
        let bus = small(dir.path());
        let hold = bus.hold("asbr");
        let _other = bus.hold("asbr");
        for i in 0..30 {
            bus.publish_value("asbr.x", "t", json!(i)).await.unwrap();
            bus.publish_value("github.y", "t", json!(i)).await.unwrap();
        }
        // Nothing released: the whole stream is there, while github was compacted.
        assert_eq!(
            seqs(&bus.history("asbr", 0).unwrap()),
            (1..=59).step_by(2).collect::<Vec<_>>()
        );
        bus.compact("github").await.unwrap();
        assert_eq!(seqs(&bus.history("github", 0).unwrap()), vec![56, 58, 60]);
        bus.compact("asbr").await.unwrap();
        assert_eq!(bus.history("asbr", 0).unwrap().len(), 30);
        hold.release_through(40);
        for _ in 0..30 {
            bus.publish_value("asbr.x", "t", json!("more"))
                .await
                .unwrap();
        }
        bus.close().await;
        drop(bus);
        let kept = seqs(&bus_history(dir.path(), "asbr"));
        assert_eq!(
            kept,
            (1..=59).step_by(2).chain(61..=90).collect::<Vec<_>>(),
            "the other hold keeps all"
        );

        // One hold only: it keeps everything above its floor, and the ring window.
        let bus = small(dir.path());
        let hold = bus.hold("asbr");
        hold.release_through(40);
        hold.release_through(20);
        for _ in 0..20 {
            bus.publish_value("asbr.x", "t", json!("last"))
                .await
                .unwrap();
        }
        bus.compact("asbr").await.unwrap();
        bus.close().await;
        drop(bus);
        let kept = seqs(&bus_history(dir.path(), "asbr"));
        assert_eq!(
            kept,
            (41..=59).step_by(2).chain(61..=110).collect::<Vec<_>>()
        );
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

    #[derive(Default)]
    struct Server {
        calls: AtomicU64,
        ids: Mutex<Vec<String>>,
    }

    async fn flaky(
        axum::extract::State(state): axum::extract::State<Arc<Server>>,
        axum::Json(events): axum::Json<Vec<Event>>,
    ) -> axum::http::StatusCode {
        if state.calls.fetch_add(1, Ordering::SeqCst) < 3 {
            return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
        }
        state.ids.lock().extend(events.into_iter().map(|e| e.id));
        axum::http::StatusCode::OK
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sink_retries_and_delivers_every_event() {
        let state = Arc::new(Server::default());
        let app = axum::Router::new()
            .route("/events", axum::routing::post(flaky))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let bus = bus();
        let mut opts = SinkOptions::new(format!("http://{addr}/events"));
        opts.batching = true;
        opts.batch_max = 10;
        opts.initial_backoff = Duration::from_millis(5);
        opts.max_backoff = Duration::from_millis(20);
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let sink = bus.attach_http_sink(opts, client, "sink.*");

        let mut sent = HashSet::new();
        for i in 0..100 {
            let ev = bus.publish_value("sink.test", "t", json!(i)).await.unwrap();
            sent.insert(ev.id.clone());
        }
        bus.publish_value("other.test", "t", json!(0))
            .await
            .unwrap();
        let report = sink.drain(Duration::from_secs(20)).await;
        assert!(report.completed);
        assert_eq!(report.lagged, 0);
        assert_eq!(report.delivered, 100);
        let got: HashSet<String> = state.ids.lock().iter().cloned().collect();
        assert_eq!(got, sent);
        assert!(state.calls.load(Ordering::SeqCst) > 3);
    }
}
