//! Tool calls run as tasks (the MCP tasks extension, SEP-2663,
//! `io.modelcontextprotocol/tasks`): a call to a task-supporting tool from a client that
//! declared the extension answers at once with a task handle, and the client follows it
//! with `tasks/get` (status, then the inlined result or error), answers the questions it
//! asks with `tasks/update`, and stops it with `tasks/cancel`.
//!
//! Owns the task table and each task's lifecycle: `working` → (`input_required` ↔
//! `working`)* → `completed` (the tool's result, `isError` included) | `failed` (a fault
//! of this server or an unusable answer: a JSON-RPC error object) | `cancelled`. A task
//! is visible to `tasks/get` before its handle is returned; it belongs to the principal
//! that started it (another principal's id is answered as unknown); it is kept for
//! [`TASK_TTL`] from its creation and its work is stopped at that point. A task that asks
//! (an [`super::rounds::Ask`]) waits, holding no thread, until `tasks/update` has
//! answered every key; the call then runs again with every answer gathered so far, as a
//! multi-round request does. Bounded: [`MAX_RUNNING_PER_PRINCIPAL`] unfinished tasks per
//! principal and [`MAX_TASKS`] kept in all.
//!
//! Must not know any tool, toolset, the server or a transport: the server hands it the
//! call to run ([`Run`], [`Rerun`]) and how to make the result ([`Finish`]), and maps
//! [`TaskError`] to JSON-RPC errors.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use rmcp::model::{
    CallToolResult, DetailedTask, InputRequests, InputResponses, Task, TaskPayload, TaskStatus,
};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{
    principal::Principal,
    registry::ToolError,
    rounds::{Askable, Rounds},
    store::{Fsync, StoreError, Stream},
};

/// How long a task and its result are kept after it is created (`ttlMs`); its work is
/// stopped when it has run that long.
pub const TASK_TTL: Duration = Duration::from_secs(3600);

/// The `pollIntervalMs` suggested to clients.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Unfinished tasks one principal may have at a time.
pub const MAX_RUNNING_PER_PRINCIPAL: usize = 32;

/// Tasks kept in all, finished ones included (until their TTL).
pub const MAX_TASKS: usize = 4096;

/// Bytes of results and errors (as JSON) kept for finished tasks in all: past it, the
/// tasks that finished longest ago are forgotten first (then answered as unknown).
pub const MAX_RESULT_BYTES: usize = 256 * 1024 * 1024;

/// Whether a tool can run as a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskSupport {
    /// Always answered in the call itself.
    #[default]
    Forbidden,
    /// A task for a client that declared the extension, the call itself otherwise.
    Optional,
    /// Only as a task: a client that did not declare the extension gets -32021.
    Required,
}

/// Why a task request cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(
        "unknown task `{0}`: it does not exist, its ttlMs passed, or another client started it"
    )]
    Unknown(String),
    #[error(
        "task `{id}` belongs to replica `{owner}`, and this request reached replica `{here}`: a task runs on the replica that started it, so its tasks/get, tasks/update and tasks/cancel must reach that replica (give task-using clients session affinity on the load balancer)"
    )]
    OnAnotherReplica {
        id: String,
        owner: String,
        here: String,
    },
    #[error(
        "{MAX_RUNNING_PER_PRINCIPAL} of your tasks are still running; wait for one to finish or stop one with tasks/cancel"
    )]
    TooManyRunning,
    #[error(
        "the server keeps {MAX_TASKS} tasks and has no room for another; try again when older ones expire"
    )]
    Full,
    #[error(
        "inputResponses `{key}` is not a result object (an elicitation, sampling or roots/list result)"
    )]
    BadResponse { key: String },
    #[error("the task could not be recorded ({0}); nothing was started, try again")]
    Store(String),
}

/// One run of the call, with the rounds it sees.
pub type Run = Pin<Box<dyn Future<Output = Result<Value, ToolError>> + Send>>;
/// The call again, with the answers and state a task gathered.
pub type Rerun = Box<dyn Fn(Rounds) -> Run + Send + Sync>;
/// The tool's result from its outcome (an error becomes an `isError` result).
pub type Finish = Box<dyn FnOnce(Result<Value, ToolError>) -> CallToolResult + Send>;

/// What a new task is: whose, the client's abilities, and the token that stops its work
/// (the one the first run was given).
pub struct NewTask {
    pub principal: Principal,
    pub askable: Askable,
    pub cancel: CancellationToken,
    /// The answers and state the call arrived with (see [`Rounds::parts`]).
    pub answers: InputResponses,
    pub state: Option<Value>,
}

enum Phase {
    Working,
    /// Waiting for answers: the requests not yet answered, and where to send the
    /// answers once all are in.
    Waiting {
        pending: InputRequests,
        resume: oneshot::Sender<()>,
    },
    Done(TaskPayload),
}

struct Entry {
    /// The principal that started it ([`Principal::as_str`]).
    owner: String,
    created: SystemTime,
    updated: SystemTime,
    expires: Instant,
    phase: Phase,
    cancel: CancellationToken,
    /// Every answer received so far (the call's own, then `tasks/update`'s).
    answers: InputResponses,
    /// The JSON size of its result or error once finished.
    bytes: usize,
}

impl Entry {
    fn finished(&self) -> bool {
        matches!(self.phase, Phase::Done(_))
    }

    fn detailed(&self, id: &str) -> DetailedTask {
        let payload = match &self.phase {
            Phase::Working => TaskPayload::Working,
            Phase::Waiting { pending, .. } => TaskPayload::InputRequired {
                input_requests: pending.clone(),
            },
            Phase::Done(payload) => payload.clone(),
        };
        let task = Task::new(
            id,
            TaskStatus::Working,
            timestamp(self.created),
            timestamp(self.updated),
        )
        .with_ttl_ms(TASK_TTL.as_millis() as u64)
        .with_poll_interval_ms(POLL_INTERVAL.as_millis() as u64);
        DetailedTask::new(task, payload)
    }
}

fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// The tasks of this server.
#[derive(Clone, Default)]
pub struct ToolTasks {
    table: Arc<Mutex<HashMap<String, Entry>>>,
    /// Where tasks are recorded; `None` keeps them in memory only.
    journal: Option<Arc<Stream<Record>>>,
    /// This replica's `--replica-id`: a task id ends with `@<replica>`, since a task
    /// runs on the replica that started it.
    replica: Option<Arc<str>>,
}

impl ToolTasks {
    /// Tasks kept in memory only (lost on restart).
    pub fn new() -> Self {
        ToolTasks::default()
    }

    /// Tasks recorded in `dir`: the finished ones of earlier runs still within their TTL
    /// are there again; ones a restart interrupted are reported failed.
    pub fn open(dir: &std::path::Path, policy: Fsync) -> Result<Self, StoreError> {
        let (table, journal) = journal::load(dir, policy)?;
        Ok(ToolTasks {
            table: Arc::new(Mutex::new(table)),
            journal: Some(journal),
            replica: None,
        })
    }

    /// These tasks' ids name `replica` (`--replica-id`).
    pub fn on_replica(mut self, replica: Option<&str>) -> Self {
        self.replica = replica.map(Arc::from);
        self
    }

    fn new_id(&self) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        match &self.replica {
            Some(replica) => format!("{id}@{replica}"),
            None => id,
        }
    }

    /// An unknown id that names another replica is reported as that replica's.
    fn locate(&self, error: TaskError) -> TaskError {
        let TaskError::Unknown(id) = &error else {
            return error;
        };
        match id.rsplit_once('@') {
            Some((_, owner)) if Some(owner) != self.replica.as_deref() => {
                TaskError::OnAnotherReplica {
                    owner: owner.to_string(),
                    here: self.replica.as_deref().unwrap_or("(unnamed)").to_string(),
                    id: id.clone(),
                }
            }
            _ => error,
        }
    }

    /// Appends `record` when tasks are journaled.
    async fn record(&self, record: &Record) -> Result<(), StoreError> {
        match &self.journal {
            Some(journal) => {
                journal.append(record).await?;
                if journal.needs_compaction() {
                    journal.compact().await?;
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Creates a task for a call whose first run is `first` and starts driving it; the
    /// task is recorded and in the table (so `tasks/get` finds it, after a restart too)
    /// when this returns.
    pub async fn start(
        &self,
        new: NewTask,
        first: Run,
        rerun: Rerun,
        finish: Finish,
    ) -> Result<Task, TaskError> {
        let id = self.new_id();
        let now = SystemTime::now();
        let entry = Entry {
            owner: new.principal.as_str().to_string(),
            created: now,
            updated: now,
            expires: Instant::now() + TASK_TTL,
            phase: Phase::Working,
            cancel: new.cancel.clone(),
            answers: new.answers,
            bytes: 0,
        };
        let task = entry.detailed(&id).task;
        {
            let mut table = self.lock();
            has_room(&mut table, &entry.owner)?;
            table.insert(id.clone(), entry);
        }
        let record = Record {
            id: id.clone(),
            owner: new.principal.as_str().to_string(),
            created_ms: unix_ms(now),
            outcome: None,
        };
        if let Err(e) = self.record(&record).await {
            self.lock().remove(&id);
            return Err(TaskError::Store(e.to_string()));
        }
        let driver = Driver {
            tasks: self.clone(),
            id,
            askable: new.askable,
            cancel: new.cancel,
            state: new.state,
        };
        tokio::spawn(driver.drive(first, rerun, finish));
        Ok(task)
    }

    /// Whether `principal` may start another task now; checked before a call's first
    /// run so a refused one does no work (and again by [`ToolTasks::start`]).
    pub fn check_room(&self, principal: &Principal) -> Result<(), TaskError> {
        has_room(&mut self.lock(), principal.as_str())
    }

    /// The task `id` of `principal`, as `tasks/get` shows it.
    pub fn get(&self, principal: &Principal, id: &str) -> Result<DetailedTask, TaskError> {
        let mut table = self.lock();
        purge_expired(&mut table);
        owned(&table, principal, id)
            .map(|e| e.detailed(id))
            .map_err(|e| self.locate(e))
    }

    /// Records answers to the task's pending requests; keys it is not waiting for are
    /// ignored (the spec's rule). Once every pending request is answered, the task runs
    /// again.
    pub fn update(
        &self,
        principal: &Principal,
        id: &str,
        responses: InputResponses,
    ) -> Result<(), TaskError> {
        if let Some((key, _)) = responses.iter().find(|(_, v)| !v.is_object()) {
            return Err(TaskError::BadResponse { key: key.clone() });
        }
        let mut table = self.lock();
        purge_expired(&mut table);
        owned(&table, principal, id).map_err(|e| self.locate(e))?;
        let Some(entry) = table.get_mut(id) else {
            return Err(TaskError::Unknown(id.to_string()));
        };
        let Phase::Waiting { pending, .. } = &mut entry.phase else {
            return Ok(());
        };
        for (key, value) in responses {
            if pending.remove(&key).is_some() {
                entry.answers.insert(key, value);
            }
        }
        if pending.is_empty()
            && let Phase::Waiting { resume, .. } =
                std::mem::replace(&mut entry.phase, Phase::Working)
        {
            let _ = resume.send(());
        }
        entry.updated = SystemTime::now();
        Ok(())
    }

    /// Stops the task's work; it settles as `cancelled`. A finished task is left as it
    /// is (cancelling it again is not an error).
    pub fn cancel(&self, principal: &Principal, id: &str) -> Result<(), TaskError> {
        let mut table = self.lock();
        purge_expired(&mut table);
        let entry = owned(&table, principal, id).map_err(|e| self.locate(e))?;
        if !entry.finished() {
            entry.cancel.cancel();
        }
        Ok(())
    }

    /// Unfinished tasks (for metrics and tests).
    pub fn running(&self) -> usize {
        self.lock().values().filter(|e| !e.finished()).count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Parks the task on `pending`; resolves when all are answered (with the answers so
    /// far), or `None` when the task was cancelled or is gone.
    async fn wait_for_answers(
        &self,
        id: &str,
        pending: InputRequests,
        cancel: &CancellationToken,
    ) -> Option<InputResponses> {
        let (resume, resumed) = oneshot::channel();
        {
            let mut table = self.lock();
            let entry = table.get_mut(id)?;
            entry.phase = Phase::Waiting { pending, resume };
            entry.updated = SystemTime::now();
        }
        tokio::select! {
            r = resumed => r.ok()?,
            _ = cancel.cancelled() => return None,
        }
        self.lock().get(id).map(|e| e.answers.clone())
    }

    /// Records the task's end, then shows it.
    async fn settle(&self, id: &str, payload: TaskPayload) {
        let record = {
            let table = self.lock();
            table.get(id).map(|e| Record {
                id: id.to_string(),
                owner: e.owner.clone(),
                created_ms: unix_ms(e.created),
                outcome: Outcome::of(&payload),
            })
        };
        if let Some(record) = record
            && let Err(e) = self.record(&record).await
        {
            tracing::warn!(task = %id, "tool-tasks: recording the end of a task failed: {e}");
        }
        let evicted = {
            let mut table = self.lock();
            if let Some(entry) = table.get_mut(id) {
                entry.bytes = payload_bytes(&payload);
                entry.phase = Phase::Done(payload);
                entry.updated = SystemTime::now();
            }
            evict_over_budget(&mut table, Some(id), MAX_RESULT_BYTES)
        };
        if !evicted.is_empty()
            && let Some(journal) = &self.journal
            && let Err(e) = journal.append_many(&evicted).await
        {
            tracing::warn!("tool-tasks: recording forgotten tasks failed: {e}");
        }
    }
}

/// The entry `id` if `principal` owns it (another's is reported as unknown, so ids
/// reveal nothing).
fn owned<'a>(
    table: &'a HashMap<String, Entry>,
    principal: &Principal,
    id: &str,
) -> Result<&'a Entry, TaskError> {
    table
        .get(id)
        .filter(|e| e.owner == principal.as_str())
        .ok_or_else(|| TaskError::Unknown(id.to_string()))
}

/// Room for one more task of `owner`: under [`MAX_TASKS`] in all (after dropping expired
/// ones) and under [`MAX_RUNNING_PER_PRINCIPAL`] unfinished of its own.
fn has_room(table: &mut HashMap<String, Entry>, owner: &str) -> Result<(), TaskError> {
    purge_expired(table);
    if table.len() >= MAX_TASKS {
        return Err(TaskError::Full);
    }
    let running = table
        .values()
        .filter(|e| e.owner == owner && !e.finished())
        .count();
    if running >= MAX_RUNNING_PER_PRINCIPAL {
        return Err(TaskError::TooManyRunning);
    }
    Ok(())
}

/// Drops tasks past their TTL, stopping the work of unfinished ones.
fn purge_expired(table: &mut HashMap<String, Entry>) {
    let now = Instant::now();
    table.retain(|_, e| {
        let keep = e.expires > now;
        if !keep {
            e.cancel.cancel();
        }
        keep
    });
}

mod driver;
mod journal;

use driver::Driver;
use journal::{Outcome, Record, evict_over_budget, payload_bytes, unix_ms};

#[cfg(test)]
mod tests;
