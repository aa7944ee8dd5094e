//! The opt-in `batch` tool: up to 50 `{tool, arguments}` calls, every argument validated
//! before any call runs, then run concurrently through the same registry (and so the same
//! executor lanes, validation and metrics); results in input order. No nesting.
//!
//! Owns batch orchestration only; it must not know any toolset.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Instant,
};

use rmcp::model::JsonObject;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::registry::{CallCtx, Hints, PreparedCall, ToolDef, ToolError, tool};

pub const MAX_CALLS: usize = 50;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchInput {
    /// The calls to run, 1 to 50. Each names a tool of this server and its arguments.
    #[schemars(length(min = 1, max = 50))]
    pub calls: Vec<BatchCall>,
    /// How many calls run at once (default 8, at most 50). Executor lanes still apply.
    #[serde(default)]
    #[schemars(range(min = 1, max = 50))]
    pub max_concurrency: Option<usize>,
    /// Stop starting new calls after the first failure (default false).
    #[serde(default)]
    pub stop_on_error: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchCall {
    /// Tool name, e.g. `get_issue`. `batch` itself is not allowed.
    pub tool: String,
    /// The tool's arguments, as for a direct call.
    #[serde(default)]
    pub arguments: JsonObject,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BatchOutput {
    /// One entry per call, in input order.
    pub results: Vec<BatchResult>,
    pub succeeded: usize,
    pub failed: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BatchResult {
    pub index: usize,
    pub tool: String,
    pub ok: bool,
    /// The call's structured result when `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error message when not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub ms: f64,
}

/// The `batch` tool definition.
pub fn batch_tool() -> ToolDef {
    tool(
        "batch",
        "batch",
        "Run up to 50 tool calls of this server concurrently in one request. All arguments are validated first: if any call is invalid, none runs and the error lists every invalid call by index. Results come back in input order as {index, tool, ok, result|error, ms}. Use it to fetch many independent things at once (e.g. 50 get_issue calls). Batches cannot be nested.",
        Hints {
            read_only: false,
            destructive: true,
            idempotent: false,
            open_world: true,
        },
        run_batch,
    )
}

async fn run_batch(input: BatchInput, ctx: CallCtx) -> Result<BatchOutput, ToolError> {
    if ctx.in_batch {
        return Err(ToolError::input("batch cannot be nested inside batch"));
    }
    let prepared = prepare_all(&input.calls, &ctx)?;
    let total = prepared.len();
    let concurrency = input.max_concurrency.unwrap_or(8).clamp(1, MAX_CALLS);
    let stop = Arc::new(AtomicBool::new(false));
    let mut child = ctx.clone();
    child.in_batch = true;
    child.progress = super::progress::Progress::none();
    let done = Arc::new(AtomicUsize::new(0));
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let runs = prepared
        .into_iter()
        .enumerate()
        .map(|(index, (name, call))| {
            let (ctx, child, stop, done, slots) = (
                ctx.clone(),
                child.clone(),
                stop.clone(),
                done.clone(),
                slots.clone(),
            );
            let stop_on_error = input.stop_on_error;
            async move {
                let _slot = slots
                    .acquire_owned()
                    .await
                    .expect("batch semaphore is never closed");
                let started = Instant::now();
                let outcome = if stop.load(Ordering::Relaxed) {
                    Err(ToolError::business(
                        "skipped: an earlier call failed and stop_on_error is set",
                    ))
                } else {
                    ctx.registry.run(&name, call, child).await
                };
                if outcome.is_err() && stop_on_error {
                    stop.store(true, Ordering::Relaxed);
                }
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                ctx.progress.report(
                    n as f64,
                    Some(total as f64),
                    format!("{n}/{total} calls done"),
                );
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                match outcome {
                    Ok(result) => BatchResult {
                        index,
                        tool: name,
                        ok: true,
                        result: Some(result),
                        error: None,
                        ms,
                    },
                    Err(e) => BatchResult {
                        index,
                        tool: name,
                        ok: false,
                        result: None,
                        error: Some(e.to_string()),
                        ms,
                    },
                }
            }
        });
    let results: Vec<BatchResult> = futures::future::join_all(runs).await;
    let succeeded = results.iter().filter(|r| r.ok).count();
    Ok(BatchOutput {
        failed: results.len() - succeeded,
        succeeded,
        results,
    })
}

fn prepare_all(
    calls: &[BatchCall],
    ctx: &CallCtx,
) -> Result<Vec<(String, PreparedCall)>, ToolError> {
    let mut prepared = Vec::with_capacity(calls.len());
    let mut problems = Vec::new();
    for (index, call) in calls.iter().enumerate() {
        if call.tool == "batch" {
            problems.push(format!("calls[{index}]: batch cannot be nested"));
            continue;
        }
        let Some(def) = ctx.registry.get(&call.tool) else {
            problems.push(format!("calls[{index}]: unknown tool `{}`", call.tool));
            continue;
        };
        match def.prepare(call.arguments.clone()) {
            Ok(p) => prepared.push((call.tool.clone(), p)),
            Err(e) => problems.push(format!("calls[{index}] ({}): {e}", call.tool)),
        }
    }
    if problems.is_empty() {
        Ok(prepared)
    } else {
        Err(ToolError::Input(format!(
            "no call was run; fix these and resend the whole batch: {}",
            problems.join("; ")
        )))
    }
}
