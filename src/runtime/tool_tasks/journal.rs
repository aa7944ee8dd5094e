//! The tasks' journal: what is recorded of a task (when it is created, when it settles,
//! when it is forgotten), how the stream is compacted, how a restart rebuilds the table
//! from it, and the byte budget of the results held.
//!
//! Owns the records and the replay; the task table's requests and the driver are the
//! parent module's and `driver.rs`'s.

use std::{
    collections::HashMap,
    path::Path,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use rmcp::model::{InputResponses, JsonObject, TaskPayload};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{
    Entry, MAX_RESULT_BYTES, Phase, TASK_TTL,
    driver::{INTERNAL_ERROR, failed},
};
use crate::runtime::store::{Compaction, Fsync, LocalBackend, StoreError, Stream, StreamOptions};

/// The table of tasks by id.
pub(super) type Table = HashMap<String, Entry>;

/// The journal stream of tasks (under the state directory's `tool-tasks/`).
const STREAM: &str = "tool-tasks";

/// Journal size after which expired tasks are compacted away.
const MAX_LOG_BYTES: u64 = 16 * 1024 * 1024;

/// A task as the journal keeps it: written when it is created and when it settles, so a
/// finished task's result survives a restart for the rest of its TTL, and a task the
/// restart interrupted is reported as failed rather than lost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Record {
    pub(super) id: String,
    pub(super) owner: String,
    /// Unix milliseconds.
    pub(super) created_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) outcome: Option<Outcome>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub(super) enum Outcome {
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
    pub(super) fn of(payload: &TaskPayload) -> Option<Outcome> {
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

pub(super) fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn from_unix_ms(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

/// The journal's compaction: the last record of each task still within its TTL.
pub(super) fn compaction() -> Compaction<Record> {
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

/// The message of a task the restart interrupted.
const INTERRUPTED: &str =
    "the server restarted while this task ran and its work was lost; call the tool again";

/// Replays the journal in `dir`: the table of the tasks still within their TTL (finished,
/// or failed as interrupted, which is recorded), and the stream to write to.
pub(super) fn load(dir: &Path, policy: Fsync) -> Result<(Table, Arc<Stream<Record>>), StoreError> {
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
    Ok((table, journal))
}

pub(super) fn payload_bytes(payload: &TaskPayload) -> usize {
    match payload {
        TaskPayload::Completed { result } => serde_json::to_vec(result).map_or(0, |v| v.len()),
        TaskPayload::Failed { error } => serde_json::to_vec(error).map_or(0, |v| v.len()),
        _ => 0,
    }
}

/// Forgets the finished tasks that finished longest ago (never `keep`) until the
/// results held fit `budget` ([`MAX_RESULT_BYTES`]); returns their records (outcome `evicted`).
pub(super) fn evict_over_budget(
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
