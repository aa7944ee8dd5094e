//! A fake OpenTelemetry collector and a header-recording upstream, on loopback, for the
//! trace tests: the collector accepts OTLP/HTTP protobuf POSTs at `/v1/traces` (anything
//! else is refused) and decodes them with the OTLP message types.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    http::{HeaderMap, StatusCode},
    routing::{any, post},
};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value},
};
use prost::Message;

/// One exported span, flattened: ids in lower-case hex (empty parent = a root).
#[derive(Debug, Clone)]
pub struct ExportedSpan {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub trace_state: String,
    pub name: String,
    /// OTLP `SpanKind` (2 server, 3 client).
    pub kind: i32,
    pub attributes: BTreeMap<String, String>,
    /// Its events' names and attributes, flattened to text.
    pub events: Vec<String>,
    pub resource: BTreeMap<String, String>,
}

impl ExportedSpan {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    /// Every text of the span a secret could hide in.
    pub fn all_text(&self) -> String {
        format!(
            "{} {:?} {:?} {:?} {}",
            self.name, self.attributes, self.resource, self.events, self.trace_state
        )
    }
}

/// The fake collector; `url` is its base (what `--otlp-endpoint` takes).
pub struct Collector {
    pub url: String,
    spans: Arc<parking_lot::Mutex<Vec<ExportedSpan>>>,
}

impl Collector {
    pub async fn start() -> Self {
        let spans: Arc<parking_lot::Mutex<Vec<ExportedSpan>>> = Arc::default();
        let sink = spans.clone();
        let app = Router::new()
            .route(
                "/v1/traces",
                post(move |headers: HeaderMap, body: Bytes| {
                    let sink = sink.clone();
                    async move { accept(&sink, &headers, &body) }
                }),
            )
            .fallback(any(|| async { StatusCode::NOT_FOUND }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Collector {
            url: format!("http://{addr}"),
            spans,
        }
    }

    pub fn spans(&self) -> Vec<ExportedSpan> {
        self.spans.lock().clone()
    }

    /// The first exported span matching `pred`, polled until `timeout` (spans leave the
    /// server after its batch delay or at its shutdown).
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&ExportedSpan) -> bool,
    ) -> ExportedSpan {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(span) = self.spans.lock().iter().find(|s| pred(s)) {
                return span.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no exported span {what} within {timeout:?}; exported: {:#?}",
                self.spans()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

fn accept(
    sink: &parking_lot::Mutex<Vec<ExportedSpan>>,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, Vec<u8>) {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != "application/x-protobuf" {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new());
    }
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    let mut spans = sink.lock();
    for resource_spans in request.resource_spans {
        let resource = attributes(
            resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default(),
        );
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push(ExportedSpan {
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    trace_state: span.trace_state,
                    name: span.name,
                    kind: span.kind,
                    attributes: attributes(span.attributes),
                    events: span
                        .events
                        .into_iter()
                        .map(|e| format!("{} {:?}", e.name, attributes(e.attributes)))
                        .collect(),
                    resource: resource.clone(),
                });
            }
        }
    }
    // An empty ExportTraceServiceResponse is zero bytes.
    (StatusCode::OK, Vec::new())
}

fn attributes(kvs: Vec<KeyValue>) -> BTreeMap<String, String> {
    kvs.into_iter()
        .map(|kv| (kv.key, kv.value.map(text).unwrap_or_default()))
        .collect()
}

fn text(value: AnyValue) -> String {
    match value.value {
        Some(any_value::Value::StringValue(s)) => s,
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// Every request a recording upstream saw: lower-cased header name → value.
pub type SeenHeaders = Arc<parking_lot::Mutex<Vec<HashMap<String, String>>>>;

/// A loopback HTTP server that records each request's headers and answers 200
/// `{"ok":true}`; returns what it saw and its base URL.
pub async fn recording_upstream() -> (SeenHeaders, String) {
    let seen: SeenHeaders = Arc::default();
    let s = seen.clone();
    let app = Router::new().fallback(any(move |h: HeaderMap| {
        let s = s.clone();
        async move {
            s.lock().push(
                h.iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect(),
            );
            axum::Json(serde_json::json!({"ok": true}))
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (seen, format!("http://{addr}"))
}
