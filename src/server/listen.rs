//! `subscriptions/listen` (protocol 2026-07-28): which resource URIs a listen stream
//! accepts, and the loop that turns the runtime's changes (event-bus events, a
//! toolset resource's change counter) into `notifications/resources/updated` on that
//! stream, for the principal of the request that opened it; with `--dynamic-toolsets`,
//! also the session's tool list changes into `notifications/tools/list_changed`. The
//! change feeds are opened in `accepted_subscription_filter`, before rmcp sends the
//! acknowledgment, so a change made right after it is never missed.
//!
//! Owns the listen bounds: URIs per stream ([`MAX_LISTENED_URIS`], longer URIs than
//! [`MAX_URI_LEN`] refused), events buffered per URI ([`LISTEN_EVENT_BUFFER`]: past it
//! the stream lags, the bus never waits) and streams per process
//! ([`MAX_LISTEN_STREAMS`]). It reads the event bus and the toolsets' resource sources
//! through [`CortexServer`]'s shared state; it must not answer any other request nor
//! keep state beyond one stream (the stream count aside).

use std::{
    collections::{HashSet, VecDeque},
    hash::{Hash, Hasher},
    sync::Arc,
};

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
use crate::runtime::{events::Subscription, principal::Principal};

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

    /// Opens the change feeds of `candidate` (what [`Self::listenable`] accepted) and
    /// keeps them for the stream about to start: rmcp sends the acknowledgment between
    /// `accepted_subscription_filter` and `listen`, and a change in between must not be
    /// missed. The feeds are opened for every principal; the stream's own principal
    /// filters them when it starts.
    pub(super) fn prepare_listen(
        &self,
        requested: &SubscriptionFilter,
        candidate: &SubscriptionFilter,
    ) {
        let feeds = self.open_feeds(candidate);
        self.session.listen_feeds.put(filter_key(requested), feeds);
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
        let feeds = self
            .session
            .listen_feeds
            .take(filter_key(ctx.requested()))
            .unwrap_or_else(|| self.open_feeds(ctx.accepted()));
        let changes = self.streams(feeds, ctx.accepted(), &principal);
        tokio::select! {
            _ = ctx.cancelled() => {}
            _ = forward(stream::select_all(changes), ctx.sink().clone()) => {}
        }
        Ok(())
    }

    /// The feeds of every URI (and list) `filter` names, whoever asks.
    fn open_feeds(&self, filter: &SubscriptionFilter) -> Feeds {
        let mut feeds = Feeds::default();
        for uri in distinct_bounded(filter.resource_subscriptions.iter().flatten()) {
            if let Some(rest) = uri.strip_prefix(EVENTS_SCHEME) {
                let (topic, _) = parse_events_uri(rest);
                let sub = self
                    .shared
                    .runtime
                    .events
                    .subscribe(&topic, LISTEN_EVENT_BUFFER);
                feeds.events.push((uri, sub));
            } else if let Some(Ok(mut changes)) = self
                .source_for(&uri)
                .map(|source| source.watch(&uri, &Principal::stdio()))
            {
                changes.mark_unchanged();
                feeds.sources.push((uri, changes));
            }
        }
        if filter.tools_list_changed == Some(true) {
            let mut changes = self.session.toolsets.tool_list_changes();
            changes.mark_unchanged();
            feeds.tool_list = Some(changes);
        }
        feeds
    }

    /// The feeds `accepted` names as streams of what `principal` may see: events of
    /// others are passed over, a resource it may not see (not theirs, not found) is
    /// dropped.
    fn streams(
        &self,
        feeds: Feeds,
        accepted: &SubscriptionFilter,
        principal: &Principal,
    ) -> Vec<BoxStream<'static, Change>> {
        let wanted = |uri: &String| {
            accepted
                .resource_subscriptions
                .as_ref()
                .is_some_and(|uris| uris.contains(uri))
        };
        let mut streams = Vec::new();
        for (uri, sub) in feeds.events.into_iter().filter(|(uri, _)| wanted(uri)) {
            let principal = principal.clone();
            streams.push(
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
        for (uri, changes) in feeds.sources.into_iter().filter(|(uri, _)| wanted(uri)) {
            let refused = self
                .source_for(&uri)
                .map(|source| source.watch(&uri, principal));
            if let Some(Err(e)) = refused {
                tracing::debug!(%uri, error = %e, "listen: no updates for this uri");
                continue;
            }
            streams.push(watch_stream(changes, Change::Resource(uri)));
        }
        if let Some(changes) = feeds
            .tool_list
            .filter(|_| accepted.tools_list_changed == Some(true))
        {
            streams.push(watch_stream(changes, Change::ToolList));
        }
        streams
    }
}

/// A stream yielding `change` each time `changes` moves.
fn watch_stream(
    changes: tokio::sync::watch::Receiver<u64>,
    change: Change,
) -> BoxStream<'static, Change> {
    stream::unfold(changes, move |mut changes| {
        let change = change.clone();
        async move {
            changes.changed().await.ok()?;
            Some((change, changes))
        }
    })
    .boxed()
}

/// The change feeds of one listen stream, opened before its acknowledgment.
#[derive(Default)]
pub(super) struct Feeds {
    events: Vec<(String, Subscription)>,
    sources: Vec<(String, tokio::sync::watch::Receiver<u64>)>,
    tool_list: Option<tokio::sync::watch::Receiver<u64>>,
}

/// Listen streams of one session prepared and not yet started, by their requested
/// filter; at most [`MAX_PENDING_LISTENS`] (the oldest go first: a listen whose
/// acknowledgment could not be sent never starts).
#[derive(Default)]
pub(super) struct PendingFeeds(parking_lot::Mutex<VecDeque<(u64, Feeds)>>);

/// Prepared listen streams one session may hold.
const MAX_PENDING_LISTENS: usize = 16;

impl PendingFeeds {
    fn put(&self, key: u64, feeds: Feeds) {
        let mut pending = self.0.lock();
        if pending.len() >= MAX_PENDING_LISTENS {
            pending.pop_front();
        }
        pending.push_back((key, feeds));
    }

    fn take(&self, key: u64) -> Option<Feeds> {
        let mut pending = self.0.lock();
        let at = pending.iter().position(|(k, _)| *k == key)?;
        pending.remove(at).map(|(_, feeds)| feeds)
    }
}

/// Identifies a requested filter (the same request reaches both hooks).
fn filter_key(filter: &SubscriptionFilter) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(filter)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

/// One change a listen stream is told of.
#[derive(Clone)]
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
