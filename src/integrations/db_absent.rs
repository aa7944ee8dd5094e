//! `database` integrations in a build without the `postgres` feature: the same API as
//! `db.rs`, with no driver. Creating a database integration is refused by the registry
//! (`check_endpoint`); one replayed from a journal written by a full build answers every
//! call with an error saying what to rebuild. Owns nothing else.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde_json::Value;

use super::{address::AddressPolicy, registry::Integration};

/// Rows returned in the first result.
pub const PAGE_ROWS: usize = 100;

/// What [`Pools`] answers in this build (the variants `tools.rs` maps).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("config.endpoint: {0}")]
    Config(String),
    #[error("payload: {0}")]
    Params(String),
    #[error("this integration is read-only: {0}")]
    ReadOnly(String),
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("could not connect to the database: {0}")]
    Connect(String),
    #[error("column `{column}` has type {ty}")]
    Column { column: String, ty: String },
    #[error(
        "this cortex-mcp was built without PostgreSQL support (cargo feature `postgres`), so database integration {0} cannot be used; rebuild with default features or delete it with delete_integration"
    )]
    NotBuilt(String),
}

/// The result of one statement.
pub struct DbOutcome {
    pub rows: Vec<Value>,
    pub rows_affected: Option<u64>,
    pub truncated: bool,
}

/// No pools: nothing can connect in this build.
pub struct Pools;

impl Pools {
    pub fn new(_policy: AddressPolicy) -> Self {
        Pools
    }

    pub fn forget(&self, _id: &str) {}

    pub async fn execute(
        &self,
        integration: &Integration,
        _creds: &BTreeMap<String, String>,
        _sql: &str,
        _params: Option<&Value>,
        _deadline: Instant,
        _timeout: Duration,
    ) -> Result<DbOutcome, DbError> {
        Err(DbError::NotBuilt(integration.id.clone()))
    }

    pub async fn ping(
        &self,
        integration: &Integration,
        _creds: &BTreeMap<String, String>,
        _timeout: Duration,
    ) -> Result<(), DbError> {
        Err(DbError::NotBuilt(integration.id.clone()))
    }
}
