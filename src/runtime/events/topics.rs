//! Topic filters, the subscriber index and subscriptions of the event bus.
//!
//! Owns: parsing and matching filters (`*`, `prefix*`, exact type), event-type
//! validation, the index that fans an event out to matching subscribers only, and the
//! [`Subscription`] handle with its lag counter.
//!
//! Must not touch: journals, rings or seqs (the bus in [`super`] owns them), the HTTP
//! sink, and any toolset, server or transport module.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::{Event, EventError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Filter {
    All,
    Prefix(String),
    Exact(String),
}

impl Filter {
    pub(super) fn parse(filter: &str) -> Self {
        let filter = filter.trim();
        if filter.is_empty() || filter == "*" {
            Filter::All
        } else if let Some(prefix) = filter.strip_suffix('*') {
            Filter::Prefix(prefix.to_string())
        } else {
            Filter::Exact(filter.to_string())
        }
    }

    /// [`Filter::matches`] for a filter written as `pattern`, without building it.
    pub(super) fn pattern_matches(pattern: &str, ty: &str) -> bool {
        let pattern = pattern.trim();
        match pattern.strip_suffix('*') {
            _ if pattern.is_empty() => true,
            Some(prefix) => ty.starts_with(prefix),
            None => ty == pattern,
        }
    }

    pub(super) fn matches(&self, ty: &str) -> bool {
        match self {
            Filter::All => true,
            Filter::Prefix(p) => ty.starts_with(p.as_str()),
            Filter::Exact(e) => ty == e,
        }
    }
}

pub(super) fn topic_prefix(ty: &str) -> &str {
    ty.split('.').next().unwrap_or(ty)
}

pub(super) fn validate_type(ty: &str) -> Result<(), EventError> {
    let prefix = topic_prefix(ty);
    let prefix_ok = !prefix.is_empty()
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    let ty_ok = ty.len() <= 256
        && !ty.ends_with('.')
        && !ty
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '*');
    if prefix_ok && ty_ok {
        Ok(())
    } else {
        Err(EventError::InvalidType(ty.to_string()))
    }
}

pub(super) struct SubEntry {
    pub(super) tx: mpsc::Sender<Arc<Event>>,
    pub(super) lagged: Arc<AtomicU64>,
    /// Events put in the buffer so far (counted before the send, so a reader of the
    /// count never misses one already on its way).
    pub(super) delivered: Arc<AtomicU64>,
    /// Only events other processes published on a shared store.
    pub(super) foreign_only: bool,
}

impl SubEntry {
    /// Deliver without blocking; returns `false` if the subscriber is gone.
    fn offer(&self, event: &Arc<Event>, foreign: bool) -> bool {
        if self.foreign_only && !foreign {
            return !self.tx.is_closed();
        }
        self.delivered.fetch_add(1, Ordering::AcqRel);
        let sent = self.tx.try_send(Arc::clone(event));
        if sent.is_err() {
            self.delivered.fetch_sub(1, Ordering::AcqRel);
        }
        match sent {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.lagged.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("cortex_events_dropped_total").increment(1);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// Subscribers indexed by filter kind so fan-out only visits matches.
#[derive(Default)]
pub(super) struct SubIndex {
    exact: HashMap<String, Vec<SubEntry>>,
    prefix: HashMap<String, Vec<SubEntry>>,
    /// The distinct byte lengths of the keys of `prefix`, ascending: fan-out looks up
    /// only the prefixes of an event type that have one of these lengths.
    prefix_lens: Vec<usize>,
    all: Vec<SubEntry>,
    /// Subscribers added since the last [`SubIndex::prune`].
    inserted_since_prune: usize,
}

/// Every this many subscriptions the index drops the closed ones, so subscribers of
/// filters nothing publishes to (never pruned by fan-out) cannot pile up.
const PRUNE_EVERY: usize = 1024;

impl SubIndex {
    pub(super) fn insert(&mut self, filter: Filter, entry: SubEntry) {
        self.inserted_since_prune += 1;
        if self.inserted_since_prune >= PRUNE_EVERY {
            self.prune();
        }
        match filter {
            Filter::All => self.all.push(entry),
            Filter::Prefix(p) => {
                if let Err(at) = self.prefix_lens.binary_search(&p.len()) {
                    self.prefix_lens.insert(at, p.len());
                }
                self.prefix.entry(p).or_default().push(entry)
            }
            Filter::Exact(e) => self.exact.entry(e).or_default().push(entry),
        }
    }

    /// Offer `event` (`foreign`: published by another process) to every matching
    /// subscriber; returns `true` if a closed subscriber was seen.
    pub(super) fn fan_out(&self, event: &Arc<Event>, foreign: bool) -> bool {
        let ty = event.r#type.as_str();
        let mut dead = false;
        let mut offer_all = |list: &[SubEntry]| {
            for entry in list {
                dead |= !entry.offer(event, foreign);
            }
        };
        offer_all(&self.all);
        if let Some(list) = self.exact.get(ty) {
            offer_all(list);
        }
        for &len in self.prefix_lens.iter().take_while(|&&len| len <= ty.len()) {
            if let Some(list) = ty.get(..len).and_then(|p| self.prefix.get(p)) {
                offer_all(list);
            }
        }
        dead
    }

    pub(super) fn prune(&mut self) {
        self.inserted_since_prune = 0;
        self.all.retain(|e| !e.tx.is_closed());
        for map in [&mut self.exact, &mut self.prefix] {
            map.retain(|_, list| {
                list.retain(|e| !e.tx.is_closed());
                !list.is_empty()
            });
        }
        self.prefix_lens = self.prefix.keys().map(String::len).collect();
        self.prefix_lens.sort_unstable();
        self.prefix_lens.dedup();
    }
}

/// A filtered subscription. Events that do not fit in its buffer are
/// dropped for this subscriber and counted in [`Subscription::lagged`].
#[derive(Debug)]
pub struct Subscription {
    pub(super) rx: mpsc::Receiver<Arc<Event>>,
    pub(super) lagged: Arc<AtomicU64>,
    pub(super) delivered: Arc<AtomicU64>,
}

impl Subscription {
    /// Next event, or `None` once the bus is gone.
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        self.rx.recv().await
    }

    /// Next buffered event without waiting.
    pub fn try_recv(&mut self) -> Option<Arc<Event>> {
        self.rx.try_recv().ok()
    }

    /// The count of events put in this subscription's buffer so far, shared: an owner
    /// that applies them elsewhere can wait until it has applied that many.
    pub fn delivered(&self) -> Arc<AtomicU64> {
        self.delivered.clone()
    }

    /// Number of events dropped because the buffer was full.
    pub fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::bus;
    use super::super::*;
    use serde_json::json;

    #[test]
    fn a_pattern_matches_as_the_filter_it_parses_to() {
        let types = ["asbr.task.created", "asbr.tasks", "github.issue", "a", ""];
        for pattern in [
            "*",
            "",
            " asbr.* ",
            "asbr.task.*",
            "asbr.task.created",
            "asbr",
            "b*",
        ] {
            for ty in types {
                assert_eq!(
                    Filter::pattern_matches(pattern, ty),
                    Filter::parse(pattern).matches(ty),
                    "{pattern:?} against {ty:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn topic_index_routes_only_matches() {
        let bus = bus();
        let mut other = bus.subscribe("asbr.*", 8);
        let mut exact_other = bus.subscribe("github.pr.opened", 8);
        let mut prefix = bus.subscribe("github.*", 8);
        let mut loose = bus.subscribe("git*", 8);
        let mut all = bus.subscribe("*", 8);
        bus.publish_value("github.issue.action", "t", json!(1))
            .await
            .unwrap();
        assert!(other.try_recv().is_none());
        assert!(exact_other.try_recv().is_none());
        assert!(prefix.try_recv().is_some());
        assert!(loose.try_recv().is_some());
        assert!(all.try_recv().is_some());
        assert!(matches!(
            bus.publish_value("bad type", "t", json!(1)).await,
            Err(EventError::InvalidType(_))
        ));
        assert!(bus.publish_value("x.*", "t", json!(1)).await.is_err());
    }

    #[tokio::test]
    async fn closed_subscribers_of_silent_filters_do_not_pile_up() {
        let bus = bus();
        let live = bus.subscribe("kept.topic", 8);
        for i in 0..3 * super::PRUNE_EVERY {
            drop(bus.subscribe(&format!("never.published.{i}"), 8));
        }
        let subs = bus.inner.subs.read();
        let held: usize = subs.exact.values().map(Vec::len).sum();
        assert!(held <= super::PRUNE_EVERY, "{held} subscribers held");
        assert!(subs.exact.contains_key("kept.topic"));
        drop(subs);
        drop(live);
    }

    #[tokio::test]
    async fn prefix_filters_of_any_length_match_and_survive_pruning() {
        let bus = bus();
        let mut short = bus.subscribe("a*", 8);
        let mut multibyte = bus.subscribe("a.é*", 8);
        let mut whole = bus.subscribe("a.é.b*", 8);
        let mut other = bus.subscribe("a.x*", 8);
        let gone = bus.subscribe("zz*", 8);
        drop(gone);
        assert_eq!(bus.inner.subs.read().prefix_lens, vec![1, 2, 3, 4, 6]);
        bus.publish_value("a.é.b", "t", json!(1)).await.unwrap();
        for sub in [&mut short, &mut multibyte, &mut whole] {
            assert_eq!(sub.try_recv().unwrap().data, json!(1));
        }
        assert!(other.try_recv().is_none());
        drop(whole);
        bus.publish_value("a.é.b", "t", json!(2)).await.unwrap();
        assert_eq!(bus.inner.subs.read().prefix_lens, vec![1, 3, 4]);
        bus.publish_value("a.éz", "t", json!(3)).await.unwrap();
        assert_eq!(short.try_recv().unwrap().data, json!(2));
        assert_eq!(short.try_recv().unwrap().data, json!(3));
        assert_eq!(multibyte.try_recv().unwrap().data, json!(2));
        assert_eq!(multibyte.try_recv().unwrap().data, json!(3));
        assert!(other.try_recv().is_none());
    }

    #[tokio::test]
    async fn full_buffer_counts_lag_and_prunes_dropped() {
        let bus = bus();
        let mut sub = bus.subscribe("*", 1);
        let gone = bus.subscribe("a.b", 1);
        drop(gone);
        for i in 0..3 {
            bus.publish_value("a.b", "t", json!(i)).await.unwrap();
        }
        assert_eq!(sub.lagged(), 2);
        assert_eq!(sub.recv().await.unwrap().data, json!(0));
        assert!(bus.inner.subs.read().exact.is_empty());
    }
}
