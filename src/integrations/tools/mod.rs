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
            "Register an external system: type api|webhook (HTTP endpoint), database (PostgreSQL URL) or message-queue (Redis URL). Credentials are stored apart with mode 0600 and never returned: results list their names only. Validation errors name the field."
        ),
        t.tool(
            "update_integration",
            Hints::write().idempotent(),
            update_integration,
            "Change an integration's name, status (active|inactive) or config fields; given config fields replace stored ones, `credentials` replaces the whole set. Credentials are bound to the endpoint's origin: moving config.endpoint to another origin without new credentials drops them (credentialsDropped says so). The type cannot change."
        ),
        t.tool(
            "delete_integration",
            Hints::write().destructive().idempotent(),
            delete_integration,
            "Remove an integration, its stored credentials and its monitoring figures."
        ),
        t.tool(
            "list_integrations",
            Hints::read(),
            list_integrations,
            "Registered integrations (credential names only), optionally by type and status; continue with `cursor`."
        ),
        t.tool(
            "execute_integration",
            Hints::write_remote(),
            execute_integration,
            "Call an integration. api/webhook: operation \"METHOD /path\" (or a named operation) with a JSON payload, credentials injected, at most `concurrency` calls in flight, GETs revalidated through the cache, retries only for GET/HEAD and after 429/503 with Retry-After; bodies over 64 KiB come in chunks via `next_cursor`. database: SQL with parameters in a read-only transaction unless allowWrites; rows capped with a cursor. message-queue: `publish` {stream, fields} or `read` {stream, since?, count?} on Redis Streams."
        ),
        t.tool(
            "test_integration",
            Hints::read_remote(),
            test_integration,
            "Check an integration: connectivity (DNS, connect, TLS, first byte, each timed), authentication (credentials sent; 401/403 or the backend's auth error fail) or full. Sets the status to active or error."
        ),
        t.tool(
            "monitor_integration",
            Hints::read(),
            monitor_integration,
            "Latency p50/p95/p99, success rate and error count of an integration's calls in a time range (default the last 24 hours; minute buckets, 24 hours kept)."
        ),
    ]
}
