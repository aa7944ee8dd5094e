//! Tasks on a shared store (`--store redis://…`): every replica applies the task events
//! the others publish, so a task created through one replica is read, watched and moved
//! on through any other.
//!
//! Owns applying a foreign task event to memory — through the same [`apply_event`] a
//! replay uses, under the task's gate, once per event seq — and waking that task's
//! watchers. Must not publish events or decide transitions (the replica that took the
//! call did). Two replicas moving one task at the same instant apply the two events in
//! the order each received them; the bus journal keeps both.

use std::sync::{Arc, Weak};

use serde::Deserialize;

use crate::runtime::events::Event;

use super::{
    BUS_STREAM, IDEMPOTENCY_WINDOW, Slot, TYPE_PREFIX, TaskEventData, TaskStore, idempotency_slot,
    transitions::apply_event,
};

/// Events buffered for the applier; past it the bus counts them as lagged (logged).
const BUFFER: usize = 65_536;
/// The longest a catch-up waits for the applier to take in what the bus handed it.
const APPLIER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// How far the applier is: events the bus put in its buffer, events it applied.
#[derive(Default)]
pub(super) struct Progress {
    delivered: std::sync::OnceLock<Arc<std::sync::atomic::AtomicU64>>,
    applied: tokio::sync::watch::Sender<u64>,
}

impl Progress {
    fn applied_one(&self) {
        self.applied.send_modify(|n| *n += 1);
    }

    /// Waits until the applier has applied every event handed to it before this call
    /// (the follower may have taken an event in that the applier has not reached yet).
    async fn drained(&self) {
        let Some(delivered) = self.delivered.get() else {
            return;
        };
        let target = delivered.load(std::sync::atomic::Ordering::Acquire);
        let mut applied = self.applied.subscribe();
        let reached = applied.wait_for(|n| *n >= target);
        if tokio::time::timeout(APPLIER_WAIT, reached).await.is_err() {
            tracing::warn!(
                target,
                "the applier of other replicas' task events is behind; answering from what it applied"
            );
        }
    }
}

impl TaskStore {
    /// On a shared bus, starts applying the task events other replicas publish (none
    /// on a local store). Call once, right after opening.
    pub fn follow_other_replicas(self: &Arc<Self>) {
        if !self.bus.is_shared() {
            return;
        }
        let mut foreign = self
            .bus
            .subscribe_foreign(&format!("{TYPE_PREFIX}*"), BUFFER);
        let _ = self.foreign.delivered.set(foreign.delivered());
        // Events that reached the rings before the subscription existed.
        let earlier = self
            .bus
            .read_since(&format!("{TYPE_PREFIX}*"), 0, usize::MAX);
        let store: Weak<TaskStore> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut reported = 0;
            for event in earlier {
                let Some(store) = store.upgrade() else { return };
                store.apply_foreign(event).await;
            }
            while let Some(event) = foreign.recv().await {
                let Some(store) = store.upgrade() else { return };
                store.apply_foreign(event).await;
                store.foreign.applied_one();
                let lagged = foreign.lagged();
                if lagged > reported {
                    reported = lagged;
                    tracing::warn!(
                        lagged,
                        "task events from other replicas were dropped: their tasks are stale here until a restart"
                    );
                }
            }
        });
    }

    /// On a shared store, applies every task event acknowledged anywhere before this
    /// call (one read of the store past the follower, then whatever the follower took in
    /// that the applier has not reached): a replica then answers for a task another one
    /// just created or moved. Nothing on a local store; a store error is logged, and the
    /// caller answers from what it holds.
    pub(super) async fn catch_up(&self) {
        if !self.bus.is_shared() {
            return;
        }
        match self.bus.catch_up(BUS_STREAM).await {
            Ok(events) => {
                for event in events {
                    if event.r#type.starts_with(TYPE_PREFIX) {
                        self.apply_foreign(event).await;
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the shared task events"),
        }
        self.foreign.drained().await;
    }

    /// Applies one task event another replica published, unless this store holds it.
    async fn apply_foreign(&self, event: Arc<Event>) {
        let data = match TaskEventData::deserialize(&event.data) {
            Ok(data) => data,
            Err(e) => {
                tracing::warn!(seq = event.seq, "skipping an unreadable task event: {e}");
                return;
            }
        };
        let Some(slot) = self.slot_for_foreign(&data) else {
            tracing::debug!(seq = event.seq, task = %data.task_id, "an event of a task this replica never saw created");
            return;
        };
        let _gate = slot.gate.lock().await;
        if slot.events.read().iter().any(|e| e.seq == event.seq) {
            return;
        }
        let task = {
            let mut view = slot.view.write();
            match (view.as_mut(), &data.task) {
                (Some(task), _) => apply_event(task, &data),
                (None, Some(created)) => {
                    let mut task = super::Task::clone(created);
                    apply_event(&mut task, &data);
                    *view = Some(task);
                }
                (None, None) => return,
            }
            view.clone()
        };
        self.push_recent(event.clone());
        let seq = event.seq;
        slot.push_event(event);
        self.changes.send_modify(|v| *v = (*v).max(seq));
        if let Some(task) = task
            && task.status.is_terminal()
            && let Some(slot) = self.active.write().remove(&task.id)
        {
            self.terminal.insert(task.id.clone(), slot);
        }
    }

    /// The slot of the event's task: the one held, or a new one for a created task
    /// (also entered under its idempotency key, so a retry through this replica gets it).
    fn slot_for_foreign(&self, data: &TaskEventData) -> Option<Arc<Slot>> {
        if let Ok(slot) = self.slot(&data.task_id) {
            return Some(slot);
        }
        let created = data.task.as_ref()?;
        // Visible at once as created (a reader must never meet a slot without its task);
        // the event itself is applied next, under the gate, like any other.
        let slot = Slot::new(Some(super::Task::clone(created)));
        let slot = self
            .active
            .write()
            .entry(data.task_id.clone())
            .or_insert(slot)
            .clone();
        let fresh = chrono::DateTime::parse_from_rfc3339(&created.created_at).is_ok_and(|t| {
            t > chrono::Utc::now()
                - chrono::Duration::from_std(IDEMPOTENCY_WINDOW).unwrap_or_default()
        });
        if fresh {
            let key = idempotency_slot(
                created.owner.as_deref().unwrap_or_default(),
                &created.idempotency_key,
            );
            self.idempotency.get_with(key, || slot.clone());
        }
        Some(slot)
    }
}
