//! Inbound webhooks over HTTP: `POST /hooks/{integrationId}` for a `webhook`
//! integration with a `webhookSecret` credential. The body must carry an HMAC-SHA256
//! signature in `X-Signature-256` (or GitHub's `X-Hub-Signature-256`) as
//! `sha256=<hex>`; it is verified in constant time (`hmac`'s `verify_slice`). Accepted
//! deliveries are published as `integrations.webhook.received` and answered 202 with the
//! event id; a bad or missing signature is 401, an unknown integration 404.
//!
//! Replays are refused (409): a verified delivery is remembered by its delivery id (the
//! integration's `webhookDeliveryHeader`, else X-GitHub-Delivery / X-Delivery-Id /
//! X-Request-Id) and by the SHA-256 of its signature and body (delivery ids are not
//! signed, so a byte-for-byte replay under a fresh id is caught too). The seen set is
//! windowed, not persisted: entries live [`REPLAY_WINDOW`] and at most
//! [`MAX_SEEN`] are kept, so memory stays bounded; a restart forgets it. Senders that
//! sign a timestamp (`webhookTimestampHeader`: the signature covers `<ts>.<body>`) are
//! also refused when the timestamp is more than [`MAX_SKEW`] away from now, which
//! closes the window for those across restarts too.
//!
//! Owns the route and the verification. It sits outside the MCP bearer check (the
//! signature is the authentication) and must not touch tool wiring or other toolsets.

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::runtime::events::EventBus;

use super::{
    events::WebhookReceived,
    registry::{IntegrationStore, IntegrationType},
};

/// Credential holding the HMAC key of a webhook integration.
pub const SECRET_KEY: &str = "webhookSecret";
const SIGNATURE_HEADERS: [&str; 2] = ["x-signature-256", "x-hub-signature-256"];
const DELIVERY_HEADERS: [&str; 3] = ["x-delivery-id", "x-github-delivery", "x-request-id"];
/// Largest JSON payload carried inside the event; bigger ones are summarised by size.
const MAX_EVENT_PAYLOAD: usize = 64 * 1024;
/// How long a delivery is remembered for replay refusal.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Most remembered deliveries (ids and digests together), across integrations.
pub const MAX_SEEN: u64 = 200_000;
/// Largest accepted distance between a signed timestamp and now.
pub const MAX_SKEW: Duration = Duration::from_secs(300);

#[derive(Clone)]
struct HookState {
    registry: Arc<IntegrationStore>,
    events: EventBus,
    /// Recently accepted deliveries: `id:<integration>:<delivery id>` and
    /// `sha:<integration>:<digest>`.
    seen: moka::sync::Cache<String, ()>,
}

/// The router serving `/hooks/{integrationId}`.
pub fn router(registry: Arc<IntegrationStore>, events: EventBus) -> Router {
    let seen = moka::sync::Cache::builder()
        .max_capacity(MAX_SEEN)
        .time_to_live(REPLAY_WINDOW)
        .build();
    Router::new()
        .route("/hooks/{id}", post(receive))
        .with_state(HookState {
            registry,
            events,
            seen,
        })
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
    let signed: std::borrow::Cow<'_, [u8]> = match &integration.config.webhook_timestamp_header {
        None => std::borrow::Cow::Borrowed(&body),
        Some(name) => {
            let Some(ts) = header(&headers, &[name.as_str()]) else {
                return reply(
                    StatusCode::UNAUTHORIZED,
                    &format!("missing {name} header (the signed timestamp)"),
                );
            };
            let mut v = ts.trim().as_bytes().to_vec();
            v.push(b'.');
            v.extend_from_slice(&body);
            std::borrow::Cow::Owned(v)
        }
    };
    if !verify(secret.as_bytes(), &signed, presented) {
        tracing::warn!(integration = %id, "webhook refused: bad signature");
        metrics::counter!("cortex_integration_webhooks_refused_total").increment(1);
        return reply(StatusCode::UNAUTHORIZED, "signature does not match");
    }
    if let Some(name) = &integration.config.webhook_timestamp_header {
        let ts = header(&headers, &[name.as_str()]).unwrap_or("");
        let now = chrono::Utc::now().timestamp();
        let fresh = ts
            .trim()
            .parse::<i64>()
            .is_ok_and(|t| now.abs_diff(t) <= MAX_SKEW.as_secs());
        if !fresh {
            metrics::counter!("cortex_integration_webhooks_refused_total").increment(1);
            return reply(
                StatusCode::UNAUTHORIZED,
                &format!(
                    "{name} is not a Unix time within {} s of now: stale or replayed delivery",
                    MAX_SKEW.as_secs()
                ),
            );
        }
    }
    let delivery_id = match &integration.config.webhook_delivery_header {
        Some(name) => header(&headers, &[name.as_str()]),
        None => header(&headers, &DELIVERY_HEADERS),
    }
    .map(str::to_string);
    let digest = {
        use sha2::Digest;
        let mut h = Sha256::new();
        h.update(presented.trim().as_bytes());
        h.update([0u8]);
        h.update(&signed);
        hex::encode(h.finalize())
    };
    let keys: Vec<String> = delivery_id
        .iter()
        .map(|d| format!("id:{id}:{d}"))
        .chain([format!("sha:{id}:{digest}")])
        .collect();
    // Claim every key atomically; any key already held means a replay.
    let mut claimed = Vec::new();
    let mut replay = false;
    for key in &keys {
        if state.seen.entry(key.clone()).or_insert(()).is_fresh() {
            claimed.push(key.clone());
        } else {
            replay = true;
        }
    }
    if replay {
        for key in &claimed {
            state.seen.invalidate(key);
        }
        metrics::counter!("cortex_integration_webhooks_refused_total").increment(1);
        tracing::warn!(integration = %id, "webhook refused: replayed delivery");
        return reply(
            StatusCode::CONFLICT,
            "this delivery was already received (same delivery id or same signed body); it is not published again",
        );
    }
    let payload = if body.len() <= MAX_EVENT_PAYLOAD {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let owner = integration.event_owner();
    let event = WebhookReceived {
        schema_version: super::EVENT_SCHEMA_VERSION,
        integration_id: id.clone(),
        name: integration.name,
        delivery_id,
        content_type: header(&headers, &["content-type"]).map(str::to_string),
        bytes: body.len(),
        payload,
    };
    match state.events.publish_as("integrations", &event, owner).await {
        Ok(ev) => (
            StatusCode::ACCEPTED,
            Json(json!({ "eventId": ev.id, "seq": ev.seq })),
        ),
        Err(e) => {
            // Not published: let the sender's retry through.
            for key in &keys {
                state.seen.invalidate(key);
            }
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
