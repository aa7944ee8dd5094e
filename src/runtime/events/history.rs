//! The event bus' journals: replay at start-up, [`EventBus::history`] from disk,
//! stream holds and compaction under the retention rule (see [`super`]).
//!
//! Owns: one [`Journal`] per topic prefix (opening, replaying into the rings,
//! compacting), [`StreamHold`] floors and the retention rule ([`retain_events`]).
//!
//! Must not touch: subscriptions and fan-out (see [`super::topics`]), the HTTP sink,
//! and any toolset, server or transport module; it only depends on
//! [`crate::runtime::journal`] and [`crate::runtime::damage`].

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use super::topics::validate_type;
use super::{Event, EventBus, EventError};
use crate::runtime::journal::{Journal, Retain};

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

impl EventBus {
    pub(super) fn replay(&self, dir: &Path) -> Result<(), EventError> {
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
                crate::runtime::damage::report(crate::runtime::damage::Damage::new(
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

    pub(super) fn journal_for(&self, prefix: &str) -> Result<Option<Journal>, EventError> {
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
    pub(super) fn queue_compaction(&self, journal: &Journal) {
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

#[cfg(test)]
mod tests {
    use super::super::*;
    use serde_json::json;
    use std::path::Path;

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
}
