//! The opt-in outbound HTTP sink of the event bus: forwards matching events to one URL
//! as JSON (single events or batches), at least once, retrying failed POSTs with
//! exponential back-off and jitter ([`backon`]) until they succeed or the sink is drained.
//!
//! Owns: [`SinkOptions`], the delivery task behind [`EventBus::attach_http_sink`] and
//! its [`SinkHandle`] / [`SinkReport`].
//!
//! Must not touch: journals, rings or the topic index (it is an ordinary subscriber),
//! and any toolset, server or transport module. It never logs the sink URL unredacted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Event, EventBus, Subscription};

impl EventBus {
    /// Forward events matching `filter` to an HTTP endpoint (see
    /// [`SinkOptions`]). Delivery is at-least-once; receivers de-duplicate by
    /// event id.
    pub fn attach_http_sink(
        &self,
        opts: SinkOptions,
        client: reqwest::Client,
        filter: &str,
    ) -> SinkHandle {
        let sub = self.subscribe(filter, opts.queue_bound.max(1));
        let lagged = sub.lagged.clone();
        let delivered = Arc::new(AtomicU64::new(0));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let sink = Sink {
            opts,
            client,
            delivered: delivered.clone(),
        };
        let task = tokio::spawn(sink.run(sub, shutdown_rx));
        SinkHandle {
            shutdown,
            task,
            delivered,
            lagged,
        }
    }
}

/// Outbound HTTP sink configuration.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    pub url: String,
    /// Maximum events per POST when batching (default 25).
    pub batch_max: usize,
    /// How long to wait to fill a batch (default 50 ms).
    pub batch_window: Duration,
    /// `false` (default): one event object per POST; `true`: JSON arrays.
    pub batching: bool,
    /// Sink queue size; when full the sink subscriber lags (default 10,000).
    pub queue_bound: usize,
    /// First retry delay (default 100 ms), doubled per failure; each delay is
    /// jittered to between half of it and all of it.
    pub initial_backoff: Duration,
    /// Retry delay cap (default 30 s).
    pub max_backoff: Duration,
}

impl SinkOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            batch_max: 25,
            batch_window: Duration::from_millis(50),
            batching: false,
            queue_bound: 10_000,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Result of [`SinkHandle::drain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkReport {
    /// Events successfully POSTed.
    pub delivered: u64,
    /// Events never accepted because the sink queue was full.
    pub lagged: u64,
    /// `false` if the timeout hit before the queue was flushed.
    pub completed: bool,
}

/// Handle to a running sink. Dropping it stops the sink after it flushes
/// its queue in the background.
#[derive(Debug)]
pub struct SinkHandle {
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    delivered: Arc<AtomicU64>,
    lagged: Arc<AtomicU64>,
}

impl SinkHandle {
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    pub fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }

    /// Stop accepting events, flush the queue (retrying) for up to `timeout`.
    pub async fn drain(self, timeout: Duration) -> SinkReport {
        let _ = self.shutdown.send(true);
        let mut task = self.task;
        let completed = tokio::time::timeout(timeout, &mut task).await.is_ok();
        if !completed {
            task.abort();
            tracing::warn!("event sink drain timed out with undelivered events");
        }
        SinkReport {
            delivered: self.delivered.load(Ordering::Relaxed),
            lagged: self.lagged.load(Ordering::Relaxed),
            completed,
        }
    }
}

struct Sink {
    opts: SinkOptions,
    client: reqwest::Client,
    delivered: Arc<AtomicU64>,
}

impl Sink {
    async fn run(self, mut sub: Subscription, mut shutdown: watch::Receiver<bool>) {
        loop {
            let first = tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                ev = sub.rx.recv() => match ev {
                    Some(ev) => ev,
                    None => break,
                },
            };
            let batch = self.collect_batch(&mut sub.rx, first).await;
            self.deliver(&batch).await;
        }
        sub.rx.close();
        let mut rest = Vec::new();
        while let Some(ev) = sub.rx.recv().await {
            rest.push(ev);
        }
        for chunk in rest.chunks(self.batch_limit()) {
            self.deliver(chunk).await;
        }
    }

    fn batch_limit(&self) -> usize {
        if self.opts.batching {
            self.opts.batch_max.max(1)
        } else {
            1
        }
    }

    async fn collect_batch(
        &self,
        rx: &mut mpsc::Receiver<Arc<Event>>,
        first: Arc<Event>,
    ) -> Vec<Arc<Event>> {
        let mut batch = vec![first];
        let deadline = Instant::now() + self.opts.batch_window;
        let urgent = rx.len() > self.opts.queue_bound / 2;
        while batch.len() < self.batch_limit() {
            if let Ok(ev) = rx.try_recv() {
                batch.push(ev);
                continue;
            }
            if urgent {
                break;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(ev)) => batch.push(ev),
                _ => break,
            }
        }
        batch
    }

    fn encode(&self, batch: &[Arc<Event>]) -> Result<Bytes, serde_json::Error> {
        let body = match batch {
            [single] if !self.opts.batching => serde_json::to_vec(single)?,
            _ => serde_json::to_vec(batch)?,
        };
        Ok(Bytes::from(body))
    }

    /// POST `batch`, retrying with exponential back-off and jitter until it
    /// succeeds.
    async fn deliver(&self, batch: &[Arc<Event>]) {
        if batch.is_empty() {
            return;
        }
        let body = match self.encode(batch) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "event sink could not encode batch; skipping");
                return;
            }
        };
        let posted = (|| self.post(body.clone()))
            .retry(self.backoff())
            .notify(|reason: &PostError, _| {
                let url = url::Url::parse(&self.opts.url)
                    .map(|u| crate::config::redact_url(&u))
                    .unwrap_or_else(|_| "[unparsable url]".into());
                tracing::warn!(%url, %reason, "event sink POST failed; retrying");
                metrics::counter!("cortex_events_sink_retries_total").increment(1);
            })
            .await;
        if let Err(reason) = posted {
            // Not reached: the back-off has no attempt limit (drain's timeout ends it).
            tracing::error!(%reason, "event sink gave up on a batch");
            return;
        }
        self.delivered
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
    }

    /// The delays between attempts, without limit: the first is `initial_backoff`
    /// (at most `max_backoff`), doubled per failure up to `max_backoff`, each jittered
    /// to between half of it and all of it. backon's jitter adds up to one more delay,
    /// so the builder works on half delays.
    fn backoff(&self) -> ExponentialBuilder {
        let first = self.opts.initial_backoff.min(self.opts.max_backoff);
        ExponentialBuilder::default()
            .with_min_delay(first / 2)
            .with_max_delay(self.opts.max_backoff / 2)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
    }

    async fn post(&self, body: Bytes) -> Result<(), PostError> {
        let resp = self
            .client
            .post(&self.opts.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            // The error text would otherwise carry the URL, secrets included.
            .map_err(|e| PostError::Send(e.without_url()))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(PostError::Status(resp.status()))
        }
    }
}

/// Why one POST of a batch failed (logged, then retried).
#[derive(Debug, thiserror::Error)]
enum PostError {
    /// The request could not be sent or answered; the URL is stripped from it.
    #[error("{0}")]
    Send(reqwest::Error),
    #[error("status {0}")]
    Status(reqwest::StatusCode),
}

#[cfg(test)]
mod tests {
    use super::super::tests::bus;
    use super::super::*;
    use parking_lot::Mutex;
    use serde_json::json;
    use std::collections::HashSet;

    #[derive(Default)]
    struct Server {
        calls: AtomicU64,
        ids: Mutex<Vec<String>>,
    }

    async fn flaky(
        axum::extract::State(state): axum::extract::State<Arc<Server>>,
        axum::Json(events): axum::Json<Vec<Event>>,
    ) -> axum::http::StatusCode {
        if state.calls.fetch_add(1, Ordering::SeqCst) < 3 {
            return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
        }
        state.ids.lock().extend(events.into_iter().map(|e| e.id));
        axum::http::StatusCode::OK
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sink_retries_and_delivers_every_event() {
        let state = Arc::new(Server::default());
        let app = axum::Router::new()
            .route("/events", axum::routing::post(flaky))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let bus = bus();
        let mut opts = SinkOptions::new(format!("http://{addr}/events"));
        opts.batching = true;
        opts.batch_max = 10;
        opts.initial_backoff = Duration::from_millis(5);
        opts.max_backoff = Duration::from_millis(20);
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let sink = bus.attach_http_sink(opts, client, "sink.*");

        let mut sent = HashSet::new();
        for i in 0..100 {
            let ev = bus.publish_value("sink.test", "t", json!(i)).await.unwrap();
            sent.insert(ev.id.clone());
        }
        bus.publish_value("other.test", "t", json!(0))
            .await
            .unwrap();
        let report = sink.drain(Duration::from_secs(20)).await;
        assert!(report.completed);
        assert_eq!(report.lagged, 0);
        assert_eq!(report.delivered, 100);
        let got: HashSet<String> = state.ids.lock().iter().cloned().collect();
        assert_eq!(got, sent);
        assert!(state.calls.load(Ordering::SeqCst) > 3);
    }

    #[test]
    fn sink_backoff_doubles_to_the_cap_with_half_jitter() {
        use super::Sink;
        use backon::BackoffBuilder;
        let mut opts = SinkOptions::new("http://127.0.0.1:9/");
        opts.initial_backoff = Duration::from_millis(100);
        opts.max_backoff = Duration::from_secs(1);
        let sink = Sink {
            opts,
            client: reqwest::Client::new(),
            delivered: Arc::default(),
        };
        for _ in 0..20 {
            let delays: Vec<Duration> = sink.backoff().build().take(8).collect();
            let nominal = [100, 200, 400, 800, 1000, 1000, 1000, 1000];
            for (delay, ms) in delays.iter().zip(nominal) {
                let full = Duration::from_millis(ms);
                assert!(
                    *delay >= full / 2 && *delay <= full,
                    "{delays:?} leaves [{:?}, {full:?}]",
                    full / 2
                );
            }
            assert_eq!(delays.len(), 8);
        }
        // The first delay is capped by `max_backoff` as well.
        let mut opts = SinkOptions::new("http://127.0.0.1:9/");
        opts.initial_backoff = Duration::from_secs(10);
        opts.max_backoff = Duration::from_millis(20);
        let sink = Sink {
            opts,
            client: reqwest::Client::new(),
            delivered: Arc::default(),
        };
        let first = sink.backoff().build().next().unwrap();
        assert!(first >= Duration::from_millis(10) && first <= Duration::from_millis(20));
    }
}
