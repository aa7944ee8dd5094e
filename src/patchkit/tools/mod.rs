//! The patchkit tools: inputs (contract names and defaults kept), handlers and their
//! registration with annotations. CPU work (diffing, hashing, applying, file writes)
//! runs on the executor's `cpu` lane via `spawn_blocking`, never on the async threads.
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
            None => Err(ToolError::business(format!(
                "no open spool session `{id}` (closed, or expired after its idle TTL); open one with spool_open"
            ))),
        }
    }
}

fn sweep(sessions: &mut HashMap<String, SessionEntry>) {
    let now = Instant::now();
    sessions.retain(|_, e| now.duration_since(e.last_used) < e.ttl);
}

pub fn all(kit: &Kit) -> Vec<ToolDef> {
    let t = Tools::new("patchkit", kit);
    let read = Hints::read();
    let write = Hints::write();
    vec![
        t.tool(
            "create_diff",
            read,
            diffs::create_diff,
            "Diff two versions of one file: returns hunks, a git-style unified diff (`git apply` accepts it), a summary and each side's SHA-256. Omit `before` for a created file, `after` for a deleted one; past `timeoutMs` a coarser valid diff comes back with `approximate: true`."
        )
        .titled("Create diff"),
        t.tool(
            "apply_patch",
            read,
            diffs::apply_patch,
            "Apply a unified diff to `content` in memory and return the new content; writes nothing. Hunks may sit at an offset and `fuzz` (0-3) relaxes context; a hunk that does not fit is an error listing each failing hunk, what it expected and what was found."
        )
        .titled("Apply patch to text"),
        t.tool(
            "check_conflicts",
            read,
            diffs::check_conflicts,
            "Dry-run a unified diff against `content` before applying it: per-hunk status (applies, at which offset and fuzz, or conflicts with expected vs found lines). Conflicts are results, not errors."
        )
        .titled("Check patch conflicts"),
        t.tool(
            "parse_patch",
            read,
            diffs::parse_patch,
            "Read a unified diff of one or many files: each file's old and new path, change type and hunks, with addition and deletion counts."
        )
        .titled("Parse patch"),
        t.tool(
            "format_side_by_side",
            read,
            diffs::format_side_by_side,
            "Compare two JSON values by eye: pretty-printed columns aligned by a line diff (`|` changed, `<` left only, `>` right only), the changed-row count and whether they are equal."
        )
        .titled("Format side by side"),
        t.tool(
            "edit_files",
            write.destructive(),
            edits::edit_files,
            "Edit workspace files by search and replace: `edits` [{path, oldText, newText, replaceAll?}] in order, each oldText matching once (else the error shows the matches), all-or-nothing; `expectedSha` refuses changed files. Returns a git-style diff (`dryRun` writes nothing); more via `next_cursor`."
        )
        .titled("Edit files"),
        t.tool(
            "spool_open",
            write,
            spools::spool_open,
            "Start staged edits: open a spool session over directory `root` inside the workspace roots. Returns `session` for the other spool tools; it expires after `ttlSecs` idle."
        )
        .titled("Open spool session"),
        t.tool(
            "spool_write",
            write.destructive(),
            spools::spool_write,
            "Create or overwrite a file of the session (path relative to its root; parent directories are created); `spool_reset` restores the baseline."
        )
        .titled("Spool: write file"),
        t.tool(
            "spool_replace",
            write.destructive(),
            spools::spool_replace,
            "Replace text in a session file: `match` is literal unless `regex`; it must match once (the error lists each match's line) unless `all` or `first`. With `required` (default true) no match is an error."
        )
        .titled("Spool: replace text"),
        t.tool(
            "spool_patch",
            write.destructive(),
            spools::spool_patch,
            "Apply a unified diff (one or many files, paths relative to the root) to the session's files, all-or-nothing; a hunk that does not fit is an error with its details unless `ignoreConflicts`."
        )
        .titled("Spool: apply patch"),
        t.tool(
            "spool_delete",
            write.destructive(),
            spools::spool_delete,
            "Delete a file of the session; `spool_reset` brings it back."
        )
        .titled("Spool: delete file"),
        t.tool(
            "spool_batch",
            write.destructive(),
            spools::spool_batch,
            "Run several spool operations (`write`, `replace`, `patch`, `delete`) all-or-nothing: all are checked first and on any failure every file is restored. Returns per-operation results; an error names the failing operation."
        )
        .titled("Spool: batch"),
        t.tool(
            "spool_diff",
            read,
            spools::spool_diff,
            "Review what a session changed since it opened (or last committed): one FilePatch per file; pass `next_cursor` back as `cursor` for more."
        )
        .titled("Spool: diff"),
        t.tool(
            "spool_commit",
            write.destructive(),
            spools::spool_commit,
            "Accept the session's changes as its new baseline once they validate (file size, forbidden globs, JSON/TOML must parse) and publish one `patchkit.patch` event per file. If a validator fails nothing is committed and the error lists every problem."
        )
        .titled("Spool: commit"),
        t.tool(
            "spool_reset",
            write.destructive().idempotent(),
            spools::spool_reset,
            "Undo the session's changes: every changed file back to its baseline bytes, created files removed."
        )
        .titled("Spool: reset"),
        t.tool(
            "spool_status",
            read,
            spools::spool_status,
            "A session's root, TTL and each touched file's state (created, modified, deleted, unchanged)."
        )
        .titled("Spool: status"),
        t.tool(
            "spool_close",
            write.destructive().idempotent(),
            spools::spool_close,
            "End a session. Files stay as they are unless `reset: true`, which first restores the baseline."
        )
        .titled("Spool: close"),
    ]
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionIn {
    /// Session id from spool_open.
    pub session: String,
}
