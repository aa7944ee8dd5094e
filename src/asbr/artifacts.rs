//! Content-addressed artifacts (`cortex.artifact@1`): blobs named by their SHA-256 under
//! `<state-dir>/asbr/artifacts/` (on a shared store, in the store itself, up to
//! `--store-max-artifact-bytes`), metadata in the `artifacts` stream of the runtime's
//! store, rebuilt on start and the same on every replica sharing it. Once the log passes [`MAX_LOG_BYTES`] it is compacted to the
//! first record of each principal and content (what the index and the owners rebuild
//! from; later duplicates, left by concurrent stores of the same bytes, are dropped).
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
    collections::{BTreeMap, HashMap, HashSet},
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
};

use parking_lot::RwLock;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::{
    principal::Principal,
    store::{Backend, Compaction, Fold, Fsync, Replicated, StreamOptions},
};

use super::{AsbrError, canonical, open_replicated};

const STREAM: &str = "artifacts";
/// Log size past which the stream is compacted to the first record of each principal
/// and content.
pub const MAX_LOG_BYTES: u64 = 4 * 1024 * 1024;
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

/// Where blobs live.
enum Blobs {
    /// Files named by their digest (a local store).
    Files(PathBuf),
    /// In the shared store, up to `max` bytes each.
    Shared { backend: Arc<dyn Backend>, max: u64 },
}

/// The metadata index and the blobs.
pub struct ArtifactStore {
    log: Replicated<ArtifactMeta>,
    blobs: Blobs,
    index: RwLock<BTreeMap<String, ArtifactMeta>>,
    /// Who stored each artifact (`None`: a record from before owners were kept).
    owners: RwLock<HashMap<String, Vec<Option<String>>>>,
}

impl Fold<ArtifactMeta> for ArtifactStore {
    fn apply(&self, meta: ArtifactMeta) {
        self.owners
            .write()
            .entry(meta.id.clone())
            .or_default()
            .push(meta.owner.clone());
        self.index.write().entry(meta.id.clone()).or_insert(meta);
    }

    fn reset(&self, records: Vec<ArtifactMeta>) {
        let (index, owners) = indexed(records);
        *self.index.write() = index;
        *self.owners.write() = owners;
    }
}

type Index = (
    BTreeMap<String, ArtifactMeta>,
    HashMap<String, Vec<Option<String>>>,
);

fn indexed(records: Vec<ArtifactMeta>) -> Index {
    let mut index = BTreeMap::new();
    let mut owners: HashMap<String, Vec<Option<String>>> = HashMap::new();
    for meta in records {
        owners
            .entry(meta.id.clone())
            .or_default()
            .push(meta.owner.clone());
        index.entry(meta.id.clone()).or_insert(meta);
    }
    (index, owners)
}

impl ArtifactStore {
    /// Opens the store on `backend`: blobs under `dir/artifacts` on a local backend, in
    /// the backend up to `max_shared` bytes each on a shared one.
    pub fn open(
        backend: Arc<dyn Backend>,
        dir: &Path,
        policy: Fsync,
        max_shared: Option<u64>,
    ) -> Result<Self, AsbrError> {
        Self::open_with(
            backend,
            dir,
            StreamOptions::new(policy, MAX_LOG_BYTES),
            max_shared,
        )
    }

    /// [`ArtifactStore::open`] with explicit stream options (tests use a small log).
    pub fn open_with(
        backend: Arc<dyn Backend>,
        dir: &Path,
        options: StreamOptions,
        max_shared: Option<u64>,
    ) -> Result<Self, AsbrError> {
        let compaction = Compaction::new(first_per_owner);
        let (log, records) = open_replicated(&*backend, STREAM, options, compaction)?;
        let blobs = if backend.is_shared() {
            let max = max_shared
                .unwrap_or(MAX_ARTIFACT_BYTES as u64)
                .min(MAX_ARTIFACT_BYTES as u64);
            Blobs::Shared { backend, max }
        } else {
            let files = dir.join("artifacts");
            std::fs::create_dir_all(&files).map_err(|source| AsbrError::Io {
                path: files.clone(),
                source,
            })?;
            Blobs::Files(files)
        };
        let (index, owners) = indexed(records);
        Ok(ArtifactStore {
            log,
            blobs,
            index: RwLock::new(index),
            owners: RwLock::new(owners),
        })
    }

    /// On a shared store, keeps this replica's index current (see [`Replicated::follow`]).
    pub fn follow(self: &Arc<Self>) {
        self.log.follow(self);
    }

    /// Applies what other replicas stored before this call (shared store only), for a
    /// read that must see it.
    pub async fn catch_up(&self) {
        self.log.catch_up_or_log(self).await
    }

    /// Makes queued writes (and a compaction under way) durable and closes the stream.
    pub async fn close(&self) {
        self.log.close().await
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

    /// The largest artifact this store keeps, and the error that names the limit.
    fn check_size(&self, len: usize) -> Result<(), ArtifactError> {
        match &self.blobs {
            Blobs::Shared { max, .. } if len as u64 > *max => Err(ArtifactError::Input(format!(
                "content: {len} bytes is more than the {max} bytes this server keeps per artifact on its shared store (--store-max-artifact-bytes); store a smaller artifact or split it"
            ))),
            _ if len > MAX_ARTIFACT_BYTES => Err(ArtifactError::Input(format!(
                "content: {len} bytes is more than the {MAX_ARTIFACT_BYTES} allowed"
            ))),
            _ => Ok(()),
        }
    }

    async fn write_blob(&self, hex: &str, bytes: Vec<u8>) -> Result<(), ArtifactError> {
        match &self.blobs {
            Blobs::Files(dir) => {
                let path = dir.join(hex);
                tokio::task::spawn_blocking(move || write_blob(&path, &bytes))
                    .await
                    .map_err(|e| ArtifactError::Storage(format!("blob writer stopped: {e}")))?
                    .map_err(|e| ArtifactError::Storage(e.to_string()))
            }
            Blobs::Shared { backend, .. } => backend
                .put_blob(hex, &bytes)
                .await
                .map_err(|e| ArtifactError::Storage(e.to_string())),
        }
    }

    async fn read_blob(&self, id: &str, hex: &str) -> Result<Vec<u8>, ArtifactError> {
        match &self.blobs {
            Blobs::Files(dir) => tokio::fs::read(dir.join(hex))
                .await
                .map_err(|e| ArtifactError::Storage(format!("blob of {id}: {e}"))),
            Blobs::Shared { backend, .. } => backend
                .get_blob(hex)
                .await
                .map_err(|e| ArtifactError::Storage(e.to_string()))?
                .ok_or_else(|| {
                    ArtifactError::Storage(format!("blob of {id} is missing from the shared store"))
                }),
        }
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
        self.check_size(bytes.len())?;
        let hex = canonical::sha256_hex(&bytes);
        let id = format!("sha256:{hex}");
        self.catch_up().await;
        if let Some(meta) = self.visible(&id, principal)
            && meta.owner.is_some()
        {
            return Ok((meta, true));
        }
        let size = bytes.len() as u64;
        self.write_blob(&hex, bytes).await?;
        let meta = ArtifactMeta {
            id: id.clone(),
            kind,
            digest: id.clone(),
            size,
            task_id,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            owner: principal.owner(),
        };
        self.log
            .append(meta, self)
            .await
            .map_err(|e| ArtifactError::Storage(e.to_string()))?;
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
        self.catch_up().await;
        let meta = self.meta(id, principal)?;
        let hex = id.trim_start_matches("sha256:");
        let bytes = self.read_blob(id, hex).await?;
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

/// The compaction rule: the first record of each content and principal, in order. The
/// index keeps the first record of each content and the owners are a set, so these
/// rebuild the same state.
fn first_per_owner(records: Vec<ArtifactMeta>) -> Vec<ArtifactMeta> {
    let mut seen = HashSet::new();
    records
        .into_iter()
        .filter(|m| seen.insert((m.id.clone(), m.owner.clone())))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::store::LocalBackend;

    fn local(dir: &Path) -> Arc<dyn Backend> {
        Arc::new(LocalBackend::new(dir))
    }

    fn stored_bytes(dir: &Path) -> u64 {
        ["artifacts.ndjson", "artifacts.snapshot.json"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Concurrent stores of the same bytes by one principal each append a record (the
    /// index keeps the first); compaction drops the duplicates and the state survives.
    #[tokio::test]
    async fn duplicate_records_compact_away_and_the_state_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let options = StreamOptions::new(Fsync::Never, 4096);
        let store = ArtifactStore::open_with(local(dir.path()), dir.path(), options, None).unwrap();
        let ada = Principal::stdio();
        let (a, _) = store
            .put(ArtifactKind::Doc, b"alpha".to_vec(), None, &ada)
            .await
            .unwrap();
        let (b, _) = store
            .put(
                ArtifactKind::Plan,
                b"beta".to_vec(),
                Some("t1".into()),
                &ada,
            )
            .await
            .unwrap();
        let mut appended = 0;
        for n in 0..400 {
            let mut dup = if n % 2 == 0 { a.clone() } else { b.clone() };
            dup.created_at = format!("2099-01-01T00:00:{:02}.000Z", n % 60);
            appended += serde_json::to_vec(&dup).unwrap().len() as u64;
            store.log.stream().append(&dup).await.unwrap();
        }
        assert_eq!(store.meta(&a.id, &ada).unwrap(), a);
        store.close().await;
        let stored = stored_bytes(dir.path());
        assert!(
            stored < appended / 10,
            "{stored} bytes stored for {appended} bytes of records"
        );
        assert!(dir.path().join("artifacts.snapshot.json").exists());

        let store = ArtifactStore::open_with(local(dir.path()), dir.path(), options, None).unwrap();
        assert_eq!(store.meta(&a.id, &ada).unwrap(), a);
        assert_eq!(store.meta(&b.id, &ada).unwrap(), b);
        assert_eq!(store.list(&ada, None, None, None).len(), 2);
        let (_, bytes) = store.read(&b.id, &ada).await.unwrap();
        assert_eq!(bytes, b"beta");
        store.close().await;
    }

    #[test]
    fn compaction_keeps_the_first_record_of_each_owner() {
        let meta = |id: &str, owner: Option<&str>, at: &str| ArtifactMeta {
            id: id.into(),
            kind: ArtifactKind::Doc,
            digest: id.into(),
            size: 1,
            task_id: None,
            created_at: at.into(),
            owner: owner.map(Into::into),
        };
        let kept = first_per_owner(vec![
            meta("x", None, "1"),
            meta("x", Some("ada"), "2"),
            meta("x", None, "3"),
            meta("y", Some("ada"), "4"),
            meta("x", Some("ada"), "5"),
            meta("x", Some("bob"), "6"),
        ]);
        let at: Vec<&str> = kept.iter().map(|m| m.created_at.as_str()).collect();
        assert_eq!(at, ["1", "2", "4", "6"]);
    }
}
