//! The effective configuration: built-in defaults < optional TOML file < environment
//! (`CORTEX_MCP_*`) < command-line flags, validated once at start.
//!
//! Each option is defined once, as a field of an area's option struct ([`options`] and the
//! area modules) deriving both `clap::Args` and `serde::Deserialize`; clap merges flags
//! over the environment, [`Options::or`] lays that over the file, and each area validates
//! its part into typed settings. [`Config`]'s own `Serialize` (secrets as
//! [`Secret`], URLs redacted) is the view served as `cortex://config`.
//!
//! Owns parsing, validation and the redacted view. It must not touch the runtime or any
//! toolset.

use std::{collections::BTreeSet, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use serde::{Deserialize, Serialize};

#[macro_use]
mod options;
mod asbr;
mod events;
mod file;
mod github;
mod integrations;
mod mvp;
mod oauth;
mod otlp;
mod redact;
mod store;
mod transport;

#[cfg(test)]
mod tests;

pub use asbr::{AsbrOptions, AsbrSettings};
pub use events::{EventsOptions, EventsSink};
pub use file::{WIDENING_KEYS, user_config_file};
pub use github::{
    GithubApp, GithubConcurrency, GithubCredential, GithubEnv, GithubOptions, GithubSettings,
};
pub use integrations::IntegrationsOptions;
pub use mvp::{DEFAULT_EXEC_ALLOW, DEFAULT_EXEC_ENV_ALLOW, ExecSandbox, MvpOptions, MvpSettings};
pub use oauth::{
    OAuthOptions, OAuthSettings, RateLimit, RatePeriod, SCOPE_READ, SCOPE_WRITE, check_scope,
    is_loopback_host,
};
pub use options::{CoreOptions, Options};
pub use otlp::{OTLP_TRACES_PATH, OtlpOptions, OtlpSettings};
pub use redact::{REDACTED, Secret, redact_url, shown_url};
pub use store::{STORE_KEY_ENV, StoreOptions, StoreSettings};
pub use transport::{TransportLimits, TransportOptions};

/// Toolsets enabled whole when none are named. `batch` is opt-in.
pub const DEFAULT_TOOLSETS: &[&str] = &["integrations", "asbr", "mvp", "patchkit"];
/// Groups of a toolset enabled by default besides [`DEFAULT_TOOLSETS`]: like the official
/// GitHub server's default, repositories, issues and pull requests; `github.actions`,
/// `github.releases`, `github.triage` (or `github`, `all`) are opt-in, which keeps the
/// default catalog within its budget.
pub const DEFAULT_GROUPS: &[&str] = &["github.repos", "github.issues", "github.pulls"];
/// Every toolset name the server knows.
pub const ALL_TOOLSETS: &[&str] = &["github", "integrations", "asbr", "mvp", "patchkit", "batch"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("option {option}: {reason}")]
    Invalid { option: String, reason: String },
}

/// A value that is not one of an option's fixed choices.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("`{value}` is not one of {choices}")]
pub struct NotAChoice {
    pub value: String,
    pub choices: &'static str,
}

fn invalid(option: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        option: option.to_string(),
        reason: reason.into(),
    }
}

/// Default bytes one client tool call may hold (`call-memory-budget-bytes`): 64 MiB.
pub const DEFAULT_CALL_MEMORY_BUDGET: u64 = 64 * 1024 * 1024;

/// When journal appends are made durable before they are acknowledged: `always` (fsync
/// after every record), `batch` (one fsync per writer batch), `never` (the OS decides).
/// The one definition: the runtime's store uses it as is (`runtime::store::Fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    Always,
    #[default]
    Batch,
    Never,
}

impl FromStr for Fsync {
    type Err = NotAChoice;
    fn from_str(s: &str) -> Result<Self, NotAChoice> {
        match s {
            "always" => Ok(Self::Always),
            "batch" => Ok(Self::Batch),
            "never" => Ok(Self::Never),
            other => Err(NotAChoice {
                value: other.to_string(),
                choices: "always|batch|never",
            }),
        }
    }
}

/// The validated, effective configuration. Its `Serialize` output is `cortex://config`:
/// every field is shown, secrets as `[redacted]`, URLs through [`redact_url`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// The config file read at start, if any (logged and shown in `cortex://config`).
    pub config_file: Option<PathBuf>,
    /// Toolsets enabled whole.
    pub toolsets: Vec<String>,
    /// Groups (`github.actions`) named in `toolsets` whose toolset is not enabled whole:
    /// only their tools are offered. The server checks the names against the groups the
    /// toolsets define.
    pub toolset_groups: Vec<String>,
    pub tools: Option<BTreeSet<String>>,
    pub exclude_tools: BTreeSet<String>,
    pub read_only: bool,
    /// `--dynamic-toolsets`: `toolsets` are the ones enabled at a session's start; the
    /// discovery tools enable any other known toolset for that session.
    pub dynamic_toolsets: bool,
    pub state_dir: PathBuf,
    pub log_level: String,
    pub auth_token: Option<Secret>,
    /// More accepted HTTP bearer tokens besides `auth_token`; each token authenticates
    /// its own principal (`token:<fingerprint>`), which owns what it creates.
    pub auth_tokens: Vec<Secret>,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    #[serde(rename = "requestTimeoutSecs", serialize_with = "redact::secs")]
    pub request_timeout: Duration,
    pub fsync: Fsync,
    pub workspace_roots: Vec<PathBuf>,
    pub http_sessions: bool,
    pub max_body_bytes: usize,
    pub conformance_fixtures: bool,
    pub github: GithubSettings,
    pub mvp: MvpSettings,
    pub asbr: AsbrSettings,
    /// The outbound event sink (A2A bus), off unless a URL is set.
    pub events_sink: Option<EventsSink>,
    /// Whether integrations may reach loopback/private addresses; `None` until the
    /// transport is known ([`Config::settle_integrations_private`]), read as allowed.
    pub integrations_allow_private: Option<bool>,
    /// Containment limits of the transports.
    pub limits: TransportLimits,
    /// The OAuth 2.1 resource server (`--oauth-issuer`), off when `None`.
    pub oauth: Option<OAuthSettings>,
    /// Requests per principal on `/mcp` and `/metrics` (`--http-rate-limit`), off when `None`.
    pub http_rate_limit: Option<RateLimit>,
    /// Bytes of results and working data one client tool call may hold, nested calls
    /// (graph nodes, map items, batch items) included.
    #[serde(rename = "callMemoryBudgetBytes")]
    pub call_memory_budget: u64,
    /// The `replica` label of every metric (`--replica-id`), none when `None`.
    pub replica_id: Option<String>,
    /// Where the event-sourced store lives (`--store`): local files or a shared Redis.
    pub store: StoreSettings,
    /// OpenTelemetry trace export (`--otlp-endpoint`), off when `None`.
    pub otlp: Option<OtlpSettings>,
}

impl Config {
    /// Defaults < file (`--config`/`CORTEX_MCP_CONFIG`, else the user's config file when
    /// present; never `./cortex-mcp.toml` implicitly) < `options` (flags over environment,
    /// as clap merged them). GitHub credentials and the connector signature key come from
    /// the process environment.
    pub fn load(options: Options) -> Result<Self, ConfigError> {
        let source = file::config_source(options.config.as_deref());
        let file = match &source {
            Some(path) => {
                let layer = file::read_file(path)?;
                let roots = options
                    .core
                    .workspace_roots
                    .clone()
                    .or_else(|| layer.options.core.workspace_roots.clone())
                    .unwrap_or_default();
                file::check_file_placement(path, &layer.keys, &roots)?;
                layer.options
            }
            None => Options::default(),
        };
        let mut config = Self::from_layers(file, options)?;
        config.config_file = source;
        config.github.credential = github::github_credential(&GithubEnv::from_process_env())?;
        config.asbr.signature_key = std::env::var("CONNECTORS_SIGNATURE_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .map(Secret::from);
        config.store =
            std::mem::take(&mut config.store).with_key(std::env::var(STORE_KEY_ENV).ok())?;
        Ok(config)
    }

    /// Merges a file layer and an override layer over the defaults, then validates.
    pub fn from_layers(file: Options, over: Options) -> Result<Self, ConfigError> {
        let o = over.or(file);
        let core = o.core;
        let dynamic_toolsets = core.dynamic_toolsets.unwrap_or(false);
        // Dynamic mode starts with only the toolsets named; every known one can be enabled.
        let (toolsets, toolset_groups) = match core.toolsets {
            None if dynamic_toolsets => (Vec::new(), Vec::new()),
            requested => expand_toolsets(requested)?,
        };
        let log_level = core.log_level.unwrap_or_else(|| "info".into());
        tracing_level_check(&log_level)?;
        let transport = o.transport.settings()?;
        let access = o.oauth.settings()?;
        let timeout = core.request_timeout_secs.unwrap_or(120);
        if timeout == 0 || timeout > 3600 {
            return Err(invalid(
                "request-timeout-secs",
                "must be between 1 and 3600",
            ));
        }
        let call_memory_budget = core
            .call_memory_budget_bytes
            .unwrap_or(DEFAULT_CALL_MEMORY_BUDGET);
        if !(1024 * 1024..=1 << 40).contains(&call_memory_budget) {
            return Err(invalid(
                "call-memory-budget-bytes",
                "must be between 1048576 (1 MiB) and 1099511627776 (1 TiB)",
            ));
        }
        let replica_id = core.replica_id.map(replica_label).transpose()?;
        Ok(Config {
            config_file: None,
            toolsets,
            toolset_groups,
            tools: core.tools.map(|t| t.into_iter().collect()),
            exclude_tools: core.exclude_tools.unwrap_or_default().into_iter().collect(),
            read_only: core.read_only.unwrap_or(false),
            dynamic_toolsets,
            state_dir: core.state_dir.unwrap_or_else(default_state_dir),
            log_level,
            auth_token: transport.auth_token,
            auth_tokens: transport.auth_tokens,
            allowed_hosts: transport.allowed_hosts,
            allowed_origins: transport.allowed_origins,
            request_timeout: Duration::from_secs(timeout),
            fsync: core.fsync.unwrap_or_default(),
            workspace_roots: core.workspace_roots.unwrap_or_default(),
            http_sessions: transport.http_sessions,
            max_body_bytes: transport.max_body_bytes,
            conformance_fixtures: false,
            github: o.github.settings()?,
            mvp: o.mvp.settings()?,
            asbr: o.asbr.settings()?,
            events_sink: o.events.settings()?,
            integrations_allow_private: o.integrations.integrations_allow_private,
            limits: transport.limits,
            oauth: access.oauth,
            http_rate_limit: access.http_rate_limit,
            call_memory_budget,
            replica_id,
            store: o.store.settings()?,
            otlp: o.otlp.settings()?,
        })
    }

    /// Whether a toolset is enabled whole.
    pub fn toolset_enabled(&self, name: &str) -> bool {
        self.toolsets.iter().any(|t| t == name)
    }

    /// Whether a toolset is enabled whole or some of its groups are.
    pub fn toolset_wanted(&self, name: &str) -> bool {
        self.toolset_enabled(name)
            || self
                .toolset_groups
                .iter()
                .any(|g| g.split_once('.').is_some_and(|(t, _)| t == name))
    }

    /// Whether `--toolsets` keeps a tool of `toolset` in `group` (`github.actions`): yes
    /// unless the toolset is enabled through some of its groups only and `group` is not
    /// one of them. (Whether a toolset is built at all is decided apart.)
    pub fn group_selected(&self, toolset: &str, group: Option<&str>) -> bool {
        self.toolset_enabled(toolset)
            || !self.toolset_wanted(toolset)
            || group.is_some_and(|g| self.toolset_groups.iter().any(|n| n == g))
    }

    /// The configuration as served by `cortex://config`: secrets replaced by a marker.
    pub fn redacted(&self) -> serde_json::Value {
        serde_json::to_value(self)
            .unwrap_or_else(|e| serde_json::json!({ "error": format!("not shown: {e}") }))
    }

    /// Fixes the integrations' private-address default once the transport is known:
    /// allowed over stdio and loopback binds, denied for other HTTP binds.
    pub fn settle_integrations_private(&mut self, http_bind: Option<SocketAddr>) {
        let default = http_bind.is_none_or(|a| a.ip().is_loopback());
        self.integrations_allow_private = Some(self.integrations_allow_private.unwrap_or(default));
    }

    /// Every accepted HTTP bearer token: `auth_token`, then `auth_tokens`.
    pub fn bearer_tokens(&self) -> impl Iterator<Item = &str> {
        self.auth_token
            .iter()
            .chain(&self.auth_tokens)
            .map(|s| s.expose())
    }

    /// Whether HTTP requests must authenticate (a bearer token or OAuth is configured).
    pub fn http_auth_required(&self) -> bool {
        self.oauth.is_some() || self.bearer_tokens().next().is_some()
    }

    /// Checks that an HTTP bind address is allowed by the auth settings.
    pub fn check_bind(&self, addr: SocketAddr) -> Result<(), ConfigError> {
        if !addr.ip().is_loopback() && !self.http_auth_required() {
            return Err(invalid(
                "http",
                format!(
                    "binding {addr} (not loopback) requires an auth token: set CORTEX_MCP_AUTH_TOKEN or --auth-token (or OAuth: --oauth-issuer with --oauth-audience)"
                ),
            ));
        }
        Ok(())
    }
}

/// `--replica-id`, checked to be a plain label value.
fn replica_label(id: String) -> Result<String, ConfigError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if (1..=64).contains(&id.len()) && id.chars().all(plain) {
        Ok(id)
    } else {
        Err(invalid(
            "replica-id",
            "must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-'",
        ))
    }
}

/// `--toolsets` into the toolsets enabled whole and the groups (`github.actions`) named
/// of the others, each once, in the order named.
fn expand_toolsets(
    requested: Option<Vec<String>>,
) -> Result<(Vec<String>, Vec<String>), ConfigError> {
    let requested = requested.unwrap_or_else(|| vec!["default".to_string()]);
    let mut out: Vec<String> = Vec::new();
    let mut groups: Vec<String> = Vec::new();
    let unknown = |name: &str| {
        invalid(
            "toolsets",
            format!(
                "unknown toolset `{name}`; known: {}, default, all, or a group such as github.actions",
                ALL_TOOLSETS.join(", ")
            ),
        )
    };
    for name in requested.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if name == "default" {
            for group in DEFAULT_GROUPS {
                if !groups.iter().any(|g| g == group) {
                    groups.push(group.to_string());
                }
            }
        }
        let names: &[&str] = match name {
            "all" => ALL_TOOLSETS,
            "default" => DEFAULT_TOOLSETS,
            other if ALL_TOOLSETS.contains(&other) => {
                std::slice::from_ref(ALL_TOOLSETS.iter().find(|t| **t == other).expect("checked"))
            }
            other => match other.split_once('.') {
                Some((toolset, part)) if ALL_TOOLSETS.contains(&toolset) && !part.is_empty() => {
                    if !groups.iter().any(|g| g == other) {
                        groups.push(other.to_string());
                    }
                    continue;
                }
                _ => return Err(unknown(other)),
            },
        };
        for n in names {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        }
    }
    // A toolset enabled whole has all its groups.
    groups.retain(|g| {
        g.split_once('.')
            .is_none_or(|(t, _)| !out.iter().any(|o| o == t))
    });
    Ok((out, groups))
}

fn tracing_level_check(level: &str) -> Result<(), ConfigError> {
    tracing_subscriber::EnvFilter::try_new(level)
        .map(|_| ())
        .map_err(|e| invalid("log-level", format!("`{level}`: {e}")))
}

fn default_state_dir() -> PathBuf {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("cortex-mcp")
}
