//! `database` integrations: PostgreSQL through `tokio-postgres`, pooled per integration
//! revision by `deadpool-postgres` (pool size = the integration's concurrency). Every
//! operation runs in its own transaction, READ ONLY unless the integration has
//! `allowWrites`; the payload is the list of statement parameters, converted to the
//! types PostgreSQL inferred for them. Rows come back as JSON objects, capped (the
//! first [`PAGE_ROWS`] in the result, up to [`MAX_ROWS`] spooled for the cursor).
//!
//! Choices: plain TCP (no TLS to the database; use a local socket or tunnel for remote
//! servers); column types without a JSON mapping ask the model to cast them to text.
//! Hosts are resolved and checked by the outbound address policy when a pool is built,
//! and the pool connects to the checked addresses (`hostaddr`). A call's `timeout`
//! bounds all of it: the connection, `SET LOCAL statement_timeout` on the server, and on
//! the deadline a cancel request plus the connection's removal, so no backend keeps
//! running after the answer.
//! Owns SQL execution only; it must not touch the registry's storage, events or tools.

use std::{
    collections::BTreeMap,
    collections::HashMap,
    str::FromStr,
    time::{Duration, Instant},
};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures::{StreamExt, pin_mut};
use parking_lot::Mutex;
use serde_json::{Map, Value};
use tokio_postgres::{
    NoTls, Row, Statement,
    types::{ToSql, Type},
};

use super::{address::AddressPolicy, registry::Integration};

/// Rows returned in the first result.
pub const PAGE_ROWS: usize = 100;
/// Rows read at most; more are reported as truncated.
pub const MAX_ROWS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("config.endpoint: {0}")]
    Config(String),
    #[error("payload: {0}")]
    Params(String),
    #[error(
        "this integration is read-only: {0}; set config.allowWrites to true with update_integration to allow writes"
    )]
    ReadOnly(String),
    #[error("authentication failed: {0}; replace the credentials with update_integration")]
    Auth(String),
    #[error("could not connect to the database: {0}")]
    Connect(String),
    #[error("the database refused the statement: {0}")]
    Statement(String),
    #[error(
        "the call did not finish within its timeout ({0} ms); the statement was cancelled on the server. Raise `timeout` or make the statement cheaper"
    )]
    Timeout(u128),
    #[error(
        "column `{column}` has type {ty}, which has no JSON mapping; cast it in SQL (e.g. {column}::text)"
    )]
    Column { column: String, ty: String },
}

/// The result of one statement.
pub struct DbOutcome {
    pub rows: Vec<Value>,
    pub rows_affected: Option<u64>,
    /// Rows were dropped past [`MAX_ROWS`].
    pub truncated: bool,
}

/// Pools by integration id and revision (a new revision gets a new pool).
pub struct Pools {
    pools: Mutex<HashMap<String, (u64, Pool)>>,
    policy: AddressPolicy,
}

impl Pools {
    pub fn new(policy: AddressPolicy) -> Self {
        Pools {
            pools: Mutex::default(),
            policy,
        }
    }

    async fn pool(
        &self,
        integration: &Integration,
        creds: &BTreeMap<String, String>,
    ) -> Result<Pool, DbError> {
        if let Some((rev, pool)) = self.pools.lock().get(&integration.id)
            && *rev == integration.revision
        {
            return Ok(pool.clone());
        }
        let pool = build_pool(integration, creds, self.policy).await?;
        self.pools
            .lock()
            .insert(integration.id.clone(), (integration.revision, pool.clone()));
        Ok(pool)
    }

    pub fn forget(&self, id: &str) {
        self.pools.lock().remove(id);
    }

    /// Runs `sql` with `params` in a transaction (read-only unless writes are allowed),
    /// all of it before `deadline`.
    pub async fn execute(
        &self,
        integration: &Integration,
        creds: &BTreeMap<String, String>,
        sql: &str,
        params: Option<&Value>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<DbOutcome, DbError> {
        let timed_out = || DbError::Timeout(timeout.as_millis());
        let pool = tokio::time::timeout_at(deadline.into(), self.pool(integration, creds))
            .await
            .map_err(|_| timed_out())??;
        let mut client = tokio::time::timeout_at(deadline.into(), pool.get())
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| pool_error(&e))?;
        let cancel = client.cancel_token();
        let allow_writes = integration.config.allow_writes;
        let work = run(&mut client, sql, params, allow_writes, deadline);
        match tokio::time::timeout_at(deadline.into(), work).await {
            Ok(Err(DbError::Statement(m))) if m.contains("(57014)") => Err(timed_out()),
            Ok(result) => result,
            Err(_) => {
                // Stop the backend's work now and never hand this connection out again.
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), cancel.cancel_query(NoTls)).await;
                drop(deadpool_postgres::Object::take(client));
                Err(timed_out())
            }
        }
    }

    /// Connects and runs `SELECT 1`; for `test_integration`.
    pub async fn ping(
        &self,
        integration: &Integration,
        creds: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<(), DbError> {
        let deadline = Instant::now() + timeout;
        let timed_out = || DbError::Connect("timed out".into());
        let pool = tokio::time::timeout_at(deadline.into(), self.pool(integration, creds))
            .await
            .map_err(|_| timed_out())??;
        let client = tokio::time::timeout_at(deadline.into(), pool.get())
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| pool_error(&e))?;
        tokio::time::timeout_at(deadline.into(), client.simple_query("SELECT 1"))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| classify_pg(&e))?;
        Ok(())
    }
}

/// The transaction of one call, with the server-side statement timeout set to what is
/// left before `deadline`.
async fn run(
    client: &mut deadpool_postgres::Object,
    sql: &str,
    params: Option<&Value>,
    allow_writes: bool,
    deadline: Instant,
) -> Result<DbOutcome, DbError> {
    let tx = client
        .build_transaction()
        .read_only(!allow_writes)
        .start()
        .await
        .map_err(|e| classify_pg(&e))?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .as_millis()
        .max(1);
    tx.batch_execute(&format!("SET LOCAL statement_timeout = {left}"))
        .await
        .map_err(|e| classify_pg(&e))?;
    let stmt = tx.prepare(sql).await.map_err(|e| classify_pg(&e))?;
    let values = convert_params(&stmt, params)?;
    let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| b.as_ref() as _).collect();
    let outcome = if stmt.columns().is_empty() {
        let n = tx
            .execute(&stmt, &refs)
            .await
            .map_err(|e| classify_pg(&e))?;
        DbOutcome {
            rows: Vec::new(),
            rows_affected: Some(n),
            truncated: false,
        }
    } else {
        read_rows(&tx, &stmt, refs).await?
    };
    tx.commit().await.map_err(|e| classify_pg(&e))?;
    Ok(outcome)
}

async fn read_rows(
    tx: &deadpool_postgres::Transaction<'_>,
    stmt: &Statement,
    refs: Vec<&(dyn ToSql + Sync)>,
) -> Result<DbOutcome, DbError> {
    let stream = tx
        .query_raw(stmt, refs)
        .await
        .map_err(|e| classify_pg(&e))?;
    pin_mut!(stream);
    let mut rows = Vec::new();
    let mut truncated = false;
    while let Some(row) = stream.next().await {
        let row = row.map_err(|e| classify_pg(&e))?;
        if rows.len() == MAX_ROWS {
            truncated = true;
            break;
        }
        rows.push(row_json(&row)?);
    }
    Ok(DbOutcome {
        rows,
        rows_affected: None,
        truncated,
    })
}

/// The pool of one integration revision: every TCP host resolved and checked by
/// `policy` now, and connected to at that address (`hostaddr`) from then on.
async fn build_pool(
    integration: &Integration,
    creds: &BTreeMap<String, String>,
    policy: AddressPolicy,
) -> Result<Pool, DbError> {
    let endpoint = integration
        .config
        .endpoint
        .as_deref()
        .ok_or_else(|| DbError::Config("missing".into()))?;
    let mut config =
        tokio_postgres::Config::from_str(endpoint).map_err(|e| DbError::Config(e.to_string()))?;
    if !config.get_hostaddrs().is_empty() {
        return Err(DbError::Config(
            "hostaddr is not accepted; put the host in the URL".into(),
        ));
    }
    let ports = config.get_ports().to_vec();
    let hosts = config.get_hosts().to_vec();
    for (i, host) in hosts.iter().enumerate() {
        let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        match host {
            tokio_postgres::config::Host::Tcp(name) => {
                let addr = policy
                    .resolve(name, port)
                    .await
                    .map_err(|e| DbError::Connect(e.to_string()))?;
                config.hostaddr(addr.ip());
            }
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => {
                if !policy.allow_private {
                    return Err(DbError::Connect(format!(
                        "{} is a local socket, refused by the outbound address policy (--integrations-deny-private)",
                        path.display()
                    )));
                }
                return Err(DbError::Config(
                    "local sockets are not supported; use a TCP host".into(),
                ));
            }
        }
    }
    if let Some(user) = creds.get("username").or_else(|| creds.get("user")) {
        config.user(user);
    }
    if let Some(password) = creds.get("password") {
        config.password(password);
    }
    config.connect_timeout(Duration::from_secs(10));
    config.application_name("cortex-mcp");
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(integration.config.concurrency as usize)
        .build()
        .map_err(|e| DbError::Config(e.to_string()))
}

fn classify(message: &str, db: Option<&tokio_postgres::error::DbError>) -> DbError {
    match db.map(|d| d.code().code()) {
        Some("28P01" | "28000") => DbError::Auth(message.to_string()),
        Some("25006") => DbError::ReadOnly(message.to_string()),
        Some(_) => DbError::Statement(message.to_string()),
        None => DbError::Connect(message.to_string()),
    }
}

fn pool_error(e: &deadpool_postgres::PoolError) -> DbError {
    match e {
        deadpool_postgres::PoolError::Backend(pg) => classify_pg(pg),
        other => DbError::Connect(other.to_string()),
    }
}

fn classify_pg(e: &tokio_postgres::Error) -> DbError {
    let message = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    };
    classify(&message, e.as_db_error())
}

fn convert_params(
    stmt: &Statement,
    params: Option<&Value>,
) -> Result<Vec<Box<dyn ToSql + Sync + Send>>, DbError> {
    let given: Vec<Value> = match params {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Object(o)) => match o.get("params") {
            Some(Value::Array(a)) => a.clone(),
            _ => {
                return Err(DbError::Params(
                    "give the statement parameters as an array ($1, $2, ...) or {\"params\": [...]}".into(),
                ));
            }
        },
        Some(_) => return Err(DbError::Params("must be an array of parameters".into())),
    };
    let types = stmt.params();
    if given.len() != types.len() {
        return Err(DbError::Params(format!(
            "the statement takes {} parameter(s), {} given",
            types.len(),
            given.len()
        )));
    }
    given
        .iter()
        .zip(types)
        .enumerate()
        .map(|(i, (v, ty))| param(i + 1, v, ty))
        .collect()
}

fn param(n: usize, v: &Value, ty: &Type) -> Result<Box<dyn ToSql + Sync + Send>, DbError> {
    let bad = || DbError::Params(format!("${n} must be a {ty} value, got {v}"));
    if v.is_null() {
        return Ok(Box::new(Option::<String>::None));
    }
    Ok(match *ty {
        Type::BOOL => Box::new(v.as_bool().ok_or_else(bad)?),
        Type::INT2 => Box::new(i16::try_from(v.as_i64().ok_or_else(bad)?).map_err(|_| bad())?),
        Type::INT4 => Box::new(i32::try_from(v.as_i64().ok_or_else(bad)?).map_err(|_| bad())?),
        Type::INT8 => Box::new(v.as_i64().ok_or_else(bad)?),
        Type::FLOAT4 => Box::new(v.as_f64().ok_or_else(bad)? as f32),
        Type::FLOAT8 => Box::new(v.as_f64().ok_or_else(bad)?),
        Type::JSON | Type::JSONB => Box::new(v.clone()),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            Box::new(match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        }
        Type::UUID => Box::new(
            v.as_str()
                .and_then(|s| uuid::Uuid::parse_str(s).ok())
                .ok_or_else(bad)?,
        ),
        Type::TIMESTAMPTZ => Box::new(
            v.as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.with_timezone(&chrono::Utc))
                .ok_or_else(bad)?,
        ),
        _ => {
            return Err(DbError::Params(format!(
                "${n} has type {ty}, which cannot be given from JSON; cast it in SQL (e.g. ${n}::text)"
            )));
        }
    })
}

fn row_json(row: &Row) -> Result<Value, DbError> {
    let mut out = Map::new();
    for (i, col) in row.columns().iter().enumerate() {
        let unsupported = || DbError::Column {
            column: col.name().to_string(),
            ty: col.type_().to_string(),
        };
        let get = |e: tokio_postgres::Error| DbError::Statement(e.to_string());
        let value: Value = match *col.type_() {
            Type::BOOL => row.try_get::<_, Option<bool>>(i).map_err(get)?.into(),
            Type::INT2 => row.try_get::<_, Option<i16>>(i).map_err(get)?.into(),
            Type::INT4 => row.try_get::<_, Option<i32>>(i).map_err(get)?.into(),
            Type::INT8 => row.try_get::<_, Option<i64>>(i).map_err(get)?.into(),
            Type::OID => row.try_get::<_, Option<u32>>(i).map_err(get)?.into(),
            Type::FLOAT4 => row.try_get::<_, Option<f32>>(i).map_err(get)?.into(),
            Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).map_err(get)?.into(),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                row.try_get::<_, Option<String>>(i).map_err(get)?.into()
            }
            Type::JSON | Type::JSONB => row
                .try_get::<_, Option<Value>>(i)
                .map_err(get)?
                .unwrap_or(Value::Null),
            Type::UUID => row
                .try_get::<_, Option<uuid::Uuid>>(i)
                .map_err(get)?
                .map(|u| u.to_string())
                .into(),
            Type::TIMESTAMPTZ => row
                .try_get::<_, Option<chrono::DateTime<chrono::Utc>>>(i)
                .map_err(get)?
                .map(|d| d.to_rfc3339())
                .into(),
            Type::TIMESTAMP => row
                .try_get::<_, Option<chrono::NaiveDateTime>>(i)
                .map_err(get)?
                .map(|d| d.to_string())
                .into(),
            Type::DATE => row
                .try_get::<_, Option<chrono::NaiveDate>>(i)
                .map_err(get)?
                .map(|d| d.to_string())
                .into(),
            _ => return Err(unsupported()),
        };
        out.insert(col.name().to_string(), value);
    }
    Ok(Value::Object(out))
}
