//! OpenTelemetry traces over OTLP (`--otlp-endpoint`, issue 21 "Operations"): the real
//! binary exports to a fake collector on loopback (OTLP/HTTP protobuf, decoded with the
//! OTLP message types) and calls a header-recording `api` integration, also on loopback.
//! The tests wait for the spans by polling the collector, never by sleeping.

use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, RequestMetaObject};
use serde_json::{Value, json};

use crate::common::{
    Client, ok,
    otlp::{Collector, ExportedSpan, recording_upstream},
    stdio_client_env,
};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const TRACESTATE: &str = "congo=t61rcWkgMzE";
/// The integration's token: it must appear in no exported span.
const SECRET: &str = "otlp-canary-token-5d1f";
/// A value passed as a tool argument: arguments are never exported.
const ARG_CANARY: &str = "otlp-canary-argument-9c2e";
const WAIT: Duration = Duration::from_secs(30);

async fn traced_client(state: &std::path::Path, collector: &Collector, delay_ms: &str) -> Client {
    stdio_client_env(
        state,
        &[
            "--toolsets",
            "integrations",
            "--replica-id",
            "replica-7",
            "--otlp-endpoint",
            &collector.url,
        ],
        &[("OTEL_BSP_SCHEDULE_DELAY", delay_ms)],
    )
    .await
}

/// A `tools/call` with `_meta` (W3C trace context) when given.
async fn call_with_meta(
    client: &Client,
    tool: &str,
    args: Value,
    traceparent: Option<&str>,
) -> CallToolResult {
    let mut params = CallToolRequestParams::new(tool.to_string())
        .with_arguments(args.as_object().cloned().unwrap_or_default());
    if let Some(tp) = traceparent {
        let mut meta = RequestMetaObject::new();
        meta.set_traceparent(tp);
        meta.set_tracestate(TRACESTATE);
        params.meta = Some(meta);
    }
    client
        .call_tool(params)
        .await
        .unwrap_or_else(|e| panic!("tools/call {tool}: {e}"))
}

async fn api_integration(client: &Client, base: &str) -> String {
    let made = ok(
        client,
        "create_integration",
        json!({"name": "traced", "type": "api", "config": {"endpoint": base, "credentials": {"token": SECRET}}}),
    )
    .await;
    made["id"].as_str().unwrap().to_string()
}

fn execute_args(id: &str) -> Value {
    json!({"integrationId": id, "operation": "GET /things", "payload": {"q": ARG_CANARY}})
}

/// The trace id and parent span id of a `traceparent` header.
fn traceparent_ids(header: &str) -> (String, String) {
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts.len(), 4, "traceparent {header}");
    assert_eq!(parts[0], "00", "traceparent {header}");
    (parts[1].to_string(), parts[2].to_string())
}

fn is_tool_call(span: &ExportedSpan, tool: &str) -> bool {
    span.name == format!("tools/call {tool}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_and_its_upstream_request_join_the_callers_trace() {
    let collector = Collector::start().await;
    let (seen, base) = recording_upstream().await;
    let state = tempfile::tempdir().unwrap();
    let client = traced_client(state.path(), &collector, "100").await;
    let id = api_integration(&client, &base).await;

    let caller = format!("00-{TRACE}-{CALLER_SPAN}-01");
    let r = call_with_meta(
        &client,
        "execute_integration",
        execute_args(&id),
        Some(&caller),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{r:?}");

    // The tool call: a server span, child of the caller's span, in the caller's trace.
    let call = collector
        .wait_for(
            "tools/call execute_integration in the caller's trace",
            WAIT,
            |s| is_tool_call(s, "execute_integration") && s.trace_id == TRACE,
        )
        .await;
    assert_eq!(call.parent_span_id, CALLER_SPAN, "{call:#?}");
    assert_eq!(call.kind, 2, "a server span: {call:#?}");
    assert_eq!(call.attr("gen_ai.tool.name"), Some("execute_integration"));
    assert_eq!(call.attr("cortex.toolset"), Some("integrations"));
    assert_eq!(call.attr("cortex.outcome"), Some("ok"), "{call:#?}");
    assert_eq!(
        call.resource.get("service.name").map(String::as_str),
        Some("cortex-mcp")
    );
    assert_eq!(
        call.resource.get("service.instance.id").map(String::as_str),
        Some("replica-7")
    );
    assert!(call.resource.contains_key("service.version"), "{call:#?}");

    // The upstream request: a client span, child of the tool call.
    let upstream = collector
        .wait_for("the upstream request's span", WAIT, |s| {
            s.trace_id == TRACE && s.parent_span_id == call.span_id
        })
        .await;
    assert_eq!(upstream.kind, 3, "a client span: {upstream:#?}");
    assert_eq!(upstream.attr("http.request.method"), Some("GET"));
    assert_eq!(upstream.attr("server.address"), Some("127.0.0.1"));
    assert_eq!(upstream.attr("http.response.status_code"), Some("200"));
    assert!(upstream.attr("cortex.cache").is_some(), "{upstream:#?}");

    // The upstream saw the same trace, with the upstream span as its parent.
    let headers = seen.lock().clone();
    assert_eq!(headers.len(), 1, "{headers:?}");
    let sent = headers[0]
        .get("traceparent")
        .unwrap_or_else(|| panic!("no traceparent upstream: {:?}", headers[0]));
    assert_eq!(
        traceparent_ids(sent),
        (TRACE.to_string(), upstream.span_id.clone())
    );
    assert_eq!(
        headers[0].get("tracestate").map(String::as_str),
        Some(TRACESTATE)
    );

    // Without `_meta`: a fresh trace, a root span, and that trace goes upstream.
    let r = call_with_meta(&client, "execute_integration", execute_args(&id), None).await;
    assert_ne!(r.is_error, Some(true), "{r:?}");
    let fresh = collector
        .wait_for("a root tools/call execute_integration", WAIT, |s| {
            is_tool_call(s, "execute_integration") && s.trace_id != TRACE
        })
        .await;
    assert!(fresh.parent_span_id.is_empty(), "a root span: {fresh:#?}");
    let headers = seen.lock().clone();
    assert_eq!(headers.len(), 2, "{headers:?}");
    let (trace, _) = traceparent_ids(&headers[1]["traceparent"]);
    assert_eq!(trace, fresh.trace_id);

    // Nothing secret, and no argument, in anything exported.
    let _ = collector
        .wait_for("the second upstream span", WAIT, |s| {
            s.parent_span_id == fresh.span_id
        })
        .await;
    for span in collector.spans() {
        let text = span.all_text();
        assert!(!text.contains(SECRET), "the token was exported: {span:#?}");
        assert!(
            !text.contains(ARG_CANARY),
            "an argument was exported: {span:#?}"
        );
        assert!(
            !text.contains("/things"),
            "a URL path was exported: {span:#?}"
        );
    }
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_still_batched_are_exported_at_shutdown() {
    let collector = Collector::start().await;
    let state = tempfile::tempdir().unwrap();
    // A 10-minute batch delay: only the shutdown flush can export the span in time.
    let client = traced_client(state.path(), &collector, "600000").await;
    let caller = format!("00-{TRACE}-{CALLER_SPAN}-01");
    let r = call_with_meta(&client, "list_integrations", json!({}), Some(&caller)).await;
    assert_ne!(r.is_error, Some(true), "{r:?}");
    assert!(collector.spans().is_empty(), "exported before shutdown");
    client.cancel().await.unwrap();
    let call = collector
        .wait_for("tools/call list_integrations after shutdown", WAIT, |s| {
            is_tool_call(s, "list_integrations")
        })
        .await;
    assert_eq!(call.trace_id, TRACE);
    assert_eq!(call.parent_span_id, CALLER_SPAN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_traceparent_starts_a_fresh_trace_and_errors_are_marked() {
    let collector = Collector::start().await;
    let state = tempfile::tempdir().unwrap();
    let client = traced_client(state.path(), &collector, "100").await;
    let garbled = "00-not-a-trace-01";
    let r = call_with_meta(
        &client,
        "execute_integration",
        json!({"integrationId": "missing", "operation": "GET /x"}),
        Some(garbled),
    )
    .await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let call = collector
        .wait_for("tools/call execute_integration", WAIT, |s| {
            is_tool_call(s, "execute_integration")
        })
        .await;
    assert!(call.parent_span_id.is_empty(), "{call:#?}");
    assert_ne!(call.trace_id, TRACE);
    assert_eq!(call.attr("cortex.outcome"), Some("isError"), "{call:#?}");
    client.cancel().await.unwrap();
}
