//! Transports: stdio and streamable HTTP, plus the process-wide log filter that
//! `logging/setLevel` adjusts. Imports `server` only.
#![allow(deprecated)] // LoggingLevel is deprecated by SEP-2577; legacy clients still send setLevel

pub mod http;
pub mod stdio;

use std::sync::OnceLock;

use rmcp::model::LoggingLevel;
use tracing_subscriber::{
    EnvFilter, Registry, layer::SubscriberExt, reload, util::SubscriberInitExt,
};

static RELOAD: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// rmcp logs whole requests (tool arguments, which may carry credentials) at debug:
/// its service module is held at info whatever the level asked for.
const QUIET_PAYLOADS: &str = "rmcp::service=info";

fn filter(directives: &str) -> EnvFilter {
    let filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    match QUIET_PAYLOADS.parse() {
        Ok(d) => filter.add_directive(d),
        Err(_) => filter,
    }
}

/// Logs to stderr only (stdout is the JSON-RPC channel on stdio). `RUST_LOG` wins over
/// `level` when set.
pub fn init_logging(level: &str) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| EnvFilter::try_new(v).is_ok())
        .map(|v| filter(&v))
        .unwrap_or_else(|| filter(level));
    let (layer, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    if tracing_subscriber::registry()
        .with(layer)
        .with(fmt)
        .try_init()
        .is_ok()
    {
        let _ = RELOAD.set(handle);
    }
}

/// Applies an MCP log level to the process filter.
pub fn set_log_level(level: LoggingLevel) {
    let directive = match level {
        LoggingLevel::Debug => "debug",
        LoggingLevel::Info | LoggingLevel::Notice => "info",
        LoggingLevel::Warning => "warn",
        _ => "error",
    };
    if let Some(handle) = RELOAD.get() {
        let _ = handle.modify(|f| *f = filter(directive));
    }
    tracing::info!(level = directive, "log level set by client");
}
