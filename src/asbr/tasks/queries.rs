//! Reading the task store: one task, the page of tasks a principal may see, and the
//! long-poll wait for task events (and [`select`], which the `asbr://tasks` resources
//! share).
//!
//! Owns the read paths only; it must not create, transition or journal tasks (that is
//! `tasks.rs` and `tasks/transitions.rs`).

use std::{collections::VecDeque, sync::Arc, time::Duration};

use super::{TYPE_PREFIX, Task, TaskError, TaskEventKind, TaskStatus, TaskStore};
use crate::runtime::{events::Event, principal::Principal};

impl TaskStore {
    pub fn get(&self, id: &str, principal: &Principal) -> Result<Task, TaskError> {
        self.visible_slot(id, principal)?
            .task()
            .ok_or_else(|| self.not_found(id))
    }

    /// Tasks `principal` may see, newest first (ids are time-ordered), after `before`
    /// when given.
    pub fn list(
        &self,
        principal: &Principal,
        status: Option<TaskStatus>,
        before: Option<&str>,
        limit: usize,
    ) -> (Vec<Task>, bool) {
        let mut tasks: Vec<Task> = self
            .all_slots()
            .iter()
            .filter_map(|s| s.task())
            .filter(|t| t.visible_to(principal))
            .filter(|t| status.is_none_or(|s| t.status == s))
            .filter(|t| before.is_none_or(|b| t.id.as_str() < b))
            .collect();
        tasks.sort_by(|a, b| b.id.cmp(&a.id));
        let more = tasks.len() > limit;
        tasks.truncate(limit);
        (tasks, more)
    }

    /// The ids of the tasks `principal` may see that start with `prefix`, newest first,
    /// at most `limit`.
    pub fn ids_visible_to(&self, principal: &Principal, prefix: &str, limit: usize) -> Vec<String> {
        let mut ids: Vec<String> = self
            .all_slots()
            .iter()
            .filter_map(|s| s.task())
            .filter(|t| t.id.starts_with(prefix) && t.visible_to(principal))
            .map(|t| t.id.to_string())
            .collect();
        ids.sort_by(|a, b| b.cmp(a));
        ids.truncate(limit);
        ids
    }

    /// Events after `since` of one task (or of all tasks `principal` may see), filtered
    /// by kind; waits up to `wait` for the first one. Returns the events and the seq to
    /// pass next time.
    pub async fn watch(
        &self,
        principal: &Principal,
        task_id: Option<&str>,
        kinds: &[TaskEventKind],
        since: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<(Vec<Arc<Event>>, u64), TaskError> {
        let slot = match task_id {
            Some(id) => Some(self.slot_or_recover(id, principal).await?),
            None => None,
        };
        let mut changes = match &slot {
            Some(slot) => slot.changes.subscribe(),
            None => self.changes.subscribe(),
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            changes.mark_unchanged();
            let (found, scanned) = match &slot {
                Some(slot) => select(&slot.events.read(), kinds, since, limit, principal),
                None => select(&self.recent.read(), kinds, since, limit, principal),
            };
            if !found.is_empty() {
                let next = found.last().map_or(since, |e| e.seq);
                return Ok((found, next));
            }
            // Passes over events of tasks the principal may not see.
            let since = scanned.max(since);
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                _ => return Ok((Vec::new(), since)),
            }
        }
    }
}

/// Up to `limit` events after `since` of the given kinds that `principal` may see, and
/// the seq of the last event looked at.
pub(super) fn select(
    events: &VecDeque<Arc<Event>>,
    kinds: &[TaskEventKind],
    since: u64,
    limit: usize,
    principal: &Principal,
) -> (Vec<Arc<Event>>, u64) {
    let start = events.partition_point(|e| e.seq <= since);
    let found: Vec<Arc<Event>> = events
        .range(start..)
        .filter(|e| e.visible_to(principal))
        .filter(|e| {
            kinds.is_empty()
                || kinds
                    .iter()
                    .any(|k| e.r#type.strip_prefix(TYPE_PREFIX) == Some(k.name()))
        })
        .take(limit)
        .cloned()
        .collect();
    let scanned = events.back().map_or(since, |e| e.seq);
    (found, scanned)
}
