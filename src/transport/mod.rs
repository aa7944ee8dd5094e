//! Transports: stdio and streamable HTTP, plus the process's stderr log filter (set once
//! at start from `--log-level`/`RUST_LOG`; a client's `logging/setLevel` never changes
//! it, see `server`). Imports `server` only.

pub mod http;
pub mod stdio;

use tracing_subscriber::{EnvFilter, filter::LevelFilter, util::SubscriberInitExt};

/// rmcp logs whole requests (tool arguments, which may carry credentials) at debug:
/// its service module is held at info when the filter asks for more.
const QUIET_PAYLOADS: &str = "rmcp::service=info";

fn filter(directives: &str) -> EnvFilter {
    let filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    // Added only when something is more verbose than info: the directive would otherwise
    // raise rmcp's service module to info under `warn` or `error`.
    if filter
        .max_level_hint()
        .is_none_or(|max| max > LevelFilter::INFO)
    {
        match QUIET_PAYLOADS.parse() {
            Ok(d) => return filter.add_directive(d),
            Err(_) => return filter,
        }
    }
    filter
}

/// Logs to stderr only (stdout is the JSON-RPC channel on stdio). `RUST_LOG` wins over
/// `level` when set.
pub fn init_logging(level: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(log_filter(level))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .finish()
        .try_init();
}

/// The stderr log filter: `RUST_LOG` when set and valid, else `level`.
fn log_filter(level: &str) -> EnvFilter {
    std::env::var("RUST_LOG")
        .ok()
        .filter(|v| EnvFilter::try_new(v).is_ok())
        .map(|v| filter(&v))
        .unwrap_or_else(|| filter(level))
}

/// Logs as [`init_logging`] does and, with `--otlp-endpoint`, exports the server's spans
/// (`runtime::telemetry`) to the collector; the log filter applies to the log lines only.
/// Must run inside the tokio runtime (the exporter batches on it). The returned exporter
/// is flushed by [`TraceExport::shutdown`](crate::runtime::telemetry::TraceExport) when
/// serving ends.
#[cfg(feature = "otlp")]
pub fn init_logging_and_traces(
    level: &str,
    otlp: Option<&crate::config::OtlpSettings>,
    replica: Option<&str>,
) -> Result<Option<crate::runtime::telemetry::TraceExport>, crate::runtime::telemetry::TelemetryError>
{
    use tracing_subscriber::{Layer, layer::SubscriberExt};
    let Some(otlp) = otlp else {
        init_logging(level);
        return Ok(None);
    };
    let (traces, export) = crate::runtime::telemetry::layer(otlp, replica)?;
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(log_filter(level));
    let _ = tracing_subscriber::registry()
        .with(traces)
        .with(logs)
        .try_init();
    Ok(Some(export))
}

#[cfg(test)]
mod tests {
    use super::filter;

    #[test]
    fn warn_keeps_rmcp_info_out_and_debug_holds_payloads_at_info() {
        let warn = filter("warn").to_string();
        assert!(!warn.contains("rmcp"), "{warn}");
        let debug = filter("debug").to_string();
        assert!(debug.contains("rmcp::service=info"), "{debug}");
    }
}
