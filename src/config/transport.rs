//! Options of the transports: HTTP auth, Host/Origin checks, sessions, body size and the
//! containment limits of HTTP and stdio, with their validation.
//!
//! Owns [`TransportOptions`] and [`TransportLimits`]; it must not touch the transports.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid, redact::Secret};

layered! {
    /// HTTP and stdio options.
    #[derive(Debug, Default, Clone, clap::Args, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub struct TransportOptions {
        /// Bearer token required on HTTP requests (required for non-loopback binds).
        #[arg(long, global = true, env = "CORTEX_MCP_AUTH_TOKEN", hide_env_values = true)]
        pub auth_token: Option<Secret>,
        /// More HTTP bearer tokens (comma-separated), one per client: each authenticates its
        /// own principal, which owns what it creates.
        #[arg(long, global = true, env = "CORTEX_MCP_AUTH_TOKENS", hide_env_values = true, value_delimiter = ',')]
        pub auth_tokens: Option<Vec<Secret>>,
        /// Accepted Host header values (comma-separated).
        #[arg(long, global = true, env = "CORTEX_MCP_ALLOWED_HOSTS", value_delimiter = ',')]
        pub allowed_hosts: Option<Vec<String>>,
        /// Accepted Origin values, with scheme (comma-separated).
        #[arg(long, global = true, env = "CORTEX_MCP_ALLOWED_ORIGINS", value_delimiter = ',')]
        pub allowed_origins: Option<Vec<String>>,
        /// Keep 2025-11-25 HTTP sessions (server-initiated streams) instead of stateless JSON.
        #[arg(long, global = true, env = "CORTEX_MCP_HTTP_SESSIONS", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
        pub http_sessions: Option<bool>,
        /// Largest HTTP request body in bytes (default 4 MiB); a larger one gets 413.
        #[arg(long, global = true, env = "CORTEX_MCP_MAX_BODY_BYTES")]
        pub max_body_bytes: Option<usize>,
        /// HTTP sessions alive at once (`--http-sessions`); past it `initialize` gets 503 with Retry-After.
        #[arg(long, global = true, env = "CORTEX_MCP_HTTP_MAX_SESSIONS")]
        pub http_max_sessions: Option<usize>,
        /// TCP connections the HTTP server serves at once; more wait in the listen backlog.
        #[arg(long, global = true, env = "CORTEX_MCP_HTTP_MAX_CONNECTIONS")]
        pub http_max_connections: Option<usize>,
        /// Seconds a client has to send a request's headers (and an idle keep-alive connection lasts).
        #[arg(long, global = true, env = "CORTEX_MCP_HTTP_HEADER_TIMEOUT_SECS")]
        pub http_header_timeout_secs: Option<u64>,
        /// Seconds a client has to send a whole request body (408 after).
        #[arg(long, global = true, env = "CORTEX_MCP_HTTP_BODY_TIMEOUT_SECS")]
        pub http_body_timeout_secs: Option<u64>,
        /// Longest stdio line in bytes; a longer one is skipped and answered -32600.
        #[arg(long, global = true, env = "CORTEX_MCP_STDIO_MAX_LINE_BYTES")]
        pub stdio_max_line_bytes: Option<usize>,
    }
}

/// The validated transport settings (spread over [`super::Config`]'s fields).
pub(crate) struct TransportSettings {
    pub auth_token: Option<Secret>,
    pub auth_tokens: Vec<Secret>,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub http_sessions: bool,
    pub max_body_bytes: usize,
    pub limits: TransportLimits,
}

/// Containment limits of the transports (all enforced before the bearer check).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransportLimits {
    /// HTTP sessions alive at once (`--http-sessions`); past it `initialize` gets 503.
    pub http_max_sessions: usize,
    /// TCP connections served at once; more wait in the listen backlog.
    pub http_max_connections: usize,
    /// Time a client has to send a request's headers (also the keep-alive idle limit).
    #[serde(
        rename = "httpHeaderTimeoutSecs",
        serialize_with = "super::redact::secs"
    )]
    pub http_header_timeout: Duration,
    /// Time a client has to send a request's whole body.
    #[serde(rename = "httpBodyTimeoutSecs", serialize_with = "super::redact::secs")]
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

/// `v` when within `min..=max`, `default` when unset.
fn ranged(
    name: &str,
    v: Option<u64>,
    min: u64,
    max: u64,
    default: u64,
) -> Result<u64, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) if (min..=max).contains(&v) => Ok(v),
        Some(_) => Err(invalid(name, format!("must be between {min} and {max}"))),
    }
}

impl TransportOptions {
    /// Validates and fills in the defaults.
    pub(crate) fn settings(self) -> Result<TransportSettings, ConfigError> {
        let allowed_hosts = self
            .allowed_hosts
            .unwrap_or_else(|| vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]);
        let allowed_origins = self.allowed_origins.unwrap_or_default();
        for origin in &allowed_origins {
            if origin != "null" && !origin.contains("://") {
                return Err(invalid(
                    "allowed-origins",
                    format!("`{origin}` must include a scheme, e.g. http://localhost:*"),
                ));
            }
        }
        let auth_token = self.auth_token.filter(|t| !t.is_empty());
        if let Some(token) = &auth_token
            && token.len() < 16
        {
            return Err(invalid("auth-token", "must be at least 16 characters"));
        }
        let auth_tokens = self.auth_tokens.unwrap_or_default();
        check_extra_tokens(auth_token.as_ref(), &auth_tokens)?;
        let d = TransportLimits::default();
        let as_u64 = |v: Option<usize>| v.map(|v| v as u64);
        let limits = TransportLimits {
            http_max_sessions: ranged(
                "http-max-sessions",
                as_u64(self.http_max_sessions),
                1,
                1_000_000,
                d.http_max_sessions as u64,
            )? as usize,
            http_max_connections: ranged(
                "http-max-connections",
                as_u64(self.http_max_connections),
                1,
                65_536,
                d.http_max_connections as u64,
            )? as usize,
            http_header_timeout: Duration::from_secs(ranged(
                "http-header-timeout-secs",
                self.http_header_timeout_secs,
                1,
                3600,
                d.http_header_timeout.as_secs(),
            )?),
            http_body_timeout: Duration::from_secs(ranged(
                "http-body-timeout-secs",
                self.http_body_timeout_secs,
                1,
                3600,
                d.http_body_timeout.as_secs(),
            )?),
            stdio_max_line_bytes: ranged(
                "stdio-max-line-bytes",
                as_u64(self.stdio_max_line_bytes),
                1024,
                1 << 30,
                d.stdio_max_line_bytes as u64,
            )? as usize,
        };
        Ok(TransportSettings {
            auth_token,
            auth_tokens,
            allowed_hosts,
            allowed_origins,
            http_sessions: self.http_sessions.unwrap_or(false),
            max_body_bytes: self.max_body_bytes.unwrap_or(4 * 1024 * 1024),
            limits,
        })
    }
}

/// Each extra bearer token is long enough and distinct from every other one.
fn check_extra_tokens(first: Option<&Secret>, extra: &[Secret]) -> Result<(), ConfigError> {
    for (i, token) in extra.iter().enumerate() {
        if token.len() < 16 {
            return Err(invalid(
                "auth-tokens",
                format!("token {} must be at least 16 characters", i + 1),
            ));
        }
        let seen = first.is_some_and(|f| f.expose() == token.expose())
            || extra[..i].iter().any(|t| t.expose() == token.expose());
        if seen {
            return Err(invalid(
                "auth-tokens",
                format!("token {} is given twice; each client needs its own", i + 1),
            ));
        }
    }
    Ok(())
}
