//! The integrations tools: contract names, inputs and defaults kept (cortex-contracts §2),
//! plus `update_integration` and `delete_integration`. Every `execute_integration`
//! records an `integrations.api.called` event, a latency sample in the monitor and the
//! `cortex_integration_call_seconds` histogram; calls that move data (a successful read
//! that returns some, or a successful write) also publish `integrations.data.synced`.
//!
//! Owns tool semantics and error mapping. Storage lives in `registry.rs`, calls in
//! `execute.rs`, `db.rs` and `mq.rs`, statistics in `monitor.rs`; this file must not
//! write journals or files itself.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::runtime::{
    events::{EventBus, EventPayload},
    executor::Executor,
    http::{CacheOutcome, Upstream},
    page::{self, Page},
    registry::{CallCtx, Hints, ToolDef, ToolError},
    toolset::Tools,
};

use super::{
    EVENT_SCHEMA_VERSION,
    address::AddressPolicy,
    db::{self, DbError, Pools},
    execute::{self, BodyView, CURSOR_KIND, ExecuteError, HttpCall, Spool, SpoolCursor, Spooled},
    monitor::{Figures, Monitor},
    mq::{Connections, MqError},
    probe::{self, Step},
    registry::{
        Change, ConfigInput, Integration, IntegrationType, Registry, RegistryError, Status,
    },
};

/// What every handler holds.
pub struct Integrations {
    pub registry: Arc<Registry>,
    pub monitor: Monitor,
    pub spool: Spool,
    pub pools: Pools,
    pub queues: Connections,
    pub addresses: AddressPolicy,
    pub upstream: Upstream,
    pub executor: Executor,
    pub events: EventBus,
}

type I = Arc<Integrations>;
use crate::runtime::toolset::Out;

impl From<RegistryError> for ToolError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Invalid { .. } => ToolError::Input(e.to_string()),
            RegistryError::Storage(_) => ToolError::Internal(e.to_string()),
            other => ToolError::Business(other.to_string()),
        }
    }
}

impl From<ExecuteError> for ToolError {
    fn from(e: ExecuteError) -> Self {
        match e {
            ExecuteError::Operation(_) | ExecuteError::Payload(_) => {
                ToolError::Input(e.to_string())
            }
            other => ToolError::Upstream(other.to_string()),
        }
    }
}

impl From<DbError> for ToolError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Params(_) | DbError::Config(_) => ToolError::Input(e.to_string()),
            DbError::ReadOnly(_) | DbError::Column { .. } => ToolError::Business(e.to_string()),
            other => ToolError::Upstream(other.to_string()),
        }
    }
}

impl From<MqError> for ToolError {
    fn from(e: MqError) -> Self {
        match e {
            MqError::Operation(_) | MqError::Payload(_) => ToolError::Input(e.to_string()),
            other => ToolError::Upstream(other.to_string()),
        }
    }
}

// ---------------------------------------------------------------- events

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
}

// ---------------------------------------------------------------- registry tools

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateIn {
    /// Unique display name.
    pub name: String,
    pub r#type: IntegrationType,
    #[serde(default)]
    pub config: ConfigInput,
    /// Let every client of this server see and use it (with its credentials). Default:
    /// only the principal that registers it may.
    #[serde(default)]
    pub shared: bool,
}

async fn create_integration(i: I, input: CreateIn, ctx: CallCtx) -> Out<Integration> {
    Ok(i.registry
        .create(
            input.name,
            input.r#type,
            input.config,
            &ctx.principal,
            input.shared,
        )
        .await?)
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SettableStatus {
    Active,
    Inactive,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateIn {
    pub integration_id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// `inactive` stops execute_integration until set `active` again.
    #[serde(default)]
    pub status: Option<SettableStatus>,
    /// Fields given replace the stored ones; `credentials`, when given, replaces the
    /// whole credential set.
    #[serde(default)]
    pub config: Option<ConfigInput>,
}

/// The updated integration, and what the update did to its credentials.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateOut {
    #[serde(flatten)]
    pub integration: Integration,
    /// Set when the endpoint moved to another origin without new credentials: the stored
    /// ones were dropped (credentials are bound to their origin); send them again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_dropped: Option<String>,
}

async fn update_integration(i: I, input: UpdateIn, ctx: CallCtx) -> Out<UpdateOut> {
    let change = Change {
        name: input.name,
        r#type: None,
        status: input.status.map(|s| match s {
            SettableStatus::Active => Status::Active,
            SettableStatus::Inactive => Status::Inactive,
        }),
        config: input.config,
    };
    let (updated, credentials_dropped) = i
        .registry
        .update(&input.integration_id, &ctx.principal, change)
        .await?;
    i.pools.forget(&updated.id);
    i.queues.forget(&updated.id);
    Ok(UpdateOut {
        integration: updated,
        credentials_dropped,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdIn {
    pub integration_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    pub deleted: Integration,
}

async fn delete_integration(i: I, input: IdIn, ctx: CallCtx) -> Out<Deleted> {
    let deleted = i
        .registry
        .delete(&input.integration_id, &ctx.principal)
        .await?;
    i.monitor.forget(&deleted.id);
    i.pools.forget(&deleted.id);
    i.queues.forget(&deleted.id);
    Ok(Deleted { deleted })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListIn {
    #[serde(default)]
    pub r#type: Option<IntegrationType>,
    #[serde(default)]
    pub status: Option<Status>,
    #[serde(default = "crate::runtime::page::default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
    #[serde(default)]
    pub cursor: Option<String>,
}

async fn list_integrations(i: I, input: ListIn, ctx: CallCtx) -> Out<Page<Integration>> {
    let all = i.registry.list(&ctx.principal, input.r#type, input.status);
    page::offset_page(
        "list_integrations",
        &all,
        input.limit as usize,
        input.cursor.as_deref(),
    )
    .map_err(|e| ToolError::Input(e.to_string()))
}

// ---------------------------------------------------------------- execute

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecuteIn {
    pub integration_id: String,
    /// api/webhook: "METHOD /path" or a named operation; database: SQL or a named
    /// operation; message-queue: `publish` or `read`.
    #[serde(default)]
    pub operation: String,
    /// api/webhook: JSON body (GET/HEAD: object of query parameters); database: array
    /// of statement parameters; message-queue: {stream, fields} or {stream, since?, count?}.
    #[serde(default)]
    pub payload: Option<Value>,
    /// Milliseconds for this call (capped by the request timeout).
    #[serde(default)]
    #[schemars(range(min = 1, max = 3600000))]
    pub timeout: Option<u64>,
    /// The `next_cursor` of an earlier capped result of this integration: returns the
    /// next chunk without calling the integration again (operation is then ignored).
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteOut {
    pub integration_id: String,
    pub operation: String,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Attempts made (retries + 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// miss | revalidated (304, stored body served) | shared | bypass
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(flatten)]
    pub body: BodyView,
    /// database: result rows (at most 100 per result; continue with next_cursor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<Value>>,
    /// database: rows in the whole result (capped at 10,000 read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_affected: Option<u64>,
    /// message-queue: the XADD id or the entries read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

fn cache_name(c: CacheOutcome) -> &'static str {
    match c {
        CacheOutcome::Miss => "miss",
        CacheOutcome::Revalidated => "revalidated",
        CacheOutcome::Bypass => "bypass",
        CacheOutcome::Shared => "shared",
    }
}

/// What one call did, for the event and the monitor.
struct Record {
    method: String,
    endpoint: String,
    status: u16,
    request_bytes: usize,
    response_bytes: usize,
    ok: bool,
    /// Data moved: (direction, records, bytes).
    synced: Option<(&'static str, u64, usize)>,
}

impl Integrations {
    /// Records the call in the monitor at once and publishes `integrations.api.called`
    /// in the background: the caller's answer does not wait for the event journal's
    /// write (an fsync under `--fsync batch`).
    fn record(&self, integration: &Integration, took: Duration, r: Record) {
        self.monitor.record(&integration.id, Utc::now(), took, r.ok);
        metrics::histogram!("cortex_integration_call_seconds",
            "integration" => integration.id.clone(), "type" => integration.r#type.as_str())
        .record(took.as_secs_f64());
        metrics::counter!("cortex_integration_calls_total",
            "integration" => integration.id.clone(), "ok" => if r.ok { "true" } else { "false" })
        .increment(1);
        let synced = r.synced.map(|(direction, records, bytes)| DataSynced {
            schema_version: EVENT_SCHEMA_VERSION,
            integration_id: integration.id.clone(),
            integration_type: integration.r#type.as_str(),
            direction,
            operation: r.method.clone(),
            target: r.endpoint.clone(),
            records,
            bytes,
        });
        let event = ApiCalled {
            schema_version: EVENT_SCHEMA_VERSION,
            integration_id: integration.id.clone(),
            integration_type: integration.r#type.as_str(),
            method: r.method,
            endpoint: r.endpoint,
            status_code: r.status,
            duration: (took.as_secs_f64() * 1_000_000.0).round() / 1000.0,
            request_bytes: r.request_bytes,
            response_bytes: r.response_bytes,
            ok: r.ok,
        };
        let events = self.events.clone();
        let owner = integration.event_owner();
        tokio::spawn(async move {
            if let Err(e) = events
                .publish_as("integrations", &event, owner.clone())
                .await
            {
                tracing::warn!(integration = %event.integration_id, "integrations.api.called not stored: {e}");
            }
            if let Some(synced) = synced
                && let Err(e) = events.publish_as("integrations", &synced, owner).await
            {
                tracing::warn!(integration = %synced.integration_id, "integrations.data.synced not stored: {e}");
            }
        });
    }
}

fn spooled_page(i: &Integrations, input: &ExecuteIn, cursor: &str) -> Out<ExecuteOut> {
    let at: SpoolCursor = page::decode(CURSOR_KIND, cursor)?;
    let stored = i.spool.get(&at.id).ok_or_else(|| {
        ToolError::Business(
            "that result is no longer kept (results are kept 10 minutes); run the operation again"
                .into(),
        )
    })?;
    let mut out = ExecuteOut {
        integration_id: input.integration_id.clone(),
        operation: "cursor".into(),
        ..Default::default()
    };
    match stored {
        Spooled::Text(text) => {
            let (chunk, next) = execute::text_chunk(&text, at.offset);
            out.body = BodyView {
                text: Some(chunk.to_string()),
                total_bytes: text.len(),
                truncated: next.is_some(),
                next_cursor: next.map(|offset| {
                    page::encode(
                        CURSOR_KIND,
                        &SpoolCursor {
                            id: at.id.clone(),
                            offset,
                        },
                    )
                }),
                ..Default::default()
            };
        }
        Spooled::Rows(rows) => {
            let end = (at.offset + db::PAGE_ROWS).min(rows.len());
            out.rows = Some(rows.get(at.offset..end).unwrap_or_default().to_vec());
            out.row_count = Some(rows.len());
            out.body.next_cursor = (end < rows.len()).then(|| {
                page::encode(
                    CURSOR_KIND,
                    &SpoolCursor {
                        id: at.id,
                        offset: end,
                    },
                )
            });
            out.body.truncated = out.body.next_cursor.is_some();
        }
    }
    Ok(out)
}

async fn execute_integration(i: I, input: ExecuteIn, ctx: CallCtx) -> Out<ExecuteOut> {
    let integration = i.registry.get_for(&input.integration_id, &ctx.principal)?;
    if let Some(cursor) = input.cursor.as_deref() {
        return spooled_page(&i, &input, cursor);
    }
    if integration.status == Status::Inactive {
        return Err(ToolError::Business(format!(
            "integration {} is inactive; set status active with update_integration first",
            integration.id
        )));
    }
    if input.operation.trim().is_empty() {
        return Err(ToolError::Input("operation: must not be empty".into()));
    }
    let timeout = input.timeout.map_or(ctx.remaining(), |ms| {
        Duration::from_millis(ms).min(ctx.remaining())
    });
    let creds = i.registry.credentials_for_call(&integration)?;
    match integration.r#type {
        IntegrationType::Api | IntegrationType::Webhook => {
            execute_http(&i, &integration, &input, &creds, timeout, &ctx).await
        }
        IntegrationType::Database => {
            execute_db(&i, &integration, &input, &creds, timeout, &ctx).await
        }
        IntegrationType::MessageQueue => {
            execute_mq(&i, &integration, &input, &creds, timeout, &ctx).await
        }
    }
}

async fn execute_http(
    i: &Integrations,
    integration: &Integration,
    input: &ExecuteIn,
    creds: &BTreeMap<String, String>,
    timeout: Duration,
    ctx: &CallCtx,
) -> Out<ExecuteOut> {
    let started = Instant::now();
    let call = HttpCall {
        upstream: &i.upstream,
        executor: &i.executor,
        creds,
        deadline: started + timeout,
        cancel: ctx.cancel.clone(),
    };
    let result =
        execute::call_http(integration, &input.operation, input.payload.as_ref(), call).await;
    let took = started.elapsed();
    let op = execute::resolve_operation(integration, &input.operation).to_string();
    let (method, path) = execute::parse_http_operation(&op).unwrap_or_default();
    let (outcome, err) = match result {
        Ok(o) => (Some(o), None),
        Err((e, o)) => (o, Some(e)),
    };
    if !matches!(
        err,
        Some(ExecuteError::Operation(_) | ExecuteError::Payload(_))
    ) {
        let read = matches!(method, http::Method::GET | http::Method::HEAD);
        let synced = match (&outcome, err.is_none()) {
            (Some(o), true) if read && !o.body.is_empty() => Some(("read", 1, o.body.len())),
            (Some(o), true) if !read => Some(("write", 1, o.request_bytes + o.body.len())),
            _ => None,
        };
        let record = Record {
            method: method.to_string(),
            endpoint: path.split('?').next().unwrap_or("").to_string(),
            status: outcome.as_ref().map_or(0, |o| o.status),
            request_bytes: outcome.as_ref().map_or(0, |o| o.request_bytes),
            response_bytes: outcome.as_ref().map_or(0, |o| o.body.len()),
            ok: err.is_none(),
            synced,
        };
        i.record(integration, took, record);
    }
    if let Some(e) = err {
        return Err(e.into());
    }
    let o = outcome.ok_or_else(|| ToolError::Internal("no outcome".into()))?;
    Ok(ExecuteOut {
        integration_id: integration.id.clone(),
        operation: format!("{} {}", o.method, o.path),
        duration_ms: ms(took),
        status_code: Some(o.status),
        attempts: Some(o.attempts),
        cache: Some(cache_name(o.cache).to_string()),
        content_type: o.content_type.clone(),
        body: execute::body_view(&o.body, creds, &i.spool),
        ..Default::default()
    })
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

async fn execute_db(
    i: &Integrations,
    integration: &Integration,
    input: &ExecuteIn,
    creds: &BTreeMap<String, String>,
    timeout: Duration,
    ctx: &CallCtx,
) -> Out<ExecuteOut> {
    let sql = execute::resolve_operation(integration, &input.operation).to_string();
    let lane = execute::lane(&i.executor, integration);
    let started = Instant::now();
    let result = lane
        .run(
            started + timeout,
            &ctx.cancel,
            i.pools.execute(
                integration,
                creds,
                &sql,
                input.payload.as_ref(),
                started + timeout,
                timeout,
            ),
        )
        .await
        .map_err(|e| ToolError::Upstream(e.to_string()))?;
    let took = started.elapsed();
    let verb = sql
        .split_whitespace()
        .next()
        .unwrap_or("SQL")
        .to_ascii_uppercase();
    let response_bytes = result
        .as_ref()
        .map_or(0, |o| o.rows.iter().map(|r| r.to_string().len()).sum());
    let synced = match &result {
        Ok(o) if o.rows_affected.is_none() && !o.rows.is_empty() => {
            Some(("read", o.rows.len() as u64, response_bytes))
        }
        Ok(o) if o.rows_affected.is_some_and(|n| n > 0) => {
            Some(("write", o.rows_affected.unwrap_or(0), sql.len()))
        }
        _ => None,
    };
    let record = Record {
        method: verb,
        endpoint: "sql".into(),
        status: 0,
        request_bytes: sql.len(),
        response_bytes,
        ok: result.is_ok(),
        synced,
    };
    i.record(integration, took, record);
    let outcome = result.map_err(|e| ToolError::from(redact_db(e, creds)))?;
    let total = outcome.rows.len();
    let first: Vec<Value> = outcome.rows.iter().take(db::PAGE_ROWS).cloned().collect();
    let next_cursor = (total > db::PAGE_ROWS).then(|| {
        let id = i.spool.put(Spooled::Rows(Arc::from(outcome.rows)));
        page::encode(
            CURSOR_KIND,
            &SpoolCursor {
                id,
                offset: db::PAGE_ROWS,
            },
        )
    });
    Ok(ExecuteOut {
        integration_id: integration.id.clone(),
        operation: sql,
        duration_ms: ms(took),
        rows: (outcome.rows_affected.is_none()).then_some(first),
        row_count: outcome.rows_affected.is_none().then_some(total),
        rows_affected: outcome.rows_affected,
        body: BodyView {
            truncated: next_cursor.is_some() || outcome.truncated,
            next_cursor,
            ..Default::default()
        },
        ..Default::default()
    })
}

fn redact_db(e: DbError, creds: &BTreeMap<String, String>) -> DbError {
    match e {
        DbError::Connect(m) => DbError::Connect(execute::redact(&m, creds)),
        DbError::Auth(m) => DbError::Auth(execute::redact(&m, creds)),
        other => other,
    }
}

fn redact_mq(e: MqError, creds: &BTreeMap<String, String>) -> MqError {
    match e {
        MqError::Connect(m) => MqError::Connect(execute::redact(&m, creds)),
        MqError::Auth(m) => MqError::Auth(execute::redact(&m, creds)),
        MqError::Command(m) => MqError::Command(execute::redact(&m, creds)),
        other => other,
    }
}

async fn execute_mq(
    i: &Integrations,
    integration: &Integration,
    input: &ExecuteIn,
    creds: &BTreeMap<String, String>,
    timeout: Duration,
    ctx: &CallCtx,
) -> Out<ExecuteOut> {
    let op = execute::resolve_operation(integration, &input.operation)
        .trim()
        .to_string();
    let lane = execute::lane(&i.executor, integration);
    let started = Instant::now();
    let work = i.queues.execute(
        integration,
        creds,
        &op,
        input.payload.as_ref(),
        started + timeout,
    );
    let result = lane
        .run(started + timeout, &ctx.cancel, work)
        .await
        .map_err(|e| ToolError::Upstream(e.to_string()))?;
    let took = started.elapsed();
    if !matches!(result, Err(MqError::Operation(_) | MqError::Payload(_))) {
        let stream = input
            .payload
            .as_ref()
            .and_then(|p| p.get("stream"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let request_bytes = input.payload.as_ref().map_or(0, |p| p.to_string().len());
        let response_bytes = result.as_ref().map_or(0, |v| v.to_string().len());
        let synced = match &result {
            Ok(_) if op == "publish" => Some(("write", 1, request_bytes)),
            Ok(v) => match v.get("entries").and_then(Value::as_array) {
                Some(entries) if !entries.is_empty() => {
                    Some(("read", entries.len() as u64, response_bytes))
                }
                _ => None,
            },
            Err(_) => None,
        };
        let record = Record {
            method: if op == "publish" { "XADD" } else { "XRANGE" }.into(),
            endpoint: stream,
            status: 0,
            request_bytes,
            response_bytes,
            ok: result.is_ok(),
            synced,
        };
        i.record(integration, took, record);
    }
    let value = result.map_err(|e| ToolError::from(redact_mq(e, creds)))?;
    Ok(ExecuteOut {
        integration_id: integration.id.clone(),
        operation: op,
        duration_ms: ms(took),
        result: Some(value),
        ..Default::default()
    })
}

// ---------------------------------------------------------------- test

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TestType {
    #[default]
    Connectivity,
    Authentication,
    Full,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestIn {
    pub integration_id: String,
    #[serde(default)]
    pub test_type: TestType,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestOut {
    pub integration_id: String,
    pub test_type: TestType,
    pub ok: bool,
    /// One sentence: what passed or what failed and what to do.
    pub verdict: String,
    /// Timed steps in order: dns, connect, tls (https), first-byte, authentication.
    pub steps: Vec<Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// The integration's status after the test (active or error; inactive stays).
    pub status: Status,
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

async fn test_http(
    integration: &Integration,
    creds: &BTreeMap<String, String>,
    test: TestType,
    timeout: Duration,
    policy: AddressPolicy,
) -> (Vec<Step>, Option<u16>, bool, String) {
    let Some(endpoint) = integration.config.endpoint.as_deref() else {
        return (
            Vec::new(),
            None,
            false,
            "no config.endpoint to test; set one with update_integration".into(),
        );
    };
    let Ok(url) = url::Url::parse(endpoint) else {
        return (
            Vec::new(),
            None,
            false,
            "config.endpoint is not a URL".into(),
        );
    };
    let with_auth = test != TestType::Connectivity;
    let empty = BTreeMap::new();
    let headers =
        execute::request_headers(integration, if with_auth { creds } else { &empty }, false);
    let report = probe::probe_http(&url, headers, timeout, policy).await;
    let mut steps = report.steps;
    let Some(status) = report.status else {
        let (failed, advice) = steps
            .last()
            .map(|s| {
                let detail = s.detail.clone().unwrap_or_default();
                let advice = if s.name == "tls" && detail.contains("certificate") {
                    "the server's certificate is not trusted here: give it one from a trusted CA, or add its CA to the server's trust store (SSL_CERT_FILE)"
                } else {
                    "check config.endpoint and that the service is up"
                };
                (format!("{} failed: {detail}", s.name), advice)
            })
            .unwrap_or_default();
        return (steps, None, false, format!("{failed}; {advice}"));
    };
    if !with_auth {
        return (
            steps,
            Some(status),
            true,
            format!("reachable: {endpoint} answered {status}"),
        );
    }
    let (ok, detail) = probe::auth_verdict(status);
    steps.push(Step::new(
        "authentication",
        ok,
        Duration::ZERO,
        Some(detail.clone()),
    ));
    (steps, Some(status), ok, detail)
}

async fn dns_step(endpoint: &str) -> Option<Step> {
    let url = url::Url::parse(endpoint).ok()?;
    let host = url.host_str()?.to_string();
    let port = url.port().unwrap_or(0);
    let t = Instant::now();
    let r = tokio::net::lookup_host((host.as_str(), port)).await;
    Some(match r {
        Ok(mut a) => Step::new(
            "dns",
            true,
            t.elapsed(),
            a.next().map(|a| a.ip().to_string()),
        ),
        Err(e) => Step::new("dns", false, t.elapsed(), Some(e.to_string())),
    })
}

async fn test_backend(
    i: &Integrations,
    integration: &Integration,
    creds: &BTreeMap<String, String>,
    timeout: Duration,
) -> (Vec<Step>, bool, String) {
    let mut steps = Vec::new();
    if let Some(step) = dns_step(integration.config.endpoint.as_deref().unwrap_or("")).await {
        let ok = step.ok;
        steps.push(step);
        if !ok {
            return (
                steps,
                false,
                "the endpoint's host does not resolve; check config.endpoint".into(),
            );
        }
    }
    let t = Instant::now();
    let result: Result<(), ToolError> = match integration.r#type {
        IntegrationType::Database => i
            .pools
            .ping(integration, creds, timeout)
            .await
            .map_err(|e| redact_db(e, creds).into()),
        _ => i
            .queues
            .ping(integration, creds, timeout)
            .await
            .map_err(|e| redact_mq(e, creds).into()),
    };
    let took = t.elapsed();
    match result {
        Ok(()) => {
            steps.push(Step::new("connect", true, took, None));
            steps.push(Step::new(
                "authentication",
                true,
                Duration::ZERO,
                Some("accepted".into()),
            ));
            (steps, true, "connected and authenticated".into())
        }
        Err(e) => {
            let text = e.to_string();
            let auth = text.contains("authentication failed");
            if auth {
                steps.push(Step::new("connect", true, took, None));
                steps.push(Step::new(
                    "authentication",
                    false,
                    Duration::ZERO,
                    Some(text.clone()),
                ));
            } else {
                steps.push(Step::new("connect", false, took, Some(text.clone())));
            }
            (steps, false, text)
        }
    }
}

async fn test_integration(i: I, input: TestIn, ctx: CallCtx) -> Out<TestOut> {
    let integration = i.registry.get_for(&input.integration_id, &ctx.principal)?;
    let creds = i.registry.credentials_for_call(&integration)?;
    let timeout = PROBE_TIMEOUT.min(ctx.remaining());
    let (steps, status_code, ok, verdict) = if integration.r#type.is_http() {
        test_http(&integration, &creds, input.test_type, timeout, i.addresses).await
    } else {
        let (s, ok, v) = test_backend(&i, &integration, &creds, timeout).await;
        (s, None, ok, v)
    };
    let verdict = execute::redact(&verdict, &creds);
    let new_status = if ok { Status::Active } else { Status::Error };
    i.registry.set_status(&integration.id, new_status).await?;
    if ok {
        let event = ConnectionEstablished {
            schema_version: EVENT_SCHEMA_VERSION,
            integration_id: integration.id.clone(),
            test_type: input.test_type,
            steps: steps.clone(),
        };
        if let Err(e) = i
            .events
            .publish_as("integrations", &event, integration.event_owner())
            .await
        {
            tracing::warn!("integrations.connection.established not stored: {e}");
        }
    }
    let status = i
        .registry
        .get(&integration.id)
        .map_or(new_status, |x| x.status);
    Ok(TestOut {
        integration_id: integration.id,
        test_type: input.test_type,
        ok,
        verdict,
        steps,
        status_code,
        status,
    })
}

// ---------------------------------------------------------------- monitor

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum MetricKind {
    Latency,
    SuccessRate,
    ErrorCount,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimeRange {
    /// ISO 8601 start (default: 24 hours before end).
    #[serde(default)]
    pub start: Option<String>,
    /// ISO 8601 end (default: now).
    #[serde(default)]
    pub end: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MonitorIn {
    pub integration_id: String,
    /// Figures to return (default all).
    #[serde(default)]
    pub metrics: Option<Vec<MetricKind>>,
    #[serde(default)]
    pub time_range: Option<TimeRange>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitorOut {
    pub integration_id: String,
    pub start: String,
    pub end: String,
    /// Width of the time buckets the figures come from (ranges round out to whole buckets).
    pub bucket_seconds: u32,
    pub calls: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_count: Option<u64>,
}

fn parse_time(field: &str, raw: &str) -> Out<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| {
            ToolError::Input(format!(
                "timeRange.{field}: `{raw}` is not ISO 8601 (e.g. 2026-01-01T00:00:00Z): {e}"
            ))
        })
}

async fn monitor_integration(i: I, input: MonitorIn, ctx: CallCtx) -> Out<MonitorOut> {
    let integration = i.registry.get_for(&input.integration_id, &ctx.principal)?;
    let range = input.time_range.unwrap_or_default();
    let end = range
        .end
        .as_deref()
        .map(|s| parse_time("end", s))
        .transpose()?
        .unwrap_or_else(Utc::now);
    let start = range
        .start
        .as_deref()
        .map(|s| parse_time("start", s))
        .transpose()?
        .unwrap_or(end - chrono::Duration::hours(24));
    if start > end {
        return Err(ToolError::Input("timeRange: start is after end".into()));
    }
    let f: Figures = i.monitor.query(&integration.id, start, end);
    let wanted = |k: MetricKind| input.metrics.as_ref().is_none_or(|m| m.contains(&k));
    Ok(MonitorOut {
        integration_id: integration.id,
        start: start.to_rfc3339(),
        end: end.to_rfc3339(),
        bucket_seconds: 60,
        calls: f.calls,
        latency: wanted(MetricKind::Latency).then_some(Latency {
            p50_ms: f.p50_ms,
            p95_ms: f.p95_ms,
            p99_ms: f.p99_ms,
        }),
        success_rate: if wanted(MetricKind::SuccessRate) {
            f.success_rate
        } else {
            None
        },
        error_count: wanted(MetricKind::ErrorCount).then_some(f.errors),
    })
}

// ---------------------------------------------------------------- registration

pub fn all(i: &I) -> Vec<ToolDef> {
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
