//! The connector service map: the manifest file (path from config or
//! `CONNECTORS_MANIFEST_PATH`) validated strictly, turned into a sorted map, signed with
//! HMAC-SHA256 over canonical JSON (key `CONNECTORS_SIGNATURE_KEY`, base64url), and
//! cached.
//!
//! Caching: the signed map is kept with the file's length, mtime and SHA-256. Every call
//! stats the file; same length and mtime within the map's TTL → served as is (`hit`).
//! Otherwise the file is read and hashed; same hash → served as is (`revalidated`), and
//! only a different hash re-parses, re-validates and re-signs (`built`). Counters
//! `asbr_service_map_total{outcome}` record which happened.
//!
//! Owns the manifest format and signing; the key never appears in results, logs or
//! errors. Must not touch other asbr state.

use std::{
    collections::HashSet,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::config::AsbrSettings;

use super::canonical;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "no signature key: set CONNECTORS_SIGNATURE_KEY in the server's environment to sign service maps"
    )]
    NoKey,
    #[error(
        "no connector manifest configured: set CONNECTORS_MANIFEST_PATH (or --connectors-manifest-path / connectors-manifest-path in cortex-mcp.toml)"
    )]
    NoManifest,
    #[error("connector manifest {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("connector manifest is invalid at {at}: {reason}")]
    Invalid { at: String, reason: String },
}

/// Why a service map's signature does not verify (told to the caller, not an error of
/// the call: `verify_service_map` answers `valid: false` with it as the reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("map must be a JSON object")]
    NotObject,
    #[error("map has no `signature` string")]
    NoSignature,
    #[error("signature is not base64url")]
    NotBase64,
    #[error("signature does not match the map")]
    Mismatch,
}

fn invalid(at: impl Into<String>, reason: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        at: at.into(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Manifest {
    id: String,
    manifest_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl_seconds: Option<u64>,
    connectors: Vec<Connector>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
enum AuthType {
    ApiKey,
    Bearer,
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Auth {
    r#type: AuthType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    header_name: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Status {
    Enabled,
    Disabled,
    Preview,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Quotas {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    per_hour: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    concurrent: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RemoteTool {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Connector {
    id: String,
    name: String,
    version: String,
    endpoint: String,
    auth: Auth,
    scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quotas: Option<Quotas>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    ttl_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    remote_tools: Option<Vec<RemoteTool>>,
}

fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let manifest: Manifest = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            "$".to_string()
        } else {
            format!("$.{path}")
        };
        invalid(at, e.inner().to_string())
    })?;
    validate(&manifest)?;
    Ok(manifest)
}

fn is_ulid(s: &str) -> bool {
    s.len() == 26
        && s.bytes().all(|b| {
            b.is_ascii_digit()
                || (b.is_ascii_uppercase() && !matches!(b, b'I' | b'L' | b'O' | b'U'))
        })
        && s.as_bytes()[0] <= b'7'
}

fn is_semver(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_connector_id(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=63).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn validate(m: &Manifest) -> Result<(), ManifestError> {
    if !is_ulid(&m.id) {
        return Err(invalid(
            "$.id",
            "must be a ULID (26 Crockford base32 characters)",
        ));
    }
    if !is_semver(&m.manifest_version) {
        return Err(invalid("$.manifestVersion", "must be x.y.z"));
    }
    if m.ttl_seconds == Some(0) {
        return Err(invalid("$.ttlSeconds", "must be at least 1"));
    }
    if m.connectors.is_empty() {
        return Err(invalid("$.connectors", "must list at least one connector"));
    }
    let mut ids = HashSet::new();
    for (i, c) in m.connectors.iter().enumerate() {
        let at = |field: &str| format!("$.connectors[{i}].{field}");
        if !is_connector_id(&c.id) {
            return Err(invalid(at("id"), "must match ^[a-z0-9][a-z0-9-]{1,62}$"));
        }
        if !ids.insert(c.id.as_str()) {
            return Err(invalid(
                at("id"),
                format!("duplicate connector id `{}`", c.id),
            ));
        }
        if c.name.trim().is_empty() {
            return Err(invalid(at("name"), "must not be empty"));
        }
        if c.version.trim().is_empty() {
            return Err(invalid(at("version"), "must not be empty"));
        }
        match url::Url::parse(&c.endpoint) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => return Err(invalid(at("endpoint"), "must be an absolute http(s) URL")),
        }
        if c.auth.r#type == AuthType::ApiKey
            && c.auth
                .header_name
                .as_deref()
                .is_none_or(|h| h.trim().is_empty())
        {
            return Err(invalid(
                at("auth.headerName"),
                "is required for apiKey auth",
            ));
        }
        if c.scopes.is_empty() {
            return Err(invalid(at("scopes"), "must not be empty"));
        }
        let mut seen = HashSet::new();
        for (j, s) in c.scopes.iter().enumerate() {
            if s.trim().is_empty() {
                return Err(invalid(at(&format!("scopes[{j}]")), "must not be empty"));
            }
            if !seen.insert(s.as_str()) {
                return Err(invalid(
                    at(&format!("scopes[{j}]")),
                    format!("duplicate scope `{s}`"),
                ));
            }
        }
        if c.ttl_seconds == 0 {
            return Err(invalid(at("ttlSeconds"), "must be at least 1"));
        }
    }
    Ok(())
}

/// Builds the unsigned map: connectors sorted by id, the effective TTL.
fn build(m: Manifest) -> Value {
    let mut connectors = m.connectors;
    connectors.sort_by(|a, b| a.id.cmp(&b.id));
    let smallest = connectors.iter().map(|c| c.ttl_seconds).min().unwrap_or(1);
    let ttl = m.ttl_seconds.unwrap_or(u64::MAX).min(smallest).max(1);
    serde_json::json!({
        "id": m.id,
        "manifestVersion": m.manifest_version,
        "ttlSeconds": ttl,
        "connectors": connectors,
    })
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &str, unsigned: &Value) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(canonical::to_string(unsigned).as_bytes());
    mac
}

/// Signs `unsigned` (an object) in place.
fn sign(key: &str, mut map: Value) -> Value {
    let signature = URL_SAFE_NO_PAD.encode(mac(key, &map).finalize().into_bytes());
    if let Value::Object(obj) = &mut map {
        obj.insert("signature".into(), Value::String(signature));
    }
    map
}

/// Checks the `signature` of `map` in constant time.
pub fn verify(key: &str, map: &Value) -> Result<(), SignatureError> {
    let Value::Object(obj) = map else {
        return Err(SignatureError::NotObject);
    };
    let Some(sig) = obj.get("signature").and_then(Value::as_str) else {
        return Err(SignatureError::NoSignature);
    };
    let sig = URL_SAFE_NO_PAD
        .decode(sig.trim_end_matches('='))
        .map_err(|_| SignatureError::NotBase64)?;
    let mut unsigned = obj.clone();
    unsigned.remove("signature");
    mac(key, &Value::Object(unsigned))
        .verify_slice(&sig)
        .map_err(|_| SignatureError::Mismatch)
}

/// How a call was served.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CacheOutcome {
    /// Same length and mtime within the TTL.
    Hit,
    /// The file was re-read and hashed, and was unchanged.
    Revalidated,
    /// Parsed, validated and signed.
    Built,
}

impl CacheOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Revalidated => "revalidated",
            Self::Built => "built",
        }
    }
}

struct Cached {
    path: PathBuf,
    len: u64,
    mtime: Option<SystemTime>,
    sha: String,
    checked: Instant,
    ttl: Duration,
    map: Arc<Value>,
}

/// The cached, signed service map.
pub struct ServiceMaps {
    settings: AsbrSettings,
    cached: tokio::sync::Mutex<Option<Cached>>,
}

impl ServiceMaps {
    pub fn new(settings: AsbrSettings) -> Self {
        ServiceMaps {
            settings,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    fn key(&self) -> Result<&str, ManifestError> {
        self.settings
            .signature_key
            .as_deref()
            .ok_or(ManifestError::NoKey)
    }

    /// The signed map, from cache when the file is unchanged.
    pub async fn get(&self) -> Result<(Arc<Value>, CacheOutcome), ManifestError> {
        let key = self.key()?;
        let path = self
            .settings
            .connectors_manifest_path
            .clone()
            .ok_or(ManifestError::NoManifest)?;
        let read_err = |e: std::io::Error| ManifestError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let meta = tokio::fs::metadata(&path).await.map_err(read_err)?;
        let (len, mtime) = (meta.len(), meta.modified().ok());
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_mut()
            && c.path == path
            && c.len == len
            && c.mtime == mtime
            && c.checked.elapsed() < c.ttl
        {
            return Ok(count(c.map.clone(), CacheOutcome::Hit));
        }
        let bytes = tokio::fs::read(&path).await.map_err(read_err)?;
        let sha = canonical::sha256_hex(&bytes);
        if let Some(c) = cached.as_mut()
            && c.path == path
            && c.sha == sha
        {
            c.len = len;
            c.mtime = mtime;
            c.checked = Instant::now();
            return Ok(count(c.map.clone(), CacheOutcome::Revalidated));
        }
        let map = build(parse(&bytes)?);
        let ttl = Duration::from_secs(map["ttlSeconds"].as_u64().unwrap_or(1));
        let map = Arc::new(sign(key, map));
        *cached = Some(Cached {
            path,
            len,
            mtime,
            sha,
            checked: Instant::now(),
            ttl,
            map: map.clone(),
        });
        Ok(count(map, CacheOutcome::Built))
    }

    /// Verifies a map's signature with the configured key.
    pub fn verify(&self, map: &Value) -> Result<Result<(), SignatureError>, ManifestError> {
        Ok(verify(self.key()?, map))
    }
}

fn count(map: Arc<Value>, outcome: CacheOutcome) -> (Arc<Value>, CacheOutcome) {
    metrics::counter!("asbr_service_map_total", "outcome" => outcome.label()).increment(1);
    (map, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"id":"01HZX3V6J7Q8W9E0R1T2Y3V4I5","manifestVersion":"1.0.0","ttlSeconds":300,
      "connectors":[
        {"id":"zeta","name":"Z","version":"1","endpoint":"https://z.example","auth":{"type":"none"},"scopes":["read"],"ttlSeconds":120},
        {"id":"alpha","name":"A","version":"2","endpoint":"https://a.example","auth":{"type":"apiKey","headerName":"X-Key"},"scopes":["read","write"],"ttlSeconds":600}]}"#;

    fn good() -> String {
        GOOD.replace("I5", "X5")
    }

    #[test]
    fn builds_sorted_with_min_ttl_and_verifies() {
        let map = build(parse(good().as_bytes()).unwrap());
        assert_eq!(map["connectors"][0]["id"], "alpha");
        assert_eq!(map["ttlSeconds"], 120);
        let signed = sign("k", map);
        assert!(verify("k", &signed).is_ok());
        assert!(verify("other", &signed).is_err());
        let mut tampered = signed.clone();
        tampered["ttlSeconds"] = 1.into();
        assert!(verify("k", &tampered).is_err());
    }

    #[test]
    fn errors_name_the_json_path() {
        let bad = good().replace("\"https://a.example\"", "\"nope\"");
        let err = parse(bad.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("$.connectors[1].endpoint"), "{err}");
        let bad = good().replace("\"type\":\"none\"", "\"type\":\"magic\"");
        let err = parse(bad.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("$.connectors[0].auth.type"), "{err}");
        let err = parse(GOOD.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("$.id"), "{err}");
    }
}
