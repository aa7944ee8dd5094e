//! Task tools: create, read, list, cancel, resume, record progress, approve a step and
//! watch the event stream.
//!
//! Owns their inputs, handlers and registration; task state and transitions live in
//! `asbr::tasks`. It must not touch journals directly.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::runtime::{
    events::Event,
    page::{self, Page},
    registry::{CallCtx, Hints, ToolDef, ToolError},
    toolset::Tools,
};

use super::{A, Out};
use crate::asbr::tasks::{
    self, AgentEventKind, Approver, Task, TaskEventKind, TaskInput, TaskStatus,
};

pub(super) fn register(t: &Tools<A>) -> Vec<ToolDef> {
    let read = Hints::read();
    let write = Hints::write();
    vec![
        t.tool(
            "create_task",
            write.idempotent(),
            create_task,
            "Create a durable agent task (queued; publishes PlanStarted); the same `idempotencyKey` within 5 minutes returns the same task with `reused: true`.",
        )
        .titled("Create task"),
        t.tool(
            "get_task",
            read,
            get_task,
            "Get one task: status, current step, the step awaiting approval, approvals and artifacts.",
        )
        .titled("Get task"),
        t.tool(
            "list_tasks",
            read,
            list_tasks,
            "List tasks newest first, optionally by status.",
        )
        .titled("List tasks"),
        t.tool(
            "cancel_task",
            write.destructive(),
            cancel_task,
            "Cancel a task that has not ended (publishes Canceled); returns the canceled task.",
        )
        .titled("Cancel task"),
        t.tool(
            "resume_task",
            write,
            resume_task,
            "Resume a paused task (publishes Resumed); one waiting for a step's approval needs approve_task_step instead.",
        )
        .titled("Resume task"),
        t.tool(
            "record_task_event",
            write,
            record_task_event,
            "Report progress on a task you work: StepCompleted (→ running), AwaitingApproval (→ paused), DeliverableReady (→ succeeded) or Failed (→ failed); ids in `data.artifacts`/`data.evidenceIds` are attached.",
        )
        .titled("Record task event"),
        t.tool(
            "approve_task_step",
            write,
            approve_task_step,
            "Approve the step a paused task waits for so that it runs again (publishes Resumed); recorded under your identity, labelled `by`.",
        )
        .titled("Approve task step"),
        t.tool(
            "watch_task_events",
            read,
            watch_task_events,
            "Follow task events after `since_seq` (one task or all, optionally by type), oldest first, waiting up to `wait_ms` for a new one; pass `next_seq` back as `since_seq`.",
        )
        .titled("Watch task events"),
    ]
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTaskIn {
    pub input: TaskInput,
    /// Default: a hash of title, brief, inputs and scopes.
    #[serde(default)]
    #[schemars(length(min = 1, max = 128))]
    pub idempotency_key: Option<String>,
    /// Let every client of this server see and act on the task (default: only its
    /// creator).
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

pub(super) async fn create_task(a: A, i: CreateTaskIn, ctx: CallCtx) -> Out<CreateTaskOut> {
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

pub(super) async fn get_task(a: A, i: TaskIdIn, ctx: CallCtx) -> Out<Task> {
    Ok(a.tasks.get_or_recover(&i.task_id, &ctx.principal).await?)
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ListTasksIn {
        #[serde(default)]
        pub status: Option<TaskStatus>,
        ..page_args,
    }
}

pub(super) async fn list_tasks(a: A, i: ListTasksIn, ctx: CallCtx) -> Out<Page<Task>> {
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

pub(super) async fn cancel_task(a: A, i: TaskIdIn, ctx: CallCtx) -> Out<Task> {
    Ok(a.tasks
        .transition(
            &i.task_id,
            &ctx.principal,
            tasks::traceparent(&ctx.meta),
            tasks::apply_cancel,
        )
        .await?)
}

pub(super) async fn resume_task(a: A, i: TaskIdIn, ctx: CallCtx) -> Out<Task> {
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
    /// Free-form details.
    #[serde(default)]
    pub data: Option<Map<String, Value>>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordEventOut {
    pub task: Task,
}

pub(super) async fn record_task_event(a: A, i: RecordEventIn, ctx: CallCtx) -> Out<RecordEventOut> {
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
    /// A label (user or policy); the approval is recorded under your identity.
    pub by: Approver,
}

pub(super) async fn approve_task_step(a: A, i: ApproveIn, ctx: CallCtx) -> Out<Task> {
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

pub(super) async fn watch_task_events(a: A, i: WatchIn, ctx: CallCtx) -> Out<WatchOut> {
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
