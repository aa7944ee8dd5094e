//! The OpenTelemetry trace export option (`--otlp-endpoint`), validated into
//! [`OtlpSettings`].
//!
//! Owns the option and its validation; it must not touch the runtime's telemetry (which
//! builds the exporter) or any toolset.

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid, shown_url};

/// The OTLP/HTTP path of the traces signal, appended to the endpoint's base URL.
pub const OTLP_TRACES_PATH: &str = "v1/traces";

layered! {
    /// Trace export options.
    #[derive(Debug, Default, Clone, clap::Args, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub struct OtlpOptions {
        /// Export OpenTelemetry traces (a span per tool call and per upstream request) to
        /// this OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (`/v1/traces` is appended);
        /// off when unset.
        #[arg(long, global = true, env = "CORTEX_MCP_OTLP_ENDPOINT", value_name = "URL")]
        pub otlp_endpoint: Option<String>,
    }
}

/// Where traces are exported.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OtlpSettings {
    /// The collector's traces URL (the endpoint with `/v1/traces`).
    #[serde(serialize_with = "super::redact::url")]
    pub traces_url: url::Url,
}

impl OtlpOptions {
    /// The exporter's settings when an endpoint is set; validated, and refused by a build
    /// without the `otlp` feature.
    pub(crate) fn settings(self) -> Result<Option<OtlpSettings>, ConfigError> {
        let Some(raw) = self.otlp_endpoint.filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        if !cfg!(feature = "otlp") {
            return Err(invalid(
                "otlp-endpoint",
                format!(
                    "{} is set but this build has no OpenTelemetry support (cargo feature `otlp`)",
                    shown_url(&raw)
                ),
            ));
        }
        let url = url::Url::parse(raw.trim()).map_err(|e| {
            invalid(
                "otlp-endpoint",
                format!("{} is not a URL: {e}", shown_url(&raw)),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(
                "otlp-endpoint",
                format!("{} must be an http(s) URL", shown_url(&raw)),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "otlp-endpoint",
                format!(
                    "{} carries credentials: give the collector's credentials as headers in OTEL_EXPORTER_OTLP_HEADERS instead (never logged or shown)",
                    shown_url(&raw)
                ),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(
                "otlp-endpoint",
                format!(
                    "{} must be the collector's base URL, without query or fragment",
                    shown_url(&raw)
                ),
            ));
        }
        Ok(Some(OtlpSettings {
            traces_url: traces_url(url),
        }))
    }
}

/// The base URL with `/v1/traces` appended, unless it already ends with it.
fn traces_url(mut base: url::Url) -> url::Url {
    let path = base.path().trim_end_matches('/').to_string();
    if !path.ends_with(&format!("/{OTLP_TRACES_PATH}")) {
        base.set_path(&format!("{path}/{OTLP_TRACES_PATH}"));
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(raw: &str) -> Result<Option<OtlpSettings>, ConfigError> {
        OtlpOptions {
            otlp_endpoint: Some(raw.to_string()),
        }
        .settings()
    }

    #[cfg(feature = "otlp")]
    #[test]
    fn the_traces_path_is_appended_once() {
        for (raw, want) in [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("http://c:4318/", "http://c:4318/v1/traces"),
            ("https://c/otlp/", "https://c/otlp/v1/traces"),
            ("http://c:4318/v1/traces", "http://c:4318/v1/traces"),
        ] {
            let got = settings(raw).unwrap().unwrap();
            assert_eq!(got.traces_url.as_str(), want, "{raw}");
        }
        assert!(settings("  ").unwrap().is_none());
    }

    #[cfg(feature = "otlp")]
    #[test]
    fn bad_endpoints_are_refused_without_their_credentials() {
        for raw in [
            "ftp://user:hunter2@c/",
            "http://user:hunter2@c/",
            "http://c/?api_key=hunter2",
            "not a url",
        ] {
            let e = settings(raw).unwrap_err().to_string();
            assert!(e.contains("otlp-endpoint"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[cfg(feature = "otlp")]
    #[test]
    fn the_config_view_shows_the_traces_url_redacted() {
        let over = crate::config::Options {
            otlp: OtlpOptions {
                otlp_endpoint: Some("https://otel.example:4318/".into()),
            },
            ..Default::default()
        };
        let c = crate::config::Config::from_layers(Default::default(), over).unwrap();
        let shown = &c.redacted()["otlp"]["tracesUrl"];
        assert_eq!(shown, "https://otel.example:4318/v1/traces");
        let off = crate::config::Config::from_layers(Default::default(), Default::default());
        assert!(off.unwrap().redacted()["otlp"].is_null());
    }

    #[cfg(not(feature = "otlp"))]
    #[test]
    fn a_build_without_the_feature_refuses_the_endpoint() {
        let e = settings("http://user:hunter2@c:4318")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cargo feature `otlp`"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}
