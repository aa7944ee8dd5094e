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

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

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
}

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
}

/// A lane permit; forgotten instead of returned while the lane owes permits after a cut.
/// Owned (no borrow of the lane) so blocking work can hold it until it really ends.
struct Permit {
    window: Arc<Mutex<Window>>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Everything a running piece of work holds in its lane: the lane slot, the group slot
/// and the queue slot.
type Guards = (
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
    fn new(name: &str, config: LaneConfig, group: Option<Arc<Semaphore>>) -> Self {
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
        }
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
    async fn run_holding<T, F: Future<Output = T>>(
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
        let Ok(guards) = admitted else {
            let waiting = self.stats().waiting;
            metrics::counter!("cortex_lane_deadline_total", "lane" => self.name.clone())
                .increment(1);
            return Err(ExecError::Deadline {
                lane: self.name.clone(),
                waited_ms: asked.elapsed().as_millis() as u64,
                waiting,
            });
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
        Ok(work(guards).await)
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(30)
    }

    /// Issue 15: a `run_cpu` whose future was dropped (deadline, cancellation) gave its
    /// lane slot back while its blocking thread still ran, so the lane's bound did not
    /// bound the CPU. The slot now comes back only when the work ends.
    #[tokio::test]
    async fn a_dropped_run_cpu_keeps_its_slot_until_the_work_ends() {
        let ex = Executor::default();
        ex.lane("cpu", || LaneConfig::concurrency(1));
        let cancel = CancellationToken::new();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let first = ex.run_cpu(far(), &cancel, move || {
            let _ = rx.recv();
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(100), first)
                .await
                .is_err(),
            "the work blocks until told to end"
        );
        assert_eq!(ex.cpu().stats().running, 1, "the slot is still held");
        let second = ex
            .run_cpu(Instant::now() + Duration::from_millis(100), &cancel, || 7)
            .await;
        assert!(
            matches!(second, Err(ExecError::Deadline { .. })),
            "no slot while the dropped work still runs"
        );
        tx.send(()).unwrap();
        assert_eq!(ex.run_cpu(far(), &cancel, || 7).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn concurrency_is_bounded() {
        let ex = Executor::default();
        let lane = ex.lane("t", || LaneConfig::concurrency(3));
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        let tasks = (0..20).map(|_| {
            let (lane, now, peak, cancel) =
                (lane.clone(), now.clone(), peak.clone(), cancel.clone());
            tokio::spawn(async move {
                lane.run(far(), &cancel, async {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                })
                .await
                .unwrap()
            })
        });
        futures::future::join_all(tasks).await;
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        assert_eq!(lane.stats().running, 0);
    }

    #[tokio::test]
    async fn spacing_and_rate_are_kept() {
        let ex = Executor::default();
        let lane = ex.lane("w", || {
            LaneConfig::concurrency(4)
                .spacing(Duration::from_millis(20))
                .rate(3, Duration::from_millis(200))
        });
        let cancel = CancellationToken::new();
        let t0 = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..4 {
            starts.push(
                lane.run(far(), &cancel, async { Instant::now() })
                    .await
                    .unwrap(),
            );
        }
        for pair in starts.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(19));
        }
        assert!(
            starts[3] - t0 >= Duration::from_millis(195),
            "4th start waits for the window"
        );
    }

    #[tokio::test]
    async fn deadline_error_names_the_lane() {
        let ex = Executor::default();
        let lane = ex.lane("github:abcd:write", || LaneConfig::concurrency(1));
        lane.pause_until(Instant::now() + Duration::from_secs(5));
        let err = lane
            .run(
                Instant::now() + Duration::from_millis(30),
                &CancellationToken::new(),
                async {},
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("github:abcd:write"), "{err}");
    }

    #[tokio::test]
    async fn pause_holds_work_until_it_ends() {
        let ex = Executor::default();
        let lane = ex.lane("p", || LaneConfig::concurrency(2));
        lane.pause_until(Instant::now() + Duration::from_millis(60));
        let t0 = Instant::now();
        lane.run(far(), &CancellationToken::new(), async {})
            .await
            .unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(55));
    }

    #[tokio::test]
    async fn cancellation_drops_the_waiter() {
        let ex = Executor::default();
        let lane = ex.lane("c", || LaneConfig::concurrency(1));
        lane.pause_until(Instant::now() + Duration::from_secs(5));
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            c2.cancel();
        });
        let err = lane.run(far(), &cancel, async {}).await.unwrap_err();
        assert!(matches!(err, ExecError::Cancelled { .. }));
        assert_eq!(lane.stats().waiting, 0);
    }

    #[tokio::test]
    async fn cpu_work_that_panics_is_an_error_not_a_panic() {
        let ex = Executor::default();
        let err = ex
            .run_cpu(far(), &CancellationToken::new(), || -> u8 {
                panic!("bug in cpu work")
            })
            .await
            .unwrap_err();
        assert!(matches!(err, ExecError::Aborted { .. }), "{err}");
        let ok = ex
            .run_cpu(far(), &CancellationToken::new(), || 7u8)
            .await
            .unwrap();
        assert_eq!(ok, 7);
    }

    #[tokio::test]
    async fn full_queue_is_back_pressure_within_deadline() {
        let ex = Executor::default();
        let lane = ex.lane("q", || LaneConfig::concurrency(1).queue(1));
        let cancel = CancellationToken::new();
        let l2 = lane.clone();
        let c2 = cancel.clone();
        let busy = tokio::spawn(async move {
            l2.run(far(), &c2, tokio::time::sleep(Duration::from_millis(80)))
                .await
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let l3 = lane.clone();
        let c3 = cancel.clone();
        let queued = tokio::spawn(async move { l3.run(far(), &c3, async {}).await });
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Third caller finds the queue full and waits (back-pressure) rather than failing.
        let third = lane.run(far(), &cancel, async { 3 }).await.unwrap();
        assert_eq!(third, 3);
        busy.await.unwrap().unwrap();
        queued.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn group_cap_spans_lanes() {
        let ex = Executor::default();
        let a = ex.grouped_lane("a", "g", 2, || LaneConfig::concurrency(2));
        let b = ex.grouped_lane("b", "g", 2, || LaneConfig::concurrency(2));
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        let tasks = (0..8).map(|i| {
            let lane = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (now, peak, cancel) = (now.clone(), peak.clone(), cancel.clone());
            tokio::spawn(async move {
                lane.run(far(), &cancel, async {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                })
                .await
                .unwrap()
            })
        });
        futures::future::join_all(tasks).await;
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn adaptive_window_halves_on_congestion_and_grows_back_to_the_cap() {
        let ex = Executor::default();
        let lane = ex.lane("a", || LaneConfig::concurrency(8).adaptive(2));
        assert_eq!(lane.window(), 2);
        let t = Instant::now();
        // One window's worth of successes widens by one.
        lane.succeeded(t);
        assert_eq!(lane.window(), 2);
        lane.succeeded(t);
        assert_eq!(lane.window(), 3);
        for _ in 0..3 {
            lane.succeeded(t);
        }
        assert_eq!(lane.window(), 4);
        lane.congested(Instant::now());
        assert_eq!(lane.window(), 2);
        // Answers to work started before the cut do not cut again.
        lane.congested(t);
        assert_eq!(lane.window(), 2);
        // Growth stops below the width that met congestion.
        let after = Instant::now();
        for _ in 0..50 {
            lane.succeeded(after);
        }
        assert_eq!(lane.window(), 3);
        assert_eq!(lane.stats().window, 3);
        assert_eq!(lane.stats().max_concurrent, 8);
    }

    #[tokio::test]
    async fn adaptive_window_never_exceeds_max_and_bounds_running_work() {
        let ex = Executor::default();
        let lane = ex.lane("b", || LaneConfig::concurrency(3).adaptive(1));
        for _ in 0..100 {
            lane.succeeded(Instant::now());
        }
        assert_eq!(lane.window(), 3);
        // Shrinking while all permits are in use: the running work keeps them, and the
        // lane admits no more than the new window once they come back.
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        let busy: Vec<_> = (0..3)
            .map(|_| {
                let (lane, cancel) = (lane.clone(), cancel.clone());
                tokio::spawn(async move {
                    lane.run(
                        far(),
                        &cancel,
                        tokio::time::sleep(Duration::from_millis(40)),
                    )
                    .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(lane.stats().running, 3);
        lane.congested(Instant::now());
        assert_eq!(lane.window(), 1);
        assert_eq!(lane.stats().running, 3);
        for b in busy {
            b.await.unwrap().unwrap();
        }
        assert_eq!(lane.stats().running, 0);
        let tasks = (0..6).map(|_| {
            let (lane, now, peak, cancel) =
                (lane.clone(), now.clone(), peak.clone(), cancel.clone());
            tokio::spawn(async move {
                lane.run(far(), &cancel, async {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                })
                .await
                .unwrap()
            })
        });
        futures::future::join_all(tasks).await;
        assert_eq!(peak.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn fixed_lanes_ignore_feedback() {
        let ex = Executor::default();
        let lane = ex.lane("f", || LaneConfig::concurrency(4));
        lane.congested(Instant::now());
        assert_eq!(lane.window(), 4);
        assert_eq!(lane.stats().window, 4);
    }
}
