//! The shared runtime every toolset stands on: the Toolset shape and its registration
//! builder, executor lanes, tool registry, pages, progress, the opt-in batch tool,
//! metrics, the event-sourced store (with its local journal), the event bus and the
//! workspace roots every file-touching tool is confined to.
//!
//! Owns only domain-free machinery: it imports nothing from `server`, `transport` or any
//! toolset (architecture §2).

pub mod batch;
pub mod budget;
pub mod cache;
pub mod client;
pub mod damage;
pub mod events;
pub mod executor;
pub mod http;
pub mod journal;
pub mod metrics;
pub mod page;
pub mod principal;
pub mod progress;
pub mod prompts;
#[cfg(feature = "redis")]
pub mod redis_link;
pub mod registry;
pub mod resources;
pub mod rounds;
pub mod schema_compact;
pub mod sealed;
pub mod secrets;
pub mod stop;
pub mod store;
pub mod telemetry;
pub mod tool_tasks;
pub mod toolset;
pub mod workspace;

use std::sync::Arc;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("event journal under {dir}: {source}")]
    Events {
        dir: String,
        source: events::EventError,
    },
    #[error(transparent)]
    Upstream(#[from] http::UpstreamError),
    #[error("cursor signing key under {dir}: {source}")]
    CursorKey { dir: String, source: std::io::Error },
    #[error("the store: {0}")]
    Store(#[from] store::StoreError),
}

/// Our User-Agent on every outbound request.
pub const USER_AGENT: &str = concat!("cortex-mcp/", env!("CARGO_PKG_VERSION"));

/// Handles to the shared machinery, cheap to clone, handed to every toolset constructor.
#[derive(Clone)]
pub struct Runtime {
    pub config: Arc<Config>,
    pub executor: executor::Executor,
    pub metrics: metrics::Metrics,
    pub events: events::EventBus,
    /// The one pooled outbound client with the shared conditional cache.
    pub upstream: http::Upstream,
    /// The outbound event sink when `events-sink-url` is set; taken by [`Runtime::shutdown`].
    sink: Arc<parking_lot::Mutex<Option<events::SinkHandle>>>,
    /// Cancelled when serving ends (stdio EOF): work that outlives a request, such as
    /// child processes, stops at once instead of running to its timeout.
    pub stopping: tokio_util::sync::CancellationToken,
    /// The workspace roots, opened once (skipped roots are logged here, once): every
    /// file-touching tool goes through them.
    pub roots: workspace::Roots,
    /// Where event-sourced state lives (`--store`): local files or a Redis every
    /// replica shares.
    pub stores: store::Stores,
}

/// How long shutdown waits for the event sink to deliver what it holds.
const SINK_DRAIN: std::time::Duration = std::time::Duration::from_secs(15);

impl Runtime {
    /// Opens the state directory's event journals (replaying them) and installs metrics.
    /// Must run inside a tokio runtime.
    pub fn new(config: Arc<Config>) -> Result<Self, RuntimeError> {
        let metrics = metrics::Metrics::install(config.replica_id.as_deref());
        page::init_key(&config.state_dir).map_err(|source| RuntimeError::CursorKey {
            dir: config.state_dir.display().to_string(),
            source,
        })?;
        let stores = store::Stores::from_settings(&config.store, &config.state_dir)?;
        let dir = config.state_dir.join("events");
        let options = events::BusOptions::new(config.fsync);
        // The bus's logs go through the store seam: local files, or a shared store whose
        // streams the bus follows.
        let opened = if stores.is_shared() {
            events::EventBus::open_now(stores.backend("events"), options)
        } else {
            events::EventBus::open_local(store::LocalBackend::new(dir.clone()), options)
        };
        let events = opened.map_err(|source| RuntimeError::Events {
            dir: if stores.is_shared() {
                stores.describe()
            } else {
                dir.display().to_string()
            },
            source,
        })?;
        let sink = config
            .events_sink
            .as_ref()
            .map(|s| attach_sink(&events, s))
            .transpose()?;
        anchor_timer_wheel(config.request_timeout);
        let roots = workspace::Roots::new(&config.workspace_roots);
        let upstream = http::Upstream::new(USER_AGENT, conditional_cache(&config))?;
        Ok(Runtime {
            config,
            executor: executor::Executor::default(),
            metrics,
            events,
            upstream,
            sink: Arc::new(parking_lot::Mutex::new(sink)),
            stopping: tokio_util::sync::CancellationToken::new(),
            roots,
            stores,
        })
    }

    /// Drains the event sink (delivering what it holds, up to 15 s) and closes the
    /// event journals. Call once when serving ends.
    pub async fn shutdown(&self) {
        let sink = self.sink.lock().take();
        if let Some(sink) = sink {
            let report = sink.drain(SINK_DRAIN).await;
            tracing::info!(
                delivered = report.delivered,
                lagged = report.lagged,
                completed = report.completed,
                "event sink drained"
            );
        }
        self.events.close().await;
    }
}

/// The conditional cache: the process's own, in front of a tier every replica shares
/// when the store is Redis.
fn conditional_cache(config: &Config) -> cache::ConditionalCache {
    let local = cache::ConditionalCache::default();
    match &config.store {
        #[cfg(feature = "redis")]
        crate::config::StoreSettings::Redis { url, prefix, .. } => {
            match cache::redis::RedisTier::new(url.expose(), prefix, cache::DEFAULT_MAX_ENTRY_BYTES)
            {
                Ok(tier) => local.with_shared_tier(tier),
                Err(e) => {
                    tracing::warn!("the conditional cache stays per replica: {e}");
                    local
                }
            }
        }
        _ => local,
    }
}

/// Keeps a timer pending that always fires before any request deadline.
///
/// tokio wakes a worker parked in the timer driver whenever a timer is registered that
/// is due before the driver's next planned wake-up, and with no timer pending every
/// call's deadline would do so: an eventfd write and a futex wake-up per call, on the
/// other core, for a timer that almost never fires. With this tick pending the driver's
/// next wake-up is always earlier than a new deadline, so registering one wakes nobody.
fn anchor_timer_wheel(request_timeout: std::time::Duration) {
    let period = (request_timeout / 2).clamp(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(30),
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
        }
    });
}

fn attach_sink(
    events: &events::EventBus,
    settings: &crate::config::EventsSink,
) -> Result<events::SinkHandle, RuntimeError> {
    let client = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(std::time::Duration::from_secs(10))
        .redirect(http::redirect_policy())
        .build()
        .map_err(|e| {
            RuntimeError::Upstream(http::UpstreamError::Client {
                message: e.to_string(),
            })
        })?;
    let mut opts = events::SinkOptions::new(settings.url.as_str());
    opts.batching = settings.batching;
    // A bus that comes back should not wait long for the next attempt.
    opts.max_backoff = std::time::Duration::from_secs(5);
    Ok(events.attach_http_sink(opts, client, &settings.filter))
}
