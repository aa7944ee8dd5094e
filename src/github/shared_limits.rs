//! GitHub's limits shared by every replica on one Redis store (`--store redis://…`): per
//! credential, the concurrency windows, the pacing of each lane (spacing and the
//! sliding-window rates that keep GitHub's secondary "points per minute" rule), the pause
//! after a secondary-limit answer, and the wait for the reset of an exhausted primary
//! bucket.
//!
//! Owns its keys on the Redis server and its connection to it; it must not build
//! requests, classify answers (that is `limits`) nor touch `runtime::store` (the store's
//! own connections). Every key is under the store prefix and names the credential by its
//! fingerprint, never by the secret: `<prefix>github:{<fp>}:…` (the braces keep one
//! credential's keys in one Redis Cluster slot).
//!
//! # Keys of one credential
//! - `lease` and `lease:<lane>`: sorted sets of lease ids scored by their expiry (ms,
//!   Redis clock). A request holds one lease in both while it runs; a lease lives at
//!   most [`LEASE_TTL`], so a replica killed mid-request frees its slots by then.
//! - `pause` (secondary limit) and `empty:<bucket>` (primary budget exhausted): plain
//!   keys whose `PX` expiry is the end of the wait; only ever lengthened.
//! - `last:<lane>`: present while the lane's minimum spacing since its last start runs.
//! - `rate:<lane>:<window ms>`: sorted sets of the lane's starts (lease id scored by
//!   start time) within the window, one per rate of the lane.
//!
//! Admission is one Lua script ([`ACQUIRE`]) that checks all of them and, when
//! everything allows, takes the lease and records the start, atomically. A refused
//! request waits (the pause or the pacing delay the script returns, or a short jittered
//! back-off while the window is full) and asks again, within its deadline and
//! cancellation. An unreachable Redis fails the request within about a second with an
//! error naming the store (its URL's password masked); the next request connects anew.

#[cfg(test)]
mod tests;

use std::{
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use ::redis::FromRedisValue;
use tokio_util::sync::CancellationToken;

use crate::runtime::{
    executor::{LaneConfig, SharedAdmission, SharedRefusal, SharedTicket},
    redis_link::{LinkError, RedisLink},
};

/// Longest life of a lease: a request's attempt is bounded by the HTTP client's 30 s
/// timeout, so a live lease never expires under its request; a dead replica's lease
/// is gone after this.
pub const LEASE_TTL: Duration = Duration::from_secs(60);
/// Bound of one round trip including a (re)connection: keeps a failing call near 1 s.
const ROUND_TRIP: Duration = Duration::from_millis(900);
/// Back-off while a window is full: from the first to the last, doubling, jittered.
const POLL_FIRST: Duration = Duration::from_millis(4);
const POLL_LAST: Duration = Duration::from_millis(80);

/// KEYS: lane leases, credential leases, lane's last-start key, the `h` hold keys (the
/// credential's pause first, then the lane's buckets), the lane's rate keys. ARGV: lease
/// id, lease ttl ms, lane max, credential max, spacing ms, h, then (count, window ms) per
/// rate. Returns {1, 0, 0} when the lease is taken, else {0, ms to wait (0: poll), why:
/// 1 credential paused, 2 window full, 3 spacing, 4 rate, 5 a bucket exhausted}.
pub(crate) const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local holds = tonumber(ARGV[6])
local paused = 0
if holds > 0 then paused = redis.call('PTTL', KEYS[4]) end
local wait = 0
for i = 5, 3 + holds do
  local left = redis.call('PTTL', KEYS[i])
  if left > wait then wait = left end
end
if paused > 0 then return {0, math.max(paused, wait), 1} end
if wait > 0 then return {0, wait, 5} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3])
  or redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  return {0, 0, 2}
end
local spacing = tonumber(ARGV[5])
if spacing > 0 then
  local left = redis.call('PTTL', KEYS[3])
  if left > 0 then return {0, left, 3} end
end
local rates = (#ARGV - 6) / 2
for r = 1, rates do
  local key = KEYS[3 + holds + r]
  local n = tonumber(ARGV[5 + 2 * r])
  local window = tonumber(ARGV[6 + 2 * r])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= n then
    local oldest = redis.call('ZRANGE', key, count - n, count - n, 'WITHSCORES')
    return {0, math.max(1, tonumber(oldest[2]) + window - now), 4}
  end
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[2], ttl)
if spacing > 0 then redis.call('SET', KEYS[3], '1', 'PX', spacing) end
for r = 1, rates do
  local key = KEYS[3 + holds + r]
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, tonumber(ARGV[6 + 2 * r]))
end
return {1, 0, 0}
";

/// KEYS: lane leases, credential leases. ARGV: lease id.
pub(crate) const RELEASE: &str = r"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
";

/// KEYS: a hold key. ARGV: ms. Lengthens the hold to `ms` from now, never shortens it.
pub(crate) const HOLD: &str = r"
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
end
return 1
";

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SharedLimitsError {
    /// Redis did not answer (or refused); names the store, never its password.
    #[error(
        "the GitHub budget shared on the store {store} could not be asked ({message}); GitHub calls resume by themselves once the store answers"
    )]
    Store { store: String, message: String },
}

/// The store's Redis as this module asks it: the runtime's [`RedisLink`], every script
/// bounded by [`ROUND_TRIP`].
struct Connector {
    link: RedisLink,
    /// `<url with the password masked> (prefix "<prefix>")`.
    shown: String,
}

impl From<LinkError> for SharedLimitsError {
    fn from(e: LinkError) -> Self {
        SharedLimitsError::Store {
            store: e.store,
            message: e.message,
        }
    }
}

impl Connector {
    fn new(url: &str, prefix: &str) -> Result<Self, SharedLimitsError> {
        let link = RedisLink::new(url, prefix)?;
        Ok(Connector {
            shown: link.shown().to_string(),
            link,
        })
    }

    fn error(&self, doing: &str, message: impl std::fmt::Display) -> SharedLimitsError {
        self.link.error(doing, message).into()
    }

    /// Runs a Lua script (sent whole: each is a few hundred bytes) within [`ROUND_TRIP`],
    /// dropping the connection when it broke or outlived it.
    async fn eval<T: FromRedisValue>(
        &self,
        doing: &str,
        script: &str,
        keys: &[&str],
        args: &[String],
    ) -> Result<T, SharedLimitsError> {
        let args = args.iter().map(|a| a.as_bytes().to_vec());
        match tokio::time::timeout(ROUND_TRIP, self.link.eval(doing, script, keys, args)).await {
            Ok(r) => r.map_err(Into::into),
            Err(_) => {
                self.link.forget_connection().await;
                Err(self.error(doing, "timed out"))
            }
        }
    }
}

/// One credential's budget on the shared store.
pub struct SharedBudget {
    connector: Arc<Connector>,
    /// `<prefix>github:{<fp>}:`.
    base: String,
    credential_cap: usize,
}

impl SharedBudget {
    /// The budget of credential `fingerprint` on the Redis at `url` (no connection is made
    /// until the first request).
    pub fn new(
        url: &str,
        prefix: &str,
        fingerprint: &str,
        credential_cap: usize,
    ) -> Result<Arc<Self>, SharedLimitsError> {
        Ok(Arc::new(SharedBudget {
            connector: Arc::new(Connector::new(url, prefix)?),
            base: format!("{prefix}github:{{{fingerprint}}}:"),
            credential_cap: credential_cap.max(1),
        }))
    }

    /// The store as errors name it.
    pub fn store(&self) -> &str {
        &self.connector.shown
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.base)
    }

    /// The admission of lane `lane` (`read`, `write`…), bounded and paced like `config`
    /// across every replica, held while the credential is paused or one of `buckets`
    /// (primary budgets the lane spends) is exhausted.
    pub fn lane(self: &Arc<Self>, lane: &str, config: &LaneConfig, buckets: &[&str]) -> SharedLane {
        let mut holds = vec![self.key("pause")];
        holds.extend(buckets.iter().map(|b| self.key(&format!("empty:{b}"))));
        SharedLane {
            budget: self.clone(),
            leases: self.key(&format!("lease:{lane}")),
            credential_leases: self.key("lease"),
            last: self.key(&format!("last:{lane}")),
            holds,
            rates: config
                .rates
                .iter()
                .map(|(n, window)| {
                    let ms = window.as_millis() as u64;
                    (self.key(&format!("rate:{lane}:{ms}")), *n, ms)
                })
                .collect(),
            max: config.max_concurrent.max(1),
            spacing_ms: config.min_interval.map_or(0, |d| d.as_millis() as u64),
            on_pause: None,
        }
    }

    /// Holds every lane of the credential on every replica for `wait` (a secondary
    /// limit). Written in the background; a failure is logged (the replica that got the
    /// answer pauses itself anyway).
    pub fn pause(self: &Arc<Self>, wait: Duration) {
        self.hold_in_background("pause".into(), wait);
    }

    /// Holds the lanes that spend `bucket` on every replica for `wait` (its reset).
    pub fn exhausted(self: &Arc<Self>, bucket: &str, wait: Duration) {
        self.hold_in_background(format!("empty:{bucket}"), wait);
    }

    /// Writes hold `rest` for `wait`, lengthening it only.
    pub async fn hold(&self, rest: &str, wait: Duration) -> Result<(), SharedLimitsError> {
        let ms = (wait.as_millis() as u64).max(1);
        let key = self.key(rest);
        self.connector
            .eval::<i64>("recording a pause", HOLD, &[&key], &[ms.to_string()])
            .await
            .map(|_| ())
    }

    fn hold_in_background(self: &Arc<Self>, rest: String, wait: Duration) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = self.clone();
        handle.spawn(async move {
            if let Err(e) = this.hold(&rest, wait).await {
                tracing::warn!("GitHub pause not shared with the other replicas: {e}");
            }
        });
    }
}

/// The shared admission of one lane of one credential.
pub struct SharedLane {
    budget: Arc<SharedBudget>,
    leases: String,
    credential_leases: String,
    last: String,
    holds: Vec<String>,
    /// (key, count, window ms).
    rates: Vec<(String, u32, u64)>,
    max: usize,
    spacing_ms: u64,
    /// Told of a credential pause found on the store (so this replica shows and keeps it).
    on_pause: Option<PauseHook>,
}

/// What a replica does on learning of a pause another replica shared.
pub type PauseHook = Arc<dyn Fn(Duration) + Send + Sync>;

/// What one ask of [`ACQUIRE`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    Granted,
    /// Not now: wait this long (zero: poll with back-off), because of `why`.
    Wait(Duration, Refusal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The credential is paused (secondary limit).
    Paused,
    /// A primary bucket the lane spends is exhausted until its reset.
    Exhausted,
    Full,
    Spacing,
    Rate,
}

/// A held lease, released when dropped (in the background: a failed release only
/// leaves the lease to expire).
struct Lease {
    connector: Arc<Connector>,
    keys: [String; 2],
    id: String,
    /// False once the store said the lease was not granted.
    live: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.live {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let connector = self.connector.clone();
        let keys = std::mem::take(&mut self.keys);
        let id = std::mem::take(&mut self.id);
        handle.spawn(async move {
            let keys = [keys[0].as_str(), keys[1].as_str()];
            if let Err(e) = connector
                .eval::<i64>("releasing a lease", RELEASE, &keys, &[id])
                .await
            {
                tracing::debug!("GitHub lease left to expire: {e}");
            }
        });
    }
}

impl SharedLane {
    /// Calls `hook` with the time left whenever an ask finds the credential paused.
    pub fn on_pause(mut self, hook: PauseHook) -> Self {
        self.on_pause = Some(hook);
        self
    }

    /// Asks once; a granted lease comes back held.
    async fn ask(&self) -> Result<(Answer, Option<Lease>), SharedLimitsError> {
        // Made before asking: if this future is dropped while the script runs, the
        // lease it may have taken is released all the same.
        let mut lease = Lease {
            connector: self.budget.connector.clone(),
            keys: [self.leases.clone(), self.credential_leases.clone()],
            id: uuid::Uuid::new_v4().simple().to_string(),
            live: true,
        };
        let mut keys: Vec<&str> = vec![&self.leases, &self.credential_leases, &self.last];
        keys.extend(self.holds.iter().map(String::as_str));
        keys.extend(self.rates.iter().map(|r| r.0.as_str()));
        let mut args = vec![
            lease.id.clone(),
            (LEASE_TTL.as_millis() as u64).to_string(),
            self.max.to_string(),
            self.budget.credential_cap.to_string(),
            self.spacing_ms.to_string(),
            self.holds.len().to_string(),
        ];
        for (_, n, ms) in &self.rates {
            args.push(n.to_string());
            args.push(ms.to_string());
        }
        let answer: Vec<i64> = self
            .budget
            .connector
            .eval("asking for a GitHub slot", ACQUIRE, &keys, &args)
            .await?;
        let answer = match answer.as_slice() {
            [1, ..] => Answer::Granted,
            [0, ms, why] => Answer::Wait(
                Duration::from_millis((*ms).max(0) as u64),
                match why {
                    1 => Refusal::Paused,
                    5 => Refusal::Exhausted,
                    3 => Refusal::Spacing,
                    4 => Refusal::Rate,
                    _ => Refusal::Full,
                },
            ),
            other => {
                return Err(self.budget.connector.error(
                    "asking for a GitHub slot",
                    format!("unexpected answer {other:?}"),
                ));
            }
        };
        if answer == Answer::Granted {
            Ok((answer, Some(lease)))
        } else {
            lease.live = false;
            Ok((answer, None))
        }
    }

    /// Waits for a lease: asks, sleeps what the store says (or a jittered back-off while
    /// the window is full), asks again.
    async fn acquire(&self) -> Result<Lease, SharedLimitsError> {
        let mut poll = POLL_FIRST;
        loop {
            let wait = match self.ask().await? {
                (Answer::Granted, Some(lease)) => return Ok(lease),
                (Answer::Wait(wait, why), _) if !wait.is_zero() => {
                    if why == Refusal::Paused
                        && let Some(on_pause) = &self.on_pause
                    {
                        on_pause(wait);
                    }
                    wait
                }
                _ => {
                    let jittered =
                        rand::random_range(poll.as_micros() as u64 / 2..=poll.as_micros() as u64);
                    poll = (poll * 2).min(POLL_LAST);
                    Duration::from_micros(jittered)
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

impl SharedAdmission for SharedLane {
    fn admit<'a>(
        &'a self,
        deadline: Instant,
        cancel: &'a CancellationToken,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<SharedTicket, SharedRefusal>> + Send + 'a>>
    {
        Box::pin(async move {
            tokio::select! {
                r = tokio::time::timeout_at(deadline.into(), self.acquire()) => match r {
                    Ok(Ok(lease)) => Ok(Box::new(lease) as SharedTicket),
                    Ok(Err(e)) => Err(SharedRefusal::Failed(e.to_string())),
                    Err(_) => Err(SharedRefusal::Deadline),
                },
                _ = cancel.cancelled() => Err(SharedRefusal::Cancelled),
            }
        })
    }
}
