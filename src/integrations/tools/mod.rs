//! The integrations tools: contract names, inputs and defaults kept (cortex-contracts §2),
//! plus `update_integration` and `delete_integration`. Every `execute_integration`
//! records an `integrations.api.called` event, a latency sample in the monitor and the
//! `cortex_integration_call_seconds` histogram; calls that move data (a successful read
//! that returns some, or a successful write) also publish `integrations.data.synced`.
//!
//! This file owns the handlers' shared state (`Integrations`) and the toolset's tool
//! list; each tool's semantics and registration (annotations, description) live in a
//! submodule (`crud`, `call`, `probes`, `monitor`), error mapping in `errors`, event
//! payloads in `events`. Storage lives in `registry.rs`, calls in `execute.rs`, `db.rs`
//! and `mq.rs`, statistics in `monitor.rs` (one level up); nothing here may write
//! journals or files itself.

mod call;
mod crud;
mod errors;
mod monitor;
mod probes;

pub(crate) use probes::TestType;

use std::sync::Arc;

use crate::runtime::{
    events::EventBus, executor::Executor, http::Upstream, registry::ToolDef, toolset::Tools,
};

use super::{
    address::AddressPolicy, db::Pools, execute::Spool, monitor::Monitor, mq::Connections,
    registry::IntegrationStore,
};

/// What every handler holds.
pub struct Integrations {
    pub registry: Arc<IntegrationStore>,
    pub monitor: Monitor,
    pub spool: Spool,
    pub pools: Pools,
    pub queues: Connections,
    pub addresses: AddressPolicy,
    pub upstream: Upstream,
    pub executor: Executor,
    pub events: EventBus,
}

type SharedIntegrations = Arc<Integrations>;

// ---------------------------------------------------------------- registration

pub fn all(i: &SharedIntegrations) -> Vec<ToolDef> {
    let t = Tools::new("integrations", i);
    [
        crud::register(&t),
        call::register(&t),
        probes::register(&t),
        monitor::register(&t),
    ]
    .concat()
}
