//! Options of the asbr toolset (connector manifest, advisories, task retention) and its
//! signature key (from `CONNECTORS_SIGNATURE_KEY` only), validated into [`AsbrSettings`].
//!
//! Owns the asbr toolset's configuration; it must not touch the asbr toolset.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid, redact::Secret};

layered! {
    /// ASBR options.
    #[derive(Debug, Default, Clone, clap::Args, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub struct AsbrOptions {
        /// Connector manifest JSON served (signed) by `get_connector_service_map`.
        #[arg(long, global = true, env = "CONNECTORS_MANIFEST_PATH", value_name = "PATH")]
        pub connectors_manifest_path: Option<PathBuf>,
        /// Directory of OSV advisories (*.json) for `run_security_scan` dependency checks.
        #[arg(long, global = true, env = "ASBR_ADVISORIES_DIR", value_name = "DIR")]
        pub advisories_dir: Option<PathBuf>,
        /// How long a finished asbr task stays in memory: seconds or a duration like `90s`, `1h`.
        #[arg(long, global = true, env = "CORTEX_MCP_ASBR_TASK_RETENTION", value_name = "DURATION")]
        pub asbr_task_retention: Option<String>,
    }
}

/// Settings of the `asbr` toolset.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AsbrSettings {
    /// Connector manifest (`--connectors-manifest-path`, `CONNECTORS_MANIFEST_PATH`).
    pub connectors_manifest_path: Option<PathBuf>,
    /// HMAC key of the service map, from `CONNECTORS_SIGNATURE_KEY` only (never flags or files).
    pub signature_key: Option<Secret>,
    /// Directory of OSV advisories (`--advisories-dir`, `ASBR_ADVISORIES_DIR`).
    pub advisories_dir: Option<PathBuf>,
    /// How long a finished task stays in memory (`--asbr-task-retention`); `None`: 1 h.
    #[serde(
        rename = "taskRetentionSecs",
        serialize_with = "super::redact::opt_secs"
    )]
    pub task_retention: Option<Duration>,
}

impl AsbrOptions {
    /// Validates (the signature key is set by [`super::Config::load`]).
    pub(crate) fn settings(self) -> Result<AsbrSettings, ConfigError> {
        Ok(AsbrSettings {
            connectors_manifest_path: self.connectors_manifest_path,
            signature_key: None,
            advisories_dir: self.advisories_dir,
            task_retention: self
                .asbr_task_retention
                .map(|raw| task_retention(&raw))
                .transpose()?,
        })
    }
}

/// `--asbr-task-retention`: seconds (`3600`) or a humantime duration (`90s`, `1h`),
/// between 1 s and 365 days.
fn task_retention(raw: &str) -> Result<Duration, ConfigError> {
    let raw = raw.trim();
    let parsed = match raw.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(raw)
            .map_err(|e| invalid("asbr-task-retention", format!("`{raw}`: {e}")))?,
    };
    if parsed < Duration::from_secs(1) || parsed > Duration::from_secs(365 * 24 * 3600) {
        return Err(invalid(
            "asbr-task-retention",
            "must be between 1s and 365 days",
        ));
    }
    Ok(parsed)
}
