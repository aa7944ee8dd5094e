//! The patchkit tools, one file per topic (`diffs`, `edits`, `spools`): each file holds
//! its tools' inputs (contract names and defaults kept), handlers and registration with
//! annotations and descriptions. This module holds the state every handler shares and
//! the toolset's tool list. CPU work (diffing, hashing, applying, file writes) runs on
//! the executor's `cpu` lane via `spawn_blocking`, never on the async threads.
//! Committed spool patches publish `patchkit.patch` events.
//!
//! Owns tool semantics only; diff/apply/spool logic lives in the sibling modules.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::{
    Runtime,
    events::EventBus,
    executor::Executor,
    principal::Principal,
    registry::{CallCtx, Hints, ToolDef, ToolError},
    toolset::Tools,
};

use super::{diff::FilePatch, spool::Session};

mod diffs;
mod edits;
mod spools;

const SOURCE: &str = "cortex-mcp/patchkit";

/// Most spool sessions open at once.
const MAX_SESSIONS: usize = 64;

use crate::runtime::toolset::Out;

/// Cache key of a diff: (path, shaBefore, shaAfter, options).
#[derive(Hash, PartialEq, Eq, Clone)]
struct DiffKey {
    path: String,
    sha_before: Option<String>,
    sha_after: Option<String>,
    context: usize,
    max_preview: usize,
    algorithm: super::diff::DiffAlgorithm,
}

struct SessionEntry {
    session: Arc<Mutex<Session>>,
    ttl: Duration,
    last_used: Instant,
    /// The principal that opened it: the only one that may use it.
    owner: Principal,
}

/// What every patchkit handler holds.
pub struct Patchkit {
    executor: Executor,
    events: EventBus,
    /// The workspace roots a session root must lie in (opened once by the runtime).
    roots: crate::runtime::workspace::Roots,
    cache: moka::sync::Cache<DiffKey, Arc<FilePatch>>,
    sessions: Mutex<HashMap<String, SessionEntry>>,
    /// Intent records of spool batches in flight (`<state-dir>/patchkit/batches`).
    batches: Option<PathBuf>,
    /// Diffs of `edit_files` answers whose later pages a cursor may still ask for.
    edit_diffs: moka::sync::Cache<String, Arc<edits::Kept>>,
    /// The server's `--fsync` policy: whether `edit_files` fsyncs what it writes.
    fsync: crate::config::Fsync,
    /// This replica's `--replica-id`: a session id ends with `@<replica>`, since a
    /// session's files are on the disk of the replica that opened it.
    replica: Option<String>,
}

type Kit = Arc<Patchkit>;

impl Patchkit {
    pub fn new(runtime: &Runtime) -> Self {
        let batches = runtime.config.state_dir.join("patchkit").join("batches");
        let batches = match std::fs::create_dir_all(&batches) {
            Ok(()) => {
                // Batches a crash cut short are rolled back before any session opens.
                let restored = super::spool_journal::recover(&batches, &runtime.roots);
                if !restored.is_empty() {
                    tracing::warn!(
                        files = restored.len(),
                        "spool batches interrupted by a crash were rolled back"
                    );
                }
                Some(batches)
            }
            Err(e) => {
                tracing::error!(dir = %batches.display(), "spool batches will not survive a crash: {e}");
                None
            }
        };
        Patchkit {
            batches,
            replica: runtime.config.replica_id.clone(),
            fsync: runtime.config.fsync,
            executor: runtime.executor.clone(),
            events: runtime.events.clone(),
            roots: runtime.roots.clone(),
            cache: moka::sync::Cache::builder()
                .weigher(|_k: &DiffKey, v: &Arc<FilePatch>| {
                    u32::try_from(v.diff.len() + 256).unwrap_or(u32::MAX)
                })
                .max_capacity(32 * 1024 * 1024)
                .build(),
            sessions: Mutex::new(HashMap::new()),
            edit_diffs: moka::sync::Cache::builder()
                .weigher(|_k: &String, v: &Arc<edits::Kept>| v.weight())
                .max_capacity(32 * 1024 * 1024)
                .time_to_idle(Duration::from_secs(30 * 60))
                .build(),
        }
    }

    /// Runs blocking work on the `cpu` lane within the call's deadline and cancellation.
    async fn cpu<T: Send + 'static>(
        &self,
        ctx: &CallCtx,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Out<T> {
        self.executor
            .run_cpu(ctx.deadline, &ctx.cancel, f)
            .await
            .map_err(|e| ToolError::Deadline(e.to_string()))
    }

    /// The live session `id` when `principal` opened it, refreshing its idle timer;
    /// expired sessions are dropped. Another principal's session answers as a missing
    /// one.
    fn session(&self, id: &str, principal: &Principal) -> Out<Arc<Mutex<Session>>> {
        let mut sessions = self.sessions.lock();
        sweep(&mut sessions);
        match sessions.get_mut(id).filter(|e| e.owner == *principal) {
            Some(entry) => {
                entry.last_used = Instant::now();
                Ok(entry.session.clone())
            }
            None => Err(self.missing_session(id)),
        }
    }

    /// A new session id: random, and naming this replica when it has a `--replica-id`.
    fn new_session_id(&self) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match &self.replica {
            Some(replica) => format!("{id}@{replica}"),
            None => id,
        }
    }

    /// Why session `id` is not here: opened on another replica, or gone.
    fn missing_session(&self, id: &str) -> ToolError {
        self.on_another_replica(id).unwrap_or_else(|| {
            ToolError::business(format!(
                "no open spool session `{id}` (closed, or expired after its idle TTL); open one with spool_open"
            ))
        })
    }

    /// The error for a session id another replica opened (`None`: it names this one).
    fn on_another_replica(&self, id: &str) -> Option<ToolError> {
        let (_, owner) = id.rsplit_once('@')?;
        if Some(owner) == self.replica.as_deref() {
            return None;
        }
        let here = self.replica.as_deref().unwrap_or("(unnamed)");
        Some(ToolError::business(format!(
            "spool session `{id}` belongs to replica `{owner}`, and this call reached replica `{here}`: a session's files are on the disk of the replica that opened it, so its calls must reach that replica (give patchkit clients session affinity on the load balancer), or open a session here with spool_open"
        )))
    }
}

fn sweep(sessions: &mut HashMap<String, SessionEntry>) {
    let now = Instant::now();
    sessions.retain(|_, e| now.duration_since(e.last_used) < e.ttl);
}

pub fn all(kit: &Kit) -> Vec<ToolDef> {
    let t = Tools::new("patchkit", kit);
    [
        diffs::register(&t),
        edits::register(&t),
        spools::register(&t),
    ]
    .concat()
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionIn {
    /// Session id from spool_open.
    pub session: String,
}
