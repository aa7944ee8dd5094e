//! The integration registry: definitions kept in the `registry` stream of the runtime's
//! store (last record per id wins, deletions are tombstones; once the log passes
//! [`MAX_LOG_BYTES`] it is compacted to the last record of each live integration, deleted
//! ones dropped) and credentials kept apart in
//! `<state-dir>/integrations/credentials.json`, written atomically with mode 0600.
//!
//! Owns validation of definitions, storage and the credential vault. Credential values
//! leave this module only through [`Registry::credentials`] (for the call that injects
//! them) and never appear in a [`Integration`], a journal record or an error message.
//! It must not send requests or touch tool wiring.

use std::{
    collections::{BTreeMap, HashMap},
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
};

use parking_lot::{Mutex, RwLock};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::{
    principal::Principal,
    store::{Compaction, Fsync, LocalBackend, Stream, StreamOptions},
};

use super::IntegrationsError;

const STREAM: &str = "registry";
const VAULT: &str = "credentials.json";
/// Log size past which the stream is compacted to the last record of each live
/// integration.
pub const MAX_LOG_BYTES: u64 = 4 * 1024 * 1024;
/// Most integrations kept; creating more is refused.
pub const MAX_INTEGRATIONS: usize = 10_000;
/// Credential keys an HTTP integration injects; any other name is only stored.
pub const BEARER_KEYS: &[&str] = &["token", "bearerToken", "accessToken"];
pub const API_KEY_KEYS: &[&str] = &["apiKey"];
/// Credentials that are never sent to the endpoint (inbound webhook verification), so
/// they survive a change of endpoint origin.
pub const INBOUND_KEYS: &[&str] = &["webhookSecret"];

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("integration {0} not found; call list_integrations for the registered ones")]
    NotFound(String),
    #[error("an integration named `{0}` already exists; pick another name or update it")]
    DuplicateName(String),
    #[error(
        "{MAX_INTEGRATIONS} integrations are registered already; delete unused ones with delete_integration"
    )]
    Full,
    #[error("could not store the integration: {0}")]
    Storage(String),
    #[error("{0}")]
    CredentialsLost(String),
}

fn invalid(field: &str, reason: impl Into<String>) -> RegistryError {
    RegistryError::Invalid {
        field: field.to_string(),
        reason: reason.into(),
    }
}

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

/// Retries of an HTTP integration: only idempotent methods (GET, HEAD) after server or
/// connection errors, and any method after 429/503 with Retry-After.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = never retry).
    #[serde(default = "default_retries")]
    #[schemars(range(min = 0, max = 10))]
    pub max_retries: u32,
    /// First back-off delay in ms, doubled per retry with jitter.
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

/// The configuration as given by the caller (credentials included).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigInput {
    /// Base URL: http(s):// for api/webhook, postgres:// for database, redis:// for
    /// message-queue. No password in the URL: put it in `credentials`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Secret values by name, stored apart (mode 0600) and never returned. HTTP:
    /// `token` (Authorization: Bearer) or `apiKey` (header `apiKeyHeader`, default
    /// X-API-Key); webhook: `webhookSecret` (HMAC-SHA256 key of POST /hooks/{id});
    /// database/message-queue: `password` (and `username`).
    #[serde(default)]
    pub credentials: Option<BTreeMap<String, String>>,
    /// Extra request headers: not secrets (Authorization, Cookie, X-API-Key, *-Token,
    /// ... are refused: use `credentials`), not Host or hop-by-hop headers.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub retry_policy: Option<RetryPolicy>,
    /// Calls in flight at once for this integration (its executor lane), default 4.
    #[serde(default)]
    #[schemars(range(min = 1, max = 64))]
    pub concurrency: Option<u32>,
    /// Named operations: name → "METHOD /path" (HTTP) or SQL (database).
    #[serde(default)]
    pub operations: Option<BTreeMap<String, String>>,
    /// Header carrying `apiKey` (default X-API-Key).
    #[serde(default)]
    pub api_key_header: Option<String>,
    /// Database only: run operations in a read-write transaction (default false:
    /// read-only transactions).
    #[serde(default)]
    pub allow_writes: Option<bool>,
    /// Webhook only: header naming each delivery, used to refuse replays (default: the
    /// first of X-GitHub-Delivery, X-Delivery-Id, X-Request-Id that is present).
    #[serde(default)]
    pub webhook_delivery_header: Option<String>,
    /// Webhook only: header carrying the sender's Unix timestamp. When set, deliveries
    /// must carry it, the signature covers `<timestamp>.<body>`, and deliveries more than
    /// 5 minutes old (or ahead) are refused.
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

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Record {
    Put { integration: Box<Integration> },
    Delete { id: String },
}

impl Record {
    fn id(&self) -> &str {
        match self {
            Record::Put { integration } => &integration.id,
            Record::Delete { id } => id,
        }
    }
}

/// The compaction rule: the last record of each integration, in the order of those
/// records, without the deleted ones (a delete and everything before it go).
fn live_records(records: Vec<Record>) -> Vec<Record> {
    let records: Vec<Record> = records
        .into_iter()
        .map(|r| match r {
            Record::Put { mut integration } => {
                scrub_secret_headers(&mut integration);
                Record::Put { integration }
            }
            other => other,
        })
        .collect();
    let mut last = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        last.insert(r.id().to_string(), i);
    }
    records
        .into_iter()
        .enumerate()
        .filter(|(i, r)| last.get(r.id()) == Some(i) && matches!(r, Record::Put { .. }))
        .map(|(_, r)| r)
        .collect()
}

/// Credential values by integration id, persisted with mode 0600.
struct Vault {
    path: PathBuf,
    values: Mutex<HashMap<String, BTreeMap<String, String>>>,
    /// Set when the file was damaged at start and moved aside: what calls that need a
    /// credential the vault no longer has are told.
    lost: Option<String>,
}

impl Vault {
    /// Loads the credential file. A damaged one is moved aside (renamed to
    /// `credentials.json.quarantine-<UTC time>`, keeping its 0600 mode) and reported; the
    /// vault then starts empty and says so to calls that need a lost credential.
    fn open(dir: &Path) -> Result<Self, IntegrationsError> {
        let path = dir.join(VAULT);
        let mut lost = None;
        let values = match std::fs::read(&path) {
            Ok(bytes) => {
                match serde_json::from_slice(&bytes) {
                    Ok(values) => values,
                    Err(e) => {
                        use crate::runtime::damage;
                        let to = damage::quarantine_path(dir, VAULT);
                        std::fs::rename(&path, &to).map_err(|e| IntegrationsError::Vault {
                            path: path.clone(),
                            reason: format!("damaged and could not be moved aside: {e}"),
                        })?;
                        damage::report(
                        damage::Damage::new(
                            "integrations credentials",
                            &path,
                            format!("not a credential file ({e}); started with no stored credentials"),
                        )
                        .quarantined(&to, 0, bytes.len() as u64),
                    );
                        lost = Some(format!(
                            "the stored credentials were lost: {} was damaged at start and moved to {}; give this integration's credentials again with update_integration (config.credentials)",
                            path.display(),
                            to.display()
                        ));
                        HashMap::new()
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => {
                return Err(IntegrationsError::Vault {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        crate::runtime::secrets::register_all(
            values
                .values()
                .flat_map(|m: &BTreeMap<String, String>| m.values()),
        );
        Ok(Vault {
            path,
            values: Mutex::new(values),
            lost,
        })
    }

    /// Applies `change` and rewrites the file (temp file 0600, fsync, rename).
    fn update(
        &self,
        change: impl FnOnce(&mut HashMap<String, BTreeMap<String, String>>),
    ) -> Result<(), RegistryError> {
        let mut values = self.values.lock();
        let mut next = values.clone();
        change(&mut next);
        write_private(&self.path, &next).map_err(|e| {
            RegistryError::Storage(format!("credential file {}: {e}", self.path.display()))
        })?;
        crate::runtime::secrets::register_all(next.values().flat_map(|m| m.values()));
        *values = next;
        Ok(())
    }

    fn get(&self, id: &str) -> BTreeMap<String, String> {
        self.values.lock().get(id).cloned().unwrap_or_default()
    }
}

fn write_private(
    path: &Path,
    values: &HashMap<String, BTreeMap<String, String>>,
) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec(values).map_err(std::io::Error::other)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The registry; cheap to share behind an `Arc`.
pub struct Registry {
    stream: Stream<Record>,
    items: RwLock<BTreeMap<String, Integration>>,
    vault: Vault,
    /// Serialises create/update/delete so name checks and writes do not race.
    writes: tokio::sync::Mutex<()>,
}

/// What a create or update asks for.
pub struct Change {
    pub name: Option<String>,
    pub r#type: Option<IntegrationType>,
    pub status: Option<Status>,
    pub config: Option<ConfigInput>,
}

impl Registry {
    pub fn open(dir: &Path, policy: Fsync) -> Result<Arc<Self>, IntegrationsError> {
        Self::open_with(dir, StreamOptions::new(policy, MAX_LOG_BYTES))
    }

    /// [`Registry::open`] with explicit stream options (tests use a small log).
    pub fn open_with(dir: &Path, options: StreamOptions) -> Result<Arc<Self>, IntegrationsError> {
        std::fs::create_dir_all(dir).map_err(|e| IntegrationsError::Vault {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let (stream, replay) = Stream::open_local(
            &LocalBackend::new(dir),
            STREAM,
            options,
            Compaction::new(live_records),
        )
        .map_err(|source| IntegrationsError::Journal {
            dir: dir.to_path_buf(),
            source,
        })?;
        if let Some((position, reason)) = replay.undecodable.first() {
            return Err(IntegrationsError::Replay {
                reason: format!("record {position}: {reason}"),
            });
        }
        let mut items = BTreeMap::new();
        let mut scrubbed = false;
        for record in replay.into_records() {
            match record {
                Record::Put { mut integration } => {
                    scrubbed |= scrub_secret_headers(&mut integration);
                    items.insert(integration.id.clone(), *integration);
                }
                Record::Delete { id } => {
                    items.remove(&id);
                }
            }
        }
        if scrubbed {
            // Rewrite the journal now, before any append can be queued (a compaction
            // replaces everything appended before it), so the values leave the disk.
            // The compaction rule scrubs the same headers from what it keeps.
            if let Err(e) = futures::executor::block_on(stream.compact()) {
                tracing::warn!(
                    error = %e,
                    "integrations registry: could not rewrite the journal without the dropped secret headers; they stay on disk until the next rewrite but are never used or shown"
                );
            }
        }
        Ok(Arc::new(Registry {
            stream,
            items: RwLock::new(items),
            vault: Vault::open(dir)?,
            writes: tokio::sync::Mutex::new(()),
        }))
    }

    /// Makes queued writes (and a compaction under way) durable and closes the stream.
    pub async fn close(&self) {
        self.stream.close().await
    }

    pub fn get(&self, id: &str) -> Result<Integration, RegistryError> {
        self.items
            .read()
            .get(id)
            .cloned()
            .ok_or_else(|| RegistryError::NotFound(id.to_string()))
    }

    /// Integration `id` when `principal` may use it; not found (as a missing one)
    /// otherwise.
    pub fn get_for(&self, id: &str, principal: &Principal) -> Result<Integration, RegistryError> {
        self.get(id)
            .ok()
            .filter(|i| i.visible_to(principal))
            .ok_or_else(|| RegistryError::NotFound(id.to_string()))
    }

    /// Credential values of `id` for injection into one call; never returned by a tool.
    pub fn credentials(&self, id: &str) -> BTreeMap<String, String> {
        self.vault.get(id)
    }

    /// [`Registry::credentials`] of `integration` for a call, refused when it names
    /// credentials the vault lost to a damaged credential file.
    pub fn credentials_for_call(
        &self,
        integration: &Integration,
    ) -> Result<BTreeMap<String, String>, RegistryError> {
        let creds = self.vault.get(&integration.id);
        match &self.vault.lost {
            Some(lost) if creds.is_empty() && !integration.config.credential_names.is_empty() => {
                Err(RegistryError::CredentialsLost(format!(
                    "integration {}: {lost}",
                    integration.id
                )))
            }
            _ => Ok(creds),
        }
    }

    /// Every registered integration `principal` may see, in id (creation) order,
    /// filtered.
    pub fn list(
        &self,
        principal: &Principal,
        r#type: Option<IntegrationType>,
        status: Option<Status>,
    ) -> Vec<Integration> {
        self.items
            .read()
            .values()
            .filter(|i| i.visible_to(principal))
            .filter(|i| r#type.is_none_or(|t| i.r#type == t))
            .filter(|i| status.is_none_or(|s| i.status == s))
            .cloned()
            .collect()
    }

    /// Registers an integration owned by `owner` (usable by everyone when `shared`).
    pub async fn create(
        &self,
        name: String,
        r#type: IntegrationType,
        input: ConfigInput,
        owner: &Principal,
        shared: bool,
    ) -> Result<Integration, RegistryError> {
        let _guard = self.writes.lock().await;
        let name = check_name(&name)?;
        if self.items.read().len() >= MAX_INTEGRATIONS {
            return Err(RegistryError::Full);
        }
        self.check_unique(&name, None, owner)?;
        let creds = input.credentials.clone().unwrap_or_default();
        let config = build_config(r#type, input, None)?;
        check_credentials(r#type, &creds)?;
        let now = now();
        let integration = Integration {
            id: uuid::Uuid::now_v7().to_string(),
            name,
            r#type,
            status: Status::Active,
            config,
            revision: 1,
            created_at: now.clone(),
            updated_at: now,
            owner: owner.owner(),
            shared,
        };
        let id = integration.id.clone();
        self.vault.update(|v| {
            if creds.is_empty() {
                v.remove(&id);
            } else {
                v.insert(id.clone(), creds);
            }
        })?;
        self.put(integration).await
    }

    /// Applies a partial change; `config` fields that are given replace the stored ones
    /// (credentials as a whole map when given). Credentials are bound to the endpoint's
    /// origin: when the origin changes and no credentials come in the same change, the
    /// ones sent outbound are dropped, and the second value says so.
    pub async fn update(
        &self,
        id: &str,
        principal: &Principal,
        change: Change,
    ) -> Result<(Integration, Option<String>), RegistryError> {
        let _guard = self.writes.lock().await;
        let mut current = self.get_for(id, principal)?;
        if let Some(name) = change.name {
            let name = check_name(&name)?;
            self.check_unique(&name, Some(id), principal)?;
            current.name = name;
        }
        if let Some(t) = change.r#type
            && t != current.r#type
        {
            return Err(invalid(
                "type",
                format!(
                    "cannot change from {} to {}; create a new integration",
                    current.r#type.as_str(),
                    t.as_str()
                ),
            ));
        }
        if let Some(status) = change.status {
            current.status = status;
        }
        let mut notice = None;
        if let Some(input) = change.config {
            let creds = input.credentials.clone();
            let old_origin = current.config.endpoint.as_deref().map(origin_of);
            current.config = build_config(current.r#type, input, Some(&current.config))?;
            let new_origin = current.config.endpoint.as_deref().map(origin_of);
            if let Some(creds) = creds {
                check_credentials(current.r#type, &creds)?;
                current.config.credential_names = creds.keys().cloned().collect();
                self.vault.update(|v| {
                    v.insert(id.to_string(), creds);
                })?;
            } else if old_origin != new_origin {
                let (kept, dropped): (BTreeMap<_, _>, BTreeMap<_, _>) = self
                    .vault
                    .get(id)
                    .into_iter()
                    .partition(|(k, _)| INBOUND_KEYS.contains(&k.as_str()));
                if !dropped.is_empty() {
                    let names: Vec<String> = dropped.keys().cloned().collect();
                    current.config.credential_names = kept.keys().cloned().collect();
                    self.vault.update(|v| {
                        if kept.is_empty() {
                            v.remove(id);
                        } else {
                            v.insert(id.to_string(), kept);
                        }
                    })?;
                    notice = Some(format!(
                        "config.endpoint moved to another origin ({} -> {}), so the stored credentials ({}) were dropped: credentials are bound to the origin they were given for; send them again in config.credentials with the new endpoint",
                        old_origin.as_deref().unwrap_or("none"),
                        new_origin.as_deref().unwrap_or("none"),
                        names.join(", ")
                    ));
                }
            }
        }
        current.revision += 1;
        current.updated_at = now();
        Ok((self.put(current).await?, notice))
    }

    /// Marks an integration's status (test verdicts); no-op when it is gone.
    pub async fn set_status(&self, id: &str, status: Status) -> Result<(), RegistryError> {
        let _guard = self.writes.lock().await;
        let Ok(mut current) = self.get(id) else {
            return Ok(());
        };
        if current.status == status || current.status == Status::Inactive {
            return Ok(());
        }
        current.status = status;
        current.updated_at = now();
        self.put(current).await.map(|_| ())
    }

    /// Deletes integration `id` when `principal` may use it.
    pub async fn delete(
        &self,
        id: &str,
        principal: &Principal,
    ) -> Result<Integration, RegistryError> {
        let _guard = self.writes.lock().await;
        let current = self.get_for(id, principal)?;
        self.stream
            .append(&Record::Delete { id: id.to_string() })
            .await
            .map_err(|e| RegistryError::Storage(e.to_string()))?;
        self.items.write().remove(id);
        self.vault.update(|v| {
            v.remove(id);
        })?;
        Ok(current)
    }

    async fn put(&self, integration: Integration) -> Result<Integration, RegistryError> {
        self.stream
            .append(&Record::Put {
                integration: Box::new(integration.clone()),
            })
            .await
            .map_err(|e| RegistryError::Storage(e.to_string()))?;
        self.items
            .write()
            .insert(integration.id.clone(), integration.clone());
        Ok(integration)
    }

    /// Names are unique among the integrations `principal` may see (another principal's
    /// names are neither taken nor revealed).
    fn check_unique(
        &self,
        name: &str,
        except: Option<&str>,
        principal: &Principal,
    ) -> Result<(), RegistryError> {
        let taken =
            self.items.read().values().any(|i| {
                i.name == name && Some(i.id.as_str()) != except && i.visible_to(principal)
            });
        if taken {
            Err(RegistryError::DuplicateName(name.to_string()))
        } else {
            Ok(())
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn check_name(name: &str) -> Result<String, RegistryError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "must be 1 to 100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("name", "must not contain control characters"));
    }
    Ok(name.to_string())
}

fn build_config(
    r#type: IntegrationType,
    input: ConfigInput,
    previous: Option<&StoredConfig>,
) -> Result<StoredConfig, RegistryError> {
    let endpoint = match input.endpoint {
        Some(raw) => Some(check_endpoint(r#type, &raw)?),
        None => previous.and_then(|p| p.endpoint.clone()),
    };
    if endpoint.is_none() && r#type != IntegrationType::Webhook {
        return Err(invalid(
            "config.endpoint",
            format!("is required for a {} integration", r#type.as_str()),
        ));
    }
    let headers = match input.headers {
        Some(h) => check_headers(h)?,
        None => previous.map(|p| p.headers.clone()).unwrap_or_default(),
    };
    let operations = match input.operations {
        Some(ops) => check_operations(r#type, ops)?,
        None => previous.map(|p| p.operations.clone()).unwrap_or_default(),
    };
    if r#type.is_http()
        && let Some(endpoint) = &endpoint
    {
        for (name, op) in &operations {
            if let Ok((_, path)) = super::execute::parse_http_operation(op) {
                super::execute::target_url(endpoint, &path)
                    .map_err(|reason| invalid(&format!("config.operations.{name}"), reason))?;
            }
        }
    }
    let api_key_header = match input.api_key_header {
        Some(h) => Some(check_header_name("config.apiKeyHeader", &h)?),
        None => previous.and_then(|p| p.api_key_header.clone()),
    };
    let webhook_delivery_header = match input.webhook_delivery_header {
        Some(h) => Some(check_header_name("config.webhookDeliveryHeader", &h)?),
        None => previous.and_then(|p| p.webhook_delivery_header.clone()),
    };
    let webhook_timestamp_header = match input.webhook_timestamp_header {
        Some(h) => Some(check_header_name("config.webhookTimestampHeader", &h)?),
        None => previous.and_then(|p| p.webhook_timestamp_header.clone()),
    };
    let concurrency = input
        .concurrency
        .or(previous.map(|p| p.concurrency))
        .unwrap_or(4);
    if !(1..=64).contains(&concurrency) {
        return Err(invalid("config.concurrency", "must be between 1 and 64"));
    }
    let retry_policy = input
        .retry_policy
        .or(previous.map(|p| p.retry_policy))
        .unwrap_or_default();
    if retry_policy.backoff_ms == 0 {
        return Err(invalid("config.retryPolicy.backoffMs", "must be above 0"));
    }
    if retry_policy.max_retries > 10 {
        return Err(invalid(
            "config.retryPolicy.maxRetries",
            "must be at most 10",
        ));
    }
    let credential_names = match &input.credentials {
        Some(c) => c.keys().cloned().collect(),
        None => previous
            .map(|p| p.credential_names.clone())
            .unwrap_or_default(),
    };
    Ok(StoredConfig {
        endpoint,
        credential_names,
        headers,
        retry_policy,
        concurrency,
        operations,
        api_key_header,
        allow_writes: input
            .allow_writes
            .or(previous.map(|p| p.allow_writes))
            .unwrap_or(false),
        webhook_delivery_header,
        webhook_timestamp_header,
    })
}

/// The origin credentials are bound to: scheme, host (as the resolver reads it) and port
/// (with the scheme's default).
pub fn origin_of(endpoint: &str) -> String {
    let Ok(url) = url::Url::parse(endpoint) else {
        return endpoint.to_string();
    };
    let scheme = match url.scheme() {
        "postgresql" => "postgres",
        other => other,
    };
    let port = url.port_or_known_default().or(match scheme {
        "postgres" => Some(5432),
        "redis" | "rediss" => Some(6379),
        _ => None,
    });
    let host = super::address::normalise_host(url.host_str().unwrap_or(""));
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    }
}

/// Headers a caller may never set: the request target and connection management.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "expect",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
];

fn check_header_name(field: &str, name: &str) -> Result<String, RegistryError> {
    http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| invalid(field, "is not a valid header name"))?;
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(invalid(
            field,
            format!(
                "`{name}` is set by the client (Host and hop-by-hop headers cannot be configured)"
            ),
        ));
    }
    Ok(name.to_string())
}

fn check_endpoint(r#type: IntegrationType, raw: &str) -> Result<String, RegistryError> {
    let url = url::Url::parse(raw.trim()).map_err(|e| {
        invalid(
            "config.endpoint",
            format!("{} is not a URL: {e}", crate::config::shown_url(raw)),
        )
    })?;
    let (schemes, built): (&[&str], bool) = match r#type {
        IntegrationType::Api | IntegrationType::Webhook => (&["http", "https"], true),
        IntegrationType::Database => (&["postgres", "postgresql"], cfg!(feature = "postgres")),
        IntegrationType::MessageQueue => (&["redis", "rediss"], cfg!(feature = "redis")),
    };
    if !built {
        return Err(invalid(
            "type",
            format!(
                "{} integrations are not in this build (it was compiled without the cargo feature that provides them); use api or webhook",
                r#type.as_str()
            ),
        ));
    }
    if !schemes.contains(&url.scheme()) || url.host_str().is_none() {
        return Err(invalid(
            "config.endpoint",
            format!(
                "must be a {} URL with a host for a {} integration",
                schemes.join("/"),
                r#type.as_str()
            ),
        ));
    }
    if url.password().is_some() {
        return Err(invalid(
            "config.endpoint",
            "must not carry a password; put it in config.credentials.password",
        ));
    }
    if url.fragment().is_some() {
        return Err(invalid("config.endpoint", "must not carry a fragment"));
    }
    let mut url = url;
    let host = url.host_str().unwrap_or("").to_string();
    if let Some(ip) = super::address::literal_ip(&host) {
        if let Some(reason) = super::address::AddressPolicy::always_refused(ip) {
            return Err(invalid("config.endpoint", reason));
        }
        // Non-HTTP URLs keep hosts like `127.1` as written: store what the resolver
        // would connect to.
        let canonical = match ip {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        };
        if canonical != host && url.set_host(Some(&canonical)).is_err() {
            return Err(invalid(
                "config.endpoint",
                format!("`{host}` is an unusual spelling of {ip}; write {ip}"),
            ));
        }
    }
    if matches!(r#type, IntegrationType::Database)
        && url
            .query_pairs()
            .any(|(k, _)| matches!(k.as_ref(), "host" | "hostaddr" | "port"))
    {
        return Err(invalid(
            "config.endpoint",
            "must not set host, hostaddr or port in the query; put the host in the URL",
        ));
    }
    Ok(url.to_string())
}

/// Drops the headers that carry secrets (refused on create and update, but kept by
/// records written before that) from a replayed integration, so they are never sent or
/// shown; logs the integration id and header name (never the value). True when any was
/// dropped.
fn scrub_secret_headers(integration: &mut Integration) -> bool {
    let before = integration.config.headers.len();
    integration.config.headers.retain(|name, _| {
        let secret = crate::runtime::http::is_credential_header(name);
        if secret {
            tracing::warn!(
                integration = %integration.id,
                header = %name,
                "integrations registry: dropped a stored header that carries a secret (such headers are refused now); give the value again as config.credentials"
            );
        }
        !secret
    });
    integration.config.headers.len() != before
}

fn check_headers(
    headers: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, RegistryError> {
    for (name, value) in &headers {
        let field = format!("config.headers.{name}");
        check_header_name(&field, name)?;
        http::HeaderValue::from_str(value)
            .map_err(|_| invalid(&field, "is not a valid header value"))?;
        if crate::runtime::http::is_credential_header(name) {
            let lower = name.to_ascii_lowercase();
            let advice = if matches!(lower.as_str(), "authorization" | "proxy-authorization") {
                "put the token in config.credentials.token (sent as Authorization: Bearer)"
                    .to_string()
            } else {
                format!(
                    "put the value in config.credentials.apiKey and set config.apiKeyHeader to \"{name}\""
                )
            };
            return Err(invalid(
                &field,
                format!(
                    "looks like it carries a secret, and headers are returned in results and stored in the registry journal; {advice} so it is stored apart and never returned"
                ),
            ));
        }
    }
    Ok(headers)
}

fn check_operations(
    r#type: IntegrationType,
    ops: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, RegistryError> {
    for (name, op) in &ops {
        let field = format!("config.operations.{name}");
        if name.is_empty() || name.contains(' ') {
            return Err(invalid(&field, "names must be non-empty without spaces"));
        }
        if r#type.is_http() {
            super::execute::parse_http_operation(op).map_err(|reason| invalid(&field, reason))?;
        } else if op.trim().is_empty() {
            return Err(invalid(&field, "must not be empty"));
        }
    }
    Ok(ops)
}

fn check_credentials(
    r#type: IntegrationType,
    creds: &BTreeMap<String, String>,
) -> Result<(), RegistryError> {
    for (name, value) in creds {
        let field = format!("config.credentials.{name}");
        if name.is_empty() || name.len() > 64 {
            return Err(invalid(&field, "names must be 1 to 64 characters"));
        }
        if value.is_empty() {
            return Err(invalid(&field, "must not be empty"));
        }
        let injected =
            BEARER_KEYS.contains(&name.as_str()) || API_KEY_KEYS.contains(&name.as_str());
        if injected && r#type.is_http() && http::HeaderValue::from_str(value).is_err() {
            return Err(invalid(&field, "cannot be sent in an HTTP header"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(endpoint: &str) -> ConfigInput {
        ConfigInput {
            endpoint: Some(endpoint.into()),
            credentials: Some(BTreeMap::from([("token".into(), "s3cret".into())])),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn create_replay_and_vault_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path(), Fsync::Never).unwrap();
        let made = reg
            .create(
                "a".into(),
                IntegrationType::Api,
                api("http://127.0.0.1:1/x"),
                &Principal::stdio(),
                false,
            )
            .await
            .unwrap();
        assert_eq!(made.config.credential_names, vec!["token"]);
        let record = std::fs::read_to_string(dir.path().join("registry.ndjson")).unwrap();
        assert!(!record.contains("s3cret"));
        let mode = std::fs::metadata(dir.path().join(VAULT))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let err = reg
            .create(
                "a".into(),
                IntegrationType::Api,
                api("http://h/"),
                &Principal::stdio(),
                false,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::DuplicateName(_)));
        reg.close().await;
        drop(reg);
        let reg = Registry::open(dir.path(), Fsync::Never).unwrap();
        assert_eq!(reg.get(&made.id).unwrap(), made);
        assert_eq!(reg.credentials(&made.id)["token"], "s3cret");
    }

    /// A journal written before secret headers were refused: the headers are dropped on
    /// replay (never shown nor sent), and the journal is rewritten without them.
    #[tokio::test]
    async fn old_records_lose_their_secret_headers_on_replay() {
        let dir = tempfile::tempdir().unwrap();
        let record = serde_json::json!({"seq": 1, "rec": {"op": "put", "integration": {
            "id": "int-old", "name": "old", "type": "api", "status": "active",
            "config": {
                "endpoint": "http://127.0.0.1:1/",
                "credentialNames": [],
                "headers": {
                    "Authorization": "Bearer OLDSECRET-1",
                    "X-Api-Key": "OLDSECRET-2",
                    "Accept": "application/json"
                },
                "retryPolicy": {"maxRetries": 1, "backoffMs": 100},
                "concurrency": 1,
                "operations": {},
                "allowWrites": false
            },
            "revision": 1,
            "createdAt": "2026-01-01T00:00:00.000Z",
            "updatedAt": "2026-01-01T00:00:00.000Z"
        }}});
        std::fs::write(dir.path().join("registry.ndjson"), format!("{record}\n")).unwrap();
        let reg = Registry::open(dir.path(), Fsync::Never).unwrap();
        let got = reg.get("int-old").unwrap();
        assert_eq!(
            got.config.headers,
            BTreeMap::from([("Accept".to_string(), "application/json".to_string())])
        );
        let shown = serde_json::to_string(&got).unwrap();
        assert!(!shown.contains("OLDSECRET"), "{shown}");
        reg.close().await;
        drop(reg);
        let mut on_disk = String::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                on_disk.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
            }
        }
        assert!(!on_disk.contains("OLDSECRET"), "{on_disk}");
        let reg = Registry::open(dir.path(), Fsync::Never).unwrap();
        assert_eq!(reg.get("int-old").unwrap(), got);
    }

    fn stored_bytes(dir: &Path) -> u64 {
        ["registry.ndjson", "registry.snapshot.json"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum()
    }

    #[tokio::test]
    async fn many_updates_compact_the_journal_and_the_state_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let options = StreamOptions::new(Fsync::Never, 8192);
        let reg = Registry::open_with(dir.path(), options).unwrap();
        let me = Principal::stdio();
        let mut made = Vec::new();
        for name in ["a", "b", "gone"] {
            let url = format!("http://127.0.0.1:1/{name}");
            let i = reg
                .create(name.into(), IntegrationType::Api, api(&url), &me, false)
                .await
                .unwrap();
            made.push(i);
        }
        reg.delete(&made[2].id, &me).await.unwrap();
        let before = stored_bytes(dir.path());
        let mut last = HashMap::new();
        for n in 0..300 {
            let id = &made[n % 2].id;
            let status = [Status::Error, Status::Active][(n / 2) % 2];
            let change = Change {
                name: None,
                r#type: None,
                status: Some(status),
                config: None,
            };
            let (i, _) = reg.update(id, &me, change).await.unwrap();
            last.insert(id.clone(), i);
        }
        reg.close().await;
        let appended: u64 = 300 * serde_json::to_vec(&last[&made[0].id]).unwrap().len() as u64;
        let stored = stored_bytes(dir.path());
        assert!(
            stored < appended / 10,
            "{stored} bytes stored for {appended} bytes of updates ({before} before them)"
        );
        assert!(dir.path().join("registry.snapshot.json").exists());
        drop(reg);

        let reg = Registry::open_with(dir.path(), options).unwrap();
        assert_eq!(reg.get(&made[0].id).unwrap(), last[&made[0].id]);
        assert_eq!(reg.get(&made[1].id).unwrap(), last[&made[1].id]);
        assert_eq!(reg.get(&made[0].id).unwrap().revision, 151);
        assert!(matches!(
            reg.get(&made[2].id),
            Err(RegistryError::NotFound(_))
        ));
        assert_eq!(reg.list(&me, None, None).len(), 2);
        assert_eq!(reg.credentials(&made[1].id)["token"], "s3cret");
        let snapshot = std::fs::read_to_string(dir.path().join("registry.snapshot.json")).unwrap();
        assert!(!snapshot.contains(&made[2].id), "deleted integration kept");
        reg.close().await;
    }

    #[test]
    fn validation_names_the_field() {
        let bad = ConfigInput {
            endpoint: Some("ftp://x".into()),
            ..Default::default()
        };
        let e = build_config(IntegrationType::Api, bad, None).unwrap_err();
        assert!(e.to_string().starts_with("config.endpoint"), "{e}");
        let bad = ConfigInput {
            endpoint: Some("http://x".into()),
            headers: Some(BTreeMap::from([(
                "Authorization".into(),
                "Bearer x".into(),
            )])),
            ..Default::default()
        };
        let e = build_config(IntegrationType::Api, bad, None).unwrap_err();
        assert!(
            e.to_string().contains("config.headers.Authorization"),
            "{e}"
        );
        let e = check_endpoint(IntegrationType::Database, "postgres://u:pw@h/db").unwrap_err();
        if cfg!(feature = "postgres") {
            assert!(e.to_string().contains("password"), "{e}");
        } else {
            assert!(e.to_string().contains("not in this build"), "{e}");
        }
    }

    #[test]
    fn integration_types_follow_the_build_features() {
        let db = check_endpoint(IntegrationType::Database, "postgres://h/db");
        assert_eq!(db.is_ok(), cfg!(feature = "postgres"), "{db:?}");
        let mq = check_endpoint(IntegrationType::MessageQueue, "redis://h");
        assert_eq!(mq.is_ok(), cfg!(feature = "redis"), "{mq:?}");
        assert!(check_endpoint(IntegrationType::Api, "http://h/").is_ok());
    }
}
