//! The shapes of an integration: its type, status, retry policy, the configuration a
//! caller sends ([`ConfigInput`]) and the one kept ([`StoredConfig`], credential names
//! only), and the stored [`Integration`] with its visibility rule.
//!
//! Owns these types only; it must not validate, store or hold credential values.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::principal::Principal;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum IntegrationType {
    Webhook,
    Api,
    Database,
    MessageQueue,
}

impl IntegrationType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Api => "api",
            Self::Database => "database",
            Self::MessageQueue => "message-queue",
        }
    }
    pub fn is_http(self) -> bool {
        matches!(self, Self::Webhook | Self::Api)
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Inactive,
    Error,
}

/// HTTP retries: GET/HEAD after server or connection errors, any method after 429/503
/// with Retry-After.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = never retry).
    #[serde(default = "default_retries")]
    #[schemars(range(min = 0, max = 10))]
    pub max_retries: u32,
    /// First delay in ms, doubled per retry (with jitter).
    #[serde(default = "default_backoff")]
    #[schemars(range(min = 1, max = 60000))]
    pub backoff_ms: u64,
}

fn default_retries() -> u32 {
    3
}
fn default_backoff() -> u64 {
    1000
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: default_retries(),
            backoff_ms: default_backoff(),
        }
    }
}

/// Settings as given by the caller, credentials included.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigInput {
    /// Base URL: http(s):// (api, webhook), postgres:// (database), redis://
    /// (message-queue); a password goes in `credentials`, not here.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// `token` (Bearer) or `apiKey` for HTTP, `webhookSecret` (HMAC-SHA256 key of POST
    /// /hooks/{id}), `password`/`username` for database and message-queue.
    #[serde(default)]
    pub credentials: Option<BTreeMap<String, String>>,
    /// Extra request headers; secrets (Authorization, Cookie, *-Token, ...), Host and
    /// hop-by-hop headers are refused.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub retry_policy: Option<RetryPolicy>,
    /// Calls in flight at once (default 4).
    #[serde(default)]
    #[schemars(range(min = 1, max = 64))]
    pub concurrency: Option<u32>,
    /// Named operations: name → "METHOD /path" (HTTP) or SQL (database).
    #[serde(default)]
    pub operations: Option<BTreeMap<String, String>>,
    /// Header carrying `apiKey` (default X-API-Key).
    #[serde(default)]
    pub api_key_header: Option<String>,
    /// Database only: read-write transactions (default: read-only).
    #[serde(default)]
    pub allow_writes: Option<bool>,
    /// Webhook only: delivery id header, to refuse replays (default: X-GitHub-Delivery,
    /// X-Delivery-Id or X-Request-Id).
    #[serde(default)]
    pub webhook_delivery_header: Option<String>,
    /// Webhook only: header with the sender's Unix timestamp; when set it is required,
    /// signed as `<timestamp>.<body>` and must be within 5 minutes of now.
    #[serde(default)]
    pub webhook_timestamp_header: Option<String>,
}

/// The stored configuration: everything but credential values.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StoredConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Names of the stored credentials (values are never returned).
    pub credential_names: Vec<String>,
    pub headers: BTreeMap<String, String>,
    pub retry_policy: RetryPolicy,
    pub concurrency: u32,
    pub operations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_header: Option<String>,
    pub allow_writes: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_delivery_header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_timestamp_header: Option<String>,
}

/// A registered integration as tools return it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    pub id: String,
    pub name: String,
    pub r#type: IntegrationType,
    pub status: Status,
    pub config: StoredConfig,
    /// Configuration revision, bumped by every update.
    pub revision: u64,
    pub created_at: String,
    pub updated_at: String,
    /// The principal that registered it; only it may see, use, test, change or delete
    /// it unless it is shared. Absent on integrations registered before owners were
    /// kept (everyone may use those).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Registered with `shared: true`: every principal may use it (and its credentials).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
}

impl Integration {
    /// Whether `principal` may see and use this integration.
    pub fn visible_to(&self, principal: &Principal) -> bool {
        principal.may_access(self.owner.as_deref(), self.shared)
    }

    /// Who its events are shown to (`None`: everyone, for a shared one).
    pub fn event_owner(&self) -> Option<String> {
        if self.shared {
            None
        } else {
            self.owner.clone()
        }
    }
}
