//! Durable tasks: idempotent creation, per-task event history with long-poll waiting, and
//! the `asbr://tasks/{id}/events` resources. The `cortex.task@1` model lives in
//! `tasks/model.rs`, the state machine and the application of task events in
//! `tasks/transitions.rs`, the start-up rebuild and the snapshot it writes in
//! `tasks/rebuild.rs`.
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
use rmcp::model::ResourceTemplate;
use serde_json::Value;
use tokio::sync::watch;

use crate::runtime::{
    events::{Event, EventBus},
    principal::Principal,
    resources::{ResourceError, ResourceSource},
    store::{Fsync, LocalBackend, Position, Stream, StreamOptions},
};

use super::{AsbrError, canonical};

mod model;
mod rebuild;
mod transitions;

pub use model::{
    AgentEventKind, Approval, Approver, Contrast, Deadlines, Level, Motion, Preferences, Risk,
    Task, TaskEventData, TaskEventKind, TaskInput, TaskInputItem, TaskStatus,
};

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

/// The idempotency key: first 16 hex of SHA-256 over canonical
/// `{title, brief, inputs, scopes (sorted)}`.
pub fn idempotency_key(input: &TaskInput) -> String {
    let mut scopes = input.scopes.clone();
    scopes.sort();
    let value = serde_json::json!({
        "title": input.title,
        "brief": input.brief,
        "inputs": input.inputs,
        "scopes": scopes,
    });
    canonical::sha256_hex(canonical::to_string(&value).as_bytes())[..16].to_string()
}

/// The request's `traceparent` when valid W3C, else a new one.
pub fn traceparent(meta: &serde_json::Map<String, Value>) -> String {
    if let Some(tp) = meta.get("traceparent").and_then(Value::as_str)
        && valid_traceparent(tp)
    {
        return tp.to_string();
    }
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    format!("00-{trace}-{span}-01")
}

fn valid_traceparent(tp: &str) -> bool {
    let parts: Vec<&str> = tp.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    parts.len() == 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && hex(parts[1], 32)
        && parts[1] != "0".repeat(32)
        && hex(parts[2], 16)
        && parts[2] != "0".repeat(16)
        && hex(parts[3], 2)
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
        let (stream, replay) = Stream::open_local(
            &LocalBackend::new(dir),
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

    pub fn get(&self, id: &str, principal: &Principal) -> Result<Task, TaskError> {
        self.visible_slot(id, principal)?
            .task()
            .ok_or_else(|| self.not_found(id))
    }

    /// Tasks `principal` may see, newest first (ids are time-ordered), after `before`
    /// when given.
    pub fn list(
        &self,
        principal: &Principal,
        status: Option<TaskStatus>,
        before: Option<&str>,
        limit: usize,
    ) -> (Vec<Task>, bool) {
        let mut tasks: Vec<Task> = self
            .all_slots()
            .iter()
            .filter_map(|s| s.task())
            .filter(|t| t.visible_to(principal))
            .filter(|t| status.is_none_or(|s| t.status == s))
            .filter(|t| before.is_none_or(|b| t.id.as_str() < b))
            .collect();
        tasks.sort_by(|a, b| b.id.cmp(&a.id));
        let more = tasks.len() > limit;
        tasks.truncate(limit);
        (tasks, more)
    }

    /// Events after `since` of one task (or of all tasks `principal` may see), filtered
    /// by kind; waits up to `wait` for the first one. Returns the events and the seq to
    /// pass next time.
    pub async fn watch(
        &self,
        principal: &Principal,
        task_id: Option<&str>,
        kinds: &[TaskEventKind],
        since: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<(Vec<Arc<Event>>, u64), TaskError> {
        let slot = match task_id {
            Some(id) => Some(self.slot_or_recover(id, principal).await?),
            None => None,
        };
        let mut changes = match &slot {
            Some(slot) => slot.changes.subscribe(),
            None => self.changes.subscribe(),
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            changes.mark_unchanged();
            let (found, scanned) = match &slot {
                Some(slot) => select(&slot.events.read(), kinds, since, limit, principal),
                None => select(&self.recent.read(), kinds, since, limit, principal),
            };
            if !found.is_empty() {
                let next = found.last().map_or(since, |e| e.seq);
                return Ok((found, next));
            }
            // Passes over events of tasks the principal may not see.
            let since = scanned.max(since);
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                _ => return Ok((Vec::new(), since)),
            }
        }
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

/// Up to `limit` events after `since` of the given kinds that `principal` may see, and
/// the seq of the last event looked at.
fn select(
    events: &VecDeque<Arc<Event>>,
    kinds: &[TaskEventKind],
    since: u64,
    limit: usize,
    principal: &Principal,
) -> (Vec<Arc<Event>>, u64) {
    let start = events.partition_point(|e| e.seq <= since);
    let found: Vec<Arc<Event>> = events
        .range(start..)
        .filter(|e| e.visible_to(principal))
        .filter(|e| {
            kinds.is_empty()
                || kinds
                    .iter()
                    .any(|k| e.r#type.strip_prefix(TYPE_PREFIX) == Some(k.name()))
        })
        .take(limit)
        .cloned()
        .collect();
    let scanned = events.back().map_or(since, |e| e.seq);
    (found, scanned)
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

// ---------------------------------------------------------------- resources

/// `asbr://tasks/{id}/events[?since_seq=N]` → the id and `since_seq`.
fn parse_uri(uri: &str) -> Option<(&str, u64)> {
    let rest = uri.strip_prefix(URI_PREFIX)?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let id = path.strip_suffix("/events")?;
    if id.is_empty() || id.contains('/') {
        return None;
    }
    let since = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("since_seq="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some((id, since))
}

impl ResourceSource for TaskStore {
    fn templates(&self) -> Vec<ResourceTemplate> {
        vec![
            ResourceTemplate::new("asbr://tasks/{id}/events", "task-events")
                .with_description("Events of one asbr task, oldest first, up to 500 after `?since_seq=N`; subscribe to be notified of new ones")
                .with_mime_type("application/json"),
        ]
    }

    fn handles(&self, uri: &str) -> bool {
        uri.starts_with(URI_PREFIX)
    }

    fn read(&self, uri: &str, principal: &Principal) -> Result<String, ResourceError> {
        let (id, since) = parse_uri(uri).ok_or_else(|| {
            ResourceError::NotFound(format!("{uri}: expected asbr://tasks/{{id}}/events"))
        })?;
        let slot = self
            .visible_slot(id, principal)
            .map_err(|e| ResourceError::NotFound(e.to_string()))?;
        let (events, _) = select(&slot.events.read(), &[], since, 500, principal);
        let next_seq = events.last().map_or(since, |e| e.seq);
        Ok(serde_json::json!({ "taskId": id, "events": events, "next_seq": next_seq }).to_string())
    }

    fn watch(
        &self,
        uri: &str,
        principal: &Principal,
    ) -> Result<watch::Receiver<u64>, ResourceError> {
        let (id, _) = parse_uri(uri).ok_or_else(|| {
            ResourceError::NotFound(format!("{uri}: expected asbr://tasks/{{id}}/events"))
        })?;
        let slot = self
            .visible_slot(id, principal)
            .map_err(|e| ResourceError::NotFound(e.to_string()))?;
        Ok(slot.changes.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(scopes: &[&str]) -> TaskInput {
        TaskInput {
            title: "t".into(),
            brief: "b".into(),
            inputs: vec![TaskInputItem::Text { value: "x".into() }],
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            deadlines: None,
            a11y_profile_id: None,
            preferences: None,
        }
    }

    #[test]
    fn key_ignores_scope_order_and_is_16_hex() {
        let a = idempotency_key(&input(&["b", "a"]));
        assert_eq!(a, idempotency_key(&input(&["a", "b"])));
        assert_eq!(a.len(), 16);
        assert_ne!(a, idempotency_key(&input(&["a"])));
    }

    #[test]
    fn traceparent_kept_when_valid_else_generated() {
        let mut meta = serde_json::Map::new();
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        meta.insert("traceparent".into(), tp.into());
        assert_eq!(traceparent(&meta), tp);
        meta.insert("traceparent".into(), "garbage".into());
        assert!(valid_traceparent(&traceparent(&meta)));
    }

    fn p() -> Principal {
        Principal::stdio()
    }

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn open(dir: &Path) -> (EventBus, TaskStore) {
        let bus = EventBus::new(Some(dir.join("events")), Fsync::Never).unwrap();
        let store = TaskStore::open(&dir.join("asbr"), bus.clone(), Fsync::Never).unwrap();
        (bus, store)
    }

    async fn close(bus: EventBus, store: TaskStore) {
        store.close().await;
        bus.close().await;
    }

    async fn step(
        store: &TaskStore,
        id: &str,
        kind: AgentEventKind,
        step: &str,
        data: Value,
    ) -> Task {
        let step = Some(step.to_string());
        store
            .transition(id, &p(), TP.into(), |t| {
                apply_agent_event(t, kind, step, Some(data))
            })
            .await
            .unwrap()
    }

    /// Creates a fresh task with `scope` as its only scope (distinct scopes, distinct tasks).
    async fn create(store: &TaskStore, scope: &str) -> Task {
        let created = store
            .create(input(&[scope]), None, TP.into(), &p(), false)
            .await
            .unwrap();
        assert!(!created.reused, "a task with scope {scope} already existed");
        created.task
    }

    /// `task` after twelve `StepCompleted` events.
    async fn twelve_steps(store: &TaskStore, mut task: Task) -> Task {
        for i in 0..12 {
            let data = serde_json::json!(i);
            task = step(store, &task.id, AgentEventKind::StepCompleted, "s", data).await;
        }
        task
    }

    async fn event_count(store: &TaskStore, id: &str) -> usize {
        let (events, _) = store
            .watch(&p(), Some(id), &[], 0, 100, Duration::ZERO)
            .await
            .unwrap();
        events.len()
    }

    #[tokio::test]
    async fn tasks_rebuilt_from_their_events_equal_the_acknowledged_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (bus, store) = open(dir.path());
        let a = create(&store, "a").await;
        let ids = serde_json::json!({"artifacts": ["art-1"], "evidenceIds": ["ev-1"]});
        step(&store, &a.id, AgentEventKind::StepCompleted, "plan", ids).await;
        step(
            &store,
            &a.id,
            AgentEventKind::AwaitingApproval,
            "deploy",
            Value::Null,
        )
        .await;
        let a_approved = store
            .transition(&a.id, &p(), TP.into(), |t| {
                apply_approval(t, "deploy", Approver::User, "stdio")
            })
            .await
            .unwrap();
        let b = create(&store, "b").await;
        let b_canceled = store
            .transition(&b.id, &p(), TP.into(), apply_cancel)
            .await
            .unwrap();
        close(bus, store).await;

        // First restart: everything comes from the bus journal; a snapshot is written.
        let (bus, store) = open(dir.path());
        assert_eq!(store.get(&a.id, &p()).unwrap(), a_approved);
        assert_eq!(store.get(&b.id, &p()).unwrap(), b_canceled);
        assert_eq!(event_count(&store, &a.id).await, 4);
        let c = create(&store, "c").await;
        let more = serde_json::json!({"artifacts": ["art-2", "art-1"]});
        let a_done = step(
            &store,
            &a.id,
            AgentEventKind::DeliverableReady,
            "ship",
            more,
        )
        .await;
        close(bus, store).await;

        assert!(dir.path().join("asbr/tasks.snapshot.json").exists());

        // Second restart: the snapshot plus the events published after it.
        let (bus, store) = open(dir.path());
        assert_eq!(store.get(&a.id, &p()).unwrap(), a_done);
        assert_eq!(store.get(&c.id, &p()).unwrap().status, TaskStatus::Queued);
        assert_eq!(a_done.artifacts, vec!["art-1", "art-2"]);
        assert_eq!(a_done.evidence_ids, vec!["ev-1"]);
        assert_eq!(a_done.approvals.len(), 1);
        assert_eq!(a_done.status, TaskStatus::Succeeded);
        assert_eq!(event_count(&store, &a.id).await, 5);
        let reused = store
            .create(input(&["c"]), None, TP.into(), &p(), false)
            .await
            .unwrap();
        assert!(reused.reused, "idempotency survives restarts");
        close(bus, store).await;
    }

    /// Like `open`, with a bus that compacts its streams past 2 KiB and keeps one
    /// event per type in its rings.
    fn open_compacting(dir: &Path) -> (EventBus, TaskStore) {
        let options = crate::runtime::events::BusOptions {
            ring_capacity: 1,
            max_segment_bytes: 2048,
            ..crate::runtime::events::BusOptions::new(Fsync::Never)
        };
        let bus = EventBus::with_options(Some(dir.join("events")), options).unwrap();
        let store = TaskStore::open(&dir.join("asbr"), bus.clone(), Fsync::Never).unwrap();
        (bus, store)
    }

    #[tokio::test]
    async fn tasks_rebuilt_after_the_bus_compacts_equal_the_acknowledged_ones() {
        let dir = tempfile::tempdir().unwrap();
        let compacted = dir.path().join("events/asbr.snapshot.json");
        let (bus, store) = open_compacting(dir.path());
        let a = twelve_steps(&store, create(&store, "a").await).await;
        let b = create(&store, "b").await;
        close(bus, store).await;
        assert!(
            !compacted.exists(),
            "no task snapshot yet: the bus keeps all"
        );

        // Restart: the task snapshot is written, then new events make the bus compact.
        let (bus, store) = open_compacting(dir.path());
        assert_eq!(store.get(&a.id, &p()).unwrap(), a);
        let snapshot = store.snapshot.lock().take().unwrap();
        snapshot.await.unwrap();
        let c = twelve_steps(&store, create(&store, "c").await).await;
        let b = store
            .transition(&b.id, &p(), TP.into(), apply_cancel)
            .await
            .unwrap();
        close(bus, store).await;
        assert!(compacted.exists(), "the asbr stream was compacted");
        let bus = EventBus::new(Some(dir.path().join("events")), Fsync::Never).unwrap();
        let kept = bus.history(BUS_STREAM, 0).unwrap();
        assert!(kept.len() < 28, "events the snapshot covers were dropped");
        bus.close().await;

        // Second restart: the task snapshot plus the events kept above its watermark.
        let (bus, store) = open_compacting(dir.path());
        assert_eq!(store.get(&a.id, &p()).unwrap(), a);
        assert_eq!(store.get(&b.id, &p()).unwrap(), b);
        assert_eq!(store.get(&c.id, &p()).unwrap(), c);
        assert_eq!(event_count(&store, &c.id).await, 13);
        close(bus, store).await;
    }

    #[tokio::test]
    async fn journals_of_the_per_transition_format_still_load_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let (bus, store) = open(dir.path());
        let a = create(&store, "a").await;
        let a = step(
            &store,
            &a.id,
            AgentEventKind::StepCompleted,
            "one",
            Value::Null,
        )
        .await;
        let (events, _) = store
            .watch(&p(), Some(&a.id), &[], 0, 100, Duration::ZERO)
            .await
            .unwrap();
        close(bus, store).await;
        let asbr = dir.path().join("asbr");
        std::fs::remove_dir_all(&asbr).unwrap();
        let (old, _) = Stream::<Value>::open_local(
            &LocalBackend::new(&asbr),
            STREAM,
            StreamOptions::new(Fsync::Never, MAX_LOG_BYTES),
            crate::runtime::store::Compaction::new(|records| records),
        )
        .unwrap();
        for event in &events {
            old.append(&serde_json::json!({"task": a, "event": event}))
                .await
                .unwrap();
        }
        old.close().await;

        let (bus, store) = open(dir.path());
        assert_eq!(store.get(&a.id, &p()).unwrap(), a);
        assert_eq!(event_count(&store, &a.id).await, 2);
        close(bus, store).await;
    }

    fn stored_bytes(dir: &Path) -> u64 {
        ["tasks.ndjson", "tasks.snapshot.json"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum()
    }

    /// A long per-transition log (a task record per event) is compacted at start-up to
    /// the task and its events once, and the task survives the next restart.
    #[tokio::test]
    async fn a_long_transition_log_is_compacted_at_start_up_and_the_state_survives() {
        let dir = tempfile::tempdir().unwrap();
        let (bus, store) = open(dir.path());
        let mut a = create(&store, "a").await;
        for _ in 0..10 {
            a = twelve_steps(&store, a).await;
        }
        let (events, _) = store
            .watch(&p(), Some(&a.id), &[], 0, 1000, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(events.len(), 121);
        close(bus, store).await;
        let asbr = dir.path().join("asbr");
        std::fs::remove_dir_all(&asbr).unwrap();
        let (old, _) = Stream::<Value>::open_local(
            &LocalBackend::new(&asbr),
            STREAM,
            StreamOptions::new(Fsync::Never, MAX_LOG_BYTES),
            crate::runtime::store::Compaction::new(|records| records),
        )
        .unwrap();
        for event in &events {
            old.append(&serde_json::json!({"task": a, "event": event}))
                .await
                .unwrap();
        }
        old.close().await;
        let appended = stored_bytes(&asbr);

        let (bus, store) = open(dir.path());
        assert_eq!(store.get(&a.id, &p()).unwrap(), a);
        close(bus, store).await;
        let stored = stored_bytes(&asbr);
        assert!(
            stored < appended * 3 / 5,
            "{stored} bytes stored for {appended} bytes of transitions"
        );
        assert_eq!(
            std::fs::metadata(asbr.join("tasks.ndjson")).unwrap().len(),
            0
        );

        let (bus, store) = open(dir.path());
        assert_eq!(store.get(&a.id, &p()).unwrap(), a);
        assert_eq!(event_count(&store, &a.id).await, 100);
        let (events, _) = store
            .watch(&p(), Some(&a.id), &[], 0, 1000, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(events.len(), 121);
        close(bus, store).await;
    }

    #[test]
    fn uri_parsing() {
        assert_eq!(parse_uri("asbr://tasks/abc/events"), Some(("abc", 0)));
        assert_eq!(
            parse_uri("asbr://tasks/abc/events?since_seq=7"),
            Some(("abc", 7))
        );
        assert_eq!(parse_uri("asbr://tasks//events"), None);
        assert_eq!(parse_uri("asbr://tasks/a/b/events"), None);
    }
}
