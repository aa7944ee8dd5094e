//! The event bus' logs: opening and replaying them, [`EventBus::history`] from the
//! backend, stream holds and compaction under the retention rule (see [`super`]).
//!
//! Owns: one [`Log`] per topic prefix (opening it through the bus's
//! [`crate::runtime::store::Backend`], replaying it into the rings, compacting it),
//! [`StreamHold`] floors and the retention rule ([`retain_events`]).
//!
//! Must not touch: subscriptions and fan-out (see [`super::topics`]), the HTTP sink,
//! and any toolset, server or transport module; it only depends on
//! [`crate::runtime::store`] and [`crate::runtime::damage`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::FutureExt;
use serde_json::Value;

use super::topics::validate_type;
use super::{Event, EventBus, EventError};
use crate::runtime::store::{Log, Opened, Position, Read, Retain, StoreError};

/// An owner's claim on a stream's log (see [`EventBus::hold`]): compaction keeps
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

impl EventBus {
    /// Whether a stream the backend lists is one of the bus's (a topic prefix); others
    /// are logged and left alone.
    pub(super) fn is_bus_stream(&self, stream: &str) -> bool {
        let ok = validate_type(stream).is_ok() && !stream.contains('.');
        if !ok {
            tracing::warn!(stream, "ignoring unexpected journal stream");
        }
        ok
    }

    /// Replays an opened stream into the rings and keeps its log.
    pub(super) fn install(&self, stream: &str, (log, read): Opened) {
        let mut not_events = Vec::new();
        for (i, record) in read.into_values().into_iter().enumerate() {
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
            // kept in the log), every event of the stream is still served.
            let file = match &self.inner.local {
                Some(local) => local.dir().join(format!("{stream}.ndjson")),
                None => Path::new(stream).to_path_buf(),
            };
            crate::runtime::damage::report(crate::runtime::damage::Damage::new(
                format!("event stream {stream}"),
                &file,
                format!(
                    "{} record(s) are not events and were skipped ({first})",
                    not_events.len()
                ),
            ));
        }
        let cell = Arc::new(tokio::sync::OnceCell::new_with(Some(log)));
        self.inner.logs.lock().insert(stream.to_string(), cell);
    }

    /// After replay: long-polls see the replayed seq as the latest.
    pub(super) fn replayed(&self) {
        self.inner.latest.send_replace(self.last_seq());
    }

    /// Every journaled event of the `prefix` stream (e.g. `asbr`) with `seq > after_seq`,
    /// in seq order: for a toolset rebuilding its state at start-up, before it publishes.
    /// Without a backend, what the in-memory rings hold. Not async: on the local backend
    /// it reads the stream's files (call it off the async workers at run time); on a
    /// backend whose reads must wait, use [`EventBus::read_history`].
    pub fn history(&self, prefix: &str, after_seq: u64) -> Result<Vec<Event>, EventError> {
        if self.inner.backend.is_none() {
            return Ok(self.recent_history(prefix, after_seq));
        }
        let read = if let Some(local) = &self.inner.local {
            local.read_now(prefix, Position::START)?
        } else {
            match self.open_log(prefix) {
                None => return Ok(Vec::new()),
                Some(log) => match log.read_after(Position::START).now_or_never() {
                    Some(read) => read?,
                    None => crate::runtime::store::block_on_here(log.read_after(Position::START))?,
                },
            }
        };
        Ok(events_after(read, after_seq))
    }

    /// [`EventBus::history`] through the seam, on any backend.
    pub async fn read_history(
        &self,
        prefix: &str,
        after_seq: u64,
    ) -> Result<Vec<Event>, EventError> {
        if self.inner.backend.is_none() {
            return Ok(self.recent_history(prefix, after_seq));
        }
        let Some(log) = self.open_log(prefix) else {
            return Ok(Vec::new());
        };
        let read = log.read_after(Position::START).await?;
        Ok(events_after(read, after_seq))
    }

    fn recent_history(&self, prefix: &str, after_seq: u64) -> Vec<Event> {
        let filter = format!("{prefix}.*");
        let recent = self.read_since(&filter, after_seq, usize::MAX);
        recent.iter().map(|e| Event::clone(e)).collect()
    }

    /// The log of `stream` when it is open.
    fn open_log(&self, stream: &str) -> Option<Arc<dyn Log>> {
        self.inner.logs.lock().get(stream)?.get().cloned()
    }

    /// Every open log by stream.
    pub(super) fn open_logs(&self) -> HashMap<String, Arc<dyn Log>> {
        let logs = self.inner.logs.lock();
        logs.iter()
            .filter_map(|(name, cell)| Some((name.clone(), cell.get()?.clone())))
            .collect()
    }

    /// The log of `prefix`, opened through the backend on first use; `None` without a
    /// backend.
    pub(super) async fn log_for(&self, prefix: &str) -> Result<Option<Arc<dyn Log>>, EventError> {
        let Some(backend) = &self.inner.backend else {
            return Ok(None);
        };
        let cell = self
            .inner
            .logs
            .lock()
            .entry(prefix.to_string())
            .or_default()
            .clone();
        let options = self.inner.options.stream();
        let log = cell
            .get_or_try_init(|| async {
                if self.inner.closed.load(Ordering::Acquire) {
                    return Err(StoreError::Closed);
                }
                // A stream that did not exist at start-up: nothing to replay here; on a
                // shared backend another process may have written it, so it is followed
                // from its start.
                let (log, _) = backend.open(prefix, options).await?;
                if self.inner.shared {
                    self.follow(prefix, log.clone(), crate::runtime::store::Position::START);
                }
                Ok::<_, StoreError>(log)
            })
            .await?;
        Ok(Some(log.clone()))
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

    /// Compacts `stream`'s log now under the retention rule (see the module docs),
    /// whatever its size; publishes on it wait meanwhile. Nothing without a log.
    pub async fn compact(&self, stream: &str) -> Result<(), EventError> {
        let Some(log) = self.open_log(stream) else {
            return Ok(());
        };
        Ok(log.compact(self.retain(stream)).await?)
    }

    /// Queues a background compaction of `log` (after the appends acknowledged so far),
    /// keeping what [`retain_events`] keeps. Nothing when an owner holds everything.
    pub(super) fn queue_compaction(&self, log: &Arc<dyn Log>) {
        if self.retention_floor(log.name()) == Some(0) {
            return;
        }
        log.compact_in_background(self.retain(log.name()));
    }

    fn retain(&self, stream: &str) -> Retain {
        let floor = self.retention_floor(stream);
        let capacity = self.inner.ring_capacity;
        Box::new(move |records| retain_events(records, capacity, floor))
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

/// The events of `read` with `seq > after_seq`, in seq order; records that are not
/// events were reported when the bus replayed the stream.
fn events_after(read: Read, after_seq: u64) -> Vec<Event> {
    let mut events: Vec<Event> = read
        .into_values()
        .into_iter()
        .filter_map(|record| serde_json::from_value::<Event>(record).ok())
        .filter(|event| event.seq > after_seq)
        .collect();
    events.sort_by_key(|e| e.seq);
    events
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use serde_json::json;
    use std::path::Path;

    #[tokio::test]
    async fn restart_replays_history_and_continues_seq() {
        let dir = tempfile::tempdir().unwrap();
        let path = Some(dir.path().to_path_buf());
        let bus = EventBus::new(path.clone(), Fsync::Batch).unwrap();
        bus.publish_value("github.a", "t", json!(1)).await.unwrap();
        bus.publish_value("asbr.b", "t", json!(2)).await.unwrap();
        bus.publish_value("github.c", "t", json!(3)).await.unwrap();
        bus.close().await;
        drop(bus);

        let bus = EventBus::new(path, Fsync::Batch).unwrap();
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
            ..BusOptions::new(Fsync::Never)
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
        let bus = EventBus::with_options(Some(dir.to_path_buf()), BusOptions::new(Fsync::Never));
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

    /// The bus through the seam on a backend that is not a file: replay on reopen, seq
    /// after a restart, holds and compaction, history read through the log.
    #[tokio::test]
    async fn the_bus_runs_on_the_memory_backend() {
        use crate::runtime::store::{Backend, MemoryBackend};
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let options = BusOptions {
            ring_capacity: 2,
            max_segment_bytes: 1 << 20,
            ..BusOptions::new(Fsync::Never)
        };
        let bus = EventBus::open(backend.clone(), options).await.unwrap();
        let _hold = bus.hold("asbr");
        for i in 0..5 {
            bus.publish_value("asbr.x", "t", json!(i)).await.unwrap();
            bus.publish_value("github.y", "t", json!(i)).await.unwrap();
        }
        bus.compact("asbr").await.unwrap();
        bus.compact("github").await.unwrap();
        assert_eq!(
            seqs(&bus.read_history("asbr", 2).await.unwrap()),
            vec![3, 5, 7, 9]
        );
        assert_eq!(seqs(&bus.history("github", 0).unwrap()), vec![8, 10]);
        bus.close().await;
        assert!(bus.publish_value("asbr.x", "t", json!(0)).await.is_err());

        let bus = EventBus::open(backend, options).await.unwrap();
        assert_eq!(bus.last_seq(), 10);
        assert_eq!(seqs(&recent(&bus, "*", 0)), vec![7, 8, 9, 10]);
        assert_eq!(bus.read_history("asbr", 0).await.unwrap().len(), 5);
        let next = bus.publish_value("mvp.z", "t", json!(0)).await.unwrap();
        assert_eq!(next.seq, 11);
        assert_eq!(seqs(&bus.read_history("mvp", 0).await.unwrap()), vec![11]);
        bus.close().await;
    }

    /// Events journaled before envelopes carried `dataVersion` replay (and are served,
    /// and written back by compaction) as version 1.
    #[tokio::test]
    async fn events_journaled_without_a_data_version_replay_as_version_1() {
        let dir = tempfile::tempdir().unwrap();
        let old = r#"{"seq":1,"rec":{"id":"0190a000-0000-7000-8000-000000000001","type":"github.issue.action","source":"cortex-mcp/github","time":"2026-01-01T00:00:00.000Z","seq":7,"data":{"action":"opened","number":3}}}"#;
        std::fs::write(dir.path().join("github.ndjson"), format!("{old}\n")).unwrap();
        let bus = small(dir.path());
        let replayed = recent(&bus, "*", 0);
        assert_eq!(replayed.len(), 1);
        assert_eq!(replayed[0].seq, 7);
        assert_eq!(replayed[0].data_version, 1);
        assert_eq!(replayed[0].data, json!({"action": "opened", "number": 3}));
        assert_eq!(bus.history("github", 0).unwrap(), replayed);
        let wire = serde_json::to_value(&replayed[0]).unwrap();
        assert_eq!(wire["dataVersion"], 1);
        let next = bus.publish_value("github.x", "t", json!(1)).await.unwrap();
        assert_eq!(next.seq, 8);
        bus.compact("github").await.unwrap();
        bus.close().await;
        drop(bus);
        let kept = bus_history(dir.path(), "github");
        assert_eq!(seqs(&kept), vec![7, 8]);
        assert!(kept.iter().all(|e| e.data_version == 1));
    }
}
