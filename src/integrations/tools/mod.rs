//! The integrations tools: contract names, inputs and defaults kept (cortex-contracts §2),
//! plus `update_integration` and `delete_integration`. Every `execute_integration`
//! records an `integrations.api.called` event, a latency sample in the monitor and the
//! `cortex_integration_call_seconds` histogram; calls that move data (a successful read
//! that returns some, or a successful write) also publish `integrations.data.synced`.
//!
//! This file owns the handlers' shared state (`Integrations`) and tool registration;
//! each tool's semantics live in a submodule (`crud`, `call`, `probes`, `monitor`),
//! error mapping in `errors`, event payloads in `events`. Storage lives in
//! `registry.rs`, calls in `execute.rs`, `db.rs` and `mq.rs`, statistics in
//! `monitor.rs` (one level up); nothing here may write journals or files itself.

mod call;
mod crud;
mod errors;
mod monitor;
mod probes;

pub(crate) use probes::TestType;

use std::sync::Arc;

use crate::runtime::{
    events::EventBus,
    executor::Executor,
    http::Upstream,
    registry::{Hints, ToolDef},
    toolset::Tools,
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

use call::execute_integration;
use crud::{create_integration, delete_integration, list_integrations, update_integration};
use monitor::monitor_integration;
use probes::test_integration;

// ---------------------------------------------------------------- registration

pub fn all(i: &SharedIntegrations) -> Vec<ToolDef> {
    let t = Tools::new("integrations", i);
    vec![
        t.tool(
            "create_integration",
            Hints::write(),
            create_integration,
            "Register an external system to call later: type api or webhook (HTTP endpoint), database (PostgreSQL URL) or message-queue (Redis URL). Credentials are stored apart and never returned (names only). Returns the integration with its id."
        )
        .titled("Create integration"),
        t.tool(
            "update_integration",
            Hints::write().destructive().idempotent(),
            update_integration,
            "Change an integration's name, status (active|inactive) or config; given fields replace the stored ones, `credentials` the whole set. Moving the endpoint to another origin drops the credentials unless new ones are given (`credentialsDropped`)."
        )
        .titled("Update integration"),
        t.tool(
            "delete_integration",
            Hints::write().destructive().idempotent(),
            delete_integration,
            "Remove an integration with its stored credentials and monitoring figures. Returns whether it was deleted."
        )
        .titled("Delete integration"),
        t.tool(
            "list_integrations",
            Hints::read(),
            list_integrations,
            "List registered integrations (id, type, status, config with credential names only), optionally by type and status; pass `next_cursor` back as `cursor` for more."
        )
        .titled("List integrations"),
        t.tool(
            "execute_integration",
            Hints::write_remote().destructive(),
            execute_integration,
            "Call an integration. api/webhook: operation \"METHOD /path\" with a JSON payload (credentials injected; long bodies continue via `next_cursor`). database: SQL with parameters, read-only unless the integration allows writes. message-queue: `publish` or `read` on a Redis stream."
        )
        .titled("Execute integration"),
        t.tool(
            "test_integration",
            Hints::read_remote(),
            test_integration,
            "Check that an integration works: connectivity (DNS, connect, TLS, first byte, each timed), authentication, or both (`full`). Returns each step's result and sets the integration's status to active or error."
        )
        .titled("Test integration"),
        t.tool(
            "monitor_integration",
            Hints::read(),
            monitor_integration,
            "See how an integration's calls went over a time range (default: the last 24 hours): latency p50/p95/p99, success rate and error count, in minute buckets."
        )
        .titled("Monitor integration"),
    ]
}
