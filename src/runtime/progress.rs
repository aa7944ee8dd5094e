//! Progress notifications for long work: sent only when the request carried a progress
//! token, at most ~20 per second, with strictly increasing progress values.
//!
//! Owns the rate limit and monotonicity; it must not know what the work is.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use rmcp::{
    Peer, RoleServer,
    model::{ProgressNotificationParam, ProgressToken},
};
use tokio::sync::{mpsc, oneshot};

/// Minimum spacing between two notifications (≈20/s).
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);

struct State {
    last_sent: Option<Instant>,
    last_value: f64,
}

impl Default for State {
    /// The first report may be 0: only later ones must increase.
    fn default() -> Self {
        State {
            last_sent: None,
            last_value: f64::NEG_INFINITY,
        }
    }
}

/// A progress reporter; a no-op when the request had no progress token.
///
/// Notifications go through one forwarder task per request so they reach the client in
/// the order they were reported; [`Progress::flush`] waits until every admitted one has
/// been handed to the transport (the server calls it before sending the result).
#[derive(Clone, Default)]
pub struct Progress {
    target: Option<Arc<(Peer<RoleServer>, ProgressToken)>>,
    state: Arc<Mutex<State>>,
    queue: Arc<Mutex<Option<mpsc::UnboundedSender<Outgoing>>>>,
}

enum Outgoing {
    Note(ProgressNotificationParam),
    Flushed(oneshot::Sender<()>),
}

impl Progress {
    /// The forwarder starts here, on the runtime, when there is a token: reports come
    /// from blocking threads too (scan walkers), where no task can be spawned.
    pub fn new(peer: Peer<RoleServer>, token: Option<ProgressToken>) -> Self {
        let forwarder = match (&token, tokio::runtime::Handle::try_current()) {
            (Some(_), Ok(_)) => Some(spawn_forwarder(peer.clone())),
            _ => None,
        };
        Progress {
            target: token.map(|t| Arc::new((peer, t))),
            queue: Arc::new(Mutex::new(forwarder)),
            ..Progress::default()
        }
    }

    /// A reporter that sends nothing.
    pub fn none() -> Self {
        Progress::default()
    }

    pub fn is_active(&self) -> bool {
        self.target.is_some()
    }

    /// Reports `progress` (of `total` when known). Dropped when it does not increase or
    /// when the previous notification was less than [`MIN_INTERVAL`] ago, unless it is
    /// the final one (`progress == total`).
    pub fn report(&self, progress: f64, total: Option<f64>, message: impl Into<String>) {
        let Some(target) = &self.target else { return };
        if !self.admit(progress, total) {
            return;
        }
        let mut param = ProgressNotificationParam::new(target.1.clone(), progress);
        if let Some(total) = total {
            param = param.with_total(total);
        }
        param = param.with_message(message.into());
        self.enqueue(Outgoing::Note(param));
    }

    /// Waits until every admitted notification has been sent.
    pub async fn flush(&self) {
        if self.queue.lock().is_none() {
            return;
        }
        let (done, sent) = oneshot::channel();
        self.enqueue(Outgoing::Flushed(done));
        let _ = sent.await;
    }

    fn enqueue(&self, item: Outgoing) {
        let Some(target) = &self.target else { return };
        let mut queue = self.queue.lock();
        if queue.is_none() && tokio::runtime::Handle::try_current().is_err() {
            // Off the runtime with no forwarder yet: the note is dropped, never a panic.
            return;
        }
        let sender = queue.get_or_insert_with(|| spawn_forwarder(target.0.clone()));
        let _ = sender.send(item);
    }

    fn admit(&self, progress: f64, total: Option<f64>) -> bool {
        let mut state = self.state.lock();
        if progress <= state.last_value {
            return false;
        }
        let now = Instant::now();
        let is_final = total.is_some_and(|t| progress >= t);
        if !is_final
            && state
                .last_sent
                .is_some_and(|t| now.duration_since(t) < MIN_INTERVAL)
        {
            return false;
        }
        state.last_sent = Some(now);
        state.last_value = progress;
        true
    }
}

/// Sends queued notifications one after another, in order.
fn spawn_forwarder(peer: Peer<RoleServer>) -> mpsc::UnboundedSender<Outgoing> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(item) = rx.recv().await {
            match item {
                Outgoing::Note(param) => {
                    let _ = peer.notify_progress(param).await;
                }
                Outgoing::Flushed(done) => {
                    let _ = done.send(());
                }
            }
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_token_nothing_is_sent() {
        let p = Progress::none();
        assert!(!p.is_active());
        p.report(1.0, Some(2.0), "no runtime needed: returns before spawning");
    }

    #[test]
    fn admits_increasing_values_spaced_in_time() {
        let p = Progress::default();
        assert!(p.admit(1.0, Some(10.0)));
        assert!(!p.admit(2.0, Some(10.0)), "too soon");
        assert!(!p.admit(1.0, Some(10.0)), "not increasing");
        assert!(p.admit(10.0, Some(10.0)), "final always goes");
        std::thread::sleep(MIN_INTERVAL);
        assert!(!p.admit(10.0, None), "never repeats a value");
    }
}
