//! Unit tests of the executor: concurrency, spacing, rate windows, queue bounds,
//! deadlines, cancellation, groups and the adaptive window.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

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
        let (lane, now, peak, cancel) = (lane.clone(), now.clone(), peak.clone(), cancel.clone());
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
        let (lane, now, peak, cancel) = (lane.clone(), now.clone(), peak.clone(), cancel.clone());
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

/// A shared admission held in memory: at most `cap` tickets out, or refusing with `fail`.
struct Tickets {
    out: Arc<AtomicUsize>,
    cap: usize,
    fail: Option<SharedRefusal>,
}

struct Ticket(Arc<AtomicUsize>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SharedAdmission for Tickets {
    fn admit<'a>(
        &'a self,
        _deadline: Instant,
        _cancel: &'a CancellationToken,
    ) -> Pin<Box<dyn Future<Output = Result<SharedTicket, SharedRefusal>> + Send + 'a>> {
        Box::pin(async move {
            if let Some(refusal) = &self.fail {
                return Err(refusal.clone());
            }
            loop {
                let n = self.out.load(Ordering::SeqCst);
                if n < self.cap
                    && self
                        .out
                        .compare_exchange(n, n + 1, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                {
                    return Ok(Box::new(Ticket(self.out.clone())) as SharedTicket);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    }
}

#[tokio::test]
async fn a_shared_admission_bounds_the_work_and_its_ticket_lives_while_it_runs() {
    let ex = Executor::default();
    let lane = ex.lane("shared", || LaneConfig::concurrency(8));
    let out = Arc::new(AtomicUsize::new(0));
    assert!(lane.share(Arc::new(Tickets {
        out: out.clone(),
        cap: 2,
        fail: None,
    })));
    let peak = Arc::new(AtomicUsize::new(0));
    let cancel = CancellationToken::new();
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let (lane, out, peak, cancel) =
                (lane.clone(), out.clone(), peak.clone(), cancel.clone());
            tokio::spawn(async move {
                lane.run(far(), &cancel, async {
                    peak.fetch_max(out.load(Ordering::SeqCst), Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(3)).await;
                })
                .await
                .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        peak.load(Ordering::SeqCst),
        2,
        "each run held a ticket, two at most"
    );
    assert_eq!(out.load(Ordering::SeqCst), 0, "every ticket came back");
}

#[tokio::test]
async fn a_failing_shared_admission_is_an_error_naming_the_lane() {
    let ex = Executor::default();
    let lane = ex.lane("down", || LaneConfig::concurrency(2));
    lane.share(Arc::new(Tickets {
        out: Arc::default(),
        cap: 1,
        fail: Some(SharedRefusal::Failed("the store is down".into())),
    }));
    let e = lane
        .run(far(), &CancellationToken::new(), async {})
        .await
        .unwrap_err();
    assert_eq!(
        e,
        ExecError::Shared {
            lane: "down".into(),
            message: "the store is down".into()
        }
    );
    assert_eq!(lane.stats().running, 0, "the lane slot came back");
    // Admission that never comes ends at the deadline like the lane's own.
    let stuck = ex.lane("stuck", || LaneConfig::concurrency(2));
    stuck.share(Arc::new(Tickets {
        out: Arc::default(),
        cap: 0,
        fail: None,
    }));
    let soon = Instant::now() + Duration::from_millis(50);
    let e = stuck
        .run(soon, &CancellationToken::new(), async {})
        .await
        .unwrap_err();
    assert!(matches!(e, ExecError::Deadline { .. }), "{e}");
}
