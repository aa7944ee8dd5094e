//! The `cortex.task@1` model: a task, its input, status and approvals, and the data of
//! the task events published on the bus (their kinds and bus types).
//!
//! Plain serialisable data and its names: must not touch the store, the bus, journals or
//! the transition rules.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One input of a task.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum TaskInputItem {
    /// A repository path.
    Repo { path: String },
    /// A document path.
    Doc { path: String },
    /// Inline text.
    Text { value: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Deadlines {
    /// RFC 3339 time the task should be done by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft: Option<String>,
    /// RFC 3339 time after which the result is useless.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hard: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Balanced,
    High,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Low,
    High,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Motion {
    Reduced,
    Full,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Contrast {
    High,
    Default,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<Level>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub motion: Option<Motion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contrast: Option<Contrast>,
}

/// `cortex.task.input@1`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskInput {
    #[schemars(length(min = 1, max = 200))]
    pub title: String,
    #[schemars(length(max = 20000))]
    pub brief: String,
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub inputs: Vec<TaskInputItem>,
    /// What the task may touch; at least one.
    #[schemars(length(min = 1, max = 50))]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadlines: Option<Deadlines>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a11y_profile_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferences: Option<Preferences>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Queued,
    Planning,
    Running,
    Paused,
    Canceled,
    Succeeded,
    Failed,
}

impl TaskStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Canceled | Self::Succeeded | Self::Failed)
    }
    fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Planning => "planning",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Canceled => "canceled",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Approver {
    User,
    Policy,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub step: String,
    /// Who approved, as authenticated by the transport: `token:<first 12 hex of the
    /// bearer token's SHA-256>` over HTTP with a token, `http:anonymous` without one,
    /// `stdio` for a local client. (Approvals recorded before this was kept hold the
    /// claimed `user`/`policy` here.)
    pub by: String,
    /// What the approver said it was (`user` or `policy`): a label, not an identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Approver>,
    pub at: String,
}

/// `cortex.task@1`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub title: String,
    pub status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step: Option<String>,
    /// The step waiting for `approve_task_step`, while paused for approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_approval: Option<String>,
    pub artifacts: Vec<String>,
    pub evidence_ids: Vec<String>,
    pub approvals: Vec<Approval>,
    pub idempotency_key: String,
    pub input: TaskInput,
    pub created_at: String,
    pub updated_at: String,
    /// The principal that created the task (see `create_task`); only it may see or act
    /// on the task unless it is shared. Absent on tasks created before owners were kept
    /// (everyone may see those).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Created with `shared: true`: every principal may see and act on it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
}

impl Task {
    /// Whether `principal` may see and act on this task.
    pub fn visible_to(&self, principal: &crate::runtime::principal::Principal) -> bool {
        principal.may_access(self.owner.as_deref(), self.shared)
    }

    /// The owner its events are shown to (`None`: everyone, for a shared task).
    pub fn event_owner(&self) -> Option<String> {
        if self.shared {
            None
        } else {
            self.owner.clone()
        }
    }
}

/// Task event kinds (the `type` of a task event's data; the bus type is
/// `asbr.task.<Kind>`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum TaskEventKind {
    PlanStarted,
    StepCompleted,
    AwaitingApproval,
    Canceled,
    Resumed,
    DeliverableReady,
    Failed,
}

impl TaskEventKind {
    /// The bus event type, `asbr.task.<Kind>`.
    pub(crate) fn bus_type(self) -> &'static str {
        match self {
            Self::PlanStarted => "asbr.task.PlanStarted",
            Self::StepCompleted => "asbr.task.StepCompleted",
            Self::AwaitingApproval => "asbr.task.AwaitingApproval",
            Self::Canceled => "asbr.task.Canceled",
            Self::Resumed => "asbr.task.Resumed",
            Self::DeliverableReady => "asbr.task.DeliverableReady",
            Self::Failed => "asbr.task.Failed",
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::PlanStarted => "PlanStarted",
            Self::StepCompleted => "StepCompleted",
            Self::AwaitingApproval => "AwaitingApproval",
            Self::Canceled => "Canceled",
            Self::Resumed => "Resumed",
            Self::DeliverableReady => "DeliverableReady",
            Self::Failed => "Failed",
        }
    }
}

/// Kinds an agent may report with `record_task_event`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum AgentEventKind {
    StepCompleted,
    AwaitingApproval,
    DeliverableReady,
    Failed,
}

/// The `data` of a task event on the bus.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskEventData {
    pub task_id: String,
    pub r#type: TaskEventKind,
    pub status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// A short sentence a screen reader can announce.
    pub aria_live_hint: String,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// W3C trace context of the request that caused the event.
    pub traceparent: String,
    /// The task as created (`PlanStarted` only): replay starts from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Box<Task>>,
}
