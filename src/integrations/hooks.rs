//! Inbound webhooks over HTTP: `POST /hooks/{integrationId}` for a `webhook`
//! integration with a `webhookSecret` credential. The body must carry an HMAC-SHA256
//! signature in `X-Signature-256` (or GitHub's `X-Hub-Signature-256`) as
//! `sha256=<hex>`; it is verified in constant time (`hmac`'s `verify_slice`). Accepted
//! deliveries are published as `integrations.webhook.received` and answered 202 with the
//! event id; a bad or missing signature is 401, an unknown integration 404.
//!
//! Owns the route and the verification. It sits outside the MCP bearer check (the
//! signature is the authentication) and must not touch tool wiring or other toolsets.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::runtime::events::{EventBus, EventPayload};

use super::registry::{IntegrationType, Registry};

/// Credential holding the HMAC key of a webhook integration.
pub const SECRET_KEY: &str = "webhookSecret";
const SIGNATURE_HEADERS: [&str; 2] = ["x-signature-256", "x-hub-signature-256"];
const DELIVERY_HEADERS: [&str; 3] = ["x-delivery-id", "x-github-delivery", "x-request-id"];
/// Largest JSON payload carried inside the event; bigger ones are summarised by size.
const MAX_EVENT_PAYLOAD: usize = 64 * 1024;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookReceived {
    pub integration_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    pub bytes: usize,
    /// The JSON body, when it is JSON and at most 64 KiB.
    pub payload: Value,
}

impl EventPayload for WebhookReceived {
    const TYPE: &'static str = "integrations.webhook.received";
}

#[derive(Clone)]
struct HookState {
    registry: Arc<Registry>,
    events: EventBus,
}

/// The router serving `/hooks/{integrationId}`.
pub fn router(registry: Arc<Registry>, events: EventBus) -> Router {
    Router::new()
        .route("/hooks/{id}", post(receive))
        .with_state(HookState { registry, events })
}

/// Computes the `sha256=<hex>` signature of `body` (for senders and tests).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Constant-time check of a `sha256=<hex>` signature over `body`.
pub fn verify(secret: &[u8], body: &[u8], presented: &str) -> bool {
    let hex_part = presented
        .trim()
        .strip_prefix("sha256=")
        .unwrap_or(presented.trim());
    let Ok(expected) = hex::decode(hex_part) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn header<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| headers.get(*n).and_then(|v| v.to_str().ok()))
}

type Reply = (StatusCode, Json<Value>);

fn reply(status: StatusCode, message: &str) -> Reply {
    (status, Json(json!({ "error": message })))
}

async fn receive(
    State(state): State<HookState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let Ok(integration) = state.registry.get(&id) else {
        return reply(StatusCode::NOT_FOUND, "no such integration");
    };
    if integration.r#type != IntegrationType::Webhook {
        return reply(StatusCode::NOT_FOUND, "not a webhook integration");
    }
    let creds = state.registry.credentials(&id);
    let Some(secret) = creds.get(SECRET_KEY) else {
        return reply(
            StatusCode::UNAUTHORIZED,
            "the integration has no webhookSecret credential; deliveries cannot be verified",
        );
    };
    let Some(presented) = header(&headers, &SIGNATURE_HEADERS) else {
        return reply(StatusCode::UNAUTHORIZED, "missing X-Signature-256 header");
    };
    if !verify(secret.as_bytes(), &body, presented) {
        tracing::warn!(integration = %id, "webhook refused: bad signature");
        metrics::counter!("cortex_integration_webhooks_refused_total").increment(1);
        return reply(StatusCode::UNAUTHORIZED, "signature does not match");
    }
    let payload = if body.len() <= MAX_EVENT_PAYLOAD {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let event = WebhookReceived {
        integration_id: id.clone(),
        name: integration.name,
        delivery_id: header(&headers, &DELIVERY_HEADERS).map(str::to_string),
        content_type: header(&headers, &["content-type"]).map(str::to_string),
        bytes: body.len(),
        payload,
    };
    match state.events.publish("integrations", &event).await {
        Ok(ev) => (
            StatusCode::ACCEPTED,
            Json(json!({ "eventId": ev.id, "seq": ev.seq })),
        ),
        Err(e) => {
            tracing::error!(integration = %id, "webhook event not stored: {e}");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "could not store the event; retry",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify() {
        let sig = sign(b"k", b"{\"a\":1}");
        assert!(verify(b"k", b"{\"a\":1}", &sig));
        assert!(!verify(b"k", b"{\"a\":2}", &sig));
        assert!(!verify(b"other", b"{\"a\":1}", &sig));
        assert!(!verify(b"k", b"{\"a\":1}", "sha256=zz"));
    }
}
