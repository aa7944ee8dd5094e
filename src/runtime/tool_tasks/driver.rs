//! The driver of one task: runs its call, parks it on the questions it asks until
//! `tasks/update` has answered them all, runs it again with the answers, and settles it
//! as completed (the tool's result), failed (a JSON-RPC error) or cancelled.
//!
//! Owns the mapping from a call's outcome to the task's end; the table is the parent
//! module's.

use futures::FutureExt;
use rmcp::model::{CallToolResult, JsonObject, TaskPayload};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{Finish, Rerun, Run, ToolTasks};
use crate::runtime::{
    registry::ToolError,
    rounds::{Askable, RoundError, Rounds},
};

/// JSON-RPC codes of a failed task's error.
pub(super) const INTERNAL_ERROR: i64 = -32603;
const INVALID_PARAMS: i64 = -32602;
const MISSING_CAPABILITY: i64 = -32021;

/// Runs one task to its end.
pub(super) struct Driver {
    pub(super) tasks: ToolTasks,
    pub(super) id: String,
    pub(super) askable: Askable,
    pub(super) cancel: CancellationToken,
    /// The state of the task's last ask.
    pub(super) state: Option<Value>,
}

impl Driver {
    pub(super) async fn drive(mut self, first: Run, rerun: Rerun, finish: Finish) {
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

pub(super) fn failed(code: i64, message: &str) -> TaskPayload {
    let error: JsonObject = json!({"code": code, "message": message})
        .as_object()
        .cloned()
        .unwrap_or_default();
    TaskPayload::Failed { error }
}
