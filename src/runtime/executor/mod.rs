//! The executor: named lanes that bound and pace outbound or heavy work.
//!
//! A lane has a maximum concurrency, a minimum interval between starts, an optional rate
//! (n starts per window), a waiting-queue bound and a pause-until instant. A full queue is
//! back-pressure: callers wait within their deadline, and past it get an error naming
//! the lane. Cancellation drops the waiter. Owns scheduling only; it must not know what
//! the work is. The exact sliding-window rate is kept by hand (a ring of start instants)
//! because GCRA limiters allow up to twice the burst inside one window.
//!
//! An adaptive lane's concurrency window moves at run time between 1 and its maximum
//! (AIMD, fed by the caller's [`Lane::congested`] / [`Lane::succeeded`]): it halves on
//! congestion (once per round: answers to work started before the last cut are ignored),
//! grows by one per window's worth of successes, and stays below the window that last
//! failed until [`PROBE_AFTER`] has passed. The window is a semaphore whose permits are
//! added or forgotten; permits that are in use when the window shrinks are forgotten as
//! they come back. (The `tower`/`governor` limiters are fixed-size or rate-only, hence
//! this small state machine.)

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc, time::Instant};

use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

mod lane;
#[cfg(test)]
mod tests;

pub use lane::{Lane, LaneConfig, LaneStats, PROBE_AFTER};

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ExecError {
    #[error(
        "lane `{lane}` did not admit the work before the deadline (waited {waited_ms} ms, {waiting} waiting); retry later or raise the request timeout"
    )]
    Deadline {
        lane: String,
        waited_ms: u64,
        waiting: usize,
    },
    #[error("cancelled while waiting in lane `{lane}`")]
    Cancelled { lane: String },
    #[error("work on lane `{lane}` did not finish: {reason}")]
    Aborted { lane: String, reason: String },
    /// The lane's shared admission (see [`Lane::share`]) failed, e.g. its store is down.
    #[error("lane `{lane}`: {message}")]
    Shared { lane: String, message: String },
}

/// What a [`SharedAdmission`] hands out: held while the admitted work runs, dropped
/// (releasing whatever it holds) when the work ends or is dropped.
pub type SharedTicket = Box<dyn Send + Sync>;

/// Why a [`SharedAdmission`] did not admit the work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedRefusal {
    Deadline,
    Cancelled,
    /// The admission could not be decided (the text says why and names what failed).
    Failed(String),
}

/// Admission decided outside this process, e.g. leases on a store several replicas
/// share, so a lane's bounds hold across all of them. Asked after the lane's own
/// admission, within the work's deadline and cancellation.
pub trait SharedAdmission: Send + Sync {
    fn admit<'a>(
        &'a self,
        deadline: Instant,
        cancel: &'a CancellationToken,
    ) -> Pin<Box<dyn Future<Output = Result<SharedTicket, SharedRefusal>> + Send + 'a>>;
}

/// All lanes by name, plus optional caps shared by a group of lanes.
#[derive(Clone, Default)]
pub struct Executor {
    lanes: Arc<Mutex<HashMap<String, Arc<Lane>>>>,
    groups: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl Executor {
    /// The lane called `name`, created with `config` on first use.
    pub fn lane(&self, name: &str, config: impl FnOnce() -> LaneConfig) -> Arc<Lane> {
        let mut lanes = self.lanes.lock();
        lanes
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Lane::new(name, config(), None)))
            .clone()
    }

    /// Like [`Executor::lane`], but every lane of `group` also shares a cap of `group_cap`.
    pub fn grouped_lane(
        &self,
        name: &str,
        group: &str,
        group_cap: usize,
        config: impl FnOnce() -> LaneConfig,
    ) -> Arc<Lane> {
        let sem = self
            .groups
            .lock()
            .entry(group.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(group_cap.max(1))))
            .clone();
        let mut lanes = self.lanes.lock();
        lanes
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Lane::new(name, config(), Some(sem))))
            .clone()
    }

    /// The `cpu` lane: CPU-heavy work, as many at once as there are cores.
    pub fn cpu(&self) -> Arc<Lane> {
        self.lane("cpu", || {
            LaneConfig::concurrency(std::thread::available_parallelism().map_or(2, |n| n.get()))
        })
    }

    /// Runs a blocking closure on the `cpu` lane via `spawn_blocking`.
    pub async fn run_cpu<T: Send + 'static>(
        &self,
        deadline: Instant,
        cancel: &CancellationToken,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ExecError> {
        let lane = self.cpu();
        let name = lane.name().to_string();
        lane.run_holding(deadline, cancel, |guards| async move {
            // The lane's slots live in the blocking closure: a dropped future (deadline,
            // cancellation) frees them only when the work really ends, which the call's
            // stop flag makes prompt. A panic in the work or a shutdown that cancels it is
            // an error, never a panic of the caller.
            tokio::task::spawn_blocking(move || {
                let out = f();
                drop(guards);
                out
            })
            .await
            .map_err(|e| ExecError::Aborted {
                lane: name,
                reason: e.to_string(),
            })
        })
        .await?
    }

    /// Figures of every lane, sorted by name.
    pub fn stats(&self) -> Vec<LaneStats> {
        let mut out: Vec<LaneStats> = self.lanes.lock().values().map(|l| l.stats()).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}
