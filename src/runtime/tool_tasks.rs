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

use futures::FutureExt;
use rmcp::model::{
    CallToolResult, DetailedTask, InputRequests, InputResponses, JsonObject, Task, TaskPayload,
    TaskStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{
    principal::Principal,
    registry::ToolError,
    rounds::{Askable, RoundError, Rounds},
    store::{Compaction, Fsync, LocalBackend, StoreError, Stream, StreamOptions},
};

/// The journal stream of tasks (under the state directory's `tool-tasks/`).
const STREAM: &str = "tool-tasks";

/// Journal size after which expired tasks are compacted away.
const MAX_LOG_BYTES: u64 = 16 * 1024 * 1024;

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

/// JSON-RPC codes of a failed task's error.
const INTERNAL_ERROR: i64 = -32603;
const INVALID_PARAMS: i64 = -32602;
const MISSING_CAPABILITY: i64 = -32021;

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

/// A task as the journal keeps it: written when it is created and when it settles, so a
/// finished task's result survives a restart for the rest of its TTL, and a task the
/// restart interrupted is reported as failed rather than lost.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    id: String,
    owner: String,
    /// Unix milliseconds.
    created_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum Outcome {
    Completed {
        result: JsonObject,
    },
    Failed {
        error: JsonObject,
    },
    Cancelled,
    /// Forgotten before its TTL to keep [`MAX_RESULT_BYTES`].
    Evicted,
}

impl Outcome {
    fn of(payload: &TaskPayload) -> Option<Outcome> {
        match payload {
            TaskPayload::Completed { result } => Some(Outcome::Completed {
                result: result.clone(),
            }),
            TaskPayload::Failed { error } => Some(Outcome::Failed {
                error: error.clone(),
            }),
            TaskPayload::Cancelled => Some(Outcome::Cancelled),
            _ => None,
        }
    }

    /// The payload it stands for; `None` for a forgotten task.
    fn into_payload(self) -> Option<TaskPayload> {
        match self {
            Outcome::Completed { result } => Some(TaskPayload::Completed { result }),
            Outcome::Failed { error } => Some(TaskPayload::Failed { error }),
            Outcome::Cancelled => Some(TaskPayload::Cancelled),
            Outcome::Evicted => None,
        }
    }
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn from_unix_ms(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

/// The journal's compaction: the last record of each task still within its TTL.
fn compaction() -> Compaction<Record> {
    Compaction::new(|records: Vec<Record>| {
        let now = unix_ms(SystemTime::now());
        let ttl = TASK_TTL.as_millis() as u64;
        let mut last: HashMap<String, Record> = HashMap::new();
        let mut order = Vec::new();
        for r in records {
            if !last.contains_key(&r.id) {
                order.push(r.id.clone());
            }
            last.insert(r.id.clone(), r);
        }
        order
            .into_iter()
            .filter_map(|id| last.remove(&id))
            .filter(|r| r.created_ms + ttl > now)
            .filter(|r| !matches!(r.outcome, Some(Outcome::Evicted)))
            .collect()
    })
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
}

/// The message of a task the restart interrupted.
const INTERRUPTED: &str =
    "the server restarted while this task ran and its work was lost; call the tool again";

impl ToolTasks {
    /// Tasks kept in memory only (lost on restart).
    pub fn new() -> Self {
        ToolTasks::default()
    }

    /// Tasks recorded in `dir`: the finished ones of earlier runs still within their TTL
    /// are there again; ones a restart interrupted are reported failed.
    pub fn open(dir: &std::path::Path, policy: Fsync) -> Result<Self, StoreError> {
        let options = StreamOptions::new(policy, MAX_LOG_BYTES);
        let (stream, replay) =
            Stream::open_local(&LocalBackend::new(dir), STREAM, options, compaction())?;
        for (position, reason) in &replay.undecodable {
            tracing::warn!(%position, %reason, "tool-tasks: a record that does not decode is skipped");
        }
        let mut last: HashMap<String, Record> = HashMap::new();
        for record in replay.into_records() {
            last.insert(record.id.clone(), record);
        }
        let now = SystemTime::now();
        let mut table = HashMap::new();
        let mut interrupted = Vec::new();
        for (id, record) in last {
            let created = from_unix_ms(record.created_ms);
            let Some(left) = (created + TASK_TTL)
                .duration_since(now)
                .ok()
                .filter(|left| !left.is_zero())
            else {
                continue;
            };
            let outcome = record.outcome.clone().unwrap_or_else(|| {
                let failed = failed(INTERNAL_ERROR, INTERRUPTED);
                let outcome = Outcome::of(&failed).expect("a failure is an outcome");
                interrupted.push(Record {
                    outcome: Some(outcome.clone()),
                    ..record.clone()
                });
                outcome
            });
            let Some(payload) = outcome.into_payload() else {
                continue;
            };
            table.insert(
                id,
                Entry {
                    owner: record.owner,
                    created,
                    updated: now,
                    expires: Instant::now() + left,
                    phase: Phase::Done(payload.clone()),
                    cancel: CancellationToken::new(),
                    answers: InputResponses::new(),
                    bytes: payload_bytes(&payload),
                },
            );
        }
        let journal = Arc::new(stream);
        interrupted.extend(evict_over_budget(&mut table, None, MAX_RESULT_BYTES));
        if !interrupted.is_empty() {
            let journal = journal.clone();
            tokio::spawn(async move {
                if let Err(e) = journal.append_many(&interrupted).await {
                    tracing::warn!("tool-tasks: recording interrupted tasks failed: {e}");
                }
            });
        }
        Ok(ToolTasks {
            table: Arc::new(Mutex::new(table)),
            journal: Some(journal),
        })
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
        let id = uuid::Uuid::new_v4().to_string();
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
            purge_expired(&mut table);
            if table.len() >= MAX_TASKS {
                return Err(TaskError::Full);
            }
            let running = table
                .values()
                .filter(|e| e.owner == entry.owner && !e.finished())
                .count();
            if running >= MAX_RUNNING_PER_PRINCIPAL {
                return Err(TaskError::TooManyRunning);
            }
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

    /// The task `id` of `principal`, as `tasks/get` shows it.
    pub fn get(&self, principal: &Principal, id: &str) -> Result<DetailedTask, TaskError> {
        let mut table = self.lock();
        purge_expired(&mut table);
        owned(&table, principal, id).map(|e| e.detailed(id))
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
        owned(&table, principal, id)?;
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
        let entry = owned(&table, principal, id)?;
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

fn payload_bytes(payload: &TaskPayload) -> usize {
    match payload {
        TaskPayload::Completed { result } => serde_json::to_vec(result).map_or(0, |v| v.len()),
        TaskPayload::Failed { error } => serde_json::to_vec(error).map_or(0, |v| v.len()),
        _ => 0,
    }
}

/// Forgets the finished tasks that finished longest ago (never `keep`) until the
/// results held fit `budget` ([`MAX_RESULT_BYTES`]); returns their records (outcome `evicted`).
fn evict_over_budget(
    table: &mut HashMap<String, Entry>,
    keep: Option<&str>,
    budget: usize,
) -> Vec<Record> {
    let mut held: usize = table.values().map(|e| e.bytes).sum();
    if held <= budget {
        return Vec::new();
    }
    let mut finished: Vec<(SystemTime, String)> = table
        .iter()
        .filter(|(id, e)| e.finished() && e.bytes > 0 && Some(id.as_str()) != keep)
        .map(|(id, e)| (e.updated, id.clone()))
        .collect();
    finished.sort();
    let mut evicted = Vec::new();
    for (_, id) in finished {
        if held <= budget {
            break;
        }
        if let Some(entry) = table.remove(&id) {
            held -= entry.bytes;
            evicted.push(Record {
                id,
                owner: entry.owner,
                created_ms: unix_ms(entry.created),
                outcome: Some(Outcome::Evicted),
            });
        }
    }
    evicted
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

/// Runs one task to its end.
struct Driver {
    tasks: ToolTasks,
    id: String,
    askable: Askable,
    cancel: CancellationToken,
    /// The state of the task's last ask.
    state: Option<Value>,
}

impl Driver {
    async fn drive(mut self, first: Run, rerun: Rerun, finish: Finish) {
        let mut run = first;
        let payload = loop {
            let outcome = std::panic::AssertUnwindSafe(run).catch_unwind().await;
            if self.cancel.is_cancelled() {
                break TaskPayload::Cancelled;
            }
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(_) => {
                    break failed(
                        INTERNAL_ERROR,
                        "the tool stopped unexpectedly (a fault of this server); the call can be tried again",
                    );
                }
            };
            match outcome {
                Err(ToolError::NeedsInput(ask)) => match ask.into_task_input(self.askable) {
                    Ok((pending, state)) => {
                        self.state = state;
                        let Some(answers) = self
                            .tasks
                            .wait_for_answers(&self.id, pending, &self.cancel)
                            .await
                        else {
                            break TaskPayload::Cancelled;
                        };
                        run = rerun(Rounds::in_task(self.askable, answers, self.state.clone()));
                    }
                    Err(e) => break round_failure(e),
                },
                Err(ToolError::Round(e)) => break round_failure(e),
                Err(ToolError::Internal(message)) => {
                    break failed(INTERNAL_ERROR, &format!("internal error: {message}"));
                }
                other => break completed(finish(other)),
            }
        };
        self.tasks.settle(&self.id, payload).await;
    }
}

fn completed(result: CallToolResult) -> TaskPayload {
    match serde_json::to_value(result) {
        Ok(Value::Object(result)) => TaskPayload::Completed { result },
        _ => failed(INTERNAL_ERROR, "the tool's result could not be serialised"),
    }
}

fn round_failure(e: RoundError) -> TaskPayload {
    let code = match e {
        RoundError::Internal(_) => INTERNAL_ERROR,
        RoundError::MissingCapability(_) => MISSING_CAPABILITY,
        _ => INVALID_PARAMS,
    };
    failed(code, &e.to_string())
}

fn failed(code: i64, message: &str) -> TaskPayload {
    let error: JsonObject = json!({"code": code, "message": message})
        .as_object()
        .cloned()
        .unwrap_or_default();
    TaskPayload::Failed { error }
}

#[cfg(test)]
mod tests;
