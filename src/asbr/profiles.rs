//! Profiles (`cortex.profile@1`): skill level, preferred tools and accessibility needs,
//! kept in the `profiles` stream of the runtime's store (last write wins, in log order on
//! every replica sharing the store; compacted to the last write of each profile once the
//! log passes [`MAX_LOG_BYTES`]) and rebuilt on start.
//!
//! Owns profile storage only; must not touch tasks or tool wiring.

use std::{collections::HashMap, sync::Arc};

use parking_lot::RwLock;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::store::{Backend, Compaction, Fold, Fsync, Replicated, StreamOptions};

use super::{AsbrError, open_replicated};

const STREAM: &str = "profiles";
/// Log size past which the stream is compacted to the last write of each profile.
pub const MAX_LOG_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("profile {0} not found; create it with upsert_profile")]
    NotFound(String),
    #[error("could not journal the profile: {0}")]
    Journal(String),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Skill {
    Beginner,
    Intermediate,
    Expert,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct A11y {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyboard_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen_reader: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduced_motion: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_contrast: Option<bool>,
}

/// A stored profile.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub id: String,
    pub skill: Skill,
    pub tools: Vec<String>,
    pub a11y: A11y,
    pub updated_at: String,
}

pub struct ProfileStore {
    log: Replicated<Profile>,
    profiles: RwLock<HashMap<String, Profile>>,
}

impl Fold<Profile> for ProfileStore {
    fn apply(&self, profile: Profile) {
        self.profiles.write().insert(profile.id.clone(), profile);
    }

    fn reset(&self, records: Vec<Profile>) {
        *self.profiles.write() = by_id(records);
    }
}

fn by_id(records: Vec<Profile>) -> HashMap<String, Profile> {
    records.into_iter().map(|p| (p.id.clone(), p)).collect()
}

impl ProfileStore {
    pub fn open(backend: &dyn Backend, policy: Fsync) -> Result<Self, AsbrError> {
        Self::open_with(backend, StreamOptions::new(policy, MAX_LOG_BYTES))
    }

    /// [`ProfileStore::open`] with explicit stream options (tests use a small log).
    pub fn open_with(backend: &dyn Backend, options: StreamOptions) -> Result<Self, AsbrError> {
        let compaction = Compaction::last_per_key(|p: &Profile| p.id.clone());
        let (log, records) = open_replicated(backend, STREAM, options, compaction)?;
        Ok(ProfileStore {
            log,
            profiles: RwLock::new(by_id(records)),
        })
    }

    /// On a shared store, keeps this replica's copy current (see [`Replicated::follow`]).
    pub fn follow(self: &Arc<Self>) {
        self.log.follow(self);
    }

    /// Applies what other replicas wrote before this call (shared store only).
    pub async fn catch_up(&self) {
        self.log.catch_up_or_log(self).await
    }

    /// Writes `profile` durably, then makes it visible; `true` when it is new (on a
    /// shared store: when no replica had written it before this write landed).
    pub async fn upsert(&self, profile: Profile) -> Result<(Profile, bool), ProfileError> {
        let mut created = false;
        self.log
            .append_current(self, || {
                created = !self.profiles.read().contains_key(&profile.id);
                Ok::<_, ()>(profile.clone())
            })
            .await
            .map_err(|e| ProfileError::Journal(e.to_string()))?
            .map_err(|()| ProfileError::Journal("the profile was not written".into()))?;
        Ok((profile, created))
    }

    /// Profile `id`, as last written anywhere before this call.
    pub async fn get(&self, id: &str) -> Result<Profile, ProfileError> {
        self.catch_up().await;
        self.profiles
            .read()
            .get(id)
            .cloned()
            .ok_or_else(|| ProfileError::NotFound(id.to_string()))
    }

    /// Makes queued writes (and a compaction under way) durable and closes the stream.
    pub async fn close(&self) {
        self.log.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::store::LocalBackend;
    use std::path::Path;

    fn profile(id: &str, n: usize) -> Profile {
        Profile {
            id: id.into(),
            skill: Skill::Intermediate,
            tools: vec![format!("tool-{n}")],
            a11y: A11y::default(),
            updated_at: format!("2026-01-01T00:00:{:02}Z", n % 60),
        }
    }

    fn stored_bytes(dir: &Path) -> u64 {
        ["profiles.ndjson", "profiles.snapshot.json"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum()
    }

    #[tokio::test]
    async fn many_updates_compact_the_journal_and_the_state_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let options = StreamOptions::new(Fsync::Never, 4096);
        let store = ProfileStore::open_with(&LocalBackend::new(dir.path()), options).unwrap();
        let mut appended = 0;
        for n in 0..600 {
            let p = profile(["ada", "bob", "cy"][n % 3], n);
            appended += serde_json::to_vec(&p).unwrap().len() as u64;
            store.upsert(p).await.unwrap();
        }
        store.close().await;
        let stored = stored_bytes(dir.path());
        assert!(
            stored < appended / 10,
            "{stored} bytes stored for {appended} bytes of updates"
        );
        assert!(dir.path().join("profiles.snapshot.json").exists());

        let store = ProfileStore::open_with(&LocalBackend::new(dir.path()), options).unwrap();
        assert_eq!(store.get("ada").await.unwrap(), profile("ada", 597));
        assert_eq!(store.get("bob").await.unwrap(), profile("bob", 598));
        assert_eq!(store.get("cy").await.unwrap(), profile("cy", 599));
        assert!(store.get("dee").await.is_err());
        store.close().await;
    }
}
