//! The task state machine: which transitions a task in a given state accepts (each
//! decided as a [`Change`]), and [`apply_event`], the one function that applies an
//! announced task event to a task, both live and when the start-up rebuild replays it.
//!
//! Pure functions over [`Task`] values: must not touch the store, the bus, journals or
//! the snapshot.

use serde::Deserialize;
use serde_json::Value;

use super::{
    AgentEventKind, Approval, Approver, Task, TaskError, TaskEventData, TaskEventKind, TaskStatus,
};

/// What a transition decided, before it is announced and applied (by [`apply_event`]).
pub struct Change {
    pub kind: TaskEventKind,
    pub status: TaskStatus,
    pub step: Option<String>,
    pub data: Option<Value>,
}

/// Applies an announced transition to `task`. Live transitions and start-up replay both
/// go through here, so a task rebuilt from its events equals the acknowledged one.
pub(super) fn apply_event(task: &mut Task, event: &TaskEventData) {
    task.status = event.status;
    task.updated_at.clone_from(&event.timestamp);
    if let Some(step) = &event.step {
        task.current_step = Some(step.clone());
    }
    task.awaiting_approval = (event.r#type == TaskEventKind::AwaitingApproval)
        .then(|| event.step.clone())
        .flatten();
    let Some(data) = &event.data else { return };
    collect_ids(data, "artifacts", &mut task.artifacts);
    collect_ids(data, "evidenceIds", &mut task.evidence_ids);
    let approver = data.get("approvedBy").and_then(Value::as_str);
    let label = data
        .get("approverLabel")
        .and_then(|by| Approver::deserialize(by).ok());
    if let (TaskEventKind::Resumed, Some(by), Some(step)) = (event.r#type, approver, &event.step) {
        task.approvals.push(Approval {
            step: step.clone(),
            by: by.to_string(),
            label,
            at: event.timestamp.clone(),
        });
    }
}

fn illegal(task: &Task, what: impl Into<String>) -> TaskError {
    TaskError::Illegal {
        id: task.id.clone(),
        status: task.status,
        what: what.into(),
    }
}

/// The state machine for an agent-reported event.
pub fn apply_agent_event(
    task: &Task,
    kind: AgentEventKind,
    step: Option<String>,
    data: Option<Value>,
) -> Result<Change, TaskError> {
    use TaskStatus::*;
    let (status, event) = match (task.status, kind) {
        (s, _) if s.is_terminal() => {
            return Err(illegal(
                task,
                "it has ended; no further events are accepted",
            ));
        }
        (Paused, _) if kind != AgentEventKind::Failed => {
            return Err(illegal(
                task,
                "it waits for approval; approve the step with approve_task_step before reporting progress",
            ));
        }
        (_, AgentEventKind::StepCompleted) => (Running, TaskEventKind::StepCompleted),
        (_, AgentEventKind::AwaitingApproval) => (Paused, TaskEventKind::AwaitingApproval),
        (_, AgentEventKind::DeliverableReady) => (Succeeded, TaskEventKind::DeliverableReady),
        (_, AgentEventKind::Failed) => (Failed, TaskEventKind::Failed),
    };
    if matches!(
        kind,
        AgentEventKind::StepCompleted | AgentEventKind::AwaitingApproval
    ) && step.is_none()
    {
        return Err(TaskError::Input(format!(
            "step: required for {kind:?} events"
        )));
    }
    Ok(Change {
        kind: event,
        status,
        step,
        data,
    })
}

/// Adds string ids found at `data[field]` (a list) to `into`, without duplicates.
fn collect_ids(data: &Value, field: &str, into: &mut Vec<String>) {
    let Some(items) = data.get(field).and_then(Value::as_array) else {
        return;
    };
    for id in items.iter().filter_map(Value::as_str) {
        if !into.iter().any(|x| x == id) {
            into.push(id.to_string());
        }
    }
}

pub fn apply_cancel(task: &Task) -> Result<Change, TaskError> {
    if task.status.is_terminal() {
        return Err(illegal(task, "it has already ended"));
    }
    Ok(Change {
        kind: TaskEventKind::Canceled,
        status: TaskStatus::Canceled,
        step: task.current_step.clone(),
        data: None,
    })
}

pub fn apply_resume(task: &Task) -> Result<Change, TaskError> {
    if task.status != TaskStatus::Paused {
        return Err(illegal(task, "only a paused task can be resumed"));
    }
    if let Some(step) = &task.awaiting_approval {
        return Err(illegal(
            task,
            format!(
                "it waits for approval of step `{step}`, which resume_task cannot skip; approve it with approve_task_step (recorded under your authenticated identity)"
            ),
        ));
    }
    Ok(Change {
        kind: TaskEventKind::Resumed,
        status: TaskStatus::Running,
        step: task.current_step.clone(),
        data: None,
    })
}

/// Approves `step` as `principal` (the authenticated caller, see
/// [`crate::runtime::principal`]), keeping the caller's claimed `label`.
pub fn apply_approval(
    task: &Task,
    step: &str,
    label: Approver,
    principal: &str,
) -> Result<Change, TaskError> {
    match &task.awaiting_approval {
        Some(waiting) if task.status == TaskStatus::Paused && waiting == step => {}
        Some(waiting) if task.status == TaskStatus::Paused => {
            return Err(illegal(
                task,
                format!("it waits for approval of step `{waiting}`, not `{step}`"),
            ));
        }
        _ => return Err(illegal(task, "no step is waiting for approval")),
    }
    Ok(Change {
        kind: TaskEventKind::Resumed,
        status: TaskStatus::Running,
        step: Some(step.to_string()),
        data: Some(serde_json::json!({ "approvedBy": principal, "approverLabel": label })),
    })
}
