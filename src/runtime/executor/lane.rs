//! One [`Lane`]: its admission rule ([`LaneConfig`]: concurrency, spacing, sliding-window
//! rate, queue bound, pause), the waiting queue with deadline and cancellation, and the
//! adaptive (AIMD) concurrency window.
//!
//! Owns scheduling on one lane; it must not know what the work is nor keep the lanes by
//! name (that is [`Executor`](super::Executor)).

use std::{
    collections::VecDeque,
    future::Future,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{ExecError, SharedAdmission, SharedRefusal};

/// How a lane admits work.
#[derive(Debug, Clone)]
pub struct LaneConfig {
    pub max_concurrent: usize,
    pub min_interval: Option<Duration>,
    /// At most `n` starts within any window of this length.
    pub rates: Vec<(u32, Duration)>,
    pub queue_bound: usize,
    /// When set, the concurrency window adapts at run time, starting at this width
    /// (clamped to 1..=`max_concurrent`).
    pub adaptive_start: Option<usize>,
}

impl Default for LaneConfig {
    fn default() -> Self {
        LaneConfig {
            max_concurrent: 8,
            min_interval: None,
            rates: Vec::new(),
            queue_bound: 1024,
            adaptive_start: None,
        }
    }
}

/// How long an adaptive lane stays below the window that last met congestion.
pub const PROBE_AFTER: Duration = Duration::from_secs(30);

/// Run-time state of an adaptive lane's window.
struct Window {
    /// Current width, 1..=max.
    limit: usize,
    /// Permits handed out before a cut that must be forgotten when they come back.
    debt: usize,
    /// Successes since the last change of `limit`.
    successes: usize,
    last_cut: Option<Instant>,
    /// Highest width allowed until `last_cut + PROBE_AFTER`.
    ceiling: usize,
}

impl LaneConfig {
    pub fn concurrency(n: usize) -> Self {
        LaneConfig {
            max_concurrent: n.max(1),
            ..Default::default()
        }
    }
    pub fn spacing(mut self, d: Duration) -> Self {
        self.min_interval = Some(d);
        self
    }
    pub fn rate(mut self, n: u32, window: Duration) -> Self {
        self.rates.push((n, window));
        self
    }
    pub fn queue(mut self, bound: usize) -> Self {
        self.queue_bound = bound.max(1);
        self
    }
    /// Makes the concurrency window adaptive, starting at `start`.
    pub fn adaptive(mut self, start: usize) -> Self {
        self.adaptive_start = Some(start.clamp(1, self.max_concurrent));
        self
    }
}

#[derive(Default)]
struct Gate {
    paused_until: Option<Instant>,
    last_start: Option<Instant>,
    starts: VecDeque<Instant>,
}

/// A lane's figures, for metrics and status tools.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LaneStats {
    pub name: String,
    pub max_concurrent: usize,
    /// Current concurrency window (equals `max_concurrent` unless the lane is adaptive).
    pub window: usize,
    pub running: usize,
    pub waiting: usize,
    /// Milliseconds until the lane's pause ends, when paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_for_ms: Option<u64>,
}

pub struct Lane {
    name: String,
    config: LaneConfig,
    permits: Arc<Semaphore>,
    queue: Arc<Semaphore>,
    group: Option<Arc<Semaphore>>,
    gate: Mutex<Gate>,
    window: Arc<Mutex<Window>>,
    /// Admission shared with other processes, asked after the lane's own (see
    /// [`Lane::share`]); unset, the lane is process-local.
    shared: OnceLock<Arc<dyn SharedAdmission>>,
}

/// A lane permit; forgotten instead of returned while the lane owes permits after a cut.
/// Owned (no borrow of the lane) so blocking work can hold it until it really ends.
pub(super) struct Permit {
    window: Arc<Mutex<Window>>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Everything a running piece of work holds in its lane: the lane slot, the group slot
/// and the queue slot.
pub(super) type Guards = (
    Permit,
    Option<tokio::sync::OwnedSemaphorePermit>,
    tokio::sync::OwnedSemaphorePermit,
);

impl Drop for Permit {
    fn drop(&mut self) {
        let Some(p) = self.permit.take() else { return };
        let mut w = self.window.lock();
        if w.debt > 0 {
            w.debt -= 1;
            p.forget();
        }
    }
}

impl Lane {
    pub(super) fn new(name: &str, config: LaneConfig, group: Option<Arc<Semaphore>>) -> Self {
        let start = config.adaptive_start.unwrap_or(config.max_concurrent);
        Lane {
            name: name.to_string(),
            window: Arc::new(Mutex::new(Window {
                limit: start,
                debt: 0,
                successes: 0,
                last_cut: None,
                ceiling: config.max_concurrent,
            })),
            permits: Arc::new(Semaphore::new(start)),
            queue: Arc::new(Semaphore::new(config.queue_bound + config.max_concurrent)),
            config,
            group,
            gate: Mutex::new(Gate::default()),
            shared: OnceLock::new(),
        }
    }

    /// Makes every start also need `admission` (e.g. a lease on a store several replicas
    /// share), asked once the lane itself admitted the work; its ticket is held while the
    /// work runs. Set once: later calls are ignored (returns whether this one took).
    pub fn share(&self, admission: Arc<dyn SharedAdmission>) -> bool {
        self.shared.set(admission).is_ok()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops admitting work until `until` (extends, never shortens, an existing pause).
    pub fn pause_until(&self, until: Instant) {
        let mut gate = self.gate.lock();
        if gate.paused_until.is_none_or(|p| p < until) {
            gate.paused_until = Some(until);
        }
    }

    pub fn paused_until(&self) -> Option<Instant> {
        self.gate
            .lock()
            .paused_until
            .filter(|p| *p > Instant::now())
    }

    /// Current concurrency window.
    pub fn window(&self) -> usize {
        self.window.lock().limit
    }

    /// Work started at `started` met congestion upstream (e.g. a secondary rate limit):
    /// an adaptive lane halves its window, once per round.
    pub fn congested(&self, started: Instant) {
        if self.config.adaptive_start.is_none() {
            return;
        }
        let mut w = self.window.lock();
        if w.last_cut.is_some_and(|cut| started < cut) {
            return;
        }
        let now = Instant::now();
        let old = w.limit;
        w.ceiling = old.saturating_sub(1).max(1);
        w.last_cut = Some(now);
        w.successes = 0;
        let new = (old / 2).max(1);
        self.resize(&mut w, new);
        metrics::gauge!("cortex_lane_window", "lane" => self.name.clone()).set(new as f64);
        tracing::info!(lane = %self.name, from = old, to = new, "upstream congestion; lane window cut");
    }

    /// Work started at `started` succeeded: an adaptive lane widens its window by one per
    /// window's worth of successes, up to its maximum (below the last failing width for
    /// [`PROBE_AFTER`] after a cut).
    pub fn succeeded(&self, started: Instant) {
        if self.config.adaptive_start.is_none() {
            return;
        }
        let mut w = self.window.lock();
        if w.last_cut.is_some_and(|cut| started < cut) {
            return;
        }
        let cap = match w.last_cut {
            Some(cut) if cut.elapsed() < PROBE_AFTER => w.ceiling,
            _ => self.config.max_concurrent,
        };
        w.successes += 1;
        if w.limit >= cap {
            w.successes = 0;
            return;
        }
        if w.successes >= w.limit {
            w.successes = 0;
            let new = w.limit + 1;
            self.resize(&mut w, new);
            metrics::gauge!("cortex_lane_window", "lane" => self.name.clone()).set(new as f64);
        }
    }

    /// Moves the window to `new` permits: adds permits (paying back debt first) or
    /// forgets idle ones and records the rest as debt.
    fn resize(&self, w: &mut Window, new: usize) {
        if new > w.limit {
            let mut grow = new - w.limit;
            let repaid = grow.min(w.debt);
            w.debt -= repaid;
            grow -= repaid;
            if grow > 0 {
                self.permits.add_permits(grow);
            }
        } else if new < w.limit {
            let shrink = w.limit - new;
            let forgotten = self.permits.forget_permits(shrink);
            w.debt += shrink - forgotten;
        }
        w.limit = new;
    }

    pub fn stats(&self) -> LaneStats {
        let (limit, debt) = {
            let w = self.window.lock();
            (w.limit, w.debt)
        };
        let running = (limit + debt).saturating_sub(self.permits.available_permits());
        let in_lane =
            self.config.queue_bound + self.config.max_concurrent - self.queue.available_permits();
        LaneStats {
            name: self.name.clone(),
            max_concurrent: self.config.max_concurrent,
            window: limit,
            running,
            waiting: in_lane.saturating_sub(running),
            paused_for_ms: self
                .paused_until()
                .map(|p| p.saturating_duration_since(Instant::now()).as_millis() as u64),
        }
    }

    /// Runs `work` once the lane admits it, within `deadline` and until `cancel`.
    pub async fn run<T, F: Future<Output = T>>(
        &self,
        deadline: Instant,
        cancel: &CancellationToken,
        work: F,
    ) -> Result<T, ExecError> {
        self.run_holding(deadline, cancel, |guards| async move {
            let out = work.await;
            drop(guards);
            out
        })
        .await
    }

    /// Like [`Lane::run`], but hands the lane's slots to `work`, which keeps them as long
    /// as the work really runs (blocking work outlives a dropped future).
    pub(super) async fn run_holding<T, F: Future<Output = T>>(
        &self,
        deadline: Instant,
        cancel: &CancellationToken,
        work: impl FnOnce(Guards) -> F,
    ) -> Result<T, ExecError> {
        let asked = Instant::now();
        let admitted = tokio::select! {
            r = tokio::time::timeout_at(deadline.into(), self.admit()) => r,
            _ = cancel.cancelled() => return Err(ExecError::Cancelled { lane: self.name.clone() }),
        };
        let deadline_error = |asked: Instant| {
            let waiting = self.stats().waiting;
            metrics::counter!("cortex_lane_deadline_total", "lane" => self.name.clone())
                .increment(1);
            ExecError::Deadline {
                lane: self.name.clone(),
                waited_ms: asked.elapsed().as_millis() as u64,
                waiting,
            }
        };
        let Ok(guards) = admitted else {
            return Err(deadline_error(asked));
        };
        let ticket = match self.shared.get() {
            None => None,
            Some(shared) => match tokio::select! {
                r = tokio::time::timeout_at(deadline.into(), shared.admit(deadline, cancel)) => {
                    r.unwrap_or(Err(SharedRefusal::Deadline))
                }
                _ = cancel.cancelled() => Err(SharedRefusal::Cancelled),
            } {
                Ok(ticket) => Some(ticket),
                Err(SharedRefusal::Deadline) => return Err(deadline_error(asked)),
                Err(SharedRefusal::Cancelled) => {
                    return Err(ExecError::Cancelled {
                        lane: self.name.clone(),
                    });
                }
                Err(SharedRefusal::Failed(message)) => {
                    return Err(ExecError::Shared {
                        lane: self.name.clone(),
                        message,
                    });
                }
            },
        };
        let waited = asked.elapsed();
        metrics::histogram!("cortex_lane_wait_seconds", "lane" => self.name.clone())
            .record(waited.as_secs_f64());
        metrics::gauge!("cortex_lane_running", "lane" => self.name.clone()).increment(1.0);
        let started = Instant::now();
        // Runs even when the caller drops the work mid-run (cancellation).
        let _running = scopeguard(|| {
            metrics::gauge!("cortex_lane_running", "lane" => self.name.clone()).decrement(1.0);
            metrics::histogram!("cortex_lane_run_seconds", "lane" => self.name.clone())
                .record(started.elapsed().as_secs_f64());
        });
        let out = work(guards).await;
        drop(ticket);
        Ok(out)
    }

    async fn admit(&self) -> Guards {
        let queued = self
            .queue
            .clone()
            .acquire_owned()
            .await
            .expect("lane semaphores are never closed");
        metrics::gauge!("cortex_lane_waiting", "lane" => self.name.clone()).increment(1.0);
        let _waiting = scopeguard(|| {
            metrics::gauge!("cortex_lane_waiting", "lane" => self.name.clone()).decrement(1.0)
        });
        loop {
            self.sleep_while_paused().await;
            let permit = Permit {
                window: self.window.clone(),
                permit: Some(
                    self.permits
                        .clone()
                        .acquire_owned()
                        .await
                        .expect("lane semaphores are never closed"),
                ),
            };
            let group = match &self.group {
                Some(g) => Some(
                    g.clone()
                        .acquire_owned()
                        .await
                        .expect("group semaphores are never closed"),
                ),
                None => None,
            };
            match self.try_start(Instant::now()) {
                None => return (permit, group, queued),
                Some(wait_until) => {
                    drop(group);
                    drop(permit);
                    tokio::time::sleep_until(wait_until.into()).await;
                }
            }
        }
    }

    async fn sleep_while_paused(&self) {
        while let Some(until) = self.paused_until() {
            tokio::time::sleep_until(until.into()).await;
        }
    }

    /// Records a start at `now` if pacing allows it; otherwise returns when to retry.
    fn try_start(&self, now: Instant) -> Option<Instant> {
        let mut gate = self.gate.lock();
        let mut earliest = now;
        if let Some(p) = gate.paused_until.filter(|p| *p > now) {
            earliest = earliest.max(p);
        }
        if let (Some(last), Some(gap)) = (gate.last_start, self.config.min_interval) {
            earliest = earliest.max(last + gap);
        }
        let longest = self
            .config
            .rates
            .iter()
            .map(|r| r.1)
            .max()
            .unwrap_or_default();
        while gate
            .starts
            .front()
            .is_some_and(|s| now.duration_since(*s) >= longest)
        {
            gate.starts.pop_front();
        }
        for &(n, window) in &self.config.rates {
            let recent: Vec<&Instant> = gate
                .starts
                .iter()
                .filter(|s| now.duration_since(**s) < window)
                .collect();
            if recent.len() >= n as usize {
                let oldest_needed = recent[recent.len() - n as usize];
                earliest = earliest.max(*oldest_needed + window);
            }
        }
        if earliest > now {
            return Some(earliest);
        }
        gate.last_start = Some(now);
        if !self.config.rates.is_empty() {
            gate.starts.push_back(now);
        }
        None
    }
}

struct ScopeGuard<F: FnMut()>(F);
impl<F: FnMut()> Drop for ScopeGuard<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}
fn scopeguard<F: FnMut()>(f: F) -> ScopeGuard<F> {
    ScopeGuard(f)
}
