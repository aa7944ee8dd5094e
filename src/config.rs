//! The effective configuration: built-in defaults < optional TOML file < environment
//! (`CORTEX_MCP_*`) < command-line flags, validated once at start.
//!
//! Owns parsing and validation of options and the redacted view served as
//! `cortex://config`. It must not touch the runtime or any toolset.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use serde::{Deserialize, Serialize};

/// Toolsets enabled when none are named. `batch` is opt-in.
pub const DEFAULT_TOOLSETS: &[&str] = &["github", "integrations", "asbr", "mvp", "patchkit"];
/// Every toolset name the server knows.
pub const ALL_TOOLSETS: &[&str] = &["github", "integrations", "asbr", "mvp", "patchkit", "batch"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("option {option}: {reason}")]
    Invalid { option: String, reason: String },
}

fn invalid(option: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        option: option.to_string(),
        reason: reason.into(),
    }
}

/// Default bytes one client tool call may hold (`call-memory-budget-bytes`): 64 MiB.
pub const DEFAULT_CALL_MEMORY_BUDGET: u64 = 64 * 1024 * 1024;

/// Journal durability policy, shared with `runtime::journal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    Always,
    #[default]
    Batch,
    Never,
}

impl FromStr for Fsync {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(Self::Always),
            "batch" => Ok(Self::Batch),
            "never" => Ok(Self::Never),
            other => Err(format!("`{other}` is not one of always|batch|never")),
        }
    }
}

/// Options as they may appear in `cortex-mcp.toml`; every field is optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileOptions {
    pub toolsets: Option<Vec<String>>,
    pub tools: Option<Vec<String>>,
    pub exclude_tools: Option<Vec<String>>,
    pub read_only: Option<bool>,
    pub state_dir: Option<PathBuf>,
    pub log_level: Option<String>,
    pub auth_token: Option<String>,
    /// More accepted bearer tokens, each its own principal (see [`Config::auth_tokens`]).
    pub auth_tokens: Option<Vec<String>>,
    pub allowed_hosts: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub request_timeout_secs: Option<u64>,
    pub fsync: Option<Fsync>,
    pub workspace_roots: Option<Vec<PathBuf>>,
    pub http_sessions: Option<bool>,
    pub max_body_bytes: Option<usize>,
    pub github_api_url: Option<String>,
    pub github_max_rate_wait_secs: Option<u64>,
    /// Per-lane concurrency maxima, e.g. `read=16,search=2,code_search=1,write=1`.
    pub github_max_concurrency: Option<String>,
    pub connectors_manifest_path: Option<PathBuf>,
    pub advisories_dir: Option<PathBuf>,
    pub exec_allow: Option<Vec<String>>,
    pub exec_env_allow: Option<Vec<String>>,
    pub exec_max_processes: Option<usize>,
    pub exec_timeout_secs: Option<u64>,
    pub exec_sandbox: Option<ExecSandbox>,
    pub exec_network: Option<bool>,
    pub prp_history: Option<usize>,
    pub teaching_max_examples: Option<usize>,
    pub events_sink_url: Option<String>,
    pub events_sink_batching: Option<bool>,
    pub events_sink_filter: Option<String>,
    /// Integrations may reach loopback and private addresses (`--integrations-allow-private`
    /// / `--integrations-deny-private`); unset: allowed over stdio and loopback HTTP binds,
    /// denied for non-loopback HTTP binds.
    pub integrations_allow_private: Option<bool>,
    /// How long a finished asbr task stays in memory (`3600`, `90s`, `1h`).
    pub asbr_task_retention: Option<String>,
    pub http_max_sessions: Option<usize>,
    pub http_max_connections: Option<usize>,
    pub http_header_timeout_secs: Option<u64>,
    pub http_body_timeout_secs: Option<u64>,
    pub stdio_max_line_bytes: Option<usize>,
    pub call_memory_budget_bytes: Option<u64>,
}

/// Values given on the command line or in `CORTEX_MCP_*` variables (clap merges both).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub file: FileOptions,
    /// GitHub credentials, taken from the environment only (never flags or files).
    pub github_env: GithubEnv,
}

/// The conventional GitHub credential variables, as read from the environment.
#[derive(Debug, Default, Clone)]
pub struct GithubEnv {
    pub token: Option<String>,
    pub app_id: Option<String>,
    pub app_private_key: Option<String>,
    pub app_private_key_path: Option<PathBuf>,
    pub app_installation_id: Option<String>,
}

impl GithubEnv {
    /// Reads `GITHUB_TOKEN` (or `GITHUB_PERSONAL_ACCESS_TOKEN`) and the `GITHUB_APP_*` variables.
    pub fn from_process_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        GithubEnv {
            token: var("GITHUB_TOKEN").or_else(|| var("GITHUB_PERSONAL_ACCESS_TOKEN")),
            app_id: var("GITHUB_APP_ID"),
            app_private_key: var("GITHUB_APP_PRIVATE_KEY"),
            app_private_key_path: var("GITHUB_APP_PRIVATE_KEY_PATH").map(PathBuf::from),
            app_installation_id: var("GITHUB_APP_INSTALLATION_ID"),
        }
    }
}

/// A GitHub App installation's credentials.
#[derive(Clone)]
pub struct GithubApp {
    pub app_id: u64,
    pub installation_id: u64,
    /// PEM text of the RSA private key.
    pub private_key_pem: String,
}

impl std::fmt::Debug for GithubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubApp")
            .field("app_id", &self.app_id)
            .field("installation_id", &self.installation_id)
            .finish_non_exhaustive()
    }
}

/// How the github toolset authenticates.
#[derive(Clone, Default)]
pub enum GithubCredential {
    #[default]
    None,
    Token(String),
    App(GithubApp),
}

impl std::fmt::Debug for GithubCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl GithubCredential {
    pub fn kind(&self) -> &'static str {
        match self {
            GithubCredential::None => "none",
            GithubCredential::Token(_) => "token",
            GithubCredential::App(_) => "app",
        }
    }
}

/// GitHub settings: the API base and the credential.
#[derive(Debug, Clone)]
pub struct GithubSettings {
    /// REST base, e.g. `https://api.github.com/` or `https://ghe.example/api/v3/` (ends in `/`).
    pub api_url: url::Url,
    pub credential: GithubCredential,
    /// Longest total wait on rate limits before a tool gives up and says when to retry.
    pub max_rate_wait: Duration,
    /// Upper bounds of the adaptive concurrency windows of each credential's lanes.
    pub max_concurrency: GithubConcurrency,
}

/// Maxima of the GitHub lanes' concurrency windows (`--github-max-concurrency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GithubConcurrency {
    pub read: usize,
    pub search: usize,
    pub code_search: usize,
    pub write: usize,
}

impl Default for GithubConcurrency {
    fn default() -> Self {
        GithubConcurrency {
            read: 16,
            search: 2,
            code_search: 1,
            write: 1,
        }
    }
}

/// Parses `read=16,search=2,...`; unnamed lanes keep their defaults; each value 1..=64.
fn github_concurrency(raw: &str) -> Result<GithubConcurrency, ConfigError> {
    let key = "github-max-concurrency";
    let mut out = GithubConcurrency::default();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lane, n) = part
            .split_once('=')
            .ok_or_else(|| invalid(key, format!("`{part}` must look like lane=N, e.g. read=8")))?;
        let n: usize = n
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=64).contains(n))
            .ok_or_else(|| invalid(key, format!("`{part}`: N must be between 1 and 64")))?;
        match lane.trim() {
            "read" => out.read = n,
            "search" => out.search = n,
            "code_search" => out.code_search = n,
            "write" => out.write = n,
            other => {
                return Err(invalid(
                    key,
                    format!("unknown lane `{other}`; lanes are read, search, code_search, write"),
                ));
            }
        }
    }
    Ok(out)
}

impl Default for GithubSettings {
    fn default() -> Self {
        GithubSettings {
            api_url: url::Url::parse("https://api.github.com/").expect("valid default"),
            credential: GithubCredential::None,
            max_rate_wait: Duration::from_secs(90),
            max_concurrency: GithubConcurrency::default(),
        }
    }
}

fn github_api_url(raw: &str) -> Result<url::Url, ConfigError> {
    let mut url = url::Url::parse(raw.trim())
        .map_err(|e| invalid("github-api-url", format!("`{raw}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(
            "github-api-url",
            format!("`{raw}` must be an http(s) URL such as https://api.github.com"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "github-api-url",
            "must not carry a query or fragment",
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn parse_id(option: &str, raw: &str) -> Result<u64, ConfigError> {
    raw.trim()
        .parse()
        .map_err(|_| invalid(option, format!("`{raw}` is not a numeric id")))
}

fn github_credential(env: &GithubEnv) -> Result<GithubCredential, ConfigError> {
    let app_wanted = env.app_id.is_some()
        || env.app_installation_id.is_some()
        || env.app_private_key.is_some()
        || env.app_private_key_path.is_some();
    if !app_wanted {
        return Ok(env
            .token
            .clone()
            .map_or(GithubCredential::None, GithubCredential::Token));
    }
    let app_id = env.app_id.as_deref().ok_or_else(|| {
        invalid(
            "GITHUB_APP_ID",
            "is required with the other GITHUB_APP_* variables",
        )
    })?;
    let installation = env.app_installation_id.as_deref().ok_or_else(|| {
        invalid(
            "GITHUB_APP_INSTALLATION_ID",
            "is required with the other GITHUB_APP_* variables",
        )
    })?;
    let private_key_pem = match (&env.app_private_key, &env.app_private_key_path) {
        (Some(pem), _) => pem.replace("\\n", "\n"),
        (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
            invalid(
                "GITHUB_APP_PRIVATE_KEY_PATH",
                format!("{}: {e}", path.display()),
            )
        })?,
        (None, None) => {
            return Err(invalid(
                "GITHUB_APP_PRIVATE_KEY",
                "set it (PEM text) or GITHUB_APP_PRIVATE_KEY_PATH",
            ));
        }
    };
    if !private_key_pem.contains("PRIVATE KEY-----") {
        return Err(invalid(
            "GITHUB_APP_PRIVATE_KEY",
            "is not a PEM private key (-----BEGIN ... PRIVATE KEY-----)",
        ));
    }
    Ok(GithubCredential::App(GithubApp {
        app_id: parse_id("GITHUB_APP_ID", app_id)?,
        installation_id: parse_id("GITHUB_APP_INSTALLATION_ID", installation)?,
        private_key_pem,
    }))
}

/// Programs the mvp executor may start when `--exec-allow` is not given (bare names,
/// resolved on PATH; never a shell).
pub const DEFAULT_EXEC_ALLOW: &[&str] = &[
    "cargo",
    "cargo-nextest",
    "python3",
    "python",
    "pytest",
    "ruff",
    "npx",
    "node",
    "eslint",
    "vitest",
    "jest",
    "git",
];

/// Environment variables passed to child processes besides PATH and HOME.
pub const DEFAULT_EXEC_ENV_ALLOW: &[&str] = &[
    "LANG",
    "LC_ALL",
    "TERM",
    "TMPDIR",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "CARGO_TARGET_DIR",
    "VIRTUAL_ENV",
    "PYENV_ROOT",
    "PYENV_VERSION",
    "NODE_PATH",
];

/// How the mvp executor confines child processes (`--exec-sandbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ExecSandbox {
    /// The strongest mechanism this kernel offers (Landlock); children are refused when
    /// there is none, so running unconfined is never silent.
    #[default]
    Auto,
    /// Landlock (filesystem, TCP and scope rules), applied in the child before exec.
    Landlock,
    /// No confinement (logged as a warning at start).
    None,
}

impl FromStr for ExecSandbox {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "landlock" => Ok(Self::Landlock),
            "none" => Ok(Self::None),
            other => Err(format!("`{other}` is not one of auto|landlock|none")),
        }
    }
}

/// Settings of the mvp toolset's secure executor, PRP history and teaching store.
#[derive(Debug, Clone)]
pub struct MvpSettings {
    /// Program names the executor may start.
    pub exec_allow: Vec<String>,
    /// Environment variables kept for children besides PATH and HOME.
    pub exec_env_allow: Vec<String>,
    /// Processes running at once; more wait in the `exec` lane's queue.
    pub exec_max_processes: usize,
    /// Default timeout of one process.
    pub exec_timeout: Duration,
    /// How children are confined.
    pub exec_sandbox: ExecSandbox,
    /// Whether children may open network connections (off by default).
    pub exec_network: bool,
    /// PRP runs kept (a ring: the oldest is evicted).
    pub prp_history: usize,
    /// Teaching examples kept (the oldest is evicted).
    pub teaching_max_examples: usize,
}

impl Default for MvpSettings {
    fn default() -> Self {
        MvpSettings {
            exec_allow: DEFAULT_EXEC_ALLOW.iter().map(|s| s.to_string()).collect(),
            exec_env_allow: DEFAULT_EXEC_ENV_ALLOW
                .iter()
                .map(|s| s.to_string())
                .collect(),
            exec_max_processes: 10,
            exec_timeout: Duration::from_secs(30),
            exec_sandbox: ExecSandbox::Auto,
            exec_network: false,
            prp_history: 1000,
            teaching_max_examples: 10_000,
        }
    }
}

fn mvp_settings(
    allow: Option<Vec<String>>,
    env_allow: Option<Vec<String>>,
    max_processes: Option<usize>,
    timeout_secs: Option<u64>,
    prp_history: Option<usize>,
    teaching_max: Option<usize>,
) -> Result<MvpSettings, ConfigError> {
    let mut s = MvpSettings::default();
    if let Some(allow) = allow {
        let allow: Vec<String> = allow
            .into_iter()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        for name in &allow {
            let bad = name.contains('/')
                || name.contains('\\')
                || name.starts_with('.')
                || name.chars().any(|c| c.is_whitespace() || c.is_control());
            if bad {
                return Err(invalid(
                    "exec-allow",
                    format!("`{name}` must be a bare program name (resolved on PATH), not a path"),
                ));
            }
        }
        s.exec_allow = allow;
    }
    if let Some(env) = env_allow {
        for name in &env {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(invalid(
                    "exec-env-allow",
                    format!("`{name}` is not an environment variable name"),
                ));
            }
        }
        s.exec_env_allow = env;
    }
    if let Some(n) = max_processes {
        if n == 0 || n > 256 {
            return Err(invalid("exec-max-processes", "must be between 1 and 256"));
        }
        s.exec_max_processes = n;
    }
    if let Some(secs) = timeout_secs {
        if secs == 0 || secs > 3600 {
            return Err(invalid("exec-timeout-secs", "must be between 1 and 3600"));
        }
        s.exec_timeout = Duration::from_secs(secs);
    }
    if let Some(n) = prp_history {
        if n == 0 || n > 1_000_000 {
            return Err(invalid("prp-history", "must be between 1 and 1000000"));
        }
        s.prp_history = n;
    }
    if let Some(n) = teaching_max {
        if n == 0 || n > 10_000_000 {
            return Err(invalid(
                "teaching-max-examples",
                "must be between 1 and 10000000",
            ));
        }
        s.teaching_max_examples = n;
    }
    Ok(s)
}

/// The validated, effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub toolsets: Vec<String>,
    pub tools: Option<BTreeSet<String>>,
    pub exclude_tools: BTreeSet<String>,
    pub read_only: bool,
    pub state_dir: PathBuf,
    pub log_level: String,
    pub auth_token: Option<String>,
    /// More accepted HTTP bearer tokens besides `auth_token`; each token authenticates
    /// its own principal (`token:<fingerprint>`), which owns what it creates.
    pub auth_tokens: Vec<String>,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
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
    /// The config file read at start, if any (logged and shown in `cortex://config`).
    pub config_file: Option<PathBuf>,
    /// Bytes of results and working data one client tool call may hold, nested calls
    /// (graph nodes, map items, batch items) included.
    pub call_memory_budget: u64,
}

/// Containment limits of the transports (all enforced before the bearer check).
#[derive(Debug, Clone)]
pub struct TransportLimits {
    /// HTTP sessions alive at once (`--http-sessions`); past it `initialize` gets 503.
    pub http_max_sessions: usize,
    /// TCP connections served at once; more wait in the listen backlog.
    pub http_max_connections: usize,
    /// Time a client has to send a request's headers (also the keep-alive idle limit).
    pub http_header_timeout: Duration,
    /// Time a client has to send a request's whole body.
    pub http_body_timeout: Duration,
    /// Longest stdio line; a longer one is skipped and answered -32600.
    pub stdio_max_line_bytes: usize,
}

impl Default for TransportLimits {
    fn default() -> Self {
        TransportLimits {
            http_max_sessions: 1000,
            http_max_connections: 512,
            http_header_timeout: Duration::from_secs(10),
            http_body_timeout: Duration::from_secs(30),
            stdio_max_line_bytes: 8 * 1024 * 1024,
        }
    }
}

fn transport_limits(
    over: &FileOptions,
    file: &FileOptions,
) -> Result<TransportLimits, ConfigError> {
    let d = TransportLimits::default();
    let ranged = |name: &str, v: Option<u64>, min: u64, max: u64, default: u64| match v {
        None => Ok(default),
        Some(v) if (min..=max).contains(&v) => Ok(v),
        Some(_) => Err(invalid(name, format!("must be between {min} and {max}"))),
    };
    let as_u64 = |v: Option<usize>| v.map(|v| v as u64);
    Ok(TransportLimits {
        http_max_sessions: ranged(
            "http-max-sessions",
            as_u64(over.http_max_sessions.or(file.http_max_sessions)),
            1,
            1_000_000,
            d.http_max_sessions as u64,
        )? as usize,
        http_max_connections: ranged(
            "http-max-connections",
            as_u64(over.http_max_connections.or(file.http_max_connections)),
            1,
            65_536,
            d.http_max_connections as u64,
        )? as usize,
        http_header_timeout: Duration::from_secs(ranged(
            "http-header-timeout-secs",
            over.http_header_timeout_secs
                .or(file.http_header_timeout_secs),
            1,
            3600,
            d.http_header_timeout.as_secs(),
        )?),
        http_body_timeout: Duration::from_secs(ranged(
            "http-body-timeout-secs",
            over.http_body_timeout_secs.or(file.http_body_timeout_secs),
            1,
            3600,
            d.http_body_timeout.as_secs(),
        )?),
        stdio_max_line_bytes: ranged(
            "stdio-max-line-bytes",
            as_u64(over.stdio_max_line_bytes.or(file.stdio_max_line_bytes)),
            1024,
            1 << 30,
            d.stdio_max_line_bytes as u64,
        )? as usize,
    })
}

/// Where and how events are forwarded over HTTP.
#[derive(Debug, Clone)]
pub struct EventsSink {
    pub url: url::Url,
    /// Micro-batches (JSON arrays of up to 25 events or 50 ms) instead of one event per POST.
    pub batching: bool,
    /// Event types forwarded (`*`, a prefix like `integrations.*`, or one type).
    pub filter: String,
}

fn events_sink(
    url: Option<String>,
    batching: Option<bool>,
    filter: Option<String>,
) -> Result<Option<EventsSink>, ConfigError> {
    let Some(raw) = url.filter(|u| !u.trim().is_empty()) else {
        return Ok(None);
    };
    let url = url::Url::parse(raw.trim())
        .map_err(|e| invalid("events-sink-url", format!("`{raw}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid("events-sink-url", "must be an http(s) URL"));
    }
    Ok(Some(EventsSink {
        url,
        batching: batching.unwrap_or(false),
        filter: filter.unwrap_or_else(|| "*".into()),
    }))
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

/// Settings of the `asbr` toolset.
#[derive(Clone, Default)]
pub struct AsbrSettings {
    /// Connector manifest (`--connectors-manifest-path`, `CONNECTORS_MANIFEST_PATH`).
    pub connectors_manifest_path: Option<PathBuf>,
    /// HMAC key of the service map, from `CONNECTORS_SIGNATURE_KEY` only (never flags or files).
    pub signature_key: Option<String>,
    /// Directory of OSV advisories (`--advisories-dir`, `ASBR_ADVISORIES_DIR`).
    pub advisories_dir: Option<PathBuf>,
    /// How long a finished task stays in memory (`--asbr-task-retention`); `None`: 1 h.
    pub task_retention: Option<Duration>,
}

impl std::fmt::Debug for AsbrSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsbrSettings")
            .field("connectors_manifest_path", &self.connectors_manifest_path)
            .field(
                "signature_key",
                &self.signature_key.as_ref().map(|_| "[redacted]"),
            )
            .field("advisories_dir", &self.advisories_dir)
            .field("task_retention", &self.task_retention)
            .finish()
    }
}

/// Keys that widen what the server may do: never taken from a file inside a workspace root.
pub const WIDENING_KEYS: &[&str] = &[
    "exec-allow",
    "exec-env-allow",
    "workspace-roots",
    "github-api-url",
    "events-sink-url",
    "connectors-manifest-path",
    "allowed-hosts",
    "allowed-origins",
];

impl FileOptions {
    /// The [`WIDENING_KEYS`] this layer sets.
    fn widening_keys(&self) -> Vec<&'static str> {
        let set = [
            self.exec_allow.is_some(),
            self.exec_env_allow.is_some(),
            self.workspace_roots.is_some(),
            self.github_api_url.is_some(),
            self.events_sink_url.is_some(),
            self.connectors_manifest_path.is_some(),
            self.allowed_hosts.is_some(),
            self.allowed_origins.is_some(),
        ];
        WIDENING_KEYS
            .iter()
            .zip(set)
            .filter_map(|(k, on)| on.then_some(*k))
            .collect()
    }
}

/// The user's config file: `$XDG_CONFIG_HOME/cortex-mcp/config.toml` (platform config dir).
pub fn user_config_file() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("cortex-mcp").join("config.toml"))
}

/// Which config file to read: `--config`/`CORTEX_MCP_CONFIG` when given (it must exist),
/// else the user's config file when present. Never the working directory implicitly.
fn config_source(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(path) => Some(path.to_path_buf()),
        None => user_config_file().filter(|p| p.is_file()),
    }
}

/// Refuses a file that sets widening keys while it lies inside a workspace root (the
/// roots in effect: given ones, else the current directory), where the agent, or the
/// repository that was opened, could have written it.
fn check_file_placement(
    path: &Path,
    file: &FileOptions,
    roots: &[PathBuf],
) -> Result<(), ConfigError> {
    let keys = file.widening_keys();
    if keys.is_empty() {
        return Ok(());
    }
    let Ok(canonical) = path.canonicalize() else {
        return Ok(());
    };
    let roots: Vec<PathBuf> = if roots.is_empty() {
        std::env::current_dir().into_iter().collect()
    } else {
        roots.to_vec()
    };
    let inside = roots
        .iter()
        .filter_map(|r| r.canonicalize().ok())
        .find(|r| canonical.starts_with(r));
    match inside {
        Some(root) => Err(ConfigError::File {
            path: path.display().to_string(),
            reason: format!(
                "sets {} but lies inside the workspace root {}, where a repository or an agent could have written it; \
                 these keys are only read from a file outside every workspace root (e.g. {}) or from flags/CORTEX_MCP_* variables",
                keys.join(", "),
                root.display(),
                user_config_file()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "the user config directory".into()),
            ),
        }),
        None => Ok(()),
    }
}

impl Config {
    /// Defaults < file (`--config`/`CORTEX_MCP_CONFIG`, else the user's config file when
    /// present; never `./cortex-mcp.toml` implicitly) < overrides.
    pub fn load(overrides: Overrides) -> Result<Self, ConfigError> {
        let source = config_source(overrides.config.as_deref());
        let file = match &source {
            Some(path) => read_file(path)?,
            None => FileOptions::default(),
        };
        if let Some(path) = &source {
            let roots = overrides
                .file
                .workspace_roots
                .clone()
                .or_else(|| file.workspace_roots.clone())
                .unwrap_or_default();
            check_file_placement(path, &file, &roots)?;
        }
        let mut config = Self::from_layers(file, overrides.file)?;
        config.config_file = source;
        config.github.credential = github_credential(&overrides.github_env)?;
        config.asbr.signature_key = std::env::var("CONNECTORS_SIGNATURE_KEY")
            .ok()
            .filter(|k| !k.is_empty());
        Ok(config)
    }

    /// Merges a file layer and an override layer over the defaults, then validates.
    pub fn from_layers(file: FileOptions, over: FileOptions) -> Result<Self, ConfigError> {
        macro_rules! pick {
            ($f:ident) => {
                over.$f.clone().or(file.$f.clone())
            };
        }
        let toolsets = expand_toolsets(pick!(toolsets))?;
        let log_level = pick!(log_level).unwrap_or_else(|| "info".into());
        tracing_level_check(&log_level)?;
        let allowed_hosts = pick!(allowed_hosts)
            .unwrap_or_else(|| vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]);
        let allowed_origins = pick!(allowed_origins).unwrap_or_default();
        for origin in &allowed_origins {
            if origin != "null" && !origin.contains("://") {
                return Err(invalid(
                    "allowed-origins",
                    format!("`{origin}` must include a scheme, e.g. http://localhost:*"),
                ));
            }
        }
        let timeout = pick!(request_timeout_secs).unwrap_or(120);
        if timeout == 0 || timeout > 3600 {
            return Err(invalid(
                "request-timeout-secs",
                "must be between 1 and 3600",
            ));
        }
        let auth_token = pick!(auth_token).filter(|t| !t.is_empty());
        if let Some(token) = &auth_token
            && token.len() < 16
        {
            return Err(invalid("auth-token", "must be at least 16 characters"));
        }
        let auth_tokens = pick!(auth_tokens).unwrap_or_default();
        for (i, token) in auth_tokens.iter().enumerate() {
            if token.len() < 16 {
                return Err(invalid(
                    "auth-tokens",
                    format!("token {} must be at least 16 characters", i + 1),
                ));
            }
            if auth_token.as_ref() == Some(token) || auth_tokens[..i].contains(token) {
                return Err(invalid(
                    "auth-tokens",
                    format!("token {} is given twice; each client needs its own", i + 1),
                ));
            }
        }
        let workspace_roots = pick!(workspace_roots).unwrap_or_default();
        let mut github = GithubSettings::default();
        if let Some(raw) = pick!(github_api_url) {
            github.api_url = github_api_url(&raw)?;
        }
        if let Some(secs) = pick!(github_max_rate_wait_secs) {
            if secs > 3600 {
                return Err(invalid("github-max-rate-wait-secs", "must be at most 3600"));
            }
            github.max_rate_wait = Duration::from_secs(secs);
        }
        if let Some(raw) = pick!(github_max_concurrency) {
            github.max_concurrency = github_concurrency(&raw)?;
        }
        let mut mvp = mvp_settings(
            pick!(exec_allow),
            pick!(exec_env_allow),
            pick!(exec_max_processes),
            pick!(exec_timeout_secs),
            pick!(prp_history),
            pick!(teaching_max_examples),
        )?;
        mvp.exec_sandbox = pick!(exec_sandbox).unwrap_or_default();
        mvp.exec_network = pick!(exec_network).unwrap_or(false);
        let events_sink = events_sink(
            pick!(events_sink_url),
            pick!(events_sink_batching),
            pick!(events_sink_filter),
        )?;
        let call_memory_budget =
            pick!(call_memory_budget_bytes).unwrap_or(DEFAULT_CALL_MEMORY_BUDGET);
        if !(1024 * 1024..=1 << 40).contains(&call_memory_budget) {
            return Err(invalid(
                "call-memory-budget-bytes",
                "must be between 1048576 (1 MiB) and 1099511627776 (1 TiB)",
            ));
        }
        let task_retention = pick!(asbr_task_retention)
            .map(|raw| task_retention(&raw))
            .transpose()?;
        let limits = transport_limits(&over, &file)?;
        Ok(Config {
            limits,
            call_memory_budget,
            events_sink,
            integrations_allow_private: pick!(integrations_allow_private),
            config_file: None,
            toolsets,
            tools: pick!(tools).map(|t| t.into_iter().collect()),
            exclude_tools: pick!(exclude_tools)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            read_only: pick!(read_only).unwrap_or(false),
            state_dir: pick!(state_dir).unwrap_or_else(default_state_dir),
            log_level,
            auth_token,
            auth_tokens,
            allowed_hosts,
            allowed_origins,
            request_timeout: Duration::from_secs(timeout),
            fsync: pick!(fsync).unwrap_or_default(),
            workspace_roots,
            http_sessions: pick!(http_sessions).unwrap_or(false),
            max_body_bytes: pick!(max_body_bytes).unwrap_or(4 * 1024 * 1024),
            conformance_fixtures: false,
            github,
            asbr: AsbrSettings {
                connectors_manifest_path: pick!(connectors_manifest_path),
                signature_key: None,
                advisories_dir: pick!(advisories_dir),
                task_retention,
            },
            mvp,
        })
    }

    /// Whether a toolset is enabled.
    pub fn toolset_enabled(&self, name: &str) -> bool {
        self.toolsets.iter().any(|t| t == name)
    }

    /// The configuration as served by `cortex://config`: secrets replaced by a marker.
    pub fn redacted(&self) -> serde_json::Value {
        serde_json::json!({
            "configFile": self.config_file,
            "toolsets": self.toolsets,
            "tools": self.tools,
            "excludeTools": self.exclude_tools,
            "readOnly": self.read_only,
            "stateDir": self.state_dir,
            "logLevel": self.log_level,
            "authToken": self.auth_token.as_ref().map(|_| "[redacted]"),
            "authTokens": self.auth_tokens.iter().map(|_| "[redacted]").collect::<Vec<_>>(),
            "allowedHosts": self.allowed_hosts,
            "allowedOrigins": self.allowed_origins,
            "requestTimeoutSecs": self.request_timeout.as_secs(),
            "fsync": self.fsync,
            "workspaceRoots": self.workspace_roots,
            "httpSessions": self.http_sessions,
            "maxBodyBytes": self.max_body_bytes,
            "limits": {
                "httpMaxSessions": self.limits.http_max_sessions,
                "httpMaxConnections": self.limits.http_max_connections,
                "httpHeaderTimeoutSecs": self.limits.http_header_timeout.as_secs(),
                "httpBodyTimeoutSecs": self.limits.http_body_timeout.as_secs(),
                "stdioMaxLineBytes": self.limits.stdio_max_line_bytes,
            },
            "callMemoryBudgetBytes": self.call_memory_budget,
            "github": {
                "apiUrl": redact_url(&self.github.api_url),
                "credential": self.github.credential.kind(),
                "maxRateWaitSecs": self.github.max_rate_wait.as_secs(),
            },
            "asbr": {
                "connectorsManifestPath": self.asbr.connectors_manifest_path,
                "signatureKey": self.asbr.signature_key.as_ref().map(|_| "[redacted]"),
                "advisoriesDir": self.asbr.advisories_dir,
                "taskRetentionSecs": self.asbr.task_retention.map(|d| d.as_secs()),
            },
            "integrationsAllowPrivate": self.integrations_allow_private,
            "eventsSink": self.events_sink.as_ref().map(|s| serde_json::json!({
                "url": redact_url(&s.url),
                "batching": s.batching,
                "filter": s.filter,
            })),
            "mvp": {
                "execAllow": self.mvp.exec_allow,
                "execEnvAllow": self.mvp.exec_env_allow,
                "execMaxProcesses": self.mvp.exec_max_processes,
                "execTimeoutSecs": self.mvp.exec_timeout.as_secs(),
                "execSandbox": self.mvp.exec_sandbox,
                "execNetwork": self.mvp.exec_network,
                "prpHistory": self.mvp.prp_history,
                "teachingMaxExamples": self.mvp.teaching_max_examples,
            },
        })
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
            .map(String::as_str)
    }

    /// Checks that an HTTP bind address is allowed by the auth settings.
    pub fn check_bind(&self, addr: SocketAddr) -> Result<(), ConfigError> {
        if !addr.ip().is_loopback() && self.bearer_tokens().next().is_none() {
            return Err(invalid(
                "http",
                format!(
                    "binding {addr} (not loopback) requires an auth token: set CORTEX_MCP_AUTH_TOKEN or --auth-token"
                ),
            ));
        }
        Ok(())
    }
}

/// Query parameter names whose values are treated as secrets (compared lowercase; a
/// name containing one of these is redacted).
const SECRET_PARAMS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "key",
    "signature",
    "sig",
    "auth",
    "credential",
    "code",
];

/// A URL safe to show or log: userinfo replaced by `[redacted]`, secret-looking query
/// values replaced by `[redacted]`.
pub fn redact_url(url: &url::Url) -> String {
    let mut out = url.clone();
    if !out.username().is_empty() || out.password().is_some() {
        let _ = out.set_password(None);
        let _ = out.set_username("[redacted]");
    }
    if out.query().is_some() {
        let pairs: Vec<(String, String)> = out
            .query_pairs()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                let secret = SECRET_PARAMS.iter().any(|s| lower.contains(s));
                (
                    k.into_owned(),
                    if secret {
                        "[redacted]".into()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        out.query_pairs_mut().clear().extend_pairs(pairs);
    }
    out.set_fragment(None);
    // Brackets stay readable: `[redacted]` is percent-encoded by the serializer.
    out.as_str().replace("%5Bredacted%5D", "[redacted]")
}

fn read_file(path: &Path) -> Result<FileOptions, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn expand_toolsets(requested: Option<Vec<String>>) -> Result<Vec<String>, ConfigError> {
    let Some(requested) = requested else {
        return Ok(DEFAULT_TOOLSETS.iter().map(|s| s.to_string()).collect());
    };
    let mut out: Vec<String> = Vec::new();
    for name in requested.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let names: &[&str] = match name {
            "all" => ALL_TOOLSETS,
            "default" => DEFAULT_TOOLSETS,
            other if ALL_TOOLSETS.contains(&other) => {
                std::slice::from_ref(ALL_TOOLSETS.iter().find(|t| **t == other).expect("checked"))
            }
            other => {
                return Err(invalid(
                    "toolsets",
                    format!(
                        "unknown toolset `{other}`; known: {}, default, all",
                        ALL_TOOLSETS.join(", ")
                    ),
                ));
            }
        };
        for n in names {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        }
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_enable_the_five_toolsets() {
        let c = Config::from_layers(FileOptions::default(), FileOptions::default()).unwrap();
        assert_eq!(c.toolsets, DEFAULT_TOOLSETS);
        assert!(!c.toolset_enabled("batch"));
    }

    #[test]
    fn github_max_concurrency_is_parsed_and_checked() {
        let over = FileOptions {
            github_max_concurrency: Some("read=4, write=2".into()),
            ..Default::default()
        };
        let c = Config::from_layers(FileOptions::default(), over).unwrap();
        assert_eq!(
            c.github.max_concurrency,
            GithubConcurrency {
                read: 4,
                write: 2,
                ..Default::default()
            }
        );
        for bad in ["read=0", "read=65", "reads=4", "read"] {
            let over = FileOptions {
                github_max_concurrency: Some(bad.into()),
                ..Default::default()
            };
            let e = Config::from_layers(FileOptions::default(), over).unwrap_err();
            assert!(e.to_string().contains("github-max-concurrency"), "{e}");
        }
    }

    #[test]
    fn flags_override_file() {
        let file = FileOptions {
            read_only: Some(false),
            toolsets: Some(vec!["github".into()]),
            ..Default::default()
        };
        let over = FileOptions {
            read_only: Some(true),
            ..Default::default()
        };
        let c = Config::from_layers(file, over).unwrap();
        assert!(c.read_only);
        assert_eq!(c.toolsets, vec!["github"]);
    }

    #[test]
    fn unknown_toolset_names_the_option() {
        let over = FileOptions {
            toolsets: Some(vec!["nope".into()]),
            ..Default::default()
        };
        let err = Config::from_layers(FileOptions::default(), over)
            .unwrap_err()
            .to_string();
        assert!(err.contains("toolsets") && err.contains("nope"), "{err}");
    }

    #[test]
    fn non_loopback_bind_needs_token() {
        let c = Config::from_layers(FileOptions::default(), FileOptions::default()).unwrap();
        assert!(c.check_bind("0.0.0.0:7439".parse().unwrap()).is_err());
        assert!(c.check_bind("127.0.0.1:7439".parse().unwrap()).is_ok());
    }

    #[test]
    fn integrations_private_default_follows_the_bind() {
        let base = Config::from_layers(FileOptions::default(), FileOptions::default()).unwrap();
        let mut c = base.clone();
        c.settle_integrations_private(None);
        assert_eq!(c.integrations_allow_private, Some(true));
        let mut c = base.clone();
        c.settle_integrations_private(Some("127.0.0.1:7439".parse().unwrap()));
        assert_eq!(c.integrations_allow_private, Some(true));
        let mut c = base.clone();
        c.settle_integrations_private(Some("0.0.0.0:7439".parse().unwrap()));
        assert_eq!(c.integrations_allow_private, Some(false));
        let over = FileOptions {
            integrations_allow_private: Some(true),
            ..Default::default()
        };
        let mut c = Config::from_layers(FileOptions::default(), over).unwrap();
        c.settle_integrations_private(Some("0.0.0.0:7439".parse().unwrap()));
        assert_eq!(c.integrations_allow_private, Some(true));
    }

    #[test]
    fn mvp_options_are_validated_by_name() {
        let over = FileOptions {
            exec_allow: Some(vec!["/bin/sh".into()]),
            ..Default::default()
        };
        let err = Config::from_layers(FileOptions::default(), over)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exec-allow"), "{err}");
        let over = FileOptions {
            prp_history: Some(0),
            ..Default::default()
        };
        let err = Config::from_layers(FileOptions::default(), over)
            .unwrap_err()
            .to_string();
        assert!(err.contains("prp-history"), "{err}");
    }

    #[test]
    fn redacted_config_hides_token() {
        let over = FileOptions {
            auth_token: Some("s3cret-token-0123456789".into()),
            ..Default::default()
        };
        let c = Config::from_layers(FileOptions::default(), over).unwrap();
        assert!(!c.redacted().to_string().contains("s3cret"));
    }

    #[test]
    fn asbr_task_retention_takes_seconds_or_durations() {
        let with = |raw: &str| {
            let over = FileOptions {
                asbr_task_retention: Some(raw.into()),
                ..Default::default()
            };
            Config::from_layers(FileOptions::default(), over).map(|c| c.asbr.task_retention)
        };
        assert_eq!(with("90").unwrap(), Some(Duration::from_secs(90)));
        assert_eq!(with("2h").unwrap(), Some(Duration::from_secs(7200)));
        for bad in ["0", "soon", "400days"] {
            let err = with(bad).unwrap_err().to_string();
            assert!(err.contains("asbr-task-retention"), "{err}");
        }
    }

    #[test]
    fn urls_are_redacted() {
        let url = url::Url::parse(
            "https://bob:hunter2@sink.example/in?access_token=abc123&topic=x&api_key=k9",
        )
        .unwrap();
        let shown = redact_url(&url);
        for secret in ["bob", "hunter2", "abc123", "k9"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(
            shown.contains("topic=x") && shown.contains("sink.example/in"),
            "{shown}"
        );
        let plain = url::Url::parse("https://api.github.com/").unwrap();
        assert_eq!(redact_url(&plain), "https://api.github.com/");
    }

    #[test]
    fn widening_keys_from_inside_a_root_are_refused() {
        let root = std::env::temp_dir().join(format!("cortex-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&root).unwrap();
        let path = root.join("cortex-mcp.toml");
        std::fs::write(&path, "").unwrap();
        let widening = FileOptions {
            exec_allow: Some(vec!["sh".into()]),
            events_sink_url: Some("http://x.example/".into()),
            ..Default::default()
        };
        let err = check_file_placement(&path, &widening, std::slice::from_ref(&root))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("exec-allow") && err.contains("events-sink-url"),
            "{err}"
        );
        let narrow = FileOptions {
            exec_timeout_secs: Some(5),
            ..Default::default()
        };
        assert!(check_file_placement(&path, &narrow, std::slice::from_ref(&root)).is_ok());
        let elsewhere = std::env::temp_dir().join(format!("cortex-other-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&elsewhere).unwrap();
        assert!(check_file_placement(&path, &widening, std::slice::from_ref(&elsewhere)).is_ok());
        std::fs::remove_dir_all(root).unwrap();
        std::fs::remove_dir_all(elsewhere).unwrap();
    }
}
