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
            "Diff two versions of one file into a FilePatch: hunks, git-style unified text (`diff --git`, `/dev/null` for a null side, no-newline markers; `git apply` and `patch -p1` accept it), a summary (additions, deletions, preview) and SHA-256 of each side. `before: null` means created, `after: null` deleted. Results are cached; past `timeoutMs` a coarser but valid diff comes back with `approximate: true`."
        ),
        t.tool(
            "apply_patch",
            read,
            diffs::apply_patch,
            "Apply a unified diff (git or classic) to `content` and return the new content; writes nothing. Hunks may sit at an offset; `fuzz` (0-3) lets a hunk drop that many outer context lines. CRLF content keeps its line endings. If any hunk does not fit, the result is an error listing each failing hunk's header, expected lines, the lines found and the nearest offset."
        ),
        t.tool(
            "check_conflicts",
            read,
            diffs::check_conflicts,
            "Dry-run a unified diff against `content`: per-hunk status (applies, at which offset and fuzz, or conflicts with expected vs found lines). Never an error for conflicts."
        ),
        t.tool(
            "parse_patch",
            read,
            diffs::parse_patch,
            "Read a (multi-file) unified diff: files with old/new paths, change type, hunks and addition/deletion counts."
        ),
        t.tool(
            "format_side_by_side",
            read,
            diffs::format_side_by_side,
            "Show two JSON values as pretty-printed columns aligned by a line diff; `|` marks changed rows, `<` left-only, `>` right-only."
        ),
        t.tool(
            "edit_files",
            write.destructive(),
            edits::edit_files,
            "Edit files inside the workspace roots by search and replace, in one call: `edits` is a list of `{path, oldText, newText, replaceAll?}` applied in order (later edits of a file see earlier ones). Each `oldText` must match exactly once (unless `replaceAll`); no match or several matches is an error naming the file and, for several, each match's lines with a line of context, so you can widen `oldText`. Without an exact match a match ignoring differences in spaces and tabs is used when it is unique, and reported (`match: whitespace-tolerant`, which lines differed). Line endings (CRLF kept; LF `oldText` matches a CRLF file), UTF-8 BOM and the final newline are kept. Everything is checked first and written all-or-nothing (temp file + rename, rolled back after a crash). `expectedSha` (path → SHA-256 hex) refuses files that changed since you read them. Answers a git-style diff (`dryRun`: only the diff, nothing written), at most `maxDiffBytes` per answer; pass `next_cursor` back as `cursor` for the rest."
        ),
        t.tool(
            "spool_open",
            write,
            spools::spool_open,
            "Open a spool session over directory `root` (inside the server's workspace roots; symlinks and `..` cannot lead out). Returns `session` for the other spool tools. Sessions expire after `ttlSecs` idle."
        ),
        t.tool(
            "spool_write",
            write.destructive(),
            spools::spool_write,
            "Create or overwrite a file of the session (path relative to its root); parent directories are created."
        ),
        t.tool(
            "spool_replace",
            write.destructive(),
            spools::spool_replace,
            "Replace text in a session file: `match` is literal unless `regex: true`. It must match exactly once: several matches are an error listing each one's line (widen `match`); `all` replaces every occurrence, `first` only the first; with `required` (default true) no match is an error."
        ),
        t.tool(
            "spool_patch",
            write.destructive(),
            spools::spool_patch,
            "Apply a unified diff (one or many files, paths relative to the root; git `a/`/`b/` prefixes stripped) to the session's files, all-or-nothing. A hunk that does not fit is an error with its details unless `ignoreConflicts`."
        ),
        t.tool(
            "spool_delete",
            write.destructive(),
            spools::spool_delete,
            "Delete a file of the session; `spool_reset` brings it back."
        ),
        t.tool(
            "spool_batch",
            write.destructive(),
            spools::spool_batch,
            "Run a plan of operations (`write`, `replace`, `patch`, `delete`) all-or-nothing: every operation is checked in memory first, files are written through temp file + rename, and on any failure every file is restored byte-for-byte. Returns per-operation results; on failure the error names the failing operation."
        ),
        t.tool(
            "spool_diff",
            read,
            spools::spool_diff,
            "FilePatches of every file the session changed since it opened (or last committed), one file per item, paginated with `limit`/`cursor`."
        ),
        t.tool(
            "spool_commit",
            write,
            spools::spool_commit,
            "Validate the session's changes (max file size, forbidden globs, .json/.toml must parse) and, if they pass, accept them as the new baseline and publish one `patchkit.patch` event per file. If any validator fails nothing is committed and the error lists every problem."
        ),
        t.tool(
            "spool_reset",
            write.destructive().idempotent(),
            spools::spool_reset,
            "Put every file the session changed back to its baseline bytes (only files that differ are rewritten; created files are removed)."
        ),
        t.tool(
            "spool_status",
            read,
            spools::spool_status,
            "The session's root, TTL and each touched file's state (created, modified, deleted, unchanged)."
        ),
        t.tool(
            "spool_close",
            write.idempotent(),
            spools::spool_close,
            "Close a session. Files stay as they are on disk unless `reset: true`, which first restores the baseline."
        ),
    ]
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionIn {
    /// Session id from spool_open.
    pub session: String,
}
