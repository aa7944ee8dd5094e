//! The events the integrations tools publish (`integrations.api.called`,
//! `integrations.connection.established`, `integrations.data.synced`): payload shapes
//! only. Must not publish anything itself; the handlers do.

use serde::Serialize;

use crate::runtime::events::EventPayload;

use crate::integrations::probe::Step;

use super::probes::TestType;

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
    const VERSION: u32 = crate::integrations::EVENT_SCHEMA_VERSION;
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
    const VERSION: u32 = crate::integrations::EVENT_SCHEMA_VERSION;
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
    const VERSION: u32 = crate::integrations::EVENT_SCHEMA_VERSION;
}
