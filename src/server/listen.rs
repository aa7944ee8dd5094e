//! `subscriptions/listen` (protocol 2026-07-28): which resource URIs a listen stream
//! accepts, and the loop that turns the runtime's changes (event-bus events, a
//! toolset resource's change counter) into `notifications/resources/updated` on that
//! stream, for the principal of the request that opened it; with `--dynamic-toolsets`,
//! also the session's tool list changes into `notifications/tools/list_changed`.
//!
//! Owns the listen bounds: URIs per stream ([`MAX_LISTENED_URIS`], longer URIs than
//! [`MAX_URI_LEN`] refused), events buffered per URI ([`LISTEN_EVENT_BUFFER`]: past it
//! the stream lags, the bus never waits) and streams per process
//! ([`MAX_LISTEN_STREAMS`]). It reads the event bus and the toolsets' resource sources
//! through [`CortexServer`]'s shared state; it must not answer any other request nor
//! keep state beyond one stream (the stream count aside).

use std::{collections::HashSet, sync::Arc};

use futures::{
    StreamExt,
    stream::{self, BoxStream},
};
use rmcp::{
    ErrorData as McpError,
    model::SubscriptionFilter,
    service::{SubscriptionContext, SubscriptionSink},
};

use super::{CortexServer, EVENTS_SCHEME, parse_events_uri};
use crate::runtime::principal::Principal;

/// Resource URIs one listen stream may watch; the rest of a longer list is not
/// acknowledged.
pub const MAX_LISTENED_URIS: usize = 256;
/// A URI longer than this is not acknowledged.
pub const MAX_URI_LEN: usize = 2048;
/// Events of one `events://` URI waiting to be turned into notifications; past it the
/// bus drops further events for this stream (counted as lagged) instead of waiting.
pub const LISTEN_EVENT_BUFFER: usize = 64;
/// Listen streams open at once in this process.
pub const MAX_LISTEN_STREAMS: usize = 1024;

/// Why a listen stream was refused after its acknowledgment.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error(
        "this server already carries {MAX_LISTEN_STREAMS} subscriptions/listen streams; close one, or poll with resources/read (events://{{topic}}?since_seq=N returns what is new)"
    )]
    TooManyStreams,
}

impl From<ListenError> for McpError {
    fn from(e: ListenError) -> Self {
        McpError::invalid_request(e.to_string(), None)
    }
}

/// The process-wide count of open listen streams.
pub fn stream_slots() -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(MAX_LISTEN_STREAMS))
}

impl CortexServer {
    /// The part of `requested` this server can deliver: resource URIs of `events://` or
    /// of a toolset resource that changes, each once, at most [`MAX_LISTENED_URIS`].
    /// Whether the caller may see a URI is decided when the stream starts, where the
    /// principal is known: one it may not see is acknowledged like one that does not
    /// exist yet and never updated, so neither leaks.
    pub(super) fn listenable(&self, requested: &SubscriptionFilter) -> SubscriptionFilter {
        let mut accepted = SubscriptionFilter::new();
        if self.shared.dynamic.is_some() && requested.tools_list_changed == Some(true) {
            accepted.tools_list_changed = Some(true);
        }
        let kept = distinct_bounded(
            requested
                .resource_subscriptions
                .iter()
                .flatten()
                .filter(|uri| self.is_listenable(uri)),
        );
        if !kept.is_empty() {
            accepted.resource_subscriptions = Some(kept);
        }
        accepted
    }

    fn is_listenable(&self, uri: &str) -> bool {
        uri.len() <= MAX_URI_LEN
            && (uri.starts_with(EVENTS_SCHEME)
                || self.source_for(uri).is_some_and(|s| s.listenable(uri)))
    }

    /// Runs one acknowledged listen stream until the client cancels it or goes away.
    pub(super) async fn run_listen(&self, ctx: SubscriptionContext) -> Result<(), McpError> {
        let _slot = self
            .shared
            .listen_streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| ListenError::TooManyStreams)?;
        let principal = Principal::of_request(&ctx.request_context().extensions);
        let uris = distinct_bounded(ctx.accepted().resource_subscriptions.iter().flatten());
        let mut changes: Vec<_> = uris
            .into_iter()
            .filter_map(|uri| self.changes_of(uri, &principal))
            .collect();
        if ctx.accepted().tools_list_changed == Some(true) {
            changes.push(self.tool_list_changes());
        }
        tokio::select! {
            _ = ctx.cancelled() => {}
            _ = forward(stream::select_all(changes), ctx.sink().clone()) => {}
        }
        Ok(())
    }

    /// A stream yielding each change of this session's tool list (`--dynamic-toolsets`).
    fn tool_list_changes(&self) -> BoxStream<'static, Change> {
        let mut changes = self.session.toolsets.tool_list_changes();
        changes.mark_unchanged();
        stream::unfold(changes, |mut changes| async move {
            changes.changed().await.ok()?;
            Some((Change::ToolList, changes))
        })
        .boxed()
    }

    /// A stream yielding `uri` each time it changes for `principal`; `None` when it
    /// cannot change for them (not theirs, not found, not subscribable).
    fn changes_of(&self, uri: String, principal: &Principal) -> Option<BoxStream<'static, Change>> {
        if let Some(rest) = uri.strip_prefix(EVENTS_SCHEME) {
            let (topic, _) = parse_events_uri(rest);
            let sub = self
                .shared
                .runtime
                .events
                .subscribe(&topic, LISTEN_EVENT_BUFFER);
            let principal = principal.clone();
            return Some(
                stream::unfold(sub, move |mut sub| {
                    let (uri, principal) = (uri.clone(), principal.clone());
                    async move {
                        loop {
                            let event = sub.recv().await?;
                            if event.visible_to(&principal) {
                                return Some((Change::Resource(uri), sub));
                            }
                        }
                    }
                })
                .boxed(),
            );
        }
        let source = self.source_for(&uri)?;
        let mut changes = match source.watch(&uri, principal) {
            Ok(changes) => changes,
            Err(e) => {
                tracing::debug!(%uri, error = %e, "listen: no updates for this uri");
                return None;
            }
        };
        changes.mark_unchanged();
        Some(
            stream::unfold(changes, move |mut changes| {
                let uri = uri.clone();
                async move {
                    changes.changed().await.ok()?;
                    Some((Change::Resource(uri), changes))
                }
            })
            .boxed(),
        )
    }
}

/// One change a listen stream is told of.
enum Change {
    /// `notifications/resources/updated` for this URI.
    Resource(String),
    /// `notifications/tools/list_changed`.
    ToolList,
}

/// Sends one notification per change, one at a time: while the client is slow to read,
/// the changes wait in their bounded buffers. Returns when the stream is closed; waits
/// forever once nothing can change any more.
async fn forward(
    mut changes: stream::SelectAll<BoxStream<'static, Change>>,
    sink: SubscriptionSink,
) {
    while let Some(change) = changes.next().await {
        let sent = match change {
            Change::Resource(uri) => sink.notify_resource_updated(uri).await,
            Change::ToolList => sink.notify_tool_list_changed().await,
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, "listen stream closed");
            return;
        }
    }
    std::future::pending::<()>().await
}

/// The URIs of `uris`, each once, in order, at most [`MAX_LISTENED_URIS`].
fn distinct_bounded<'a>(uris: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut seen = HashSet::new();
    uris.filter(|uri| seen.insert(uri.as_str()))
        .take(MAX_LISTENED_URIS)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listened_uris_are_distinct_and_bounded() {
        let many: Vec<String> = (0..MAX_LISTENED_URIS + 10)
            .flat_map(|i| [format!("events://t{i}"), format!("events://t{i}")])
            .collect();
        let kept = distinct_bounded(many.iter());
        assert_eq!(kept.len(), MAX_LISTENED_URIS);
        assert_eq!(kept[0], "events://t0");
        assert_eq!(kept[1], "events://t1");
    }
}
