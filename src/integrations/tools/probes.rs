//! `test_integration`: step-timed connectivity and authentication probes for HTTP,
//! database and queue integrations, setting the status to active or error. Probe steps
//! live in `probe.rs` one level up; this file must not write journals or files itself.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::registry::{CallCtx, Hints, ToolDef, ToolError};

use crate::integrations::{
    EVENT_SCHEMA_VERSION,
    address::AddressPolicy,
    execute::{self},
    probe::{self, Step},
    registry::{Integration, IntegrationType, Status},
};

use super::call::{redact_db, redact_mq};
use super::{Integrations, SharedIntegrations};
use crate::integrations::events::ConnectionEstablished;
use crate::runtime::toolset::{Out, Tools};

pub(super) fn register(t: &Tools<SharedIntegrations>) -> Vec<ToolDef> {
    vec![
        t.tool(
            "test_integration",
            Hints::read_remote(),
            test_integration,
            "Check that an integration works: connectivity (DNS, connect, TLS, first byte, each timed), authentication, or both (`full`). Returns each step's result and sets the integration's status to active or error."
        )
        .titled("Test integration"),
    ]
}

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

pub(super) async fn test_integration(
    i: SharedIntegrations,
    input: TestIn,
    ctx: CallCtx,
) -> Out<TestOut> {
    let integration = i
        .registry
        .find_for(&input.integration_id, &ctx.principal)
        .await?;
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
