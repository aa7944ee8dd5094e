//! `monitor_integration`: latency percentiles, success rate and error count over a time
//! range, read from the monitor (`monitor.rs` one level up). Read-only: must not record
//! samples or publish events.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::registry::{CallCtx, Hints, ToolDef, ToolError};

use crate::integrations::monitor::Figures;

use super::SharedIntegrations;
use crate::runtime::toolset::{Out, Tools};

pub(super) fn register(t: &Tools<SharedIntegrations>) -> Vec<ToolDef> {
    vec![
        t.tool(
            "monitor_integration",
            Hints::read(),
            monitor_integration,
            "See how an integration's calls went over a time range (default: the last 24 hours): latency p50/p95/p99, success rate and error count, in minute buckets."
        )
        .titled("Monitor integration"),
    ]
}

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

pub(super) async fn monitor_integration(
    i: SharedIntegrations,
    input: MonitorIn,
    ctx: CallCtx,
) -> Out<MonitorOut> {
    let integration = i
        .registry
        .find_for(&input.integration_id, &ctx.principal)
        .await?;
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
