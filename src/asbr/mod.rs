//! The `asbr` toolset ("Agentic Second-Brain Runtime"): durable tasks and their event
//! stream, profiles, content-addressed artifacts, the signed connector service map, reviews and
//! local security scans (inside the workspace roots; the current directory when none are
//! configured).
//!
//! Imports only `runtime` and `config`; never another toolset. All
//! state lives in journals and blobs under `<state-dir>/asbr/` and is rebuilt on start.

pub mod artifacts;
pub mod canonical;
pub mod events;
pub mod manifest;
pub mod pr_checkout;
pub mod profiles;
pub mod review_rules;
pub mod reviews;
pub mod scan;
pub mod tasks;
pub mod tools;

use std::{path::PathBuf, sync::Arc};

use crate::runtime::{Runtime, toolset::Toolset};

pub const INSTRUCTIONS: &str = "asbr: durable agent tasks: `create_task`, report with `record_task_event`, wait for approval and go on with `approve_task_step`, follow with `watch_task_events` or asbr://tasks/{id}/events; store outputs with `put_artifact`. Review code or a pull request with `create_review`, then `get_review_status` and `submit_feedback`.";

/// Why the toolset could not start.
#[derive(Debug, thiserror::Error)]
pub enum AsbrError {
    #[error("asbr toolset: journal {stream} under {dir}: {source}")]
    Journal {
        stream: &'static str,
        dir: PathBuf,
        source: crate::runtime::store::StoreError,
    },
    #[error("asbr toolset: stream {stream}: {source}")]
    Store {
        stream: &'static str,
        source: crate::runtime::store::StoreError,
    },
    #[error("asbr toolset: journal {stream} holds a malformed record: {reason}")]
    Replay {
        stream: &'static str,
        reason: String,
    },
    #[error("asbr toolset: {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Builds the toolset: replays the journals under `<state-dir>/asbr/`.
pub fn toolset(runtime: &Runtime) -> Result<Toolset, AsbrError> {
    let dir = runtime.config.state_dir.join("asbr");
    let backend = runtime.stores.backend("asbr");
    let tasks = Arc::new(tasks::TaskStore::open_on(
        &*backend,
        &dir,
        runtime.events.clone(),
        runtime_policy(runtime),
        runtime
            .config
            .asbr
            .task_retention
            .unwrap_or(tasks::TERMINAL_TTL),
    )?);
    tasks.follow_other_replicas();
    let artifacts = Arc::new(artifacts::ArtifactStore::open(
        backend.clone(),
        &dir,
        runtime_policy(runtime),
        runtime.config.store.max_artifact_bytes(),
    )?);
    artifacts.follow();
    let profiles = Arc::new(profiles::ProfileStore::open(
        &*backend,
        runtime_policy(runtime),
    )?);
    profiles.follow();
    let reviews = Arc::new(reviews::ReviewStore::open(
        &*backend,
        runtime_policy(runtime),
    )?);
    reviews.follow();
    let manifest = Arc::new(manifest::ServiceMaps::new(runtime.config.asbr.clone()));
    let security_rules = Arc::new(scan::Rules::new());
    let scanner = Arc::new(scan::Scanner {
        rules: security_rules.clone(),
        roots: runtime.roots.clone(),
        advisories_dir: runtime.config.asbr.advisories_dir.clone(),
    });
    let asbr = Arc::new(tools::Asbr {
        tasks: tasks.clone(),
        artifacts,
        profiles,
        manifest,
        scanner,
        reviews: reviews.clone(),
        analysers: Arc::new(reviews::Analysers {
            security: security_rules,
            packs: review_rules::ReviewRules::new(),
        }),
        events: runtime.events.clone(),
        executor: runtime.executor.clone(),
        checkouts: dir.join("checkouts"),
    });
    Ok(Toolset::new("asbr", INSTRUCTIONS, tools::all(&asbr)).with_resources(tasks))
}

fn runtime_policy(runtime: &Runtime) -> crate::runtime::store::Fsync {
    runtime.config.fsync
}

/// Opens the replicated stream `stream` on `backend` (the store's state is the same on
/// every replica sharing it), mapping errors to [`AsbrError`], and returns it with the
/// records it holds; a record that does not decode is an [`AsbrError::Replay`].
pub(crate) fn open_replicated<E>(
    backend: &dyn crate::runtime::store::Backend,
    stream: &'static str,
    options: crate::runtime::store::StreamOptions,
    compaction: crate::runtime::store::Compaction<E>,
) -> Result<(crate::runtime::store::Replicated<E>, Vec<E>), AsbrError>
where
    E: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    let (handle, replay) =
        crate::runtime::store::Replicated::open_now(backend, stream, options, compaction)
            .map_err(|source| AsbrError::Store { stream, source })?;
    if let Some((position, reason)) = replay.undecodable.first() {
        return Err(AsbrError::Replay {
            stream,
            reason: format!("record {position}: {reason}"),
        });
    }
    Ok((handle, replay.into_records()))
}
