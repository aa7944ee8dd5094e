//! Options of the event-sourced store (`--store`), validated into [`StoreSettings`]: the
//! local journal under the state directory (the default) or Redis shared by replicas.
//!
//! Owns the store's configuration and the at-rest key's presence check; it must not
//! touch `runtime::store` nor open connections.

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret, invalid, shown_url};

layered! {
    /// Store options.
    #[derive(Debug, Default, Clone, clap::Args, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub struct StoreOptions {
        /// Where journals, tasks, registries and events live: `local` (files under the
        /// state dir, the default) or `redis://[:password@]host:port[/db]` (Redis or
        /// Valkey, shared by every replica pointed at it; `rediss://` over TLS).
        #[arg(long, global = true, env = "CORTEX_MCP_STORE", value_name = "local|URL")]
        pub store: Option<String>,
        /// Key prefix on a Redis store, so deployments can share one server (default `cortex:`).
        #[arg(long, global = true, env = "CORTEX_MCP_STORE_PREFIX")]
        pub store_prefix: Option<String>,
        /// On a Redis store, acknowledge an append only once this many Redis replicas
        /// have it (`WAIT`); 0 (the default) waits for the primary only.
        #[arg(long, global = true, env = "CORTEX_MCP_STORE_WAIT_REPLICAS")]
        pub store_wait_replicas: Option<u32>,
        /// On a Redis store, the largest artifact (`put_artifact`) kept there, in bytes
        /// (default 4 MiB, at most 16 MiB); a larger one is refused naming this limit.
        #[arg(long, global = true, env = "CORTEX_MCP_STORE_MAX_ARTIFACT_BYTES")]
        pub store_max_artifact_bytes: Option<u64>,
        /// On a `rediss://` store, a PEM file of the certificate authorities to trust for
        /// the Redis server (default: the system's roots).
        #[arg(long, global = true, env = "CORTEX_MCP_STORE_TLS_CA", value_name = "PEM")]
        pub store_tls_ca: Option<std::path::PathBuf>,
    }
}

/// Default largest artifact on a Redis store.
pub const DEFAULT_MAX_SHARED_ARTIFACT: u64 = 4 << 20;
/// The most `--store-max-artifact-bytes` may be (the artifact limit of every store).
pub const MAX_SHARED_ARTIFACT: u64 = 16 << 20;

/// The environment variable holding the key integration credentials are sealed with on a
/// shared store (32 bytes, hex or base64).
pub const STORE_KEY_ENV: &str = "CORTEX_MCP_STORE_KEY";

/// Where the store lives.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum StoreSettings {
    /// Files under the state directory.
    #[default]
    Local,
    /// A Redis (or Valkey) server shared by replicas.
    Redis {
        /// The URL as given (it may hold a password: shown only through `shown_url`).
        #[serde(serialize_with = "redis_url")]
        url: Secret,
        /// Prefix of every key.
        prefix: String,
        /// Redis replicas an append waits for (`WAIT n`), 0 for none.
        wait_replicas: u32,
        /// The largest artifact kept on the store, in bytes.
        max_artifact_bytes: u64,
        /// PEM certificate authorities a `rediss://` connection trusts instead of the
        /// system's.
        tls_ca: Option<std::path::PathBuf>,
        /// The at-rest key of integration credentials (from [`STORE_KEY_ENV`]).
        key: Option<Secret>,
    },
}

fn redis_url<S: serde::Serializer>(url: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(shown_url(url.expose()).trim_matches('`'))
}

impl StoreSettings {
    /// Whether several processes may share this store (every store but the local one).
    pub fn is_shared(&self) -> bool {
        !matches!(self, StoreSettings::Local)
    }
}

impl StoreOptions {
    /// The validated store; the at-rest key is read by [`StoreSettings::with_key`].
    pub(crate) fn settings(self) -> Result<StoreSettings, ConfigError> {
        let raw = self.store.map(|s| s.trim().to_string()).unwrap_or_default();
        if raw.is_empty() || raw == "local" {
            if self.store_wait_replicas.is_some_and(|n| n > 0) {
                return Err(invalid(
                    "store-wait-replicas",
                    "applies to a Redis store only (--store redis://…)",
                ));
            }
            if self.store_max_artifact_bytes.is_some() {
                return Err(invalid(
                    "store-max-artifact-bytes",
                    "applies to a Redis store only (--store redis://…)",
                ));
            }
            if self.store_tls_ca.is_some() {
                return Err(invalid("store-tls-ca", "applies to a rediss:// store only"));
            }
            return Ok(StoreSettings::Local);
        }
        let url = url::Url::parse(&raw).map_err(|e| {
            invalid(
                "store",
                format!("{} is neither `local` nor a URL: {e}", shown_url(&raw)),
            )
        })?;
        if !matches!(url.scheme(), "redis" | "rediss") || url.host_str().is_none() {
            return Err(invalid(
                "store",
                format!(
                    "{} must be `local` or a redis:// or rediss:// URL with a host",
                    shown_url(&raw)
                ),
            ));
        }
        if let Some(ca) = &self.store_tls_ca {
            if url.scheme() != "rediss" {
                return Err(invalid(
                    "store-tls-ca",
                    "applies to a rediss:// store only (Redis over TLS)",
                ));
            }
            let pem = std::fs::read_to_string(ca)
                .map_err(|e| invalid("store-tls-ca", format!("{}: {e}", ca.display())))?;
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(invalid(
                    "store-tls-ca",
                    format!("{} holds no PEM certificate", ca.display()),
                ));
            }
        }
        if !cfg!(feature = "redis") {
            return Err(invalid(
                "store",
                "this build has no Redis support (cargo feature `redis`); use `local`",
            ));
        }
        let prefix = self.store_prefix.unwrap_or_else(|| "cortex:".into());
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_' | '-');
        if !(1..=64).contains(&prefix.len()) || !prefix.chars().all(plain) {
            return Err(invalid(
                "store-prefix",
                "must be 1-64 characters of A-Z, a-z, 0-9, ':', '.', '_' and '-'",
            ));
        }
        let wait_replicas = self.store_wait_replicas.unwrap_or(0);
        if wait_replicas > 16 {
            return Err(invalid("store-wait-replicas", "must be between 0 and 16"));
        }
        let max_artifact_bytes = self
            .store_max_artifact_bytes
            .unwrap_or(DEFAULT_MAX_SHARED_ARTIFACT);
        if !(1..=MAX_SHARED_ARTIFACT).contains(&max_artifact_bytes) {
            return Err(invalid(
                "store-max-artifact-bytes",
                format!("must be between 1 and {MAX_SHARED_ARTIFACT} (16 MiB)"),
            ));
        }
        Ok(StoreSettings::Redis {
            url: Secret::from(raw),
            prefix,
            wait_replicas,
            max_artifact_bytes,
            tls_ca: self.store_tls_ca,
            key: None,
        })
    }
}

impl StoreSettings {
    /// Adds the at-rest key from `value` (the [`STORE_KEY_ENV`] variable): a shared store
    /// refuses to start without one, since integration credentials are kept there.
    pub(crate) fn with_key(self, value: Option<String>) -> Result<Self, ConfigError> {
        match self {
            StoreSettings::Local => Ok(StoreSettings::Local),
            StoreSettings::Redis {
                url,
                prefix,
                wait_replicas,
                max_artifact_bytes,
                tls_ca,
                ..
            } => {
                let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
                    return Err(invalid(
                        "store",
                        format!(
                            "a Redis store needs {STORE_KEY_ENV} (32 random bytes as 64 hex digits or base64, the same on every replica): integration credentials are kept there encrypted with it; e.g. `export {STORE_KEY_ENV}=$(openssl rand -hex 32)`"
                        ),
                    ));
                };
                if decode_key(value.trim()).is_none() {
                    return Err(invalid(
                        "store",
                        format!(
                            "{STORE_KEY_ENV} must be 32 bytes as 64 hex digits or base64 (e.g. `openssl rand -hex 32`)"
                        ),
                    ));
                }
                Ok(StoreSettings::Redis {
                    url,
                    prefix,
                    wait_replicas,
                    max_artifact_bytes,
                    tls_ca,
                    key: Some(Secret::from(value.trim().to_string())),
                })
            }
        }
    }

    /// The largest artifact a shared store keeps (`None`: local files, whose limit is the
    /// toolset's own).
    pub fn max_artifact_bytes(&self) -> Option<u64> {
        match self {
            StoreSettings::Local => None,
            StoreSettings::Redis {
                max_artifact_bytes, ..
            } => Some(*max_artifact_bytes),
        }
    }

    /// The at-rest key's 32 bytes, when the store has one.
    pub fn key_bytes(&self) -> Option<[u8; 32]> {
        match self {
            StoreSettings::Redis { key: Some(k), .. } => decode_key(k.expose()),
            _ => None,
        }
    }
}

/// 32 bytes from 64 hex digits or standard/URL-safe base64.
fn decode_key(value: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    let bytes = if value.len() == 64 {
        hex::decode(value).ok()?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(value)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value))
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(value))
            .ok()?
    };
    bytes.try_into().ok()
}
