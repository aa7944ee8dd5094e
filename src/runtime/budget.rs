//! The per-call memory budget: one byte count per client tool call, shared by everything
//! the call does — nested calls through the registry (graph nodes, map items, `batch`
//! items) charge their results to it, and tools that build large values in memory
//! (spool replace planning, diffs, applies, side-by-side tables) charge what they build
//! before or while they build it. A charge that would pass the limit fails with
//! [`BudgetExceeded`], whose message names the budget and the flag that raises it; the
//! budget then stays tripped, so every other part of the same call stops too.
//!
//! Owns the accounting only (an atomic counter, RAII holds, a JSON size counter); it must
//! not know any toolset, and it allocates nothing proportional to what it measures.

use std::{
    io::Write,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use serde::Serialize;

/// The flag (and `cortex-mcp.toml` key) that sets the budget.
pub const FLAG: &str = "call-memory-budget-bytes";

/// A charge that did not fit.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "call memory budget exceeded: {what} needs {needed} bytes while {used} of the call's {limit} bytes are already held; narrow the request (fewer items, smaller windows or values) or raise --{FLAG}"
)]
pub struct BudgetExceeded {
    pub what: String,
    pub needed: u64,
    pub used: u64,
    pub limit: u64,
}

struct Inner {
    limit: u64,
    used: AtomicU64,
    tripped: AtomicBool,
    /// The first charge that did not fit, for callers that only learn of it later.
    first: parking_lot::Mutex<Option<BudgetExceeded>>,
}

/// The byte budget of one client call; clones share the count.
#[derive(Clone)]
pub struct Budget {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("limit", &self.inner.limit)
            .field("used", &self.used())
            .finish()
    }
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Budget {
            inner: Arc::new(Inner {
                limit,
                used: AtomicU64::new(0),
                tripped: AtomicBool::new(false),
                first: parking_lot::Mutex::new(None),
            }),
        }
    }

    /// A budget nothing exceeds (command-line helpers and unit tests).
    pub fn unlimited() -> Self {
        Budget::new(u64::MAX)
    }

    pub fn limit(&self) -> u64 {
        self.inner.limit
    }

    /// Bytes held now.
    pub fn used(&self) -> u64 {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// The first charge that did not fit, once one did not.
    pub fn exceeded(&self) -> Option<BudgetExceeded> {
        if self.inner.tripped.load(Ordering::Acquire) {
            self.inner.first.lock().clone()
        } else {
            None
        }
    }

    /// Counts `bytes` more as held by this call, or fails (and trips the budget) when
    /// that would pass the limit. `what` names the holder in the error.
    pub fn charge(&self, bytes: u64, what: &str) -> Result<(), BudgetExceeded> {
        let limit = self.inner.limit;
        let outcome = self
            .inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= limit)
            });
        match outcome {
            Ok(_) => Ok(()),
            Err(used) => {
                let err = BudgetExceeded {
                    what: what.to_string(),
                    needed: bytes,
                    used,
                    limit,
                };
                let mut first = self.inner.first.lock();
                if first.is_none() {
                    *first = Some(err.clone());
                }
                self.inner.tripped.store(true, Ordering::Release);
                Err(err)
            }
        }
    }

    /// Gives back `bytes` charged earlier.
    pub fn release(&self, bytes: u64) {
        let _ = self
            .inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }

    /// Charges `bytes` and returns a hold that gives them back when dropped.
    pub fn hold(&self, bytes: u64, what: &str) -> Result<Held, BudgetExceeded> {
        self.charge(bytes, what)?;
        Ok(Held {
            budget: self.clone(),
            bytes,
        })
    }

    /// Charges the compact JSON size of `value`, counted without building its text.
    pub fn charge_json<T: Serialize + ?Sized>(
        &self,
        value: &T,
        what: &str,
    ) -> Result<u64, BudgetExceeded> {
        let bytes = json_size(value);
        self.charge(bytes, what)?;
        Ok(bytes)
    }
}

/// Bytes held for as long as the hold lives; it can grow as a value is built.
#[must_use = "dropping a hold gives its bytes back at once"]
pub struct Held {
    budget: Budget,
    bytes: u64,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held").field("bytes", &self.bytes).finish()
    }
}

impl Held {
    /// Charges `more` bytes to the same hold.
    pub fn grow(&mut self, more: u64, what: &str) -> Result<(), BudgetExceeded> {
        self.budget.charge(more, what)?;
        self.bytes += more;
        Ok(())
    }

    /// Grows the hold to `total` bytes when it holds fewer.
    pub fn grow_to(&mut self, total: u64, what: &str) -> Result<(), BudgetExceeded> {
        match total.checked_sub(self.bytes) {
            Some(more) if more > 0 => self.grow(more, what),
            _ => Ok(()),
        }
    }

    /// Gives back up to `bytes` of the hold early.
    pub fn shrink(&mut self, bytes: u64) {
        let bytes = bytes.min(self.bytes);
        self.budget.release(bytes);
        self.bytes -= bytes;
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The budget this hold counts against.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Keeps the bytes charged for the rest of the call.
    pub fn keep(mut self) {
        self.bytes = 0;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.release(self.bytes);
        }
    }
}

struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Length of `value` as compact JSON, without allocating the text.
pub fn json_size<T: Serialize + ?Sized>(value: &T) -> u64 {
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => counter.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_up_to_the_limit_then_trips() {
        let b = Budget::new(100);
        b.charge(60, "a").unwrap();
        let held = b.hold(40, "b").unwrap();
        assert_eq!(b.used(), 100);
        let err = b.charge(1, "c").unwrap_err();
        assert!(
            err.to_string().contains("--call-memory-budget-bytes"),
            "{err}"
        );
        assert_eq!(err.used, 100);
        assert!(b.exceeded().is_some());
        drop(held);
        assert_eq!(b.used(), 60);
        let clone = b.clone();
        clone.charge(40, "d").unwrap();
        assert_eq!(b.used(), 100);
    }

    #[test]
    fn json_size_matches_the_text() {
        let v = serde_json::json!({"a": [1, 2, "three"], "b": {"c": null}});
        assert_eq!(json_size(&v), v.to_string().len() as u64);
    }

    #[test]
    fn holds_grow_and_give_back() {
        let b = Budget::new(10);
        let mut h = b.hold(2, "x").unwrap();
        h.grow_to(8, "x").unwrap();
        assert_eq!(b.used(), 8);
        assert!(h.grow(3, "x").is_err());
        drop(h);
        assert_eq!(b.used(), 0);
        let h = b.hold(5, "y").unwrap();
        h.keep();
        assert_eq!(b.used(), 5);
    }
}
