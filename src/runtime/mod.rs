//! The shared runtime every toolset stands on: executor lanes, tool registry, pages,
//! progress, the opt-in batch tool, metrics, the journal and the event bus.
//!
//! Owns only domain-free machinery: it imports nothing from `server`, `transport` or any
//! toolset (architecture §2).

pub mod batch;
pub mod cache;
pub mod events;
pub mod executor;
pub mod http;
pub mod journal;
pub mod metrics;
pub mod page;
pub mod progress;
pub mod registry;
pub mod resources;

use std::sync::Arc;

use crate::config::Config;

use crate::config::Fsync;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("event journal under {dir}: {source}")]
    Events {
        dir: String,
        source: events::EventError,
    },
    #[error(transparent)]
    Upstream(#[from] http::UpstreamError),
}

/// Our User-Agent on every outbound request.
pub const USER_AGENT: &str = concat!("cortex-mcp/", env!("CARGO_PKG_VERSION"));

/// Handles to the shared machinery, cheap to clone, handed to every toolset constructor.
#[derive(Clone)]
pub struct Runtime {
    pub config: Arc<Config>,
    pub executor: executor::Executor,
    pub metrics: metrics::Metrics,
    pub events: events::EventBus,
    /// The one pooled outbound client with the shared conditional cache.
    pub upstream: http::Upstream,
}

impl Runtime {
    /// Opens the state directory's event journals (replaying them) and installs metrics.
    /// Must run inside a tokio runtime.
    pub fn new(config: Arc<Config>) -> Result<Self, RuntimeError> {
        let dir = config.state_dir.join("events");
        let policy = match config.fsync {
            Fsync::Always => journal::FsyncPolicy::Always,
            Fsync::Batch => journal::FsyncPolicy::Batch,
            Fsync::Never => journal::FsyncPolicy::Never,
        };
        let events = events::EventBus::new(Some(dir.clone()), policy).map_err(|source| {
            RuntimeError::Events {
                dir: dir.display().to_string(),
                source,
            }
        })?;
        Ok(Runtime {
            config,
            executor: executor::Executor::default(),
            metrics: metrics::Metrics::install(),
            events,
            upstream: http::Upstream::new(USER_AGENT, cache::ConditionalCache::default())?,
        })
    }
}
