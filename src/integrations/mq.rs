//! `message-queue` integrations: Redis Streams through the `redis` crate, one multiplexed
//! connection per integration revision. Operations: `publish` {stream, fields} → XADD
//! (id `*`), `read` {stream, since?, count?} → XRANGE after `since` (exclusive; from the
//! start when absent), at most `count` (default 100, max 1000) entries, with `nextSince`
//! to continue. The password comes from the `password` credential (and `username` for
//! ACL users), never from the endpoint URL. The host is resolved and checked by the
//! outbound address policy and the connection goes to the checked address; a call's
//! `timeout` bounds connecting and the command together.
//!
//! Owns Redis access only; it must not touch the registry's storage, events or tools.

use std::{
    collections::BTreeMap,
    collections::HashMap,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{address::AddressPolicy, registry::Integration};

pub const MAX_READ: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum MqError {
    #[error("operation: `{0}` is not publish or read")]
    Operation(String),
    #[error("payload: {0}")]
    Payload(String),
    #[error("authentication failed: {0}; replace the credentials with update_integration")]
    Auth(String),
    #[error("could not reach Redis: {0}")]
    Connect(String),
    #[error("Redis refused the command: {0}")]
    Command(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishIn {
    stream: String,
    fields: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadIn {
    stream: String,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    count: Option<usize>,
}

pub struct Connections {
    conns: tokio::sync::Mutex<()>,
    cached: Mutex<HashMap<String, (u64, MultiplexedConnection)>>,
    policy: AddressPolicy,
}

fn classify(e: redis::RedisError) -> MqError {
    let auth = e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("WRONGPASS" | "NOAUTH"));
    if auth {
        MqError::Auth(e.to_string())
    } else if e.is_io_error() || e.is_timeout() || e.is_connection_refusal() {
        MqError::Connect(e.to_string())
    } else {
        MqError::Command(e.to_string())
    }
}

impl Connections {
    pub fn new(policy: AddressPolicy) -> Self {
        Connections {
            conns: tokio::sync::Mutex::default(),
            cached: Mutex::default(),
            policy,
        }
    }

    /// The cached connection of this revision, or a new one to the checked address.
    async fn connection(
        &self,
        integration: &Integration,
        creds: &BTreeMap<String, String>,
    ) -> Result<MultiplexedConnection, MqError> {
        if let Some((rev, c)) = self.cached.lock().get(&integration.id)
            && *rev == integration.revision
        {
            return Ok(c.clone());
        }
        let _one = self.conns.lock().await;
        let endpoint = integration.config.endpoint.as_deref().unwrap_or_default();
        let mut url = url::Url::parse(endpoint).map_err(|e| MqError::Connect(e.to_string()))?;
        let host = url.host_str().unwrap_or("").to_string();
        let port = url.port().unwrap_or(6379);
        let addr = self
            .policy
            .resolve(&host, port)
            .await
            .map_err(|e| MqError::Connect(e.to_string()))?;
        if let Some(user) = creds.get("username") {
            let _ = url.set_username(user);
        }
        if let Some(pw) = creds.get("password") {
            let _ = url.set_password(Some(pw));
        }
        let info =
            redis::IntoConnectionInfo::into_connection_info(url.as_str()).map_err(classify)?;
        let info = match info.addr() {
            redis::ConnectionAddr::Tcp(..) => info.set_addr(redis::ConnectionAddr::Tcp(
                addr.ip().to_string(),
                addr.port(),
            )),
            _ => {
                return Err(MqError::Connect(
                    "only plain redis:// TCP endpoints are supported".into(),
                ));
            }
        };
        let client = redis::Client::open(info).map_err(classify)?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(classify)?;
        self.cached
            .lock()
            .insert(integration.id.clone(), (integration.revision, conn.clone()));
        Ok(conn)
    }

    pub fn forget(&self, id: &str) {
        self.cached.lock().remove(id);
    }

    /// Runs `publish` or `read` (connecting when needed) before `deadline`; returns the
    /// JSON result.
    pub async fn execute(
        &self,
        integration: &Integration,
        creds: &BTreeMap<String, String>,
        operation: &str,
        payload: Option<&Value>,
        deadline: Instant,
    ) -> Result<Value, MqError> {
        let payload = payload.cloned().unwrap_or(Value::Null);
        let work = async {
            let mut conn = self.connection(integration, creds).await?;
            match operation.trim() {
                "publish" => publish(&mut conn, payload).await,
                "read" => read(&mut conn, payload).await,
                other => Err(MqError::Operation(other.to_string())),
            }
        };
        let result = tokio::time::timeout_at(deadline.into(), work)
            .await
            .map_err(|_| MqError::Connect("timed out (the call's timeout)".into()))
            .and_then(|r| r);
        if matches!(result, Err(MqError::Connect(_))) {
            // a broken connection is not reused: the next call reconnects
            self.forget(&integration.id);
        }
        result
    }

    /// Connects and sends PING; for `test_integration`.
    pub async fn ping(
        &self,
        integration: &Integration,
        creds: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<(), MqError> {
        self.forget(&integration.id);
        let work = async {
            let mut conn = self.connection(integration, creds).await?;
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map_err(classify)
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| MqError::Connect("timed out".into()))??;
        Ok(())
    }
}

fn check_stream(stream: &str) -> Result<(), MqError> {
    if stream.is_empty() || stream.len() > 512 {
        return Err(MqError::Payload(
            "stream must be 1 to 512 characters".into(),
        ));
    }
    Ok(())
}

async fn publish(conn: &mut MultiplexedConnection, payload: Value) -> Result<Value, MqError> {
    let input: PublishIn = serde_json::from_value(payload)
        .map_err(|e| MqError::Payload(format!("publish takes {{stream, fields}}: {e}")))?;
    check_stream(&input.stream)?;
    if input.fields.is_empty() {
        return Err(MqError::Payload("fields must not be empty".into()));
    }
    let mut cmd = redis::cmd("XADD");
    cmd.arg(&input.stream).arg("*");
    for (k, v) in &input.fields {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        cmd.arg(k).arg(text);
    }
    let id: String = cmd.query_async(conn).await.map_err(classify)?;
    Ok(json!({ "stream": input.stream, "id": id }))
}

async fn read(conn: &mut MultiplexedConnection, payload: Value) -> Result<Value, MqError> {
    let input: ReadIn = serde_json::from_value(payload)
        .map_err(|e| MqError::Payload(format!("read takes {{stream, since?, count?}}: {e}")))?;
    check_stream(&input.stream)?;
    let count = input.count.unwrap_or(100);
    if !(1..=MAX_READ).contains(&count) {
        return Err(MqError::Payload(format!(
            "count must be between 1 and {MAX_READ}"
        )));
    }
    let start = match input.since.as_deref() {
        None | Some("") | Some("-") | Some("0") => "-".to_string(),
        Some(id) => format!("({id}"),
    };
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(&input.stream)
        .arg(start)
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await
        .map_err(classify)?;
    let next = entries.last().map(|(id, _)| id.clone()).or(input.since);
    let items: Vec<Value> = entries
        .into_iter()
        .map(|(id, flat)| {
            let mut fields = Map::new();
            for pair in flat.chunks(2) {
                if let [k, v] = pair {
                    fields.insert(k.clone(), Value::String(v.clone()));
                }
            }
            json!({ "id": id, "fields": fields })
        })
        .collect();
    Ok(json!({ "stream": input.stream, "entries": items, "nextSince": next }))
}
