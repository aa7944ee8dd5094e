//! The stop flag CPU work polls: the registry makes one per call (a child of the caller's),
//! with the call's deadline, and raises it when the call ends for any reason — it
//! answered, its deadline passed, the client cancelled, or its future was dropped (a
//! graph timeout, a failed batch sibling). Blocking work on `spawn_blocking` cannot be
//! dropped, so diffs, applies, conflict checks, regex replacements, scans and renders
//! check [`Stop::check`] (through a [`Ticker`] in tight loops) and give the CPU back
//! within a few milliseconds of the deadline or the cancellation.
//!
//! Owns the flag and its deadline only; it must not know any toolset.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

/// The work was stopped: its call's deadline passed, or the call ended or was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stopped: the call's deadline passed or the call was cancelled")]
pub struct Stopped;

struct Inner {
    deadline: Instant,
    raised: AtomicBool,
    parent: Option<Stop>,
}

/// A deadline plus a flag, shared by every clone; a child also stops with its parent.
#[derive(Clone)]
pub struct Stop {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stop")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

/// Far enough to never pass in a process's life (and still add safely to `now`).
const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl Stop {
    /// A root flag that stops at `deadline`.
    pub fn new(deadline: Instant) -> Self {
        Stop {
            inner: Arc::new(Inner {
                deadline,
                raised: AtomicBool::new(false),
                parent: None,
            }),
        }
    }

    /// A flag with no deadline, raised only by hand (command-line helpers, tests).
    pub fn never() -> Self {
        Stop::new(Instant::now() + NEVER)
    }

    /// A flag that stops at `deadline`, when raised, or when `self` stops.
    pub fn child(&self, deadline: Instant) -> Self {
        Stop {
            inner: Arc::new(Inner {
                deadline: deadline.min(self.deadline()),
                raised: AtomicBool::new(false),
                parent: Some(self.clone()),
            }),
        }
    }

    /// The earliest deadline of this flag and its parents.
    pub fn deadline(&self) -> Instant {
        self.inner.deadline
    }

    /// Raises the flag: every clone and child stops.
    pub fn raise(&self) {
        self.inner.raised.store(true, Ordering::Release);
    }

    /// A guard that raises the flag when dropped.
    pub fn raise_on_drop(&self) -> RaiseOnDrop {
        RaiseOnDrop(self.clone())
    }

    fn raised(&self) -> bool {
        let mut cur = Some(self);
        while let Some(s) = cur {
            if s.inner.raised.load(Ordering::Acquire) {
                return true;
            }
            cur = s.inner.parent.as_ref();
        }
        false
    }

    /// Whether work should stop now.
    pub fn is_stopped(&self) -> bool {
        self.raised() || Instant::now() >= self.inner.deadline
    }

    /// `Err(Stopped)` once work should stop.
    pub fn check(&self) -> Result<(), Stopped> {
        if self.is_stopped() {
            Err(Stopped)
        } else {
            Ok(())
        }
    }

    /// A cheap poller for tight loops: checks the flag every `every` ticks.
    pub fn ticker(&self, every: u32) -> Ticker<'_> {
        Ticker {
            stop: self,
            every: every.max(1),
            left: every.max(1),
        }
    }
}

/// Raises its flag when dropped (kept by the registry for the life of a call's future).
pub struct RaiseOnDrop(Stop);

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        self.0.raise();
    }
}

/// Checks a [`Stop`] every N ticks, so a loop over millions of lines pays for a clock
/// read only every few thousand of them.
pub struct Ticker<'a> {
    stop: &'a Stop,
    every: u32,
    left: u32,
}

impl Ticker<'_> {
    /// One unit of work done; `Err(Stopped)` when the flag says stop.
    #[inline]
    pub fn tick(&mut self) -> Result<(), Stopped> {
        self.left -= 1;
        if self.left == 0 {
            self.left = self.every;
            self.stop.check()
        } else {
            Ok(())
        }
    }

    /// `n` units of work done at once (e.g. a window compared line by line).
    #[inline]
    pub fn tick_n(&mut self, n: usize) -> Result<(), Stopped> {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if n >= self.left {
            self.left = self.every;
            self.stop.check()
        } else {
            self.left -= n;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_stops_with_parent_and_deadline() {
        let root = Stop::never();
        let child = root.child(Instant::now() + Duration::from_secs(60));
        assert!(child.check().is_ok());
        root.raise();
        assert_eq!(child.check(), Err(Stopped));
        let past = Stop::new(Instant::now());
        assert!(past.is_stopped());
        let grandchild = Stop::never().child(Instant::now() + NEVER);
        {
            let _guard = grandchild.raise_on_drop();
        }
        assert!(grandchild.is_stopped());
    }

    #[test]
    fn ticker_checks_every_n() {
        let s = Stop::never();
        let mut t = s.ticker(3);
        t.tick().unwrap();
        s.raise();
        t.tick().unwrap();
        assert_eq!(t.tick(), Err(Stopped));
        assert_eq!(s.ticker(1000).tick_n(5000), Err(Stopped));
    }
}
