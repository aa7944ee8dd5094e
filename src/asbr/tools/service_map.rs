//! Service-map tools: the signed connector service map and its verification.
//!
//! Owns their inputs, handlers and registration; building and signing the map is
//! `asbr::manifest`'s.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::runtime::{
    registry::{CallCtx, Hints, ToolDef},
    toolset::Tools,
};

use super::{A, Out};
use crate::asbr::manifest::CacheOutcome;

pub(super) fn register(t: &Tools<A>) -> Vec<ToolDef> {
    let read = Hints::read();
    vec![
        t.tool(
            "get_connector_service_map",
            read,
            get_connector_service_map,
            "Get the connector service map of the configured manifest, signed (HMAC-SHA256 `signature`); check one later with verify_service_map.",
        )
        .titled("Get connector service map"),
        t.tool(
            "verify_service_map",
            read,
            verify_service_map,
            "Check a service map's signature with the server's key: `valid`, or the reason it is not.",
        )
        .titled("Verify service map"),
    ]
}

#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

#[derive(Serialize, JsonSchema)]
pub struct ServiceMapOut {
    /// The signed service map; pass it to `verify_service_map` unchanged.
    pub map: Value,
    /// How this call was served: hit (file unchanged), revalidated (re-hashed,
    /// unchanged) or built (parsed and signed).
    pub cache: CacheOutcome,
}

pub(super) async fn get_connector_service_map(
    a: A,
    _i: NoInput,
    _ctx: CallCtx,
) -> Out<ServiceMapOut> {
    let (map, cache) = a.manifest.get().await?;
    Ok(ServiceMapOut {
        map: (*map).clone(),
        cache,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyIn {
    /// A map as returned by `get_connector_service_map`, with its `signature`.
    pub map: Map<String, Value>,
}

#[derive(Serialize, JsonSchema)]
pub struct VerifyOut {
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

pub(super) async fn verify_service_map(a: A, i: VerifyIn, _ctx: CallCtx) -> Out<VerifyOut> {
    let outcome = a.manifest.verify(&Value::Object(i.map))?;
    Ok(VerifyOut {
        valid: outcome.is_ok(),
        reason: outcome.err().map(|e| e.to_string()),
    })
}
