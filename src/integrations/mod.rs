//! The `integrations` toolset: a registry of external systems (HTTP APIs and webhooks,
//! PostgreSQL databases, Redis Streams queues), calls through per-integration executor
//! lanes, time-bucketed monitoring, step-timed connection tests, and inbound webhooks
//! (`POST /hooks/{integrationId}` in HTTP mode) published on the event bus.
//!
//! Imports only `runtime` and `config`; never another toolset. State
//! lives under `<state-dir>/integrations/`: the `registry` journal (replayed on start)
//! and `credentials.json` (mode 0600). Outbound delivery of `integrations.*` events is
//! the runtime event bus's opt-in HTTP sink (`--events-sink-url`). Outbound calls go
//! through the outbound address policy (`address.rs`); every event carries
//! `schemaVersion` ([`EVENT_SCHEMA_VERSION`]).

pub mod address;
#[cfg(feature = "postgres")]
pub mod db;
#[cfg(not(feature = "postgres"))]
#[path = "db_absent.rs"]
pub mod db;
pub mod events;
pub mod execute;
pub mod hooks;
pub mod monitor;
#[cfg(feature = "redis")]
pub mod mq;
#[cfg(not(feature = "redis"))]
#[path = "mq_absent.rs"]
pub mod mq;
pub mod probe;
pub mod registry;
pub mod tools;

use std::{path::PathBuf, sync::Arc};

use crate::runtime::{Runtime, toolset::Toolset};

pub const INSTRUCTIONS: &str = "integrations: register external systems (HTTP APIs, webhooks, PostgreSQL, Redis Streams) with `create_integration` (credentials never shown), check with `test_integration`, call with `execute_integration` (\"GET /path\", SQL, publish/read), watch with `monitor_integration`. Calls publish events://integrations.*.";

/// `schemaVersion` of every `integrations.*` event payload.
pub const EVENT_SCHEMA_VERSION: u32 = 1;

/// Why the toolset could not start.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationsError {
    #[error("integrations toolset: journal under {dir}: {source}")]
    Journal {
        dir: PathBuf,
        source: crate::runtime::store::StoreError,
    },
    #[error("integrations toolset: the registry journal holds a malformed record: {reason}")]
    Replay { reason: String },
    #[error("integrations toolset: {path}: {reason}")]
    Vault { path: PathBuf, reason: String },
    #[error("integrations toolset: {0}")]
    Client(#[from] crate::runtime::http::UpstreamError),
}

/// Builds the toolset (its tools and the router of its HTTP webhook endpoint): replays
/// `<state-dir>/integrations/`.
pub fn toolset(runtime: &Runtime) -> Result<Toolset, IntegrationsError> {
    let policy = runtime.config.fsync;
    let dir = runtime.config.state_dir.join("integrations");
    let sealer = match (runtime.stores.is_shared(), runtime.config.store.key_bytes()) {
        (false, _) => None,
        (true, Some(key)) => Some(crate::runtime::sealed::Sealer::new(&key)),
        (true, None) => {
            return Err(IntegrationsError::Vault {
                path: dir.clone(),
                reason: format!(
                    "a shared store keeps credentials sealed and needs {}",
                    crate::config::STORE_KEY_ENV
                ),
            });
        }
    };
    let registry = registry::IntegrationStore::open_on(
        &*runtime.stores.backend("integrations"),
        &dir,
        crate::runtime::store::StreamOptions::new(policy, registry::MAX_LOG_BYTES),
        sealer,
    )?;
    let addresses = address::AddressPolicy {
        allow_private: runtime.config.integrations_allow_private.unwrap_or(true),
    };
    let upstream = crate::runtime::http::Upstream::with_guard(
        crate::runtime::USER_AGENT,
        runtime.upstream.cache().clone(),
        Arc::new(addresses),
    )?;
    let state = Arc::new(tools::Integrations {
        registry: registry.clone(),
        monitor: monitor::Monitor::default(),
        spool: execute::Spool::default(),
        pools: db::Pools::new(addresses),
        queues: mq::Connections::new(addresses),
        addresses,
        upstream,
        executor: runtime.executor.clone(),
        events: runtime.events.clone(),
    });
    Ok(
        Toolset::new("integrations", INSTRUCTIONS, tools::all(&state))
            .with_routes(hooks::router(registry, runtime.events.clone())),
    )
}
