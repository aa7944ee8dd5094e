//! The `asbr://tasks/{id}/events` resources: read a task's events and subscribe to new
//! ones.
//!
//! Owns the URI scheme and the resource answers; events and visibility are the task
//! store's (`asbr::tasks`).

use rmcp::model::ResourceTemplate;
use tokio::sync::watch;

use super::{TaskStore, URI_PREFIX, select};
use crate::runtime::{
    principal::Principal,
    resources::{ResourceError, ResourceSource},
};

const TEMPLATE: &str = "asbr://tasks/{id}/events";

/// `asbr://tasks/{id}/events[?since_seq=N]` → the id and `since_seq`.
fn parse_uri(uri: &str) -> Option<(&str, u64)> {
    let rest = uri.strip_prefix(URI_PREFIX)?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let id = path.strip_suffix("/events")?;
    if id.is_empty() || id.contains('/') {
        return None;
    }
    let since = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("since_seq="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some((id, since))
}

impl ResourceSource for TaskStore {
    fn templates(&self) -> Vec<ResourceTemplate> {
        vec![
            ResourceTemplate::new(TEMPLATE, "task-events")
                .with_description("Events of one asbr task, oldest first, up to 500 after `?since_seq=N`; subscribe to be notified of new ones")
                .with_mime_type("application/json"),
        ]
    }

    fn handles(&self, uri: &str) -> bool {
        uri.starts_with(URI_PREFIX)
    }

    /// The ids of the tasks `principal` may see, newest first.
    fn complete(
        &self,
        template: &str,
        argument: &str,
        prefix: &str,
        principal: &Principal,
        limit: usize,
    ) -> Vec<String> {
        if template != TEMPLATE || argument != "id" {
            return Vec::new();
        }
        self.ids_visible_to(principal, prefix, limit)
    }

    /// `asbr://tasks/{id}/events` only: the other task URIs have no change feed.
    fn listenable(&self, uri: &str) -> bool {
        parse_uri(uri).is_some()
    }

    fn read(&self, uri: &str, principal: &Principal) -> Result<String, ResourceError> {
        let (id, since) = parse_uri(uri).ok_or_else(|| {
            ResourceError::NotFound(format!("{uri}: expected asbr://tasks/{{id}}/events"))
        })?;
        let slot = self
            .visible_slot(id, principal)
            .map_err(|e| ResourceError::NotFound(e.to_string()))?;
        let (events, _) = select(&slot.events.read(), &[], since, 500, principal);
        let next_seq = events.last().map_or(since, |e| e.seq);
        Ok(serde_json::json!({ "taskId": id, "events": events, "next_seq": next_seq }).to_string())
    }

    fn watch(
        &self,
        uri: &str,
        principal: &Principal,
    ) -> Result<watch::Receiver<u64>, ResourceError> {
        let (id, _) = parse_uri(uri).ok_or_else(|| {
            ResourceError::NotFound(format!("{uri}: expected asbr://tasks/{{id}}/events"))
        })?;
        let slot = self
            .visible_slot(id, principal)
            .map_err(|e| ResourceError::NotFound(e.to_string()))?;
        Ok(slot.changes.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_parsing() {
        assert_eq!(parse_uri("asbr://tasks/abc/events"), Some(("abc", 0)));
        assert_eq!(
            parse_uri("asbr://tasks/abc/events?since_seq=7"),
            Some(("abc", 7))
        );
        assert_eq!(parse_uri("asbr://tasks//events"), None);
        assert_eq!(parse_uri("asbr://tasks/a/b/events"), None);
    }
}
