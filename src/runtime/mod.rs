//! The shared runtime every toolset stands on: executor lanes, tool registry, pages,
//! progress, the opt-in batch tool, metrics, the journal and the event bus.
//!
//! Owns only domain-free machinery: it imports nothing from `server`, `transport` or any
//! toolset (architecture §2).

pub mod batch;
pub mod events;
pub mod executor;
pub mod journal;
pub mod metrics;
pub mod page;
pub mod progress;
pub mod registry;

use std::sync::Arc;

use crate::config::Config;

/// Handles to the shared machinery, cheap to clone, handed to every toolset constructor.
#[derive(Clone)]
pub struct Runtime {
    pub config: Arc<Config>,
    pub executor: executor::Executor,
    pub metrics: metrics::Metrics,
}

impl Runtime {
    pub fn new(config: Arc<Config>) -> Self {
        Runtime {
            config,
            executor: executor::Executor::default(),
            metrics: metrics::Metrics::install(),
        }
    }
}
