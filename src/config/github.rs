//! GitHub options (API base, rate-limit wait, lane maxima) and credentials (from the
//! environment only: `GITHUB_TOKEN`, `GITHUB_APP_*`), validated into [`GithubSettings`].
//!
//! Owns the github toolset's configuration; it must not touch the github toolset.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize, Serializer};

use super::{ConfigError, invalid, shown_url};

layered! {
    /// GitHub options.
    #[derive(Debug, Default, Clone, clap::Args, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub struct GithubOptions {
        /// GitHub REST base URL (Enterprise Server: https://HOST/api/v3).
        #[arg(long, global = true, env = "GITHUB_API_URL", value_name = "URL")]
        pub github_api_url: Option<String>,
        /// Longest total wait on GitHub rate limits before a tool answers with the time to retry.
        #[arg(long, global = true, env = "CORTEX_MCP_GITHUB_MAX_RATE_WAIT_SECS")]
        pub github_max_rate_wait_secs: Option<u64>,
        /// Maxima of the adaptive GitHub lane windows, e.g. `read=16,search=2,code_search=1,write=1`.
        #[arg(long, global = true, env = "CORTEX_MCP_GITHUB_MAX_CONCURRENCY", value_name = "LANE=N,...")]
        pub github_max_concurrency: Option<String>,
    }
}

impl GithubOptions {
    /// Validates and fills in the defaults (the credential is set by [`super::Config::load`]).
    pub(crate) fn settings(self) -> Result<GithubSettings, ConfigError> {
        let mut github = GithubSettings::default();
        if let Some(raw) = self.github_api_url {
            github.api_url = github_api_url(&raw)?;
        }
        if let Some(secs) = self.github_max_rate_wait_secs {
            if secs > 3600 {
                return Err(invalid("github-max-rate-wait-secs", "must be at most 3600"));
            }
            github.max_rate_wait = Duration::from_secs(secs);
        }
        if let Some(raw) = self.github_max_concurrency {
            github.max_concurrency = github_concurrency(&raw)?;
        }
        Ok(github)
    }
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

/// Shown as its kind only (`none`, `token`, `app`).
impl Serialize for GithubCredential {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.kind())
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
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GithubSettings {
    /// REST base, e.g. `https://api.github.com/` or `https://ghe.example/api/v3/` (ends in `/`).
    #[serde(serialize_with = "super::redact::url")]
    pub api_url: url::Url,
    pub credential: GithubCredential,
    /// Longest total wait on rate limits before a tool gives up and says when to retry.
    #[serde(rename = "maxRateWaitSecs", serialize_with = "super::redact::secs")]
    pub max_rate_wait: Duration,
    /// Upper bounds of the adaptive concurrency windows of each credential's lanes.
    pub max_concurrency: GithubConcurrency,
}

/// Maxima of the GitHub lanes' concurrency windows (`--github-max-concurrency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
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
    let mut url = url::Url::parse(raw.trim()).map_err(|e| {
        invalid(
            "github-api-url",
            format!("{} is not a URL: {e}", shown_url(raw)),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(
            "github-api-url",
            format!(
                "{} must be an http(s) URL such as https://api.github.com",
                shown_url(raw)
            ),
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

pub(crate) fn github_credential(env: &GithubEnv) -> Result<GithubCredential, ConfigError> {
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
