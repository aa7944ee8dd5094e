//! The integration registry: definitions kept in the `registry` stream of the runtime's
//! store (last record per id wins, deletions are tombstones; once the log passes
//! [`MAX_LOG_BYTES`] it is compacted to the last record of each live integration, deleted
//! ones dropped) and credentials kept apart in
//! `<state-dir>/integrations/credentials.json`, written atomically with mode 0600.
//!
//! Owns validation of definitions, storage and the credential vault. Credential values
//! leave this module only through [`IntegrationStore::credentials`] (for the call that injects
//! them) and never appear in a [`Integration`], a journal record or an error message.
//! It must not send requests or touch tool wiring.
//!
//! Here: [`IntegrationStore`] (the stream, the live set, create/update/delete) and the
//! compaction rule; the shapes are in `model.rs`, the rules in `validate.rs`, the
//! credential file in `vault.rs`.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    sync::Arc,
};

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::runtime::{
    principal::Principal,
    sealed::Sealer,
    store::{Backend, Compaction, Fsync, LocalBackend, Position, Replay, Stream, StreamOptions},
};

use super::IntegrationsError;

mod model;
mod replicas;
#[cfg(test)]
mod tests;
mod validate;
mod vault;

pub use model::{ConfigInput, Integration, IntegrationType, RetryPolicy, Status, StoredConfig};
pub use validate::origin_of;
use validate::{build_config, check_credentials, check_name, scrub_secret_headers};
use vault::Vault;

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
    /// The integration is no longer at the revision a confirmation was given for.
    #[error("integration {id} changed since (it is at revision {revision} now); nothing was done")]
    Changed { id: String, revision: u64 },
}

fn invalid(field: &str, reason: impl Into<String>) -> RegistryError {
    RegistryError::Invalid {
        field: field.to_string(),
        reason: reason.into(),
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Record {
    Put {
        integration: Box<Integration>,
    },
    Delete {
        id: String,
    },
    /// On a shared store: an integration's credentials, sealed with the store key
    /// ([`Sealer`]); `None` when they were removed.
    Credentials {
        id: String,
        sealed: Option<String>,
    },
}

impl Record {
    fn id(&self) -> &str {
        match self {
            Record::Put { integration } => &integration.id,
            Record::Delete { id } | Record::Credentials { id, .. } => id,
        }
    }

    /// What a later record of the same key replaces: the definition or the credentials.
    fn key(&self) -> (bool, &str) {
        (matches!(self, Record::Credentials { .. }), self.id())
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
    let mut deleted = std::collections::HashSet::new();
    for (i, r) in records.iter().enumerate() {
        let (creds, id) = r.key();
        last.insert((creds, id.to_string()), i);
        match r {
            Record::Delete { id } => {
                deleted.insert(id.clone());
            }
            Record::Put { integration } => {
                deleted.remove(&integration.id);
            }
            Record::Credentials { .. } => {}
        }
    }
    records
        .into_iter()
        .enumerate()
        .filter(|(i, r)| {
            let (creds, id) = r.key();
            last.get(&(creds, id.to_string())) == Some(i)
                && !deleted.contains(id)
                && match r {
                    Record::Put { .. } => true,
                    Record::Credentials { sealed, .. } => sealed.is_some(),
                    Record::Delete { .. } => false,
                }
        })
        .map(|(_, r)| r)
        .collect()
}

/// The integration store: the live definitions (replayed from the `registry` stream)
/// and the credential vault; cheap to share behind an `Arc`.
pub struct IntegrationStore {
    stream: Stream<Record>,
    items: RwLock<BTreeMap<String, Integration>>,
    vault: Vault,
    /// Serialises create/update/delete so name checks and writes do not race.
    writes: tokio::sync::Mutex<()>,
    /// On a shared store: seals credentials into the stream (no credential file), and
    /// the stream is followed for other replicas' records.
    sealer: Option<Sealer>,
    /// On a shared store: the stream position of the record each definition
    /// (`false`, id) and credential set (`true`, id) was last set by; a record applies
    /// only past it, so every replica ends with the last record of the log.
    positions: parking_lot::Mutex<HashMap<(bool, String), u64>>,
    /// On a shared store: the position up to which other replicas' records are applied.
    followed: std::sync::atomic::AtomicU64,
    /// Set by [`IntegrationStore::close`]: the follower stops.
    closed: std::sync::atomic::AtomicBool,
}

/// What a create or update asks for.
pub struct Change {
    pub name: Option<String>,
    pub r#type: Option<IntegrationType>,
    pub status: Option<Status>,
    pub config: Option<ConfigInput>,
}

impl IntegrationStore {
    pub fn open(dir: &Path, policy: Fsync) -> Result<Arc<Self>, IntegrationsError> {
        Self::open_with(dir, StreamOptions::new(policy, MAX_LOG_BYTES))
    }

    /// [`IntegrationStore::open`] with explicit stream options (tests use a small log).
    pub fn open_with(dir: &Path, options: StreamOptions) -> Result<Arc<Self>, IntegrationsError> {
        Self::open_on(&LocalBackend::new(dir), dir, options, None)
    }

    /// Opens the registry on `backend`. With a `sealer` (a shared store) credentials are
    /// kept sealed in the stream itself instead of the credential file under `dir`.
    pub fn open_on(
        backend: &dyn Backend,
        dir: &Path,
        options: StreamOptions,
        sealer: Option<Sealer>,
    ) -> Result<Arc<Self>, IntegrationsError> {
        std::fs::create_dir_all(dir).map_err(|e| IntegrationsError::Vault {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let (stream, replay) =
            Stream::open_now(backend, STREAM, options, Compaction::new(live_records)).map_err(
                |source| IntegrationsError::Journal {
                    dir: dir.to_path_buf(),
                    source,
                },
            )?;
        if let Some((position, reason)) = replay.undecodable.first() {
            return Err(IntegrationsError::Replay {
                reason: format!("record {position}: {reason}"),
            });
        }
        let end = replay_end(&replay);
        let mut items = BTreeMap::new();
        let mut scrubbed = false;
        let mut sealed_credentials = HashMap::new();
        let mut positions = HashMap::new();
        for (position, record) in positioned(replay) {
            positions.insert(
                (
                    matches!(record, Record::Credentials { .. }),
                    record.id().to_string(),
                ),
                position,
            );
            match record {
                Record::Put { mut integration } => {
                    scrubbed |= scrub_secret_headers(&mut integration);
                    items.insert(integration.id.clone(), *integration);
                }
                Record::Delete { id } => {
                    items.remove(&id);
                    sealed_credentials.remove(&id);
                    positions.insert((true, id), position);
                }
                Record::Credentials { id, sealed } => {
                    sealed_credentials.insert(id, sealed);
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
        let sealer_is_shared = sealer.is_some();
        let vault = match &sealer {
            None => Vault::open(dir)?,
            Some(sealer) => Vault::unsealed(sealer, sealed_credentials),
        };
        let store = Arc::new(IntegrationStore {
            stream,
            items: RwLock::new(items),
            vault,
            writes: tokio::sync::Mutex::new(()),
            sealer,
            // Only the shared-store follower reads positions (last write in log order).
            positions: parking_lot::Mutex::new(if sealer_is_shared {
                positions
            } else {
                HashMap::new()
            }),
            followed: std::sync::atomic::AtomicU64::new(end.get()),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        store.follow_other_replicas();
        Ok(store)
    }

    /// Makes queued writes (and a compaction under way) durable and closes the stream.
    pub async fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
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

    /// [`IntegrationStore::credentials`] of `integration` for a call, refused when it names
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
        self.change_credentials(|v| {
            if creds.is_empty() {
                v.remove(&id);
            } else {
                v.insert(id.clone(), creds);
            }
        })
        .await?;
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
                self.change_credentials(|v| {
                    v.insert(id.to_string(), creds);
                })
                .await?;
            } else if old_origin != new_origin {
                let (kept, dropped): (BTreeMap<_, _>, BTreeMap<_, _>) = self
                    .vault
                    .get(id)
                    .into_iter()
                    .partition(|(k, _)| INBOUND_KEYS.contains(&k.as_str()));
                if !dropped.is_empty() {
                    let names: Vec<String> = dropped.keys().cloned().collect();
                    current.config.credential_names = kept.keys().cloned().collect();
                    self.change_credentials(|v| {
                        if kept.is_empty() {
                            v.remove(id);
                        } else {
                            v.insert(id.to_string(), kept);
                        }
                    })
                    .await?;
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

    /// Deletes integration `id` when `principal` may use it and, when `revision` is
    /// given (the one a confirmation was asked for), it is still at that revision.
    pub async fn delete(
        &self,
        id: &str,
        principal: &Principal,
        revision: Option<u64>,
    ) -> Result<Integration, RegistryError> {
        let _guard = self.writes.lock().await;
        let current = self.get_for(id, principal)?;
        if revision.is_some_and(|r| r != current.revision) {
            return Err(RegistryError::Changed {
                id: id.to_string(),
                revision: current.revision,
            });
        }
        let position = self
            .stream
            .append(&Record::Delete { id: id.to_string() })
            .await
            .map_err(|e| RegistryError::Storage(e.to_string()))?;
        self.note_position(false, id, position);
        self.note_position(true, id, position);
        self.items.write().remove(id);
        if self.sealer.is_some() {
            self.vault.set(id, None);
        } else {
            self.vault.update(|v| {
                v.remove(id);
            })?;
        }
        Ok(current)
    }

    async fn put(&self, integration: Integration) -> Result<Integration, RegistryError> {
        let position = self
            .stream
            .append(&Record::Put {
                integration: Box::new(integration.clone()),
            })
            .await
            .map_err(|e| RegistryError::Storage(e.to_string()))?;
        self.note_position(false, &integration.id, position);
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

/// Every record of a replay with the position it was read at (a snapshot's records at
/// the snapshot's).
fn positioned(replay: Replay<Record>) -> Vec<(u64, Record)> {
    let mut out: Vec<(u64, Record)> = Vec::new();
    if let Some((position, records)) = replay.snapshot {
        out.extend(records.into_iter().map(|r| (position.get(), r)));
    }
    out.extend(replay.records.into_iter().map(|(p, r)| (p.get(), r)));
    out
}

/// The last position a replay accounts for.
fn replay_end(replay: &Replay<Record>) -> Position {
    let snapshot = replay
        .snapshot
        .as_ref()
        .map_or(Position::START, |(p, _)| *p);
    replay
        .records
        .last()
        .map_or(snapshot, |(p, _)| (*p).max(snapshot))
}
