//! The asbr tools, one file per topic (`tasks`, `profiles`, `artifacts`, `service_map`,
//! `scan`, `reviews`): each file holds its tools' inputs (contract names and defaults
//! kept), handlers and registration with annotations and descriptions. This module holds
//! the state every handler shares, the store errors' mapping to tool errors, and the
//! toolset's tool list.
//!
//! Owns tool semantics only: state lives in `asbr::tasks`, `artifacts`, `profiles`,
//! `manifest` and `reviews`. It must not touch journals directly.

use std::sync::Arc;

use crate::runtime::{
    events::EventBus,
    executor::Executor,
    registry::{ToolDef, ToolError},
    toolset::Tools,
};

use super::{
    artifacts::{ArtifactError, ArtifactStore},
    manifest::{ManifestError, ServiceMaps},
    profiles::{ProfileError, ProfileStore},
    reviews::{Analysers, ReviewStore},
    scan::Scanner,
    tasks::{TaskError, TaskStore},
};

mod artifacts;
mod profiles;
mod reviews;
mod scan;
mod service_map;
mod tasks;

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

/// Every asbr tool.
pub fn all(a: &A) -> Vec<ToolDef> {
    let t = Tools::new("asbr", a);
    [
        tasks::register(&t),
        profiles::register(&t),
        artifacts::register(&t),
        service_map::register(&t),
        scan::register(&t),
        reviews::register(&t),
    ]
    .concat()
}
