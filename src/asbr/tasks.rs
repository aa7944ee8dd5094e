//! Durable tasks: idempotent creation, per-task event history with long-poll waiting, and
//! the `asbr://tasks/{id}/events` resources (`tasks/resources.rs`). The `cortex.task@1`
//! model lives in `tasks/model.rs`, the state machine and the application of task events
//! in `tasks/transitions.rs`, the start-up rebuild and the snapshot it writes in
//! `tasks/rebuild.rs`, idempotency keys and traceparents in `tasks/ids.rs`, the read
//! paths (get, list, the long-poll watch) in `tasks/queries.rs`.
//!
//! Event-sourced: a transition is one task event on the bus, journaled in the bus's
//! `asbr` stream; that journal is the source of truth. `PlanStarted` carries the created
//! task, and every event is applied by the one function ([`apply_event`]) that also
//! replays it. Owns the `tasks` snapshot under `<state-dir>/asbr/` (tasks with their
//! recent events, and the bus seq they account for), rewritten at start-up after the
//! newer bus events are replayed onto it. Terminal tasks leave memory [`TERMINAL_TTL`]
//! (or the configured retention) after they end (and the snapshot at the next
//! start-up); [`TaskStore::get_or_recover`] rebuilds an evicted one from the snapshot
//! and the bus's journal while they hold its events. Must not touch tool registration
//! or other toolsets.
//!
//! Transition order: per task, transitions are serialised by an async gate; each one is
//! published on the bus and, once journaled there, applied to memory, announced to
//! watchers and returned to the caller. Watchers of one task are woken only by that
//! task's events.
//!
//! `PlanStarted` is published when a task is created (status `queued`): planning may
//! start. The agent then reports `StepCompleted` (→ running), `AwaitingApproval`
//! (→ paused until `approve_task_step`; `resume_task` refuses it), `DeliverableReady`
//! (→ succeeded) or `Failed` (→ failed); `cancel_task` ends any non-terminal task.

use std::{
    collections::{HashMap, VecDeque},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use parking_lot::RwLock;
use tokio::sync::watch;

use crate::runtime::{
    events::{Event, EventBus},
    principal::Principal,
    store::{Backend, Fsync, LocalBackend, Position, Stream, StreamOptions},
};

use super::AsbrError;

mod ids;
mod model;
mod queries;
mod rebuild;
mod replicas;
mod resources;
mod transitions;

pub use model::{
    AgentEventKind, Approval, Approver, Contrast, Deadlines, Level, Motion, Preferences, Risk,
    Task, TaskEventData, TaskEventKind, TaskInput, TaskInputItem, TaskStatus,
};

pub use ids::{idempotency_key, traceparent};
use queries::select;
use transitions::apply_event;
pub use transitions::{Change, apply_agent_event, apply_approval, apply_cancel, apply_resume};

/// How long an idempotency key maps to its task.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(5 * 60);
/// How long a finished task stays in memory by default (`--asbr-task-retention`).
pub const TERMINAL_TTL: Duration = Duration::from_secs(60 * 60);
/// Most events kept in memory per task, and in the all-tasks ring.
const TASK_EVENTS_CAP: usize = 1_000;
const RECENT_CAP: usize = 10_000;
/// Most finished tasks kept in memory at once.
const TERMINAL_CAP: u64 = 100_000;
const SOURCE: &str = "cortex-mcp/asbr";
/// The snapshot stream under `<state-dir>/asbr/`.
const STREAM: &str = "tasks";
/// Log size past which the `tasks` stream is compacted to the last state written in it
/// (only start-up writes it, and compacts it then).
const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;
/// The bus stream that journals task events (the source of truth for transitions).
const BUS_STREAM: &str = "asbr";
const TYPE_PREFIX: &str = "asbr.task.";
const URI_PREFIX: &str = "asbr://tasks/";

/// Errors of task operations; all become `isError` results.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(
        "task {id} not found: a finished task leaves memory {retention} after it ends (set by --asbr-task-retention) and is then rebuilt from the journal while its events are kept; check the id or call list_tasks"
    )]
    NotFound { id: String, retention: String },
    #[error("task {id} is {status}: {what}")]
    Illegal {
        id: String,
        status: TaskStatus,
        what: String,
    },
    #[error("{0}")]
    Input(String),
    #[error("could not journal the task change: {0}")]
    Journal(String),
}

// ---------------------------------------------------------------- helpers

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn hint(task: &Task, kind: TaskEventKind, step: Option<&str>) -> String {
    let title = &task.title;
    let step = step.unwrap_or("the current step");
    match kind {
        TaskEventKind::PlanStarted => format!("Task {title} is queued and planning has started."),
        TaskEventKind::StepCompleted => format!("Task {title}: {step} is done."),
        TaskEventKind::AwaitingApproval => {
            format!("Task {title} is waiting for your approval of {step}.")
        }
        TaskEventKind::Canceled => format!("Task {title} was canceled."),
        TaskEventKind::Resumed => format!("Task {title} is running again."),
        TaskEventKind::DeliverableReady => format!("Task {title} finished; its result is ready."),
        TaskEventKind::Failed => format!("Task {title} failed."),
    }
}

// ---------------------------------------------------------------- store

/// One task in memory.
struct Slot {
    /// Serialises transitions of this task (held across journaling).
    gate: tokio::sync::Mutex<()>,
    /// The durable state, readable without waiting on the gate.
    view: RwLock<Option<Task>>,
    /// Set when creation failed to journal; the slot is then unusable.
    dead: AtomicBool,
    events: RwLock<VecDeque<Arc<Event>>>,
    changes: watch::Sender<u64>,
}

impl Slot {
    fn new(task: Option<Task>) -> Arc<Self> {
        Arc::new(Slot {
            gate: tokio::sync::Mutex::new(()),
            view: RwLock::new(task),
            dead: AtomicBool::new(false),
            events: RwLock::new(VecDeque::new()),
            changes: watch::channel(0).0,
        })
    }

    fn task(&self) -> Option<Task> {
        self.view.read().clone()
    }

    fn push_event(&self, event: Arc<Event>) {
        let seq = event.seq;
        let mut events = self.events.write();
        events.push_back(event);
        if events.len() > TASK_EVENTS_CAP {
            events.pop_front();
        }
        drop(events);
        self.changes.send_replace(seq);
    }
}

/// The outcome of `create_task`.
pub struct Created {
    pub task: Task,
    /// True when an earlier task with the same key was returned.
    pub reused: bool,
}

/// All tasks: active ones in a map, finished ones in a TTL cache.
///
/// Durability: a transition is durable once its event is in the bus's `asbr` journal;
/// the state is rebuilt at start-up from the `tasks` snapshot plus the task events the
/// bus journaled after it, and the snapshot is then rewritten.
pub struct TaskStore {
    stream: Stream<rebuild::Record>,
    /// `<state-dir>/asbr/`, where the `tasks` snapshot lives.
    dir: PathBuf,
    /// How long a finished task stays in memory.
    retention: Duration,
    bus: EventBus,
    active: RwLock<HashMap<String, Arc<Slot>>>,
    terminal: moka::sync::Cache<String, Arc<Slot>>,
    idempotency: moka::sync::Cache<String, Arc<Slot>>,
    recent: RwLock<VecDeque<Arc<Event>>>,
    changes: watch::Sender<u64>,
    /// The start-up snapshot being written, awaited by [`TaskStore::close`].
    snapshot: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Shared store: how many other replicas' events the bus handed the applier, and
    /// how many it has applied (see `replicas.rs`).
    foreign: replicas::Progress,
}

impl TaskStore {
    /// Opens the `tasks` snapshot under `dir` and rebuilds memory from it and the bus's
    /// task events. Run before anything publishes on the bus's `asbr` stream.
    pub fn open(dir: &Path, bus: EventBus, policy: Fsync) -> Result<Self, AsbrError> {
        Self::open_with(dir, bus, policy, TERMINAL_TTL)
    }

    /// [`TaskStore::open`] keeping finished tasks in memory for `retention`.
    pub fn open_with(
        dir: &Path,
        bus: EventBus,
        policy: Fsync,
        retention: Duration,
    ) -> Result<Self, AsbrError> {
        Self::open_on(&LocalBackend::new(dir), dir, bus, policy, retention)
    }

    /// [`TaskStore::open_with`] keeping the `tasks` snapshot on `backend` (`dir` names
    /// it in damage reports).
    pub fn open_on(
        backend: &dyn Backend,
        dir: &Path,
        bus: EventBus,
        policy: Fsync,
        retention: Duration,
    ) -> Result<Self, AsbrError> {
        let (stream, replay) = Stream::open_now(
            backend,
            STREAM,
            StreamOptions::new(policy, MAX_LOG_BYTES),
            rebuild::compaction(),
        )
        .map_err(|source| AsbrError::Journal {
            stream: STREAM,
            dir: dir.to_path_buf(),
            source,
        })?;
        let store = TaskStore {
            stream,
            dir: dir.to_path_buf(),
            retention,
            bus,
            active: RwLock::default(),
            terminal: moka::sync::Cache::builder()
                .max_capacity(TERMINAL_CAP)
                .time_to_live(retention)
                .build(),
            idempotency: moka::sync::Cache::builder()
                .max_capacity(TERMINAL_CAP)
                .time_to_live(IDEMPOTENCY_WINDOW)
                .build(),
            recent: RwLock::default(),
            changes: watch::channel(0).0,
            snapshot: parking_lot::Mutex::default(),
            foreign: replicas::Progress::default(),
        };
        store.rebuild(replay)?;
        Ok(store)
    }

    fn all_slots(&self) -> Vec<Arc<Slot>> {
        let mut slots: Vec<Arc<Slot>> = self.active.read().values().cloned().collect();
        slots.extend(self.terminal.iter().map(|(_, s)| s));
        slots
    }

    fn slot(&self, id: &str) -> Result<Arc<Slot>, TaskError> {
        if let Some(slot) = self.active.read().get(id) {
            return Ok(slot.clone());
        }
        self.terminal.get(id).ok_or_else(|| self.not_found(id))
    }

    /// [`TaskStore::slot`] when `principal` may see its task; not found (the same error
    /// as a missing task) otherwise.
    fn visible_slot(&self, id: &str, principal: &Principal) -> Result<Arc<Slot>, TaskError> {
        let slot = self.slot(id)?;
        visible(slot, principal).ok_or_else(|| self.not_found(id))
    }

    fn not_found(&self, id: &str) -> TaskError {
        TaskError::NotFound {
            id: id.to_string(),
            retention: humantime::format_duration(self.retention).to_string(),
        }
    }

    /// [`TaskStore::slot`], rebuilding a finished task that left memory from the `tasks`
    /// snapshot and the bus's journal (read off the async workers) when they still hold
    /// its events. Only ids that can belong to such a task (UUID v7 created at least the
    /// retention ago) are looked up on disk.
    async fn slot_or_recover(
        &self,
        id: &str,
        principal: &Principal,
    ) -> Result<Arc<Slot>, TaskError> {
        if self.slot(id).is_err() {
            // Created through another replica an instant ago, perhaps.
            self.catch_up().await;
        }
        let missing = match self.slot(id) {
            Ok(slot) => return visible(slot, principal).ok_or_else(|| self.not_found(id)),
            Err(e) => e,
        };
        if !self.could_be_evicted(id) {
            return Err(missing);
        }
        let snapshot = match self.stream.log().read_after(Position::START).await {
            Ok(read) => read.into_values(),
            Err(e) => {
                tracing::warn!(task = id, "could not read the tasks snapshot: {e}");
                return Err(missing);
            }
        };
        let (bus, key) = (self.bus.clone(), id.to_string());
        let recovered =
            tokio::task::spawn_blocking(move || rebuild::recover_task(snapshot, &bus, &key)).await;
        match recovered {
            Ok(Ok(Some(slot))) => {
                // Kept again for the retention, so repeated reads do not go to disk.
                let slot = self.terminal.get_with(id.to_string(), move || slot);
                visible(slot, principal).ok_or(missing)
            }
            Ok(Ok(None)) => Err(missing),
            Ok(Err(reason)) => {
                tracing::warn!(task = id, "could not rebuild a finished task: {reason}");
                Err(missing)
            }
            Err(e) => Err(TaskError::Journal(e.to_string())),
        }
    }

    /// Whether `id` is a task id (UUID v7) old enough to have been evicted.
    fn could_be_evicted(&self, id: &str) -> bool {
        let Ok(uuid) = uuid::Uuid::parse_str(id) else {
            return false;
        };
        let Some((secs, _)) = uuid.get_timestamp().map(|t| t.to_unix()) else {
            return false;
        };
        let created = std::time::UNIX_EPOCH + Duration::from_secs(secs);
        std::time::SystemTime::now()
            .duration_since(created)
            .is_ok_and(|age| age + Duration::from_secs(1) >= self.retention)
    }

    /// One task `principal` may see; a finished one that left memory is rebuilt from the
    /// journal when it can be.
    pub async fn get_or_recover(&self, id: &str, principal: &Principal) -> Result<Task, TaskError> {
        self.slot_or_recover(id, principal)
            .await?
            .task()
            .ok_or_else(|| self.not_found(id))
    }

    fn push_recent(&self, event: Arc<Event>) {
        let mut recent = self.recent.write();
        if recent.back().is_none_or(|last| last.seq < event.seq) {
            recent.push_back(event);
        } else {
            let pos = recent.partition_point(|e| e.seq < event.seq);
            recent.insert(pos, event);
        }
        if recent.len() > RECENT_CAP {
            recent.pop_front();
        }
    }

    /// Creates a task owned by `owner` (every principal may act on it when `shared`), or
    /// returns the one the same owner created with the same key in the last 5 minutes.
    pub async fn create(
        &self,
        input: TaskInput,
        key: Option<String>,
        traceparent: String,
        owner: &Principal,
        shared: bool,
    ) -> Result<Created, TaskError> {
        if input.title.trim().is_empty() {
            return Err(TaskError::Input("input.title: must not be blank".into()));
        }
        if input.scopes.iter().any(|s| s.trim().is_empty()) {
            return Err(TaskError::Input(
                "input.scopes: entries must not be blank".into(),
            ));
        }
        let key = key.unwrap_or_else(|| idempotency_key(&input));
        let fresh = Slot::new(None);
        let gate = fresh
            .gate
            .try_lock()
            .map_err(|_| TaskError::Journal("new task gate busy".into()))?;
        let cache_key = idempotency_slot(owner.as_str(), &key);
        let entry = self
            .idempotency
            .entry(cache_key.clone())
            .or_insert_with(|| fresh.clone());
        if !entry.is_fresh() {
            drop(gate);
            let slot = entry.into_value();
            let _wait = slot.gate.lock().await;
            return match slot.task() {
                Some(task) if !slot.dead.load(Ordering::Acquire) => {
                    Ok(Created { task, reused: true })
                }
                _ => Err(TaskError::Journal(
                    "an earlier identical request failed to journal; retry".into(),
                )),
            };
        }
        let at = now();
        let task = Task {
            id: uuid::Uuid::now_v7().to_string(),
            title: input.title.clone(),
            status: TaskStatus::Queued,
            current_step: None,
            awaiting_approval: None,
            artifacts: Vec::new(),
            evidence_ids: Vec::new(),
            approvals: Vec::new(),
            idempotency_key: key.clone(),
            input,
            created_at: at.clone(),
            updated_at: at,
            owner: owner.owner(),
            shared,
        };
        let change = Change {
            kind: TaskEventKind::PlanStarted,
            status: TaskStatus::Queued,
            step: None,
            data: None,
        };
        match self.commit(&fresh, task, change, traceparent).await {
            Ok(task) => {
                self.active.write().insert(task.id.clone(), fresh.clone());
                drop(gate);
                Ok(Created {
                    task,
                    reused: false,
                })
            }
            Err(e) => {
                fresh.dead.store(true, Ordering::Release);
                self.idempotency.invalidate(&cache_key);
                drop(gate);
                Err(e)
            }
        }
    }

    /// Announces `change` of `task` on the bus (durable once the bus journals it), then
    /// applies it to `slot` and wakes watchers.
    async fn commit(
        &self,
        slot: &Arc<Slot>,
        mut task: Task,
        change: Change,
        traceparent: String,
    ) -> Result<Task, TaskError> {
        let Change {
            kind,
            status,
            step,
            data,
        } = change;
        let payload = TaskEventData {
            task_id: task.id.clone(),
            r#type: kind,
            status,
            aria_live_hint: hint(&task, kind, step.as_deref()),
            step,
            timestamp: now(),
            data,
            traceparent,
            task: (kind == TaskEventKind::PlanStarted).then(|| Box::new(task.clone())),
        };
        let event = self
            .bus
            .publish_as(SOURCE, &payload, task.event_owner())
            .await
            .map_err(|e| TaskError::Journal(e.to_string()))?;
        apply_event(&mut task, &payload);
        *slot.view.write() = Some(task.clone());
        self.push_recent(event.clone());
        let seq = event.seq;
        slot.push_event(event);
        self.changes.send_modify(|v| *v = (*v).max(seq));
        Ok(task)
    }

    /// Runs one transition of task `id`, when `principal` may act on it, under its gate.
    pub async fn transition(
        &self,
        id: &str,
        principal: &Principal,
        traceparent: String,
        decide: impl FnOnce(&Task) -> Result<Change, TaskError>,
    ) -> Result<Task, TaskError> {
        // On a shared store, decide on every event acknowledged anywhere so far.
        self.catch_up().await;
        let slot = self.visible_slot(id, principal)?;
        let _gate = slot.gate.lock().await;
        let current = slot
            .task()
            .filter(|_| !slot.dead.load(Ordering::Acquire))
            .ok_or_else(|| self.not_found(id))?;
        let change = decide(&current)?;
        let task = self.commit(&slot, current, change, traceparent).await?;
        if task.status.is_terminal()
            && let Some(slot) = self.active.write().remove(id)
        {
            self.terminal.insert(id.to_string(), slot);
        }
        Ok(task)
    }

    /// Finishes a snapshot being written and closes its stream.
    pub async fn close(&self) {
        let writing = self.snapshot.lock().take();
        if let Some(writing) = writing {
            let _ = writing.await;
        }
        self.stream.close().await;
    }
}

/// `slot` when `principal` may see its task.
fn visible(slot: Arc<Slot>, principal: &Principal) -> Option<Arc<Slot>> {
    slot.task()
        .is_some_and(|t| t.visible_to(principal))
        .then_some(slot)
}

/// The idempotency cache's key: one owner's key never returns another owner's task.
fn idempotency_slot(owner: &str, key: &str) -> String {
    format!("{owner}\n{key}")
}

#[cfg(test)]
mod tests;
