//! The bounded PRP history: a ring of the latest runs (default 1,000), kept in the `prp`
//! stream of the runtime's store (the same on every replica sharing it), compacted (in
//! the background, once the log passes 16 MiB) to the runs the ring would hold, and
//! replayed on start.
//!
//! Owns storage only: runs are made by `prp.rs`.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

use parking_lot::Mutex;

use super::prp::PrpRun;
use crate::runtime::store::{
    Backend, Compaction, Fold, Fsync, Replicated, StoreError, StreamOptions,
};

/// Log size past which the stream is compacted to the runs the ring holds.
const MAX_LOG_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Default)]
struct Ring {
    order: VecDeque<String>,
    by_id: HashMap<String, Arc<PrpRun>>,
}

/// The bounded PRP history, journaled.
pub struct PrpStore {
    ring: Mutex<Ring>,
    log: Replicated<PrpRun>,
    cap: usize,
}

impl Fold<PrpRun> for PrpStore {
    fn apply(&self, run: PrpRun) {
        self.insert(Arc::new(run));
    }

    fn reset(&self, runs: Vec<PrpRun>) {
        *self.ring.lock() = Ring::default();
        for run in runs {
            self.insert(Arc::new(run));
        }
    }
}

/// The items a ring of `cap` holds after `items` (one recorded again moves to the back).
fn latest<T>(items: Vec<T>, key: impl Fn(&T) -> &str, cap: usize) -> Vec<T> {
    let mut last = HashMap::new();
    for (i, r) in items.iter().enumerate() {
        last.insert(key(r).to_string(), i);
    }
    let live: Vec<T> = items
        .into_iter()
        .enumerate()
        .filter(|(i, r)| last.get(key(r)) == Some(i))
        .map(|(_, r)| r)
        .collect();
    let skip = live.len().saturating_sub(cap);
    live.into_iter().skip(skip).collect()
}

impl PrpStore {
    pub fn open(backend: &dyn Backend, policy: Fsync, cap: usize) -> Result<Self, StoreError> {
        let options = StreamOptions::new(policy, MAX_LOG_BYTES);
        let compaction = Compaction::new(move |runs| latest(runs, |r: &PrpRun| &r.run_id, cap));
        let (log, replay) = Replicated::open_now(backend, "prp", options, compaction)?;
        for (position, reason) in &replay.undecodable {
            tracing::warn!("prp journal: skipped record {position}: {reason}");
        }
        let store = PrpStore {
            ring: Mutex::new(Ring::default()),
            log,
            cap,
        };
        for run in replay.into_records() {
            store.insert(Arc::new(run));
        }
        Ok(store)
    }

    fn insert(&self, run: Arc<PrpRun>) {
        let mut ring = self.ring.lock();
        if ring.by_id.insert(run.run_id.clone(), run.clone()).is_some() {
            ring.order.retain(|id| *id != run.run_id);
        }
        ring.order.push_back(run.run_id.clone());
        while ring.order.len() > self.cap {
            if let Some(old) = ring.order.pop_front() {
                ring.by_id.remove(&old);
            }
        }
    }

    /// On a shared store, keeps this replica's copy current (see [`Replicated::follow`]).
    pub fn follow(self: &Arc<Self>) {
        self.log.follow(self);
    }

    /// Applies what other replicas recorded before this call (shared store only).
    pub async fn catch_up(&self) {
        self.log.catch_up_or_log(self).await
    }

    /// Keeps a finished run (journaled first).
    pub async fn record(&self, run: Arc<PrpRun>) -> Result<(), StoreError> {
        self.log.append(PrpRun::clone(&run), self).await?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<Arc<PrpRun>> {
        self.ring.lock().by_id.get(id).cloned()
    }

    /// Newest first.
    pub fn list(&self) -> Vec<Arc<PrpRun>> {
        let ring = self.ring.lock();
        ring.order
            .iter()
            .rev()
            .filter_map(|id| ring.by_id.get(id).cloned())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.ring.lock().order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::latest;

    #[test]
    fn compaction_keeps_what_the_ring_holds() {
        let ids = ["a", "b", "c", "a", "d", "b", "e"];
        let kept = latest(ids.to_vec(), |s: &&str| s, 3);
        assert_eq!(kept, vec!["d", "b", "e"]);
        assert_eq!(
            latest(ids.to_vec(), |s: &&str| s, 10),
            vec!["c", "a", "d", "b", "e"]
        );
    }
}
