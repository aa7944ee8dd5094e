//! The start-up rebuild of the task store: loads the `tasks` snapshot journal (and the
//! per-transition records older versions wrote), replays the task events the bus's
//! `asbr` stream journaled after the snapshot's watermark through
//! [`apply_event`](super::transitions::apply_event), moves the rebuilt tasks into the
//! live indexes, and rewrites the snapshot.
//!
//! Runs once, in [`TaskStore::open`], before anything publishes on the bus's `asbr`
//! stream; [`recover_task`] rebuilds one finished task the same way, read-only, when it
//! has left memory. Must not publish events, decide transitions or touch tool
//! registration.

use std::{collections::HashMap, sync::Arc};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::runtime::{
    events::{Event, EventBus, EventError, StreamHold},
    store::{Compaction, Replay},
};

use super::{
    super::AsbrError, BUS_STREAM, IDEMPOTENCY_WINDOW, STREAM, Slot, TYPE_PREFIX, Task,
    TaskEventData, TaskStore, transitions::apply_event,
};

/// One record of the `tasks` snapshot: a task with its recent events, or the bus seq up
/// to which the snapshot accounts for every task event. (Older versions appended a task
/// with one event per transition; those records still load.)
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum Record {
    Snapshot {
        task: Box<Task>,
        events: Vec<Arc<Event>>,
    },
    Task {
        task: Box<Task>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<Arc<Event>>,
    },
    Watermark {
        watermark: u64,
    },
}

/// The `tasks` stream's compaction rule: a state written at start-up (a watermark, then
/// every task) supersedes everything before it, so the records from the last watermark
/// on are kept (all of them when there is none: an older version's per-transition log).
/// Start-up writes that state as the snapshot itself ([`TaskStore::rebuild`]); this rule
/// is for a compaction of the stream by its size.
pub(super) fn compaction() -> Compaction<Record> {
    Compaction::new(|mut records: Vec<Record>| {
        let last = records
            .iter()
            .rposition(|r| matches!(r, Record::Watermark { .. }));
        records.split_off(last.unwrap_or(0))
    })
}

/// Tasks being rebuilt at start-up, in creation order.
#[derive(Default)]
struct Rebuild {
    slots: HashMap<String, Arc<Slot>>,
    order: Vec<String>,
    /// Every task event with a seq up to here is accounted for.
    watermark: u64,
}

impl Rebuild {
    fn slot(&mut self, id: &str) -> Arc<Slot> {
        if let Some(slot) = self.slots.get(id) {
            return slot.clone();
        }
        self.order.push(id.to_string());
        let slot = Slot::new(None);
        self.slots.insert(id.to_string(), slot.clone());
        slot
    }

    /// A record of the `tasks` snapshot (or of an older version's per-transition log).
    fn record(&mut self, record: Record) {
        match record {
            Record::Watermark { watermark } => self.watermark = self.watermark.max(watermark),
            Record::Snapshot { task, events } => {
                let slot = self.slot(&task.id);
                *slot.view.write() = Some(*task);
                for event in events {
                    self.watermark = self.watermark.max(event.seq);
                    slot.push_event(event);
                }
            }
            Record::Task { task, event } => {
                let slot = self.slot(&task.id);
                *slot.view.write() = Some(*task);
                if let Some(event) = event {
                    self.watermark = self.watermark.max(event.seq);
                    slot.push_event(event);
                }
            }
        }
    }

    /// A task event from the bus's `asbr` stream, newer than the snapshot.
    fn event(&mut self, event: Event) {
        if !event.r#type.starts_with(TYPE_PREFIX) {
            return;
        }
        let data = match TaskEventData::deserialize(&event.data) {
            Ok(data) => data,
            Err(e) => {
                tracing::warn!(seq = event.seq, "skipping an unreadable task event: {e}");
                return;
            }
        };
        let slot = self.slot(&data.task_id);
        let mut view = slot.view.write();
        match (view.as_mut(), &data.task) {
            (Some(task), _) => apply_event(task, &data),
            (None, Some(created)) => {
                let mut task = Task::clone(created);
                apply_event(&mut task, &data);
                *view = Some(task);
            }
            (None, None) => {
                tracing::warn!(seq = event.seq, task = %data.task_id, "skipping an event of an unknown task");
                return;
            }
        }
        drop(view);
        self.watermark = self.watermark.max(event.seq);
        slot.push_event(Arc::new(event));
    }
}

impl TaskStore {
    /// Rebuilds memory from what the `tasks` stream replayed and the task events the bus
    /// journaled after it, then rewrites the snapshot when either held anything.
    pub(super) fn rebuild(&self, replay: Replay<Record>) -> Result<(), AsbrError> {
        let mut rebuild = Rebuild::default();
        let skipped: Vec<String> = replay
            .undecodable
            .iter()
            .map(|(position, reason)| format!("record {position}: {reason}"))
            .collect();
        let logged = !replay.records.is_empty();
        for record in replay.into_records() {
            rebuild.record(record);
        }
        if let Some(first) = skipped.first() {
            // The bus's journal still holds the events after the watermark; the tasks
            // these records held are rebuilt from it when it kept their events.
            crate::runtime::damage::report(crate::runtime::damage::Damage::new(
                "asbr tasks snapshot",
                &self.dir.join(format!("{STREAM}.snapshot.json")),
                format!(
                    "{} malformed record(s) skipped ({first}); they are rewritten away with the next snapshot",
                    skipped.len()
                ),
            ));
        }
        // Keeps the bus from compacting away task events this store has not snapshotted.
        let hold = self.bus.hold(BUS_STREAM);
        let newer = self
            .bus
            .history(BUS_STREAM, rebuild.watermark)
            .map_err(|e| AsbrError::Replay {
                stream: BUS_STREAM,
                reason: e.to_string(),
            })?;
        let replayed = newer.len();
        for event in newer {
            rebuild.event(event);
        }
        let watermark = rebuild.watermark;
        self.install(rebuild);
        if replayed > 0 || logged || !skipped.is_empty() {
            self.write_snapshot(watermark, hold);
        } else {
            // Everything came from the snapshot on disk, durable since it was written.
            hold.release_through(watermark);
        }
        Ok(())
    }

    /// Moves rebuilt tasks into the live indexes.
    fn install(&self, rebuild: Rebuild) {
        let Rebuild {
            mut slots, order, ..
        } = rebuild;
        let horizon =
            chrono::Utc::now() - chrono::Duration::from_std(IDEMPOTENCY_WINDOW).unwrap_or_default();
        for id in order {
            let Some(slot) = slots.remove(&id) else {
                continue;
            };
            let Some(task) = slot.task() else { continue };
            for event in slot.events.read().iter() {
                self.push_recent(event.clone());
            }
            let recent_enough =
                chrono::DateTime::parse_from_rfc3339(&task.created_at).is_ok_and(|t| t > horizon);
            if recent_enough {
                self.idempotency.insert(
                    super::idempotency_slot(
                        task.owner.as_deref().unwrap_or_default(),
                        &task.idempotency_key,
                    ),
                    slot.clone(),
                );
            }
            if task.status.is_terminal() {
                self.terminal.insert(id, slot);
            } else {
                self.active.write().insert(id, slot);
            }
        }
        let last = self.recent.read().back().map_or(0, |e| e.seq);
        self.changes.send_replace(last);
    }

    /// Rewrites the `tasks` snapshot as what memory holds, accounting for every task
    /// event up to `watermark`. Runs at start-up only, before anything publishes, so
    /// no transition can fall between the snapshot and the watermark.
    /// Once the snapshot is durable, `hold` releases the bus events it accounts for.
    fn write_snapshot(&self, watermark: u64, hold: StreamHold) {
        let mut records = vec![Record::Watermark { watermark }];
        for slot in self.all_slots() {
            let Some(task) = slot.task() else { continue };
            let events: Vec<Arc<Event>> = slot.events.read().iter().cloned().collect();
            records.push(Record::Snapshot {
                task: Box::new(task),
                events,
            });
        }
        let values: Vec<Value> = records
            .iter()
            .filter_map(|r| serde_json::to_value(r).ok())
            .collect();
        // The snapshot is exactly this state: what the stream held before is replaced
        // (records that did not decode included), not filtered by its compaction rule.
        let log = self.stream.log().clone();
        let writing = tokio::spawn(async move {
            match log.compact(Box::new(move |_| values)).await {
                Ok(()) => hold.release_through(watermark),
                Err(e) => tracing::warn!("could not write the asbr tasks snapshot: {e}"),
            }
        });
        *self.snapshot.lock() = Some(writing);
    }
}

/// Why a finished task could not be rebuilt (logged; the caller answers "not found").
#[derive(Debug, thiserror::Error)]
pub(super) enum RecoverError {
    #[error("the tasks snapshot holds a malformed record: {0}")]
    Malformed(serde_json::Error),
    #[error(transparent)]
    History(#[from] EventError),
}

/// Rebuilds task `id` from `snapshot` (every record of the `tasks` stream) and the task
/// events the bus journaled after its watermark (the store holds those since start-up),
/// without writing anything: `None` when neither holds the task.
pub(super) fn recover_task(
    snapshot: Vec<Value>,
    bus: &EventBus,
    id: &str,
) -> Result<Option<Arc<Slot>>, RecoverError> {
    let mut rebuild = Rebuild::default();
    let mut bad = None;
    for raw in snapshot {
        let about_id = raw
            .get("task")
            .and_then(|t| t.get("id"))
            .and_then(Value::as_str)
            .is_some_and(|t| t == id);
        if !about_id && raw.get("watermark").is_none() {
            continue;
        }
        match serde_json::from_value::<Record>(raw) {
            Ok(record) => rebuild.record(record),
            Err(e) => {
                bad.get_or_insert(e);
            }
        }
    }
    if let Some(reason) = bad {
        return Err(RecoverError::Malformed(reason));
    }
    let newer = bus.history(BUS_STREAM, rebuild.watermark)?;
    for event in newer {
        if event.data.get("taskId").and_then(Value::as_str) == Some(id) {
            rebuild.event(event);
        }
    }
    Ok(rebuild
        .slots
        .remove(id)
        .filter(|slot| slot.task().is_some()))
}
