//! The credential vault: credential values by integration id, kept apart from the
//! definitions in `<state-dir>/integrations/credentials.json`, written atomically with
//! mode 0600; a damaged file is moved aside and reported.
//!
//! Owns the credential file only; it must not validate definitions or touch the
//! `registry` stream.

use std::{
    collections::{BTreeMap, HashMap},
    io::Write,
    path::{Path, PathBuf},
};

use parking_lot::Mutex;

use super::{RegistryError, VAULT};
use crate::integrations::IntegrationsError;
use crate::runtime::sealed::Sealer;

/// Credential values by integration id, persisted with mode 0600.
pub(super) struct Vault {
    path: PathBuf,
    values: Mutex<HashMap<String, BTreeMap<String, String>>>,
    /// Set when the file was damaged at start and moved aside: what calls that need a
    /// credential the vault no longer has are told.
    pub(super) lost: Option<String>,
}

impl Vault {
    /// Loads the credential file. A damaged one is moved aside (renamed to
    /// `credentials.json.quarantine-<UTC time>`, keeping its 0600 mode) and reported; the
    /// vault then starts empty and says so to calls that need a lost credential.
    pub(super) fn open(dir: &Path) -> Result<Self, IntegrationsError> {
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
    pub(super) fn update(
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

    /// A vault with no file (a shared store): the credentials `sealed` by integration
    /// id, opened with `sealer`. A value that does not open (another store key) is left
    /// out and reported, and calls needing it are told ([`Vault::lost`]).
    pub(super) fn unsealed(sealer: &Sealer, sealed: HashMap<String, Option<String>>) -> Self {
        let mut values = HashMap::new();
        let mut unopened = Vec::new();
        for (id, text) in sealed {
            let Some(text) = text else { continue };
            match open_credentials(sealer, &id, &text) {
                Some(creds) => {
                    values.insert(id, creds);
                }
                None => unopened.push(id),
            }
        }
        let lost = (!unopened.is_empty()).then(|| {
            tracing::error!(count = unopened.len(), "stored integration credentials do not open with this CORTEX_MCP_STORE_KEY");
            "the stored credentials do not open with this replica's CORTEX_MCP_STORE_KEY (every replica must use the same key); give them again with update_integration (config.credentials)".to_string()
        });
        crate::runtime::secrets::register_all(
            values
                .values()
                .flat_map(|m: &BTreeMap<String, String>| m.values()),
        );
        Vault {
            path: PathBuf::new(),
            values: Mutex::new(values),
            lost,
        }
    }

    /// What `change` would make of each integration's credentials that it changes,
    /// without applying it (a shared store journals the changes first).
    pub(super) fn diff(
        &self,
        change: impl FnOnce(&mut HashMap<String, BTreeMap<String, String>>),
    ) -> Vec<(String, Option<BTreeMap<String, String>>)> {
        let values = self.values.lock();
        let mut next = values.clone();
        change(&mut next);
        let mut ids: Vec<&String> = values.keys().chain(next.keys()).collect();
        ids.sort();
        ids.dedup();
        ids.into_iter()
            .filter(|id| values.get(*id) != next.get(*id))
            .map(|id| (id.clone(), next.get(id).cloned()))
            .collect()
    }

    /// Sets (or with `None` removes) one integration's credentials in memory.
    pub(super) fn set(&self, id: &str, creds: Option<BTreeMap<String, String>>) {
        let mut values = self.values.lock();
        match creds {
            Some(creds) => {
                crate::runtime::secrets::register_all(creds.values());
                values.insert(id.to_string(), creds);
            }
            None => {
                values.remove(id);
            }
        }
    }

    pub(super) fn get(&self, id: &str) -> BTreeMap<String, String> {
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

/// An integration's credentials sealed for a shared store.
pub(super) fn seal_credentials(
    sealer: &Sealer,
    id: &str,
    creds: &BTreeMap<String, String>,
) -> Result<String, RegistryError> {
    let plain = serde_json::to_vec(creds).map_err(|e| RegistryError::Storage(e.to_string()))?;
    sealer
        .seal(id, &plain)
        .map_err(|e| RegistryError::Storage(e.to_string()))
}

/// The credentials `text` seals for integration `id`, when they open with `sealer`.
pub(super) fn open_credentials(
    sealer: &Sealer,
    id: &str,
    text: &str,
) -> Option<BTreeMap<String, String>> {
    let plain = sealer.open(id, text).ok()?;
    serde_json::from_slice(&plain).ok()
}
