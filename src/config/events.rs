//! Options of the outbound event sink (A2A bus), validated into [`EventsSink`].
//!
//! Owns the sink's configuration; it must not touch `runtime::events`.

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid, shown_url};

layered! {
    /// Event sink options.
    #[derive(Debug, Default, Clone, clap::Args, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub struct EventsOptions {
        /// Forward events over HTTP POST to this URL (an A2A bus); off when unset.
        #[arg(long, global = true, env = "CORTEX_MCP_EVENTS_SINK_URL", value_name = "URL")]
        pub events_sink_url: Option<String>,
        /// Send micro-batches (JSON arrays, up to 25 events or 50 ms) instead of one event per POST.
        #[arg(long, global = true, env = "CORTEX_MCP_EVENTS_SINK_BATCHING", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
        pub events_sink_batching: Option<bool>,
        /// Event types forwarded: `*` (default), a prefix like `integrations.*`, or one type.
        #[arg(long, global = true, env = "CORTEX_MCP_EVENTS_SINK_FILTER")]
        pub events_sink_filter: Option<String>,
    }
}

/// Where and how events are forwarded over HTTP.
#[derive(Debug, Clone, Serialize)]
pub struct EventsSink {
    #[serde(serialize_with = "super::redact::url")]
    pub url: url::Url,
    /// Micro-batches (JSON arrays of up to 25 events or 50 ms) instead of one event per POST.
    pub batching: bool,
    /// Event types forwarded (`*`, a prefix like `integrations.*`, or one type).
    pub filter: String,
}

impl EventsOptions {
    /// The sink, when a URL is set; validated.
    pub(crate) fn settings(self) -> Result<Option<EventsSink>, ConfigError> {
        let Some(raw) = self.events_sink_url.filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let url = url::Url::parse(raw.trim()).map_err(|e| {
            invalid(
                "events-sink-url",
                format!("{} is not a URL: {e}", shown_url(&raw)),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(
                "events-sink-url",
                format!("{} must be an http(s) URL", shown_url(&raw)),
            ));
        }
        Ok(Some(EventsSink {
            url,
            batching: self.events_sink_batching.unwrap_or(false),
            filter: self.events_sink_filter.unwrap_or_else(|| "*".into()),
        }))
    }
}
