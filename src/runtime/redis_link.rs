//! One Redis server as the runtime's Redis users reach it (the store's streams, the
//! shared GitHub budget, the shared cache): the client, one shared multiplexed
//! connection replaced when it breaks, connections of their own for blocking or long
//! commands, connect and response deadlines, and errors that name the server by its URL
//! with the password masked — never the password, as written or percent-decoded.
//!
//! When Redis stops answering within a deadline (a stuck server, a host that drops
//! packets), the link fails calls at once with the outage's cause, and one background
//! probe tries it again (connect, `PING`) until it answers, which ends the outage. So
//! N concurrent calls, or one call of several steps, each fail within one deadline
//! rather than one deadline after another, and calls succeed again as soon as Redis
//! answers. Every link to one server in the process shares its outage. A refused or
//! dropped connection is not an outage: it fails at once anyway, and the next call
//! tries again.
//!
//! Owns connecting and asking only; it must not know what the keys mean.

use std::{sync::Arc, time::Duration};

use ::redis::{AsyncConnectionConfig, Client, Cmd, FromRedisValue, aio::MultiplexedConnection};
use tokio::sync::Mutex as AsyncMutex;

// A call that needs the store answers within a second when Redis is gone or stuck.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(800);
/// How long `WAIT` waits for Redis replicas: under the response deadline, so that too
/// few replicas is answered as such, not as a timeout (an outage).
const WAIT_TIMEOUT: Duration = Duration::from_millis(500);
/// The pause between two probes of an unanswering Redis.
const PROBE_PAUSE: Duration = Duration::from_millis(100);

/// A failure talking to Redis: `store` is its URL with the password masked and the key
/// prefix; `message` never holds the password either.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redis store {store}: {message}")]
pub struct LinkError {
    pub store: String,
    pub message: String,
}

/// One Redis server: the client, the shared connection, and how the store is named in
/// errors (never with the URL's password).
pub struct RedisLink {
    client: Client,
    /// `<url with the password masked> (prefix <prefix>)`.
    shown: String,
    /// Text that must never appear in an error (the password, as written and decoded).
    secrets: Vec<String>,
    shared: AsyncMutex<Option<MultiplexedConnection>>,
    /// Set while Redis is not answering (shared with the probe and with every other
    /// link to the same server).
    outage: OutageCell,
}

/// Redis stopped answering: why, and since when.
struct Outage {
    cause: String,
    since: std::time::Instant,
}

type OutageCell = Arc<parking_lot::Mutex<Option<Outage>>>;

/// The outage state of the Redis at `address` (`host:port`), one for every link to it in
/// this process: the store, the shared budget, the shared cache and the App token each
/// have a link, and a call that uses two of them must not wait out two deadlines.
fn outage_of(address: &str) -> OutageCell {
    type Cells =
        std::collections::HashMap<String, std::sync::Weak<parking_lot::Mutex<Option<Outage>>>>;
    static BY_ADDRESS: std::sync::LazyLock<parking_lot::Mutex<Cells>> =
        std::sync::LazyLock::new(Default::default);
    let mut by_address = BY_ADDRESS.lock();
    by_address.retain(|_, cell| cell.strong_count() > 0);
    if let Some(cell) = by_address.get(address).and_then(std::sync::Weak::upgrade) {
        return cell;
    }
    let cell = OutageCell::default();
    by_address.insert(address.to_string(), Arc::downgrade(&cell));
    cell
}

fn config(response_timeout: Duration) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response_timeout))
}

/// Whether a connection that failed this way must be replaced.
pub fn is_broken(e: &::redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}

/// The certificate authorities (PEM) every `rediss://` connection trusts instead of the
/// system's (`--store-tls-ca`): process configuration, set once at start-up.
static TLS_ROOTS: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// Makes `rediss://` connections trust `pem` (the first call wins).
pub fn trust_tls_roots(pem: Vec<u8>) {
    let _ = TLS_ROOTS.set(pem);
}

fn client(url: &str) -> ::redis::RedisResult<Client> {
    match TLS_ROOTS.get() {
        Some(pem) if url.starts_with("rediss:") => Client::build_with_tls(
            url,
            ::redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            },
        ),
        _ => Client::open(url),
    }
}

impl RedisLink {
    pub fn new(url: &str, prefix: &str) -> Result<Self, LinkError> {
        let (shown_url, secrets) = match url::Url::parse(url) {
            Ok(mut parsed) => {
                let mut secrets = Vec::new();
                if let Some(pw) = parsed.password().filter(|p| !p.is_empty()) {
                    secrets.push(pw.to_string());
                    if let Ok(decoded) = percent_encoding::percent_decode_str(pw).decode_utf8() {
                        secrets.push(decoded.into_owned());
                    }
                    let _ = parsed.set_password(Some("***"));
                }
                (parsed.to_string(), secrets)
            }
            Err(_) => ("(an unparsable redis URL)".to_string(), Vec::new()),
        };
        let shown = format!("{shown_url} (prefix {prefix:?})");
        let client = client(url).map_err(|e| LinkError {
            store: shown.clone(),
            message: redact(&e.to_string(), &secrets),
        })?;
        let outage = outage_of(&client.get_connection_info().addr().to_string());
        Ok(RedisLink {
            client,
            shown,
            secrets,
            shared: AsyncMutex::new(None),
            outage,
        })
    }

    pub fn error(&self, doing: &str, message: impl std::fmt::Display) -> LinkError {
        LinkError {
            store: self.shown.clone(),
            message: redact(&format!("{doing}: {message}"), &self.secrets),
        }
    }

    /// Whether a call may ask Redis: not during an outage, whose cause is its error.
    fn admit(&self, doing: &str) -> Result<(), LinkError> {
        let outage = self.outage.lock();
        let Some(outage) = outage.as_ref() else {
            return Ok(());
        };
        Err(self.error(
            doing,
            format!(
                "not answering for {} ms ({}); calls fail at once until it answers again (it is tried every {} ms)",
                outage.since.elapsed().as_millis(),
                outage.cause,
                PROBE_PAUSE.as_millis()
            ),
        ))
    }

    /// Notes that Redis answered: an outage is over.
    fn answered(&self) {
        if self.outage.lock().take().is_some() {
            tracing::info!(store = %self.shown, "redis answers again");
        }
    }

    /// Notes that Redis did not answer within a deadline: an outage starts (with a probe
    /// that ends it), or goes on with this cause.
    fn unanswered(&self, cause: &str) {
        let cause = redact(cause, &self.secrets);
        let mut outage = self.outage.lock();
        if let Some(going_on) = outage.as_mut() {
            going_on.cause = cause;
            return;
        }
        // Outside a runtime nothing could probe: the calls keep trying themselves.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        tracing::warn!(store = %self.shown, %cause, "redis is not answering; failing calls at once until it does");
        *outage = Some(Outage {
            cause,
            since: std::time::Instant::now(),
        });
        runtime.spawn(probe_until_answered(
            self.client.clone(),
            Arc::downgrade(&self.outage),
            self.shown.clone(),
        ));
    }

    /// A new connection whose requests time out after `response_timeout`.
    pub async fn connect(
        &self,
        response_timeout: Duration,
    ) -> Result<MultiplexedConnection, LinkError> {
        self.admit("connecting")?;
        self.connect_admitted(response_timeout).await
    }

    async fn connect_admitted(
        &self,
        response_timeout: Duration,
    ) -> Result<MultiplexedConnection, LinkError> {
        let config = config(response_timeout);
        let connecting = self
            .client
            .get_multiplexed_async_connection_with_config(&config);
        match tokio::time::timeout(CONNECT_TIMEOUT + Duration::from_millis(200), connecting).await {
            Ok(Ok(conn)) => {
                self.answered();
                Ok(conn)
            }
            Ok(Err(e)) => {
                if e.is_timeout() {
                    self.unanswered(&e.to_string());
                }
                Err(self.error("connecting", e))
            }
            Err(_) => {
                self.unanswered("connecting timed out");
                Err(self.error("connecting", "timed out"))
            }
        }
    }

    /// The shared connection, made when there is none.
    async fn connection(&self) -> Result<MultiplexedConnection, LinkError> {
        let mut shared = self.shared.lock().await;
        if let Some(conn) = &*shared {
            return Ok(conn.clone());
        }
        let conn = self.connect_admitted(RESPONSE_TIMEOUT).await?;
        *shared = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `cmd` on the shared connection, dropping it when it broke.
    pub async fn query<T: FromRedisValue>(&self, doing: &str, cmd: &Cmd) -> Result<T, LinkError> {
        self.admit(doing)?;
        let mut conn = self.connection().await?;
        let result = cmd.query_async::<T>(&mut conn).await;
        if result.as_ref().is_err_and(is_broken) {
            self.shared.lock().await.take();
        }
        self.noted(result, doing)
    }

    /// `result` as the link's answer to `doing`, noting an outage or its end.
    fn noted<T>(&self, result: ::redis::RedisResult<T>, doing: &str) -> Result<T, LinkError> {
        self.note(&result);
        result.map_err(|e| self.error(doing, e))
    }

    /// Runs a Lua script (sent whole each time: the scripts are a few hundred bytes).
    pub async fn eval<T: FromRedisValue>(
        &self,
        doing: &str,
        script: &str,
        keys: &[&str],
        args: impl IntoIterator<Item = Vec<u8>>,
    ) -> Result<T, LinkError> {
        self.query(doing, &eval_cmd(script, keys, args)).await
    }

    /// [`RedisLink::eval`] on a connection of its own with `timeout` (a compaction).
    pub async fn eval_long<T: FromRedisValue>(
        &self,
        doing: &str,
        timeout: Duration,
        script: &str,
        keys: &[&str],
        args: impl IntoIterator<Item = Vec<u8>>,
    ) -> Result<T, LinkError> {
        let mut conn = self.connect(timeout).await?;
        let result = eval_cmd(script, keys, args)
            .query_async::<T>(&mut conn)
            .await;
        self.noted(result, doing)
    }
}

pub fn eval_cmd(script: &str, keys: &[&str], args: impl IntoIterator<Item = Vec<u8>>) -> Cmd {
    let mut cmd = ::redis::cmd("EVAL");
    cmd.arg(script).arg(keys.len()).arg(keys);
    for a in args {
        cmd.arg(a);
    }
    cmd
}

impl RedisLink {
    /// `WAIT replicas`: every write so far on the shared connection reached that many
    /// Redis replicas (or an error naming how many did).
    pub async fn wait_replicas(&self, doing: &str, replicas: u32) -> Result<(), LinkError> {
        let reached: u32 = self
            .query(
                doing,
                ::redis::cmd("WAIT")
                    .arg(replicas)
                    .arg(WAIT_TIMEOUT.as_millis() as u64),
            )
            .await?;
        if reached < replicas {
            return Err(self.error(
                doing,
                format!(
                    "only {reached} of the {replicas} Redis replicas --store-wait-replicas asks for acknowledged the write within {} ms",
                    WAIT_TIMEOUT.as_millis()
                ),
            ));
        }
        Ok(())
    }
}

/// `message` with every secret masked.
fn redact(message: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(message.to_string(), |m, s| m.replace(s.as_str(), "***"))
}

impl RedisLink {
    /// The server as errors name it (the URL's password masked, and the prefix).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Drops the shared connection after a command outlived the caller's deadline (an
    /// outage, as a timeout of the link's own is).
    pub async fn forget_connection(&self) {
        self.unanswered("timed out");
        self.shared.lock().await.take();
    }

    /// What a command got, noted as the link's answer (also for commands on connections
    /// of their own, from [`RedisLink::connect`]): an outage when it timed out, its end
    /// when it answered.
    pub fn note<T>(&self, result: &::redis::RedisResult<T>) {
        match result {
            Ok(_) => self.answered(),
            Err(e) if e.is_timeout() => self.unanswered(&e.to_string()),
            Err(_) => {}
        }
    }
}

/// Whether the outage goes on after a probe: ends it when Redis `answered`; false too
/// when the link is gone or the outage ended otherwise.
fn still_out(
    outage: &std::sync::Weak<parking_lot::Mutex<Option<Outage>>>,
    answered: bool,
    shown: &str,
) -> bool {
    let Some(outage) = outage.upgrade() else {
        return false;
    };
    let mut outage = outage.lock();
    if outage.is_none() {
        return false;
    }
    if answered {
        *outage = None;
        tracing::info!(store = %shown, "redis answers again");
        return false;
    }
    true
}

/// Connects and sends `PING` until Redis answers, then ends the outage; stops early
/// when the link is gone or something else ended the outage.
async fn probe_until_answered(
    client: Client,
    outage: std::sync::Weak<parking_lot::Mutex<Option<Outage>>>,
    shown: String,
) {
    loop {
        let probe = async {
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&config(RESPONSE_TIMEOUT))
                .await?;
            ::redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        let answered = matches!(
            tokio::time::timeout(CONNECT_TIMEOUT + RESPONSE_TIMEOUT, probe).await,
            Ok(Ok(_))
        );
        if !still_out(&outage, answered, &shown) {
            return;
        }
        tokio::time::sleep(PROBE_PAUSE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ping(link: &RedisLink) -> LinkError {
        link.query::<String>("ping", &::redis::cmd("PING"))
            .await
            .unwrap_err()
    }

    /// A port that accepts connections (the kernel's backlog) and never answers: a
    /// stuck server. The first call waits out its deadline; the next fail at once,
    /// naming the outage, while a probe keeps trying.
    #[tokio::test]
    async fn a_stuck_redis_fails_the_next_calls_at_once() {
        let stuck = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = stuck.local_addr().unwrap().port();
        let link = RedisLink::new(&format!("redis://:s3cret-pw@127.0.0.1:{port}/"), "t:").unwrap();
        let first = ping(&link).await;
        assert!(first.message.contains("timed out"), "{first}");
        assert!(!first.message.contains("not answering"), "{first}");
        for _ in 0..5 {
            let started = std::time::Instant::now();
            let next = ping(&link).await;
            assert!(next.message.contains("not answering"), "{next}");
            assert!(started.elapsed() < Duration::from_millis(100));
            assert!(!next.to_string().contains("s3cret-pw"), "{next}");
        }
        link.answered();
        assert!(link.outage.lock().is_none());
    }

    /// A refused connection fails at once by itself: every call tries again.
    #[tokio::test]
    async fn a_refused_connection_is_not_an_outage() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let link = RedisLink::new(&format!("redis://127.0.0.1:{port}/"), "t:").unwrap();
        for _ in 0..3 {
            let refused = ping(&link).await;
            assert!(!refused.message.contains("not answering"), "{refused}");
        }
        assert!(link.outage.lock().is_none());
    }
}
