//! The tasks extension's requests (SEP-2663, `io.modelcontextprotocol/tasks`): a
//! `tools/call` of a task-supporting tool from a client that declared the extension
//! becomes a task, and `tasks/get`, `tasks/update`, `tasks/cancel` follow it.
//!
//! Owns the mapping between those requests and the runtime's task table
//! ([`crate::runtime::tool_tasks`]): the context a task's call runs with, when a call is
//! answered in place instead (it asks before it starts working: a multi-round request),
//! and the JSON-RPC errors. Nothing domain-specific, no task state of its own.

use std::{pin::Pin, task::Poll, time::Instant};

use rmcp::{
    ErrorData as McpError, RoleServer,
    model::{
        CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock as Content,
        CreateTaskResult, GetTaskResult, JsonObject, TASKS_EXTENSION_ID,
    },
    service::RequestContext,
};
use tokio_util::sync::CancellationToken;

use super::{CortexServer, modern_era};
use crate::runtime::{
    principal::Principal,
    progress::Progress,
    registry::{CallCtx, ToolError, into_call_result},
    rounds::{Askable, Origin, Rounds},
    stop::Stop,
    tool_tasks::{Finish, NewTask, Rerun, Run, TASK_TTL, TaskError, TaskSupport},
};

/// Whether the request declared the tasks extension (in `initialize` or in its own
/// `_meta` client capabilities) and speaks 2026-07-28, the first revision with it.
pub fn client_takes_tasks(ctx: &RequestContext<RoleServer>) -> bool {
    modern_era(ctx)
        && ctx
            .client_capabilities()
            .is_some_and(|caps| caps.supports_tasks())
}

fn tasks_capability() -> ClientCapabilities {
    ClientCapabilities::builder().enable_tasks().build()
}

/// How a call of a tool with `support` is answered for the client of `ctx`.
pub enum Dispatch {
    /// In the call itself.
    InPlace,
    /// As a task.
    Task,
}

pub fn dispatch(
    support: TaskSupport,
    ctx: &RequestContext<RoleServer>,
) -> Result<Dispatch, McpError> {
    match (support, client_takes_tasks(ctx)) {
        (TaskSupport::Forbidden, _) | (TaskSupport::Optional, false) => Ok(Dispatch::InPlace),
        (TaskSupport::Required, false) => Err(McpError::missing_required_client_capability(
            tasks_capability(),
        )),
        (_, true) => Ok(Dispatch::Task),
    }
}

fn task_error(e: TaskError) -> McpError {
    McpError::invalid_params(e.to_string(), None)
}

/// The tasks extension as this server advertises it (under `capabilities.extensions`).
pub fn advertise(capabilities: &mut rmcp::model::ServerCapabilities) {
    capabilities
        .extensions
        .get_or_insert_with(Default::default)
        .insert(TASKS_EXTENSION_ID.to_string(), JsonObject::new());
}

impl CortexServer {
    /// Runs `name` as a task. The call is polled once here: one that asks before it
    /// starts working is answered in place with `input_required` (a multi-round request;
    /// its last round becomes the task), anything else becomes a task, visible to
    /// `tasks/get` before the handle is returned.
    pub(super) async fn call_as_task(
        &self,
        name: &str,
        args: JsonObject,
        call_ctx: CallCtx,
        askable: Askable,
        origin: &Origin,
    ) -> Result<CallToolResponse, McpError> {
        if let Err(e) = self.shared.tasks.check_room(&call_ctx.principal) {
            return Ok(CallToolResult::error(vec![Content::text(e.to_string())]).into());
        }
        let cancel = CancellationToken::new();
        let principal = call_ctx.principal.clone();
        let (answers, state) = call_ctx.rounds.parts();
        let first_rounds = call_ctx.rounds.clone();
        let base = task_ctx(call_ctx, cancel.clone());
        let registry = self.shared.registry.clone();
        let tool = name.to_string();
        let rerun: Rerun = Box::new(move |rounds: Rounds| -> Run {
            let (registry, tool, args) = (registry.clone(), tool.clone(), args.clone());
            let mut ctx = base.clone();
            ctx.rounds = rounds;
            Box::pin(async move { registry.call(&tool, args, ctx).await })
        });
        let mut first = rerun(first_rounds);
        let first: Run = match futures::poll!(Pin::as_mut(&mut first)) {
            Poll::Ready(Err(ToolError::NeedsInput(ask))) => {
                return ask
                    .into_result(origin, askable)
                    .map(Into::into)
                    .map_err(super::handler::round_error);
            }
            Poll::Ready(Err(ToolError::Round(e))) => return Err(super::handler::round_error(e)),
            Poll::Ready(outcome) => Box::pin(std::future::ready(outcome)),
            Poll::Pending => first,
        };
        let registry = self.shared.registry.clone();
        let tool = name.to_string();
        let finish: Finish = Box::new(move |outcome| match registry.get(&tool) {
            Some(def) => def.into_call_result(outcome),
            None => into_call_result(outcome),
        });
        let new = NewTask {
            principal,
            askable,
            cancel,
            answers,
            state,
        };
        match self.shared.tasks.start(new, first, rerun, finish).await {
            Ok(task) => Ok(CallToolResponse::Task(CreateTaskResult::new(task))),
            Err(e @ (TaskError::TooManyRunning | TaskError::Full)) => {
                Ok(CallToolResult::error(vec![Content::text(e.to_string())]).into())
            }
            Err(e) => Err(task_error(e)),
        }
    }
}

/// The context of a task's call: the task outlives the request, so its own token and
/// deadline (its TTL), no progress token and no peer (the response has gone).
fn task_ctx(mut ctx: CallCtx, cancel: CancellationToken) -> CallCtx {
    let deadline = Instant::now() + TASK_TTL;
    ctx.cancel = cancel;
    ctx.deadline = deadline;
    ctx.stop = Stop::new(deadline);
    ctx.progress = Progress::none();
    ctx.client.peer = None;
    ctx
}

/// `tasks/get`, `tasks/update`, `tasks/cancel`: only the principal that started a task
/// sees it.
impl CortexServer {
    pub(super) fn get_tool_task(
        &self,
        task_id: &str,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        let principal = Principal::of_request(&ctx.extensions);
        self.shared
            .tasks
            .get(&principal, task_id)
            .map(GetTaskResult::new)
            .map_err(task_error)
    }

    pub(super) fn update_tool_task(
        &self,
        task_id: &str,
        responses: rmcp::model::InputResponses,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let principal = Principal::of_request(&ctx.extensions);
        self.shared
            .tasks
            .update(&principal, task_id, responses)
            .map_err(task_error)
    }

    pub(super) fn cancel_tool_task(
        &self,
        task_id: &str,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let principal = Principal::of_request(&ctx.extensions);
        self.shared
            .tasks
            .cancel(&principal, task_id)
            .map_err(task_error)
    }
}
