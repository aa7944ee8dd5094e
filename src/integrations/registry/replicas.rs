//! The registry on a shared store (`--store redis://…`): credentials are sealed into the
//! `registry` stream (no credential file), and every replica applies the records the
//! others append, so an integration created through one replica is called through any.
//!
//! Owns journaling credential changes sealed, following the stream, catching up on
//! demand, and applying a record only past the position that last set its key (the
//! definition or the credentials of one id): every replica ends with the log's last
//! record per key, its own writes included. Must not validate definitions or send
//! requests.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Weak, atomic::Ordering},
    time::Duration,
};

use futures::StreamExt;

use crate::runtime::{
    principal::Principal,
    store::{Entry, Position},
};

use super::{
    Integration, IntegrationStore, Record, RegistryError,
    vault::{open_credentials, seal_credentials},
};

/// Pause after a failed read of the shared stream before following again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(500);

impl IntegrationStore {
    /// Applies `change` to the credentials: on a local store through the credential
    /// file; on a shared one by journaling each changed set sealed, then in memory.
    pub(super) async fn change_credentials(
        &self,
        change: impl FnOnce(&mut HashMap<String, BTreeMap<String, String>>),
    ) -> Result<(), RegistryError> {
        let Some(sealer) = &self.sealer else {
            return self.vault.update(change);
        };
        for (id, creds) in self.vault.diff(change) {
            let sealed = creds
                .as_ref()
                .map(|c| seal_credentials(sealer, &id, c))
                .transpose()?;
            let position = self
                .stream
                .append(&Record::Credentials {
                    id: id.clone(),
                    sealed,
                })
                .await
                .map_err(|e| RegistryError::Storage(e.to_string()))?;
            self.note_position(true, &id, position);
            self.vault.set(&id, creds);
        }
        Ok(())
    }

    /// Records that this process's append at `position` set the key (shared store).
    pub(super) fn note_position(&self, credentials: bool, id: &str, position: Position) {
        if self.sealer.is_some() {
            let mut positions = self.positions.lock();
            let known = positions.entry((credentials, id.to_string())).or_default();
            *known = (*known).max(position.get());
        }
    }

    /// Integration `id` for `principal`; on a shared store a miss first catches up with
    /// the records other replicas appended (one read of the store).
    pub async fn find_for(
        &self,
        id: &str,
        principal: &Principal,
    ) -> Result<Integration, RegistryError> {
        match self.get_for(id, principal) {
            Err(RegistryError::NotFound(_)) if self.sealer.is_some() => {
                self.catch_up().await;
                self.get_for(id, principal)
            }
            found => found,
        }
    }

    /// Applies every record appended to the shared stream past what the follower
    /// applied. A store error is logged; the caller answers from what it holds.
    pub async fn catch_up(&self) {
        let after = Position(self.followed.load(Ordering::Acquire));
        match self.stream.read_after(after).await {
            Ok(replay) => {
                for (position, record) in super::positioned(replay) {
                    self.apply_foreign(position, record);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the shared integrations registry"),
        }
    }

    /// On a shared store, starts applying the records other replicas append.
    pub(super) fn follow_other_replicas(self: &Arc<Self>) {
        if self.sealer.is_none() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no runtime: the shared integrations registry is not followed");
            return;
        };
        let store: Weak<IntegrationStore> = Arc::downgrade(self);
        runtime.spawn(async move {
            loop {
                let Some(tail) = store.upgrade().map(|s| {
                    s.stream
                        .tail(Position(s.followed.load(Ordering::Acquire)))
                }) else {
                    return;
                };
                let mut tail = tail;
                while let Some(entry) = tail.next().await {
                    let Some(store) = store.upgrade() else { return };
                    match entry {
                        Ok(Entry::Record { position, record }) => {
                            store.apply_foreign(position.get(), record);
                            store.followed.fetch_max(position.get(), Ordering::AcqRel);
                        }
                        Ok(Entry::Snapshot { position, records }) => {
                            for record in records {
                                store.apply_foreign(position.get(), record);
                            }
                            store.followed.fetch_max(position.get(), Ordering::AcqRel);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "following the shared integrations registry failed; retrying");
                            break;
                        }
                    }
                }
                if store.upgrade().is_none_or(|s| s.stream_closed()) {
                    return;
                }
                tokio::time::sleep(RETRY_AFTER_FAILURE).await;
            }
        });
    }

    fn stream_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Applies one record read at `position` unless its key was set at or past it.
    fn apply_foreign(&self, position: u64, record: Record) {
        let key = (
            matches!(record, Record::Credentials { .. }),
            record.id().to_string(),
        );
        {
            let mut positions = self.positions.lock();
            let known = positions.entry(key).or_default();
            if *known >= position {
                return;
            }
            *known = position;
        }
        match record {
            Record::Put { mut integration } => {
                super::scrub_secret_headers(&mut integration);
                self.items
                    .write()
                    .insert(integration.id.clone(), *integration);
            }
            Record::Delete { id } => {
                self.positions.lock().insert((true, id.clone()), position);
                self.items.write().remove(&id);
                self.vault.set(&id, None);
            }
            Record::Credentials { id, sealed } => {
                let creds = match (&self.sealer, sealed) {
                    (Some(sealer), Some(text)) => {
                        let opened = open_credentials(sealer, &id, &text);
                        if opened.is_none() {
                            tracing::error!(integration = %id, "credentials from another replica do not open with this CORTEX_MCP_STORE_KEY");
                        }
                        opened
                    }
                    _ => None,
                };
                self.vault.set(&id, creds);
            }
        }
    }
}
