//! The mvp tools, one file per topic (`workspace`, `exec`, `health`, `graphs`, `prp`,
//! `teaching`): each file holds its tools' inputs (contract names and defaults kept),
//! handlers and registration with annotations and descriptions. This module holds the
//! helpers every handler shares (error mapping, event publishing, `mvp.metric.tracked`)
//! and the toolset's tool list.
//!
//! Owns tool semantics only: processes go through `mvp::exec`, paths through
//! `mvp::workspace`, graphs, PRP and teaching state through their modules.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{
    Mvp,
    workspace::{ReadError, WorkspaceError},
};
use crate::runtime::{
    registry::{Hints, ToolDef, ToolError},
    toolset::Tools,
};

mod exec;
mod graphs;
mod health;
mod prp;
mod teaching;
mod workspace;

const SOURCE: &str = "cortex-mcp/mvp";

pub(super) type M = Arc<Mvp>;
pub(super) use crate::runtime::toolset::Out;

pub(super) fn ws_err(e: WorkspaceError) -> ToolError {
    match e {
        WorkspaceError::Io { .. } | WorkspaceError::NoRoots(_) => {
            ToolError::Internal(e.to_string())
        }
        WorkspaceError::RootGone { .. } => ToolError::business(e.to_string()),
        other => ToolError::Input(other.to_string()),
    }
}

pub(super) fn read_err(e: ReadError) -> ToolError {
    match e {
        ReadError::Workspace(w) => ws_err(w),
        ReadError::Io { .. } => ToolError::Internal(e.to_string()),
        other => ToolError::Input(other.to_string()),
    }
}

/// Publishes an event shown only to `owner` (the caller; `None`: everyone) without
/// making the caller wait for the journal.
pub(super) fn publish(mvp: &Mvp, kind: &'static str, data: Value, owner: Option<String>) {
    let events = mvp.runtime.events.clone();
    tokio::spawn(async move {
        if let Err(e) = events.publish_owned(kind, SOURCE, data, owner).await {
            tracing::warn!(event = kind, "could not publish: {e}");
        }
    });
}

pub(super) fn track(mvp: &Mvp, name: &str, duration_ms: f64, extra: Value, owner: Option<String>) {
    publish(
        mvp,
        "mvp.metric.tracked",
        json!({"name": name, "durationMs": duration_ms, "detail": extra}),
        owner,
    );
}

/// Tools that run programs or other tools: they change local state and reach whatever
/// those programs or tools reach.
const RUNS: Hints = Hints {
    read_only: false,
    destructive: false,
    idempotent: false,
    open_world: true,
};

/// Every mvp tool.
pub fn all(m: &M) -> Vec<ToolDef> {
    let t = Tools::new("mvp", m);
    [
        workspace::register(&t),
        exec::register(&t),
        health::register(&t),
        graphs::register(&t),
        prp::register(&t),
        teaching::register(&t),
    ]
    .concat()
}
