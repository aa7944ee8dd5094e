//! Spool tools: open/close sessions, staged operations, diff, commit, reset, status.
//!
//! Owns their inputs, outputs and handlers and the `patchkit.patch` events; file work
//! is in `spool.rs`, root checks in `runtime::workspace`, commit rules in `validate.rs`.
//!
//! `spool_commit` whose validators find problems asks the user whether to commit anyway
//! when the client can be asked (MCP 2026-07-28 with form elicitation, see
//! `runtime::rounds`): the question lists the findings, its state holds their digest,
//! and a yes commits only if the validators still find exactly those (else the new
//! findings are asked about). No, declined or dismissed: nothing is committed, an
//! `isError` result says so. Other clients get the refusal as before.

use crate::{
    patchkit::{
        diff::{DiffOptions, PatchSummary},
        spool::{BatchFailure, Op, OpResult, SpoolError},
        validate::{self, Globs, Rules},
    },
    runtime::{
        page::{self, Page},
        rounds::{Ask, Decision},
    },
};

use super::*;

pub(super) fn register(t: &Tools<Kit>) -> Vec<ToolDef> {
    let read = Hints::read();
    let write = Hints::write();
    vec![
        t.tool(
            "spool_open",
            write,
            spool_open,
            "Start staged edits: open a spool session over directory `root` inside the workspace roots. Returns `session` for the other spool tools; it expires after `ttlSecs` idle."
        )
        .titled("Open spool session"),
        t.tool(
            "spool_write",
            write.destructive(),
            spool_write,
            "Create or overwrite a file of the session (path relative to its root; parent directories are created); `spool_reset` restores the baseline."
        )
        .titled("Spool: write file"),
        t.tool(
            "spool_replace",
            write.destructive(),
            spool_replace,
            "Replace text in a session file: `match` is literal unless `regex`; it must match once (the error lists each match's line) unless `all` or `first`. With `required` (default true) no match is an error."
        )
        .titled("Spool: replace text"),
        t.tool(
            "spool_patch",
            write.destructive(),
            spool_patch,
            "Apply a unified diff (one or many files, paths relative to the root) to the session's files, all-or-nothing; a hunk that does not fit is an error with its details unless `ignoreConflicts`."
        )
        .titled("Spool: apply patch"),
        t.tool(
            "spool_delete",
            write.destructive(),
            spool_delete,
            "Delete a file of the session; `spool_reset` brings it back."
        )
        .titled("Spool: delete file"),
        t.tool(
            "spool_batch",
            write.destructive(),
            spool_batch,
            "Run several spool operations (`write`, `replace`, `patch`, `delete`) all-or-nothing: all are checked first and on any failure every file is restored. Returns per-operation results; an error names the failing operation."
        )
        .titled("Spool: batch"),
        t.tool(
            "spool_diff",
            read,
            spool_diff,
            "Review what a session changed since it opened (or last committed): one FilePatch per file."
        )
        .titled("Spool: diff"),
        t.tool(
            "spool_commit",
            write.destructive(),
            spool_commit,
            "Accept the session's changes as its new baseline once they validate (file size, forbidden globs, JSON/TOML must parse) and publish one `patchkit.patch` event per file. On a failed check nothing is committed; the error lists every problem."
        )
        .titled("Spool: commit"),
        t.tool(
            "spool_reset",
            write.destructive().idempotent(),
            spool_reset,
            "Undo the session's changes: every changed file back to its baseline bytes, created files removed."
        )
        .titled("Spool: reset"),
        t.tool(
            "spool_status",
            read,
            spool_status,
            "A session's root, TTL and each touched file's state (created, modified, deleted, unchanged)."
        )
        .titled("Spool: status"),
        t.tool(
            "spool_close",
            write.destructive().idempotent(),
            spool_close,
            "End a session. Files stay as they are unless `reset: true`, which first restores the baseline."
        )
        .titled("Spool: close"),
    ]
}

fn default_ttl() -> u64 {
    1800
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenIn {
    /// Directory the session works in; must lie inside the server's workspace roots.
    pub root: String,
    /// Idle seconds before the session expires (default 1800).
    #[serde(default = "default_ttl")]
    #[schemars(range(min = 1, max = 86400))]
    pub ttl_secs: u64,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenOut {
    pub session: String,
    /// The canonical root.
    pub root: String,
    pub ttl_secs: u64,
}

pub(super) async fn spool_open(kit: Kit, i: OpenIn, ctx: CallCtx) -> Out<OpenOut> {
    let dir = kit
        .roots
        .open_dir(Some(&i.root))
        .map_err(|e| ToolError::input(format!("root: {e}")))?;
    let root = dir.path().to_path_buf();
    let id = kit.new_session_id();
    let mut sessions = kit.sessions.lock();
    sweep(&mut sessions);
    if sessions.len() >= MAX_SESSIONS {
        return Err(ToolError::business(format!(
            "{MAX_SESSIONS} spool sessions are open; close one with spool_close first"
        )));
    }
    sessions.insert(
        id.clone(),
        SessionEntry {
            session: Arc::new(Mutex::new(match &kit.batches {
                Some(batches) => Session::new(id.clone(), dir).with_batch_records(batches.clone()),
                None => Session::new(id.clone(), dir),
            })),
            ttl: Duration::from_secs(i.ttl_secs),
            last_used: Instant::now(),
            owner: ctx.principal.clone(),
        },
    );
    Ok(OpenOut {
        session: id,
        root: root.display().to_string(),
        ttl_secs: i.ttl_secs,
    })
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpsOut {
    pub results: Vec<OpResult>,
}

fn failure(f: BatchFailure) -> ToolError {
    ToolError::business(format!(
        "{} Per-operation results: {}",
        f.message,
        serde_json::to_string(&f.results).unwrap_or_default()
    ))
}

async fn run_ops(kit: &Kit, session: &str, ops: Vec<Op>, ctx: &CallCtx) -> Out<OpsOut> {
    let s = kit.session(session, &ctx.principal)?;
    let (stop, budget) = (ctx.stop.clone(), ctx.budget.clone());
    let results = kit
        .cpu(ctx, move || s.lock().run_within(&ops, &stop, &budget))
        .await?
        .map_err(failure)?;
    Ok(OpsOut { results })
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WriteIn {
    pub session: String,
    /// File path relative to the session root.
    pub path: String,
    /// The whole new content.
    pub content: String,
}

pub(super) async fn spool_write(kit: Kit, i: WriteIn, ctx: CallCtx) -> Out<OpsOut> {
    let op = Op::Write {
        path: i.path,
        content: i.content,
    };
    run_ops(&kit, &i.session, vec![op], &ctx).await
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplaceIn {
    pub session: String,
    /// File path relative to the session root.
    pub path: String,
    /// Text to find: literal unless `regex` is true.
    #[serde(rename = "match")]
    pub pattern: String,
    /// Replacement (with `regex`, `$1` / `${name}` refer to groups).
    pub replacement: String,
    /// Treat `match` as a regular expression.
    #[serde(default)]
    pub regex: bool,
    /// Replace every occurrence.
    #[serde(default)]
    pub all: bool,
    /// Replace only the first of several matches instead of refusing.
    #[serde(default)]
    pub first: bool,
    /// Fail when nothing matches (default true).
    #[serde(default = "default_true")]
    pub required: bool,
}

pub(super) async fn spool_replace(kit: Kit, i: ReplaceIn, ctx: CallCtx) -> Out<OpsOut> {
    let op = Op::Replace {
        path: i.path,
        pattern: i.pattern,
        replacement: i.replacement,
        regex: i.regex,
        all: i.all,
        first: i.first,
        required: i.required,
    };
    run_ops(&kit, &i.session, vec![op], &ctx).await
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchIn {
    pub session: String,
    /// Unified diff; paths relative to the session root.
    pub diff: String,
    /// Apply the hunks that fit and report the rest instead of failing.
    #[serde(default)]
    pub ignore_conflicts: bool,
    /// Outer context lines a hunk may drop to fit (0-3).
    #[serde(default)]
    #[schemars(range(max = 3))]
    pub fuzz: u8,
}

pub(super) async fn spool_patch(kit: Kit, i: PatchIn, ctx: CallCtx) -> Out<OpsOut> {
    let op = Op::Patch {
        diff: i.diff,
        ignore_conflicts: i.ignore_conflicts,
        fuzz: i.fuzz,
    };
    run_ops(&kit, &i.session, vec![op], &ctx).await
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteIn {
    pub session: String,
    /// File path relative to the session root.
    pub path: String,
}

pub(super) async fn spool_delete(kit: Kit, i: DeleteIn, ctx: CallCtx) -> Out<OpsOut> {
    run_ops(&kit, &i.session, vec![Op::Delete { path: i.path }], &ctx).await
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchIn {
    pub session: String,
    /// Applied in order.
    #[schemars(length(min = 1, max = 500))]
    pub operations: Vec<Op>,
}

pub(super) async fn spool_batch(kit: Kit, i: BatchIn, ctx: CallCtx) -> Out<OpsOut> {
    run_ops(&kit, &i.session, i.operations, &ctx).await
}

fn default_context() -> usize {
    3
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct DiffIn {
        pub session: String,
        ..page_args {
            /// Files per page (default 20, max 100).
            limit,
            /// `next_cursor` of the previous page.
            cursor,
        },
        /// Unchanged lines around each change (default 3).
        #[serde(default = "default_context")]
        #[schemars(range(max = 1000))]
        pub context_lines: usize,
    }
}

pub(super) async fn spool_diff(kit: Kit, i: DiffIn, ctx: CallCtx) -> Out<Page<FilePatch>> {
    let s = kit.session(&i.session, &ctx.principal)?;
    let opts = DiffOptions {
        context: i.context_lines,
        timeout: DiffOptions::default().timeout.min(ctx.remaining()),
        ..DiffOptions::default()
    };
    let (stop, budget) = (ctx.stop.clone(), ctx.budget.clone());
    let patches = kit
        .cpu(&ctx, move || s.lock().diff(&opts, &stop, &budget))
        .await?
        .map_err(spool_error)?;
    page::offset_page(
        "spool_diff",
        &patches,
        i.limit as usize,
        i.cursor.as_deref(),
    )
    .map_err(ToolError::from)
}

/// A stopped diff answers the deadline error, one over budget the budget error; the
/// rest are business errors.
fn spool_error(e: SpoolError) -> ToolError {
    match e {
        SpoolError::Stopped(s) => s.into(),
        SpoolError::Budget(b) => b.into(),
        e => ToolError::business(e.to_string()),
    }
}

fn default_max_bytes() -> usize {
    1024 * 1024
}

fn default_forbidden() -> Vec<String> {
    vec![
        ".git/**".into(),
        "*.pem".into(),
        "*.key".into(),
        ".env".into(),
    ]
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommitIn {
    pub session: String,
    /// Largest allowed file in bytes (default 1 MiB).
    #[serde(default = "default_max_bytes")]
    #[schemars(range(min = 1, max = 1073741824))]
    pub max_file_bytes: usize,
    /// Paths that must not change (default `.git/**`, `*.pem`, `*.key`, `.env`); a glob
    /// without `/` matches the file name anywhere; `**` crosses directories.
    #[serde(default = "default_forbidden")]
    pub forbidden_globs: Vec<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommitOut {
    pub committed: Vec<PatchSummary>,
    /// Sequence numbers of the published `patchkit.patch` events.
    pub event_seqs: Vec<u64>,
    /// Validator findings the user chose to commit despite.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overridden: Vec<String>,
}

/// The key of the commit-anyway question in `inputRequests` / `inputResponses`.
const COMMIT_ANYWAY: &str = "commit_anyway";
/// Findings listed in the question (the rest are counted).
const FINDINGS_SHOWN: usize = 20;
/// Longest finding shown, in bytes.
const FINDING_BYTES: usize = 300;

/// What the question was about: the digest of the findings it listed.
#[derive(Serialize, Deserialize)]
struct CommitAsked {
    findings: String,
}

fn commit_question(session: &str, findings: &[String]) -> ToolError {
    let mut message = format!(
        "The validators found {} problem(s) in spool session {session}:",
        findings.len()
    );
    for f in findings.iter().take(FINDINGS_SHOWN) {
        let mut end = f.len().min(FINDING_BYTES);
        while !f.is_char_boundary(end) {
            end -= 1;
        }
        message.push_str("\n- ");
        message.push_str(&f[..end]);
    }
    if findings.len() > FINDINGS_SHOWN {
        message.push_str(&format!("\n- and {} more", findings.len() - FINDINGS_SHOWN));
    }
    message.push_str("\nCommit anyway?");
    ToolError::needs_input(
        Ask::new()
            .confirm(COMMIT_ANYWAY, message, "Commit anyway")
            .with_state(&CommitAsked {
                findings: validate::digest(findings),
            }),
    )
}

/// The digest of the findings the user confirmed committing despite, if they did; why
/// nothing is committed if they refused.
fn accepted_findings(ctx: &CallCtx) -> Result<Option<String>, ToolError> {
    if !ctx.rounds.can_elicit() {
        return Ok(None);
    }
    match (
        ctx.rounds.state::<CommitAsked>(),
        ctx.rounds.decision(COMMIT_ANYWAY)?,
    ) {
        (Some(asked), Some(Decision::Yes)) => Ok(Some(asked.findings)),
        (Some(_), Some(Decision::No(how))) => Err(ToolError::business(format!(
            "Nothing was committed: the user {how} when asked to commit despite the validators' findings. Fix them (spool_diff shows the changes) and commit again."
        ))),
        _ => Ok(None),
    }
}

pub(super) async fn spool_commit(kit: Kit, i: CommitIn, ctx: CallCtx) -> Out<CommitOut> {
    let s = kit.session(&i.session, &ctx.principal)?;
    let accepted = accepted_findings(&ctx)?;
    let rules = Rules {
        max_file_bytes: i.max_file_bytes,
        forbidden: Globs::new(&i.forbidden_globs).map_err(|e| ToolError::input(e.to_string()))?,
    };
    let opts = DiffOptions {
        timeout: DiffOptions::default().timeout.min(ctx.remaining()),
        ..DiffOptions::default()
    };
    let (stop, budget) = (ctx.stop.clone(), ctx.budget.clone());
    let committed = kit
        .cpu(&ctx, move || {
            s.lock()
                .commit(&rules, &opts, &stop, &budget, accepted.as_deref())
        })
        .await?;
    let (patches, overridden) = match committed {
        Ok(committed) => committed,
        Err(SpoolError::Findings(findings)) if ctx.rounds.can_elicit() => {
            return Err(commit_question(&i.session, &findings));
        }
        Err(e) => return Err(spool_error(e)),
    };
    let mut event_seqs = Vec::with_capacity(patches.len());
    for p in &patches {
        let data = crate::patchkit::events::Patch(&p.summary);
        match kit
            .events
            .publish_as(SOURCE, &data, ctx.principal.owner())
            .await
        {
            Ok(ev) => event_seqs.push(ev.seq),
            Err(e) => tracing::warn!("could not journal the patchkit.patch event: {e}"),
        }
    }
    Ok(CommitOut {
        committed: patches.into_iter().map(|p| p.summary).collect(),
        event_seqs,
        overridden,
    })
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetOut {
    /// Files rewritten (or removed) to match the baseline.
    pub restored: Vec<String>,
}

pub(super) async fn spool_reset(kit: Kit, i: SessionIn, ctx: CallCtx) -> Out<ResetOut> {
    let s = kit.session(&i.session, &ctx.principal)?;
    let restored = kit
        .cpu(&ctx, move || s.lock().reset())
        .await?
        .map_err(|e| ToolError::business(e.to_string()))?;
    Ok(ResetOut { restored })
}

#[derive(Serialize, JsonSchema)]
pub struct FileState {
    pub path: String,
    /// created, modified, deleted or unchanged (against the baseline).
    pub state: String,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusOut {
    pub session: String,
    pub root: String,
    pub ttl_secs: u64,
    pub files: Vec<FileState>,
    /// Files that differ from the baseline.
    pub changed: usize,
}

pub(super) async fn spool_status(kit: Kit, i: SessionIn, ctx: CallCtx) -> Out<StatusOut> {
    let s = kit.session(&i.session, &ctx.principal)?;
    let ttl = kit
        .sessions
        .lock()
        .get(&i.session)
        .map_or(0, |e| e.ttl.as_secs());
    let (root, files) = kit
        .cpu(&ctx, move || {
            let s = s.lock();
            (s.root.display().to_string(), s.status())
        })
        .await?;
    let files: Vec<FileState> = files
        .map_err(|e| ToolError::business(e.to_string()))?
        .into_iter()
        .map(|(path, state)| FileState {
            path,
            state: state.to_string(),
        })
        .collect();
    Ok(StatusOut {
        session: i.session,
        root,
        ttl_secs: ttl,
        changed: files.iter().filter(|f| f.state != "unchanged").count(),
        files,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloseIn {
    pub session: String,
    /// Restore the baseline before closing.
    #[serde(default)]
    pub reset: bool,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloseOut {
    pub closed: bool,
    pub restored: Vec<String>,
}

pub(super) async fn spool_close(kit: Kit, i: CloseIn, ctx: CallCtx) -> Out<CloseOut> {
    let entry = {
        let mut sessions = kit.sessions.lock();
        match sessions.get(&i.session) {
            Some(e) if e.owner == ctx.principal => sessions.remove(&i.session),
            _ => None,
        }
    };
    let Some(entry) = entry else {
        if let Some(elsewhere) = kit.on_another_replica(&i.session) {
            return Err(elsewhere);
        }
        return Ok(CloseOut {
            closed: false,
            restored: vec![],
        });
    };
    let restored = if i.reset {
        let s = entry.session;
        kit.cpu(&ctx, move || s.lock().reset())
            .await?
            .map_err(|e| ToolError::business(e.to_string()))?
    } else {
        vec![]
    };
    Ok(CloseOut {
        closed: true,
        restored,
    })
}
