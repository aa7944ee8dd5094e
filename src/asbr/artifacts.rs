//! Content-addressed artifacts (`cortex.artifact@1`): blobs named by their SHA-256 under
//! `<state-dir>/asbr/artifacts/`, metadata in the `artifacts` journal, rebuilt on start.
//!
//! Owns the blob files and the metadata index; must not touch tasks or tool wiring. A
//! blob is written to a temporary file, fsynced and renamed, so a crash never leaves a
//! blob whose name does not match its bytes.
//!
//! Ownership: each principal that stores a content is recorded (one journal record per
//! principal and content); a principal sees only the artifacts it stored, so storing
//! the same bytes as another principal says nothing about them (`deduplicated` is false
//! the first time a principal stores them). Records from before owners were kept are
//! seen by everyone.

use std::{
    collections::{BTreeMap, HashMap},
    io::Write,
    path::{Path, PathBuf},
};

use parking_lot::RwLock;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::{
    journal::{FsyncPolicy, Journal},
    principal::Principal,
};

use super::{AsbrError, canonical, open_journal};

const STREAM: &str = "artifacts";
/// Largest artifact accepted, in bytes.
pub const MAX_ARTIFACT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact {0} not found; call list_artifacts")]
    NotFound(String),
    #[error("{0}")]
    Input(String),
    #[error("artifact storage: {0}")]
    Storage(String),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    Diff,
    Doc,
    Plan,
    Report,
}

/// Artifact metadata.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactMeta {
    /// `sha256:<hex>`, also the digest.
    pub id: String,
    pub kind: ArtifactKind,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    pub created_at: String,
    /// The principal that stored it (you, as tools show it; absent on artifacts stored
    /// before owners were kept, which everyone sees).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// The metadata index and blob directory.
pub struct ArtifactStore {
    journal: Journal,
    blobs: PathBuf,
    index: RwLock<BTreeMap<String, ArtifactMeta>>,
    /// Who stored each artifact (`None`: a record from before owners were kept).
    owners: RwLock<HashMap<String, Vec<Option<String>>>>,
}

impl ArtifactStore {
    pub fn open(dir: &Path, policy: FsyncPolicy) -> Result<Self, AsbrError> {
        let (journal, records) = open_journal(dir, STREAM, policy)?;
        let blobs = dir.join("artifacts");
        std::fs::create_dir_all(&blobs).map_err(|source| AsbrError::Io {
            path: blobs.clone(),
            source,
        })?;
        let mut index = BTreeMap::new();
        let mut owners: HashMap<String, Vec<Option<String>>> = HashMap::new();
        for (i, raw) in records.into_iter().enumerate() {
            let meta: ArtifactMeta =
                serde_json::from_value(raw).map_err(|e| AsbrError::Replay {
                    stream: STREAM,
                    reason: format!("record {}: {e}", i + 1),
                })?;
            owners
                .entry(meta.id.clone())
                .or_default()
                .push(meta.owner.clone());
            index.entry(meta.id.clone()).or_insert(meta);
        }
        Ok(ArtifactStore {
            journal,
            blobs,
            index: RwLock::new(index),
            owners: RwLock::new(owners),
        })
    }

    /// Artifact `id`'s metadata as `principal` sees it, if it may.
    fn visible(&self, id: &str, principal: &Principal) -> Option<ArtifactMeta> {
        let owners = self.owners.read();
        let list = owners.get(id)?;
        let mine = list.iter().flatten().any(|o| o == principal.as_str());
        if !mine && !list.contains(&None) {
            return None;
        }
        let mut meta = self.index.read().get(id)?.clone();
        meta.owner = mine.then(|| principal.as_str().to_string());
        Some(meta)
    }

    fn blob_path(&self, hex: &str) -> PathBuf {
        self.blobs.join(hex)
    }

    /// Stores `bytes` for `principal`; the same bytes stored again by it return the first
    /// record.
    pub async fn put(
        &self,
        kind: ArtifactKind,
        bytes: Vec<u8>,
        task_id: Option<String>,
        principal: &Principal,
    ) -> Result<(ArtifactMeta, bool), ArtifactError> {
        if bytes.len() > MAX_ARTIFACT_BYTES {
            return Err(ArtifactError::Input(format!(
                "content: {} bytes is more than the {MAX_ARTIFACT_BYTES} allowed",
                bytes.len()
            )));
        }
        let hex = canonical::sha256_hex(&bytes);
        let id = format!("sha256:{hex}");
        if let Some(meta) = self.visible(&id, principal)
            && meta.owner.is_some()
        {
            return Ok((meta, true));
        }
        let path = self.blob_path(&hex);
        let size = bytes.len() as u64;
        tokio::task::spawn_blocking(move || write_blob(&path, &bytes))
            .await
            .map_err(|e| ArtifactError::Storage(format!("blob writer stopped: {e}")))?
            .map_err(|e| ArtifactError::Storage(e.to_string()))?;
        let meta = ArtifactMeta {
            id: id.clone(),
            kind,
            digest: id.clone(),
            size,
            task_id,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            owner: principal.owner(),
        };
        self.journal
            .append(&meta)
            .await
            .map_err(|e| ArtifactError::Storage(e.to_string()))?;
        self.index.write().entry(id.clone()).or_insert(meta);
        self.owners
            .write()
            .entry(id.clone())
            .or_default()
            .push(principal.owner());
        let meta = self
            .visible(&id, principal)
            .ok_or_else(|| ArtifactError::Storage(format!("{id} left the index")))?;
        Ok((meta, false))
    }

    /// Artifact `id`'s metadata when `principal` may see it; not found (as a missing
    /// one) otherwise.
    pub fn meta(&self, id: &str, principal: &Principal) -> Result<ArtifactMeta, ArtifactError> {
        self.visible(id, principal)
            .ok_or_else(|| ArtifactError::NotFound(id.to_string()))
    }

    /// The bytes of artifact `id`, when `principal` may see it, checked against its
    /// digest.
    pub async fn read(
        &self,
        id: &str,
        principal: &Principal,
    ) -> Result<(ArtifactMeta, Vec<u8>), ArtifactError> {
        let meta = self.meta(id, principal)?;
        let hex = id.trim_start_matches("sha256:").to_string();
        let bytes = tokio::fs::read(self.blob_path(&hex))
            .await
            .map_err(|e| ArtifactError::Storage(format!("blob of {id}: {e}")))?;
        if canonical::sha256_hex(&bytes) != hex {
            return Err(ArtifactError::Storage(format!(
                "blob of {id} does not match its digest"
            )));
        }
        Ok((meta, bytes))
    }

    /// Metadata of the artifacts `principal` may see, filtered by kind and creation
    /// range, newest first.
    pub fn list(
        &self,
        principal: &Principal,
        kind: Option<ArtifactKind>,
        after: Option<&str>,
        before: Option<&str>,
    ) -> Vec<ArtifactMeta> {
        let ids: Vec<String> = self
            .index
            .read()
            .values()
            .filter(|m| kind.is_none_or(|k| m.kind == k))
            .filter(|m| after.is_none_or(|a| m.created_at.as_str() > a))
            .filter(|m| before.is_none_or(|b| m.created_at.as_str() < b))
            .map(|m| m.id.clone())
            .collect();
        let mut out: Vec<ArtifactMeta> = ids
            .iter()
            .filter_map(|id| self.visible(id, principal))
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        out
    }
}

fn write_blob(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Normalises an RFC 3339 bound to the stored format (UTC, milliseconds).
pub fn normalise_time(field: &str, raw: &str) -> Result<String, ArtifactError> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        })
        .map_err(|e| ArtifactError::Input(format!("{field}: `{raw}` is not RFC 3339 ({e})")))
}
