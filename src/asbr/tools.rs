//! The asbr tools: inputs (contract names and defaults kept), handlers and their
//! registration with annotations.
//!
//! Owns tool semantics only (the review tools live in `review_tools.rs`): state lives in
//! `tasks.rs`, `artifacts.rs`, `profiles.rs` and `manifest.rs`. It must not touch
//! journals directly.

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::runtime::{
    events::{Event, EventBus},
    executor::Executor,
    page::{self, Page},
    registry::{CallCtx, Hints, ToolDef, ToolError},
    toolset::Tools,
};

use super::{
    artifacts::{ArtifactError, ArtifactKind, ArtifactMeta, ArtifactStore, normalise_time},
    manifest::{CacheOutcome, ManifestError, ServiceMaps},
    profiles::{A11y, Profile, ProfileError, ProfileStore, Skill},
    review_tools,
    reviews::{Analysers, ReviewStore},
    scan::{self, Finding, ScanError, ScanSummary, ScanType, Scanner, Severity},
    tasks::{
        self, AgentEventKind, Approver, Task, TaskError, TaskEventKind, TaskInput, TaskStatus,
        TaskStore,
    },
};

/// What every asbr handler holds.
pub struct Asbr {
    pub tasks: Arc<TaskStore>,
    pub artifacts: Arc<ArtifactStore>,
    pub profiles: Arc<ProfileStore>,
    pub manifest: Arc<ServiceMaps>,
    pub scanner: Arc<Scanner>,
    pub reviews: Arc<ReviewStore>,
    pub analysers: Arc<Analysers>,
    pub events: EventBus,
    pub executor: Executor,
    /// Scratch checkouts of pull requests under review (`<state-dir>/asbr/checkouts`).
    pub checkouts: std::path::PathBuf,
}

pub(super) type A = Arc<Asbr>;
pub(super) use crate::runtime::toolset::Out;

impl From<TaskError> for ToolError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::Input(m) => ToolError::Input(m),
            TaskError::Journal(_) => ToolError::Internal(e.to_string()),
            other => ToolError::Business(other.to_string()),
        }
    }
}

impl From<ArtifactError> for ToolError {
    fn from(e: ArtifactError) -> Self {
        match e {
            ArtifactError::Input(m) => ToolError::Input(m),
            ArtifactError::Storage(_) => ToolError::Internal(e.to_string()),
            other => ToolError::Business(other.to_string()),
        }
    }
}

impl From<ProfileError> for ToolError {
    fn from(e: ProfileError) -> Self {
        match e {
            ProfileError::Journal(_) => ToolError::Internal(e.to_string()),
            other => ToolError::Business(other.to_string()),
        }
    }
}

impl From<ManifestError> for ToolError {
    fn from(e: ManifestError) -> Self {
        ToolError::Business(e.to_string())
    }
}

// ---------------------------------------------------------------- tasks

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTaskIn {
    pub input: TaskInput,
    /// Same key within 5 minutes returns the same task. Default: first 16 hex of
    /// SHA-256 over canonical {title, brief, inputs, sorted scopes}.
    #[serde(default)]
    #[schemars(length(min = 1, max = 128))]
    pub idempotency_key: Option<String>,
    /// Let every client of this server see and act on the task (watch, cancel, approve).
    /// Default: only the principal that creates it may.
    #[serde(default)]
    pub shared: bool,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateTaskOut {
    #[serde(flatten)]
    pub task: Task,
    /// True when an earlier task with the same idempotency key was returned.
    pub reused: bool,
}

async fn create_task(a: A, i: CreateTaskIn, ctx: CallCtx) -> Out<CreateTaskOut> {
    let created = a
        .tasks
        .create(
            i.input,
            i.idempotency_key,
            tasks::traceparent(&ctx.meta),
            &ctx.principal,
            i.shared,
        )
        .await?;
    Ok(CreateTaskOut {
        task: created.task,
        reused: created.reused,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskIdIn {
    #[schemars(length(min = 1, max = 64))]
    pub task_id: String,
}

async fn get_task(a: A, i: TaskIdIn, ctx: CallCtx) -> Out<Task> {
    Ok(a.tasks.get_or_recover(&i.task_id, &ctx.principal).await?)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTasksIn {
    #[serde(default)]
    pub status: Option<TaskStatus>,
    #[serde(default = "crate::runtime::page::default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
    #[serde(default)]
    pub cursor: Option<String>,
}

async fn list_tasks(a: A, i: ListTasksIn, ctx: CallCtx) -> Out<Page<Task>> {
    let before: Option<String> = i
        .cursor
        .as_deref()
        .map(|c| page::decode("list_tasks", c))
        .transpose()
        .map_err(ToolError::from)?;
    let (items, more) = a.tasks.list(
        &ctx.principal,
        i.status,
        before.as_deref(),
        i.limit as usize,
    );
    let next_cursor = more
        .then(|| items.last().map(|t| page::encode("list_tasks", &t.id)))
        .flatten();
    Ok(Page { items, next_cursor })
}

async fn cancel_task(a: A, i: TaskIdIn, ctx: CallCtx) -> Out<Task> {
    Ok(a.tasks
        .transition(
            &i.task_id,
            &ctx.principal,
            tasks::traceparent(&ctx.meta),
            tasks::apply_cancel,
        )
        .await?)
}

async fn resume_task(a: A, i: TaskIdIn, ctx: CallCtx) -> Out<Task> {
    Ok(a.tasks
        .transition(
            &i.task_id,
            &ctx.principal,
            tasks::traceparent(&ctx.meta),
            tasks::apply_resume,
        )
        .await?)
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordEventIn {
    #[schemars(length(min = 1, max = 64))]
    pub task_id: String,
    pub r#type: AgentEventKind,
    /// The step the event is about (required for StepCompleted and AwaitingApproval).
    #[serde(default)]
    #[schemars(length(min = 1, max = 200))]
    pub step: Option<String>,
    /// Free-form details; `artifacts` and `evidenceIds` (lists of ids) are added to the task.
    #[serde(default)]
    pub data: Option<Map<String, Value>>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordEventOut {
    pub task: Task,
}

async fn record_task_event(a: A, i: RecordEventIn, ctx: CallCtx) -> Out<RecordEventOut> {
    let data = i.data.map(Value::Object);
    let (kind, step) = (i.r#type, i.step);
    let task = a
        .tasks
        .transition(
            &i.task_id,
            &ctx.principal,
            tasks::traceparent(&ctx.meta),
            move |t| tasks::apply_agent_event(t, kind, step, data),
        )
        .await?;
    Ok(RecordEventOut { task })
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApproveIn {
    #[schemars(length(min = 1, max = 64))]
    pub task_id: String,
    #[schemars(length(min = 1, max = 200))]
    pub step: String,
    /// What you approve as (user or policy): kept as a label; the approval is recorded
    /// under your authenticated identity.
    pub by: Approver,
}

async fn approve_task_step(a: A, i: ApproveIn, ctx: CallCtx) -> Out<Task> {
    let (step, by) = (i.step, i.by);
    let principal = ctx.principal.to_string();
    Ok(a.tasks
        .transition(
            &i.task_id,
            &ctx.principal,
            tasks::traceparent(&ctx.meta),
            move |t| tasks::apply_approval(t, &step, by, &principal),
        )
        .await?)
}

fn default_watch_limit() -> u32 {
    100
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WatchIn {
    /// One task's events; all tasks when absent.
    #[serde(default)]
    pub task_id: Option<String>,
    /// Only these kinds; all when absent.
    #[serde(default)]
    pub types: Option<Vec<TaskEventKind>>,
    /// Return events with a larger seq (pass back `next_seq`).
    #[serde(default, rename = "since_seq")]
    pub since_seq: u64,
    /// Wait up to this long for the first event when none is pending.
    #[serde(default, rename = "wait_ms")]
    #[schemars(range(max = 30000))]
    pub wait_ms: u32,
    #[serde(default = "default_watch_limit")]
    #[schemars(range(min = 1, max = 500))]
    pub limit: u32,
}

#[derive(Serialize, JsonSchema)]
pub struct WatchOut {
    pub events: Vec<std::sync::Arc<Event>>,
    /// Pass back as `since_seq`.
    pub next_seq: u64,
}

async fn watch_task_events(a: A, i: WatchIn, ctx: CallCtx) -> Out<WatchOut> {
    let wait = Duration::from_millis(i.wait_ms.into()).min(ctx.remaining());
    let (events, next_seq) = a
        .tasks
        .watch(
            &ctx.principal,
            i.task_id.as_deref(),
            &i.types.unwrap_or_default(),
            i.since_seq,
            i.limit as usize,
            wait,
        )
        .await?;
    Ok(WatchOut { events, next_seq })
}

// ---------------------------------------------------------------- profiles

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpsertProfileIn {
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
    pub skill: Skill,
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub tools: Vec<String>,
    #[serde(default)]
    pub a11y: A11y,
}

#[derive(Serialize, JsonSchema)]
pub struct UpsertProfileOut {
    pub profile: Profile,
    pub created: bool,
}

async fn upsert_profile(a: A, i: UpsertProfileIn, _ctx: CallCtx) -> Out<UpsertProfileOut> {
    let profile = Profile {
        id: i.id,
        skill: i.skill,
        tools: i.tools,
        a11y: i.a11y,
        updated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    };
    let (profile, created) = a.profiles.upsert(profile).await?;
    Ok(UpsertProfileOut { profile, created })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileIdIn {
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
}

async fn get_profile(a: A, i: ProfileIdIn, _ctx: CallCtx) -> Out<Profile> {
    Ok(a.profiles.get(&i.id)?)
}

// ---------------------------------------------------------------- artifacts

#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    #[default]
    Text,
    Base64,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutArtifactIn {
    pub kind: ArtifactKind,
    /// The content, as text or base64 (see `encoding`).
    pub content: String,
    #[serde(default)]
    pub encoding: Encoding,
    #[serde(default)]
    pub task_id: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct PutArtifactOut {
    pub artifact: ArtifactMeta,
    /// True when the same content was already stored (the first record is returned).
    pub deduplicated: bool,
}

async fn put_artifact(a: A, i: PutArtifactIn, ctx: CallCtx) -> Out<PutArtifactOut> {
    let bytes = match i.encoding {
        Encoding::Text => i.content.into_bytes(),
        Encoding::Base64 => STANDARD
            .decode(i.content.trim())
            .map_err(|e| ToolError::input(format!("content: not base64 ({e})")))?,
    };
    let (artifact, deduplicated) = a
        .artifacts
        .put(i.kind, bytes, i.task_id, &ctx.principal)
        .await?;
    Ok(PutArtifactOut {
        artifact,
        deduplicated,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetArtifactIn {
    /// `sha256:<hex>`.
    #[schemars(length(min = 1, max = 100))]
    pub id: String,
    /// The digest you already hold; when it matches, no content is sent.
    #[serde(default)]
    pub if_none_match: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetArtifactOut {
    pub id: String,
    pub digest: String,
    pub not_modified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<ArtifactMeta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
}

async fn get_artifact(a: A, i: GetArtifactIn, ctx: CallCtx) -> Out<GetArtifactOut> {
    let meta = a.artifacts.meta(&i.id, &ctx.principal)?;
    let etag = i
        .if_none_match
        .as_deref()
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'));
    if etag.is_some_and(|t| t == meta.digest || t == meta.digest.trim_start_matches("sha256:")) {
        return Ok(GetArtifactOut {
            id: meta.id,
            digest: meta.digest,
            not_modified: true,
            artifact: None,
            content: None,
            encoding: None,
        });
    }
    let (meta, bytes) = a.artifacts.read(&i.id, &ctx.principal).await?;
    let (content, encoding) = match String::from_utf8(bytes) {
        Ok(text) => (text, Encoding::Text),
        Err(e) => (STANDARD.encode(e.into_bytes()), Encoding::Base64),
    };
    Ok(GetArtifactOut {
        id: meta.id.clone(),
        digest: meta.digest.clone(),
        not_modified: false,
        artifact: Some(meta),
        content: Some(content),
        encoding: Some(encoding),
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListArtifactsIn {
    #[serde(default)]
    pub kind: Option<ArtifactKind>,
    /// RFC 3339; only artifacts created after it.
    #[serde(default)]
    pub created_after: Option<String>,
    /// RFC 3339; only artifacts created before it.
    #[serde(default)]
    pub created_before: Option<String>,
    #[serde(default = "crate::runtime::page::default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
    #[serde(default)]
    pub cursor: Option<String>,
}

async fn list_artifacts(a: A, i: ListArtifactsIn, ctx: CallCtx) -> Out<Page<ArtifactMeta>> {
    let after = i
        .created_after
        .as_deref()
        .map(|t| normalise_time("createdAfter", t))
        .transpose()?;
    let before = i
        .created_before
        .as_deref()
        .map(|t| normalise_time("createdBefore", t))
        .transpose()?;
    let all = a
        .artifacts
        .list(&ctx.principal, i.kind, after.as_deref(), before.as_deref());
    page::offset_page(
        "list_artifacts",
        &all,
        i.limit as usize,
        i.cursor.as_deref(),
    )
    .map_err(ToolError::from)
}

// ---------------------------------------------------------------- service map

#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

#[derive(Serialize, JsonSchema)]
pub struct ServiceMapOut {
    /// The signed service map; pass it to `verify_service_map` unchanged.
    pub map: Value,
    /// How this call was served: hit (file unchanged), revalidated (re-hashed,
    /// unchanged) or built (parsed and signed).
    pub cache: CacheOutcome,
}

async fn get_connector_service_map(a: A, _i: NoInput, _ctx: CallCtx) -> Out<ServiceMapOut> {
    let (map, cache) = a.manifest.get().await?;
    Ok(ServiceMapOut {
        map: (*map).clone(),
        cache,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyIn {
    /// A map as returned by `get_connector_service_map`, with its `signature`.
    pub map: Map<String, Value>,
}

#[derive(Serialize, JsonSchema)]
pub struct VerifyOut {
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

async fn verify_service_map(a: A, i: VerifyIn, _ctx: CallCtx) -> Out<VerifyOut> {
    let outcome = a.manifest.verify(&Value::Object(i.map))?;
    Ok(VerifyOut {
        valid: outcome.is_ok(),
        reason: outcome.err(),
    })
}

// ---------------------------------------------------------------- security scan

impl From<ScanError> for ToolError {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::Path(_) | ScanError::NotFound(_) => ToolError::Input(e.to_string()),
            ScanError::Advisories(_) => ToolError::Business(e.to_string()),
        }
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanIn {
    /// A directory inside the workspace roots (absolute, or relative to the first root).
    #[schemars(length(min = 1, max = 4096))]
    pub target_path: String,
    #[serde(default)]
    pub scan_type: ScanType,
    /// Lowest severity to report.
    #[serde(default)]
    pub severity: Option<Severity>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanOut {
    pub findings: Vec<Finding>,
    pub summary: ScanSummary,
    pub duration_ms: u64,
}

async fn run_security_scan(a: A, i: ScanIn, ctx: CallCtx) -> Out<ScanOut> {
    let root = scan::resolve_target(&a.scanner.roots, &i.target_path)?;
    let wants_deps = matches!(i.scan_type, ScanType::Dependency | ScanType::All);
    let advisories = match (&a.scanner.advisories_dir, wants_deps) {
        (Some(dir), true) => scan::load_advisories(dir)?,
        (None, true) if i.scan_type == ScanType::Dependency => {
            return Err(ToolError::business(
                "dependency scans need OSV advisories: set ASBR_ADVISORIES_DIR (or --advisories-dir) to a directory of OSV *.json files",
            ));
        }
        _ => Vec::new(),
    };
    let rules = a.scanner.rules.clone();
    let progress = ctx.progress.clone();
    let (scan_type, min) = (i.scan_type, i.severity);
    let started = std::time::Instant::now();
    let work_root = root.clone();
    let stop = ctx.stop.clone();
    let outcome = a
        .executor
        .run_cpu(ctx.deadline, &ctx.cancel, move || {
            let on_file = |n: u64| {
                if n.is_multiple_of(200) {
                    progress.report(n as f64, None, format!("{n} files scanned"));
                }
            };
            scan::scan_dir(
                &rules,
                &work_root,
                scan_type,
                min,
                &advisories,
                &stop,
                &on_file,
            )
        })
        .await
        .map_err(|e| match e {
            crate::runtime::executor::ExecError::Aborted { .. } => {
                ToolError::Internal(format!("scan stopped: {e}"))
            }
            e => ToolError::Deadline(e.to_string()),
        })??;
    let duration_ms = started.elapsed().as_millis() as u64;
    let data = super::events::ScanExecuted {
        target_path: root.display().to_string(),
        scan_type,
        findings: outcome.findings.len(),
        by_severity: &outcome.summary.by_severity,
        files_scanned: outcome.summary.files_scanned,
        duration_ms,
    };
    if let Err(e) = a
        .events
        .publish_as("cortex-mcp/asbr", &data, ctx.principal.owner())
        .await
    {
        tracing::warn!("could not journal asbr.security.scan_executed: {e}");
    }
    Ok(ScanOut {
        findings: outcome.findings,
        summary: outcome.summary,
        duration_ms,
    })
}

// ---------------------------------------------------------------- registration

pub fn all(a: &A) -> Vec<ToolDef> {
    let t = Tools::new("asbr", a);
    let read = Hints::read();
    let write = Hints::write();
    vec![
        t.tool(
            "create_task",
            write.idempotent(),
            create_task,
            "Create a durable agent task (status queued; publishes PlanStarted). `input.scopes` must not be empty. The same `idempotencyKey` (default: a hash of title, brief, inputs and sorted scopes) within 5 minutes returns the same task with `reused: true`."
        ),
        t.tool(
            "get_task",
            read,
            get_task,
            "One task: status, current step, step awaiting approval, approvals, artifacts. A finished task that left memory (after `--asbr-task-retention`, default 1 h) is rebuilt from the journal while its events are kept."
        ),
        t.tool(
            "list_tasks",
            read,
            list_tasks,
            "Tasks newest first, optionally by status; continue with `cursor`."
        ),
        t.tool(
            "cancel_task",
            write.destructive(),
            cancel_task,
            "Cancel a task that has not ended (publishes Canceled)."
        ),
        t.tool(
            "resume_task",
            write,
            resume_task,
            "Resume a paused task (publishes Resumed). Only a paused task can be resumed, and not one waiting for approval of a step: approve that with approve_task_step."
        ),
        t.tool(
            "record_task_event",
            write,
            record_task_event,
            "Report progress on a task as the agent working it: StepCompleted (→ running), AwaitingApproval (→ paused until approve_task_step), DeliverableReady (→ succeeded), Failed (→ failed). Illegal transitions are refused with the task's current state. `data.artifacts` / `data.evidenceIds` lists are attached to the task."
        ),
        t.tool(
            "approve_task_step",
            write,
            approve_task_step,
            "Approve the step a paused task waits for; the task runs again (publishes Resumed). The approval is recorded under the authenticated caller (`token:<fingerprint>` over HTTP, `stdio` locally); `by` (user or policy) is kept as its label."
        ),
        t.tool(
            "watch_task_events",
            read,
            watch_task_events,
            "Task events after `since_seq` (one task or all, optionally by type), oldest first, with `ariaLiveHint` and `traceparent`. With `wait_ms` (≤ 30000) waits for the first new event (long poll). Pass `next_seq` back as `since_seq`."
        ),
        t.tool(
            "upsert_profile",
            write.idempotent(),
            upsert_profile,
            "Create or replace a profile: skill level, preferred tools and accessibility needs."
        ),
        t.tool("get_profile", read, get_profile, "One profile by id."),
        t.tool(
            "put_artifact",
            write.idempotent(),
            put_artifact,
            "Store an artifact (diff, doc, plan, report) as text or base64; it is named by its SHA-256 (`sha256:<hex>`), so storing the same content again returns the same id."
        ),
        t.tool(
            "get_artifact",
            read,
            get_artifact,
            "An artifact's content and digest; pass the digest you hold as `ifNoneMatch` to get `notModified: true` without the content."
        ),
        t.tool(
            "list_artifacts",
            read,
            list_artifacts,
            "Artifact metadata newest first, by kind and creation range (RFC 3339); continue with `cursor`."
        ),
        t.tool(
            "get_connector_service_map",
            read,
            get_connector_service_map,
            "The connector service map from the configured manifest: connectors sorted by id, ttlSeconds, and an HMAC-SHA256 `signature`. Served from cache while the manifest file is unchanged."
        ),
        t.tool(
            "run_security_scan",
            read,
            run_security_scan,
            "Scan a directory inside the workspace roots: `secrets` (GitHub, AWS, Slack, Stripe, private keys, JWTs, high-entropy assignments; values redacted), `sast` (Rust, JS/TS, Python, shell rules), `dependency` (Cargo.lock, package-lock.json, requirements.txt, poetry.lock against OSV advisories from ASBR_ADVISORIES_DIR) or `all`. Respects .gitignore, skips binaries and files over 2 MiB; reports progress. Findings {rule, type, severity, file, line, message, excerpt}, at most 1,000, most severe first."
        ),
        t.tool(
            "create_review",
            write,
            review_tools::create_review,
            "Review a local repository directory inside the workspace roots, or a GitHub pull request (repositoryUrl \"owner/name\" + pullRequestId; its changed files are read at the head commit through the github toolset): runs the chosen deterministic reviewers (security = the security scan; performance = nested loops, queries/requests inside loops, unbounded reads; architecture = files over 800 lines, functions over 6 parameters, nesting deeper than 4, wildcard imports; style = lines over 120 characters, functions over 80 lines, TODO/FIXME, trailing whitespace; for Rust, JS/TS, Python) over `scope` (full | incremental = changed files, the default | security-only) and optional `paths` globs, as an asbr task with progress (follow it with watch_task_events), and returns the summary by severity and reviewer plus the 20 most severe findings. Publishes asbr.review.created and asbr.review.completed."
        ),
        t.tool(
            "get_review_status",
            read,
            review_tools::get_review_status,
            "A review's status and findings summary by severity and reviewer; with includeDetails, a page of findings (most severe first, `limit`, `cursor` from detailsNextCursor) and the submitted feedback."
        ),
        t.tool(
            "submit_feedback",
            write,
            review_tools::submit_feedback,
            "Give your verdict on a finished review as the \"ai\" reviewer (or another named reviewer): approve, request_changes (needs at least one comment) or comment, with comments {file?, line?, severity, message}. Recorded durably; publishes asbr.feedback.submitted."
        ),
        t.tool(
            "list_reviews",
            read,
            review_tools::list_reviews,
            "Reviews newest first (summaries, no findings), by status and reviewer; continue with `cursor`."
        ),
        t.tool(
            "verify_service_map",
            read,
            verify_service_map,
            "Check a service map's signature (constant time) with the server's key."
        ),
    ]
}
