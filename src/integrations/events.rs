//! The events the integrations toolset publishes (`integrations.api.called`,
//! `integrations.connection.established`, `integrations.data.synced`,
//! `integrations.webhook.received`): payload shapes and their versions only. Every
//! payload also carries `schemaVersion`, equal to its [`EventPayload::VERSION`]
//! ([`EVENT_SCHEMA_VERSION`]). Must not publish anything itself; the handlers and the
//! webhook route do.

use serde::Serialize;
use serde_json::Value;

use crate::runtime::events::EventPayload;

use super::{EVENT_SCHEMA_VERSION, probe::Step, tools::TestType};

/// `integrations.api.called`: one per execute_integration call.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiCalled {
    pub schema_version: u32,
    pub integration_id: String,
    pub integration_type: &'static str,
    pub method: String,
    pub endpoint: String,
    /// HTTP status; 0 when no response arrived (and for database / message-queue calls
    /// that failed).
    pub status_code: u16,
    /// Milliseconds.
    pub duration: f64,
    pub request_bytes: usize,
    pub response_bytes: usize,
    pub ok: bool,
}

impl EventPayload for ApiCalled {
    const TYPE: &'static str = "integrations.api.called";
    const VERSION: u32 = EVENT_SCHEMA_VERSION;
}

/// `integrations.connection.established`: a test_integration that passed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionEstablished {
    pub schema_version: u32,
    pub integration_id: String,
    pub test_type: TestType,
    pub steps: Vec<Step>,
}

impl EventPayload for ConnectionEstablished {
    const TYPE: &'static str = "integrations.connection.established";
    const VERSION: u32 = EVENT_SCHEMA_VERSION;
}

/// `integrations.data.synced`: a call that moved data — a successful read that returned
/// some (HTTP GET/HEAD with a body, SQL rows, stream entries) or a successful write
/// (HTTP POST/PUT/PATCH/DELETE, SQL changing rows, XADD).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSynced {
    pub schema_version: u32,
    pub integration_id: String,
    pub integration_type: &'static str,
    /// `read` (data came in) or `write` (data went out or changed).
    pub direction: &'static str,
    /// The operation as run ("GET /path", the SQL verb, XADD / XRANGE).
    pub operation: String,
    /// Where: the HTTP path, `sql`, or the stream name.
    pub target: String,
    /// Rows, entries or 1 for an HTTP body.
    pub records: u64,
    pub bytes: usize,
}

impl EventPayload for DataSynced {
    const TYPE: &'static str = "integrations.data.synced";
    const VERSION: u32 = EVENT_SCHEMA_VERSION;
}

/// `integrations.webhook.received`: a verified, not replayed webhook delivery.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookReceived {
    pub schema_version: u32,
    pub integration_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    pub bytes: usize,
    /// The JSON body, when it is JSON and at most 64 KiB.
    pub payload: Value,
}

impl EventPayload for WebhookReceived {
    const TYPE: &'static str = "integrations.webhook.received";
    const VERSION: u32 = EVENT_SCHEMA_VERSION;
}
