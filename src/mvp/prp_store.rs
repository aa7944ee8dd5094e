//! The bounded PRP history: a ring of the latest runs (default 1,000), kept in the `prp`
//! stream of the runtime's store, compacted (in the background, once the log passes
//! 16 MiB) to the runs the ring would hold, and replayed on start.
//!
//! Owns storage only: runs are made by `prp.rs`.

use std::{
    collections::{HashMap, VecDeque},
    path::Path,
    sync::Arc,
};

use parking_lot::Mutex;

use super::prp::PrpRun;
use crate::runtime::store::{Compaction, Fsync, LocalBackend, StoreError, Stream, StreamOptions};

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
    stream: Stream<PrpRun>,
    cap: usize,
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
    pub fn open(dir: &Path, policy: Fsync, cap: usize) -> Result<Self, StoreError> {
        Self::open_with(dir, StreamOptions::new(policy, MAX_LOG_BYTES), cap)
    }

    /// [`PrpStore::open`] with explicit stream options (tests use a small log).
    pub fn open_with(dir: &Path, options: StreamOptions, cap: usize) -> Result<Self, StoreError> {
        let compaction = Compaction::new(move |runs| latest(runs, |r: &PrpRun| &r.run_id, cap));
        let (stream, replay) =
            Stream::open_local(&LocalBackend::new(dir), "prp", options, compaction)?;
        for (position, reason) in &replay.undecodable {
            tracing::warn!("prp journal: skipped record {position}: {reason}");
        }
        let store = PrpStore {
            ring: Mutex::new(Ring::default()),
            stream,
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

    /// Keeps a finished run (journaled first).
    pub async fn record(&self, run: Arc<PrpRun>) -> Result<(), StoreError> {
        self.stream.append(&run).await?;
        self.insert(run);
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
