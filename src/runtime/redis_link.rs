//! One Redis server as the runtime's Redis users reach it (the store's streams, the
//! shared GitHub budget, the shared cache): the client, one shared multiplexed
//! connection replaced when it breaks, connections of their own for blocking or long
//! commands, connect and response deadlines, and errors that name the server by its URL
//! with the password masked — never the password, as written or percent-decoded.
//!
//! Owns connecting and asking only; it must not know what the keys mean.

use std::time::Duration;

use ::redis::{AsyncConnectionConfig, Client, Cmd, FromRedisValue, aio::MultiplexedConnection};
use tokio::sync::Mutex as AsyncMutex;

// A call that needs the store answers within a second when Redis is gone or stuck.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(800);
/// How long `WAIT` waits for Redis replicas.
const WAIT_TIMEOUT: Duration = Duration::from_millis(800);

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
        Ok(RedisLink {
            client,
            shown,
            secrets,
            shared: AsyncMutex::new(None),
        })
    }

    pub fn error(&self, doing: &str, message: impl std::fmt::Display) -> LinkError {
        LinkError {
            store: self.shown.clone(),
            message: redact(&format!("{doing}: {message}"), &self.secrets),
        }
    }

    /// A new connection whose requests time out after `response_timeout`.
    pub async fn connect(
        &self,
        response_timeout: Duration,
    ) -> Result<MultiplexedConnection, LinkError> {
        let config = config(response_timeout);
        let connecting = self
            .client
            .get_multiplexed_async_connection_with_config(&config);
        match tokio::time::timeout(CONNECT_TIMEOUT + Duration::from_millis(200), connecting).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(self.error("connecting", e)),
            Err(_) => Err(self.error("connecting", "timed out")),
        }
    }

    /// The shared connection, made when there is none.
    pub async fn connection(&self) -> Result<MultiplexedConnection, LinkError> {
        let mut shared = self.shared.lock().await;
        if let Some(conn) = &*shared {
            return Ok(conn.clone());
        }
        let conn = self.connect(RESPONSE_TIMEOUT).await?;
        *shared = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `cmd` on the shared connection, dropping it when it broke.
    pub async fn query<T: FromRedisValue>(&self, doing: &str, cmd: &Cmd) -> Result<T, LinkError> {
        let mut conn = self.connection().await?;
        match cmd.query_async::<T>(&mut conn).await {
            Ok(v) => Ok(v),
            Err(e) => {
                if is_broken(&e) {
                    self.shared.lock().await.take();
                }
                Err(self.error(doing, e))
            }
        }
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
        eval_cmd(script, keys, args)
            .query_async::<T>(&mut conn)
            .await
            .map_err(|e| self.error(doing, e))
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

    /// Drops the shared connection (after a command outlived its deadline).
    pub async fn forget_connection(&self) {
        self.shared.lock().await.take();
    }
}
