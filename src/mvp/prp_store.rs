//! The bounded PRP history: a ring of the latest runs (default 1,000), journaled in the
//! `prp` stream, compacted to the live runs, and replayed on start.
//!
//! Owns storage only: runs are made by `prp.rs`.

use std::{
    collections::{HashMap, VecDeque},
    path::Path,
    sync::Arc,
};

use parking_lot::Mutex;
use serde_json::Value;

use super::prp::PrpRun;
use crate::runtime::journal::{FsyncPolicy, Journal, JournalError, JournalOptions};

#[derive(Default)]
struct Ring {
    order: VecDeque<String>,
    by_id: HashMap<String, Arc<PrpRun>>,
}

/// The bounded PRP history, journaled.
pub struct PrpStore {
    ring: Mutex<Ring>,
    journal: Journal,
    cap: usize,
}

impl PrpStore {
    pub fn open(dir: &Path, policy: FsyncPolicy, cap: usize) -> Result<Self, JournalError> {
        let options = JournalOptions {
            policy,
            max_segment_bytes: 16 * 1024 * 1024,
        };
        let (journal, records) = Journal::open_with(dir, "prp", options)?;
        let store = PrpStore {
            ring: Mutex::new(Ring::default()),
            journal,
            cap,
        };
        for r in records {
            match serde_json::from_value::<PrpRun>(r) {
                Ok(run) => store.insert(Arc::new(run)),
                Err(e) => tracing::warn!("prp journal: skipped a record: {e}"),
            }
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
    pub async fn record(&self, run: Arc<PrpRun>) -> Result<(), JournalError> {
        self.journal.append(&*run).await?;
        self.insert(run);
        if self.journal.needs_compaction() {
            let live: Vec<Value> = {
                let ring = self.ring.lock();
                ring.order
                    .iter()
                    .filter_map(|id| ring.by_id.get(id))
                    .filter_map(|r| serde_json::to_value(&**r).ok())
                    .collect()
            };
            self.journal.compact(live).await?;
        }
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
