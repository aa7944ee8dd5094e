//! Profiles (`cortex.profile@1`): skill level, preferred tools and accessibility needs,
//! kept in the `profiles` stream of the runtime's store (last write wins; compacted to
//! the last write of each profile once the log passes [`MAX_LOG_BYTES`]) and rebuilt on
//! start.
//!
//! Owns profile storage only; must not touch tasks or tool wiring.

use std::{collections::HashMap, path::Path};

use parking_lot::RwLock;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::store::{Compaction, Fsync, LocalBackend, Stream, StreamOptions};

use super::AsbrError;

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
    stream: Stream<Profile>,
    profiles: RwLock<HashMap<String, Profile>>,
}

impl ProfileStore {
    pub fn open(dir: &Path, policy: Fsync) -> Result<Self, AsbrError> {
        Self::open_with(dir, StreamOptions::new(policy, MAX_LOG_BYTES))
    }

    /// [`ProfileStore::open`] with explicit stream options (tests use a small log).
    pub fn open_with(dir: &Path, options: StreamOptions) -> Result<Self, AsbrError> {
        let compaction = Compaction::last_per_key(|p: &Profile| p.id.clone());
        let (stream, replay) =
            Stream::open_local(&LocalBackend::new(dir), STREAM, options, compaction).map_err(
                |source| AsbrError::Journal {
                    stream: STREAM,
                    dir: dir.to_path_buf(),
                    source,
                },
            )?;
        if let Some((position, reason)) = replay.undecodable.first() {
            return Err(AsbrError::Replay {
                stream: STREAM,
                reason: format!("record {position}: {reason}"),
            });
        }
        let profiles = replay
            .into_records()
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        Ok(ProfileStore {
            stream,
            profiles: RwLock::new(profiles),
        })
    }

    /// Writes `profile` durably, then makes it visible.
    pub async fn upsert(&self, profile: Profile) -> Result<(Profile, bool), ProfileError> {
        self.stream
            .append(&profile)
            .await
            .map_err(|e| ProfileError::Journal(e.to_string()))?;
        let existed = self
            .profiles
            .write()
            .insert(profile.id.clone(), profile.clone())
            .is_some();
        Ok((profile, !existed))
    }

    pub fn get(&self, id: &str) -> Result<Profile, ProfileError> {
        self.profiles
            .read()
            .get(id)
            .cloned()
            .ok_or_else(|| ProfileError::NotFound(id.to_string()))
    }

    /// Makes queued writes (and a compaction under way) durable and closes the stream.
    pub async fn close(&self) {
        self.stream.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let store = ProfileStore::open_with(dir.path(), options).unwrap();
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

        let store = ProfileStore::open_with(dir.path(), options).unwrap();
        assert_eq!(store.get("ada").unwrap(), profile("ada", 597));
        assert_eq!(store.get("bob").unwrap(), profile("bob", 598));
        assert_eq!(store.get("cy").unwrap(), profile("cy", 599));
        assert!(store.get("dee").is_err());
        store.close().await;
    }
}
