//! `message-queue` integrations in a build without the `redis` feature: the same API as
//! `mq.rs`, with no client. Creating a message-queue integration is refused by the
//! registry (`check_endpoint`); one replayed from a journal written by a full build
//! answers every call with an error saying what to rebuild. Owns nothing else.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde_json::Value;

use super::{address::AddressPolicy, registry::Integration};

/// What [`Connections`] answers in this build (the variants `tools.rs` maps).
#[derive(Debug, thiserror::Error)]
pub enum MqError {
    #[error("operation: `{0}` is not publish or read")]
    Operation(String),
    #[error("payload: {0}")]
    Payload(String),
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("could not reach Redis: {0}")]
    Connect(String),
    #[error("Redis refused the command: {0}")]
    Command(String),
    #[error(
        "this cortex-mcp was built without Redis support (cargo feature `redis`), so message-queue integration {0} cannot be used; rebuild with default features or delete it with delete_integration"
    )]
    NotBuilt(String),
}

/// No connections: nothing can connect in this build.
pub struct Connections;

impl Connections {
    pub fn new(_policy: AddressPolicy) -> Self {
        Connections
    }

    pub fn forget(&self, _id: &str) {}

    pub async fn execute(
        &self,
        integration: &Integration,
        _creds: &BTreeMap<String, String>,
        _operation: &str,
        _payload: Option<&Value>,
        _deadline: Instant,
    ) -> Result<Value, MqError> {
        Err(MqError::NotBuilt(integration.id.clone()))
    }

    pub async fn ping(
        &self,
        integration: &Integration,
        _creds: &BTreeMap<String, String>,
        _timeout: Duration,
    ) -> Result<(), MqError> {
        Err(MqError::NotBuilt(integration.id.clone()))
    }
}
