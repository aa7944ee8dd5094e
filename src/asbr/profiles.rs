//! Profiles (`cortex.profile@1`): skill level, preferred tools and accessibility needs,
//! kept in the `profiles` journal (last write wins) and rebuilt on start.
//!
//! Owns profile storage only; must not touch tasks or tool wiring.

use std::{collections::HashMap, path::Path};

use parking_lot::RwLock;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::journal::{FsyncPolicy, Journal};

use super::{AsbrError, open_journal};

const STREAM: &str = "profiles";

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
    journal: Journal,
    profiles: RwLock<HashMap<String, Profile>>,
}

impl ProfileStore {
    pub fn open(dir: &Path, policy: FsyncPolicy) -> Result<Self, AsbrError> {
        let (journal, records) = open_journal(dir, STREAM, policy)?;
        let mut profiles = HashMap::new();
        for (i, raw) in records.into_iter().enumerate() {
            let p: Profile = serde_json::from_value(raw).map_err(|e| AsbrError::Replay {
                stream: STREAM,
                reason: format!("record {}: {e}", i + 1),
            })?;
            profiles.insert(p.id.clone(), p);
        }
        Ok(ProfileStore {
            journal,
            profiles: RwLock::new(profiles),
        })
    }

    /// Writes `profile` durably, then makes it visible.
    pub async fn upsert(&self, profile: Profile) -> Result<(Profile, bool), ProfileError> {
        self.journal
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
}
