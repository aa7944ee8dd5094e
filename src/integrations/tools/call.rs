//! `execute_integration`: HTTP, database and message-queue calls, spooled result pages,
//! and the record of each call (monitor sample, metrics, `integrations.api.called` and
//! `integrations.data.synced` events). Calls themselves live in `execute.rs`, `db.rs`
//! and `mq.rs` one level up; this file must not write journals or files itself.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::runtime::{
    http::CacheOutcome,
    page::{self},
    registry::{CallCtx, Hints, ToolDef, ToolError},
};

use crate::integrations::{
    EVENT_SCHEMA_VERSION,
    db::{self, DbError},
    execute::{self, BodyView, CURSOR_KIND, ExecuteError, HttpCall, SpoolCursor, Spooled},
    mq::MqError,
    registry::{Integration, IntegrationType, Status},
};

use super::{Integrations, SharedIntegrations};
use crate::integrations::events::{ApiCalled, DataSynced};
use crate::runtime::toolset::{Out, Tools};

pub(super) fn register(t: &Tools<SharedIntegrations>) -> Vec<ToolDef> {
    vec![
        t.tool(
            "execute_integration",
            Hints::write_remote().destructive(),
            execute_integration,
            "Call an integration: an HTTP request (credentials injected; long bodies continue via `next_cursor`), SQL with parameters (read-only unless the integration allows writes) or a Redis stream `publish`/`read`."
        )
        .titled("Execute integration"),
    ]
}

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
    /// `next_cursor` of a capped result: its next chunk, without calling again.
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

pub(super) async fn execute_integration(
    i: SharedIntegrations,
    input: ExecuteIn,
    ctx: CallCtx,
) -> Out<ExecuteOut> {
    let integration = i
        .registry
        .find_for(&input.integration_id, &ctx.principal)
        .await?;
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
        budget: ctx.budget.clone(),
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

pub(super) fn ms(d: Duration) -> f64 {
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

pub(super) fn redact_db(e: DbError, creds: &BTreeMap<String, String>) -> DbError {
    match e {
        DbError::Connect(m) => DbError::Connect(execute::redact(&m, creds)),
        DbError::Auth(m) => DbError::Auth(execute::redact(&m, creds)),
        other => other,
    }
}

pub(super) fn redact_mq(e: MqError, creds: &BTreeMap<String, String>) -> MqError {
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
