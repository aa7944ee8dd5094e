//! OpenTelemetry traces (`--otlp-endpoint`, cargo feature `otlp`): the spans the server
//! exports (one per tool call, one per upstream HTTP request), W3C trace-context
//! propagation in (a request's `_meta.traceparent`/`tracestate`) and out (the
//! `traceparent` header of upstream requests), and the OTLP/HTTP exporter itself.
//!
//! Only spans with the target [`TARGET`] are exported: the exporting layer takes nothing
//! else, so no log line (which may name a URL or a path) ever leaves as a span event. The
//! spans are at TRACE level, so with export off (and logs below trace) they are never
//! created. Their fields carry names, hosts, statuses and outcomes, never arguments,
//! tokens or URLs.
//!
//! Owns the exporter and the span shapes. It must not know any toolset or the server,
//! and it never logs what it exports. Without the `otlp` feature every helper here does
//! nothing (and `--otlp-endpoint` is refused by the config).

use http::HeaderMap;

/// The target of every exported span.
pub const TARGET: &str = "cortex_mcp::otel";

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTLP trace exporter for {endpoint}: {message}")]
    Exporter { endpoint: String, message: String },
}

/// The span of one client `tools/call`: `tool` and `toolset` are the registry's names
/// (never the caller's text for an unknown tool); `cortex.outcome` is recorded by
/// [`record_tool_outcome`].
pub fn tool_call_span(tool: &str, toolset: &str) -> tracing::Span {
    tracing::trace_span!(
        target: TARGET,
        "tools/call",
        otel.name = %format_args!("tools/call {tool}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        mcp.method.name = "tools/call",
        gen_ai.tool.name = %tool,
        cortex.toolset = %toolset,
        cortex.outcome = tracing::field::Empty,
    )
}

/// How a tool call ended, as recorded on its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolOutcome {
    Ok,
    /// A result with `isError: true`.
    IsError,
    /// The call asked the client for input (a round).
    InputRequired,
    /// The call became a task.
    Task,
    /// A JSON-RPC error.
    ProtocolError,
}

impl ToolOutcome {
    fn as_str(self) -> &'static str {
        match self {
            ToolOutcome::Ok => "ok",
            ToolOutcome::IsError => "isError",
            ToolOutcome::InputRequired => "input_required",
            ToolOutcome::Task => "task",
            ToolOutcome::ProtocolError => "protocol_error",
        }
    }
}

pub fn record_tool_outcome(span: &tracing::Span, outcome: ToolOutcome) {
    span.record("cortex.outcome", outcome.as_str());
    if matches!(outcome, ToolOutcome::IsError | ToolOutcome::ProtocolError) {
        span.record("otel.status_code", "error");
    }
}

/// The span of one upstream request (all its attempts and redirects): method and host
/// only, never the path or query (which may carry identifiers or keys).
pub fn upstream_span(method: &str, host: &str) -> tracing::Span {
    tracing::trace_span!(
        target: TARGET,
        "upstream",
        otel.name = %method,
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        server.address = %host,
        http.response.status_code = tracing::field::Empty,
        cortex.cache = tracing::field::Empty,
        cortex.attempts = tracing::field::Empty,
        error.type = tracing::field::Empty,
    )
}

/// Records an upstream answer: status, cache outcome (`miss`, `revalidated` for a 304
/// served from the cache, `shared` for a joined in-flight request, `bypass`), attempts.
pub fn record_upstream_answer(span: &tracing::Span, status: u16, cache: &str, attempts: u32) {
    span.record("http.response.status_code", status);
    span.record("cortex.cache", cache);
    span.record("cortex.attempts", attempts);
    if status >= 500 {
        span.record("otel.status_code", "error");
    }
}

/// Records an upstream failure by its kind (a fixed word, never the message).
pub fn record_upstream_failure(span: &tracing::Span, kind: &'static str) {
    span.record("error.type", kind);
    span.record("otel.status_code", "error");
}

/// Makes `span` (created, not yet entered) a child of the W3C trace context given by a
/// request; a missing or invalid `traceparent` leaves it a root (a fresh trace).
pub fn adopt_parent(span: &tracing::Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    #[cfg(feature = "otlp")]
    otlp::adopt_parent(span, traceparent, tracestate);
    #[cfg(not(feature = "otlp"))]
    let _ = (span, traceparent, tracestate);
}

/// Writes `span`'s W3C `traceparent` (and `tracestate`) into outbound `headers`; nothing
/// when the span is not exported.
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    #[cfg(feature = "otlp")]
    otlp::inject(span, headers);
    #[cfg(not(feature = "otlp"))]
    let _ = (span, headers);
}

#[cfg(feature = "otlp")]
pub use otlp::{TraceExport, layer};

#[cfg(feature = "otlp")]
mod otlp {
    use std::time::Duration;

    use http::{HeaderMap, HeaderName, HeaderValue};
    use opentelemetry::{
        KeyValue,
        propagation::{Extractor, Injector, TextMapPropagator},
        trace::{TraceContextExt, TracerProvider as _},
    };
    use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
    use opentelemetry_sdk::{
        Resource, propagation::TraceContextPropagator, runtime::Tokio, trace::SdkTracerProvider,
        trace::span_processor_with_async_runtime::BatchSpanProcessor,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::{Layer, Registry, filter::filter_fn};

    use super::{TARGET, TelemetryError};
    use crate::config::{OtlpSettings, redact_url};

    /// The longest `tracestate` taken from a request (the W3C limit is 32 list members;
    /// 512 bytes is the length vendors are asked to keep it under).
    const MAX_TRACESTATE: usize = 512;

    /// How long one export POST may take.
    const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
    /// How long shutdown waits for the last spans to be exported.
    const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

    /// The running exporter; [`TraceExport::shutdown`] exports what is still batched.
    pub struct TraceExport {
        provider: SdkTracerProvider,
    }

    impl TraceExport {
        /// Exports the spans still batched (up to 10 s) and stops the exporter.
        pub async fn shutdown(self) {
            let provider = self.provider;
            let flushed = tokio::time::timeout(
                FLUSH_TIMEOUT,
                tokio::task::spawn_blocking(move || provider.shutdown()),
            )
            .await;
            match flushed {
                Ok(Ok(Ok(()))) => tracing::debug!("trace exporter flushed"),
                Ok(Ok(Err(e))) => tracing::warn!("trace exporter shutdown: {e}"),
                Ok(Err(e)) => tracing::warn!("trace exporter shutdown: {e}"),
                Err(_) => tracing::warn!(
                    "trace exporter shutdown: spans not exported within {} s",
                    FLUSH_TIMEOUT.as_secs()
                ),
            }
        }
    }

    /// The exporting layer (spans of [`TARGET`] only) and its exporter: OTLP/HTTP
    /// protobuf over reqwest, batched on the tokio runtime. Must run inside the runtime.
    /// `replica` becomes the resource's `service.instance.id`.
    pub fn layer(
        settings: &OtlpSettings,
        replica: Option<&str>,
    ) -> Result<(Box<dyn Layer<Registry> + Send + Sync>, TraceExport), TelemetryError> {
        let failed = |message: String| TelemetryError::Exporter {
            endpoint: redact_url(&settings.traces_url),
            message,
        };
        let client = reqwest::Client::builder()
            .user_agent(crate::runtime::USER_AGENT)
            .timeout(EXPORT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(settings.traces_url.as_str())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let processor = BatchSpanProcessor::builder(exporter, Tokio).build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource(replica))
            .build();
        let tracer = provider.tracer("cortex-mcp");
        let layer = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(filter_fn(|meta| meta.target() == TARGET));
        Ok((Box::new(layer), TraceExport { provider }))
    }

    fn resource(replica: Option<&str>) -> Resource {
        let mut builder = Resource::builder()
            .with_service_name("cortex-mcp")
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
        if let Some(id) = replica {
            builder = builder.with_attribute(KeyValue::new("service.instance.id", id.to_string()));
        }
        builder.build()
    }

    /// The two trace-context values of a request, as a propagator carrier.
    struct MetaCarrier<'a> {
        traceparent: &'a str,
        tracestate: Option<&'a str>,
    }

    impl Extractor for MetaCarrier<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            match key {
                "traceparent" => Some(self.traceparent),
                "tracestate" => self.tracestate,
                _ => None,
            }
        }
        fn keys(&self) -> Vec<&str> {
            vec!["traceparent", "tracestate"]
        }
    }

    pub(super) fn adopt_parent(
        span: &tracing::Span,
        traceparent: Option<&str>,
        tracestate: Option<&str>,
    ) {
        // A traceparent is 55 characters (version 00); anything much longer is not one.
        let Some(traceparent) = traceparent.filter(|t| t.len() <= 128) else {
            return;
        };
        let carrier = MetaCarrier {
            traceparent,
            tracestate: tracestate.filter(|s| s.len() <= MAX_TRACESTATE),
        };
        let parent = TraceContextPropagator::new().extract(&carrier);
        if parent.span().span_context().is_valid() {
            // Fails only when the span is not exported (disabled): nothing to adopt.
            let _ = span.set_parent(parent);
        }
    }

    struct HeaderCarrier<'a>(&'a mut HeaderMap);

    impl Injector for HeaderCarrier<'_> {
        fn set(&mut self, key: &str, value: String) {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(key.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                self.0.insert(name, value);
            }
        }
    }

    pub(super) fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
        let cx = span.context();
        if cx.span().span_context().is_valid() {
            TraceContextPropagator::new().inject_context(&cx, &mut HeaderCarrier(headers));
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn an_oversized_or_garbled_traceparent_is_no_parent() {
            let carrier = MetaCarrier {
                traceparent: "00-zz-00f067aa0ba902b7-01",
                tracestate: None,
            };
            let cx = TraceContextPropagator::new().extract(&carrier);
            assert!(!cx.span().span_context().is_valid());
        }
    }
}
