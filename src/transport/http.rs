//! Streamable HTTP transport (axum on a hyper HTTP/1 accept loop): `/mcp` (rmcp
//! `StreamableHttpService`, both protocol eras), `/healthz`, `/metrics`, plus the
//! toolsets' own routes (`/hooks/{id}` of integrations, which authenticate by their own
//! signatures), and with `--oauth-issuer` the protected-resource metadata
//! (`/.well-known/oauth-protected-resource[/…]`); authentication of `/mcp` and `/metrics`
//! (static bearer tokens, OAuth access tokens), the per-principal rate limit and the
//! write-scope step-up are `http/auth.rs`'s; Host and Origin validation (rmcp's for
//! `/mcp`, the same rules here for `/metrics`); TCP_NODELAY on accepted sockets; graceful
//! shutdown that drains in-flight calls on SIGINT/SIGTERM.
//!
//! Containment, all before the bearer check: at most `--http-max-connections` connections
//! are served at once (the accept loop waits for a free slot; the rest wait in the
//! kernel's backlog, holding no descriptor of ours); a client has
//! `--http-header-timeout-secs` to send its request head (hyper's timer, which also
//! closes idle keep-alive connections) and `--http-body-timeout-secs` to send the body
//! (408); with `--http-sessions`, at most `--http-max-sessions` sessions live at once: an
//! `initialize` past that gets 503 with `Retry-After` (existing sessions are never
//! evicted; an idle one ends after rmcp's 5 minutes, or on DELETE; the cap is
//! `http/sessions.rs`'s).
//!
//! Choices: stateless mode with plain JSON responses is the default (fastest; rmcp falls
//! back to SSE when a notification precedes the result). `http-sessions = true` turns on
//! 2025-11-25 sessions for legacy clients that want server-initiated streams. When no
//! origins are configured, only loopback origins are accepted. rmcp answers a body it
//! cannot read as a message with 415: a JSON body gets 400 with the JSON-RPC error
//! instead (-32700 not JSON, -32600 a batch array or not a message).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, State},
    http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use rmcp::{
    model::ClientJsonRpcMessage,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{config::Config, server::CortexServer};

mod auth;
mod oauth;
mod rate;
mod sessions;

pub use sessions::{CappedSessions, SessionsError};

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// Seconds an `initialize` refused for want of a session slot is told to wait.
const SESSIONS_RETRY_AFTER_SECS: u64 = 10;

#[derive(Clone)]
struct AppState {
    server: CortexServer,
}

/// What the body reader needs.
#[derive(Clone)]
struct BodyState {
    max_bytes: usize,
    timeout: Duration,
    /// The session manager when `--http-sessions` is on (for the session cap).
    sessions: Option<Arc<CappedSessions>>,
}

/// Origins accepted when none are configured.
fn loopback_origins() -> Vec<String> {
    vec![
        "http://localhost:*".to_string(),
        "http://127.0.0.1:*".to_string(),
        "http://[::1]:*".to_string(),
    ]
}

/// Builds the axum router (also for in-process tests); with OAuth, starts fetching the
/// issuer's keys (a Tokio runtime must be running).
pub fn router(server: CortexServer, ct: CancellationToken) -> Result<Router, HttpError> {
    let config = server.runtime().config.clone();
    let origins = if config.allowed_origins.is_empty() {
        loopback_origins()
    } else {
        config.allowed_origins.clone()
    };
    let http_config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(config.http_sessions)
        .with_json_response(true)
        .with_allowed_hosts(config.allowed_hosts.clone())
        .with_allowed_origins(origins.clone())
        .with_max_request_body_bytes(config.max_body_bytes)
        .with_cancellation_token(ct);
    let sessions = Arc::new(CappedSessions {
        inner: LocalSessionManager::default(),
        max: config.limits.http_max_sessions,
    });
    let factory_server = server.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(factory_server.for_session()),
        sessions.clone(),
        http_config,
    );
    let body = BodyState {
        max_bytes: config.max_body_bytes,
        timeout: config.limits.http_body_timeout,
        sessions: config.http_sessions.then_some(sessions),
    };
    let toolset_routes = server
        .routes()
        .layer(axum::extract::DefaultBodyLimit::max(config.max_body_bytes))
        .layer(middleware::from_fn_with_state(body.clone(), read_body));
    let rebinding = Arc::new(Rebinding {
        hosts: config.allowed_hosts.clone(),
        origins,
    });
    let access =
        Arc::new(auth::Access::new(&config).map_err(|e| HttpError::Config(format!("OAuth: {e}")))?);
    if let Some(verifier) = access.oauth().cloned() {
        tokio::spawn(async move { verifier.prefetch().await });
    }
    let step_up = auth::StepUp {
        access: access.clone(),
        registry: server.registry().clone(),
    };
    let metadata = config
        .oauth
        .as_ref()
        .map(auth::metadata_routes)
        .unwrap_or_default();
    let state = AppState { server };
    Ok(Router::new()
        .nest_service("/mcp", mcp)
        .route(
            "/metrics",
            get(metrics).layer(middleware::from_fn_with_state(rebinding, check_rebinding)),
        )
        .layer(middleware::from_fn_with_state(
            step_up,
            auth::require_write_scope,
        ))
        .layer(middleware::from_fn_with_state(body, read_body))
        .layer(middleware::from_fn_with_state(access, auth::authenticate))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readiness))
        .with_state(state)
        .merge(metadata)
        .merge(toolset_routes))
}

/// Readiness, unlike `/healthz` (liveness: the process serves): 200 when the store
/// answers within a second, else 503 (a load balancer then sends requests to the other
/// replicas; the process stays up and recovers by itself). Unauthenticated like
/// `/healthz`, so the answer names no host: the reason is logged, and the `health` tool
/// reports it to authenticated callers.
async fn readiness(State(state): State<AppState>) -> Response {
    let stores = &state.server.runtime().stores;
    let answer = tokio::time::timeout(std::time::Duration::from_secs(1), stores.ping()).await;
    let why = match answer {
        Ok(Ok(())) => return (StatusCode::OK, "ready").into_response(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("{} did not answer within 1 s", stores.describe()),
    };
    tracing::warn!(reason = %why, "not ready: the store does not answer");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready: the store does not answer (see the server log or the health tool)",
    )
        .into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.server.runtime().metrics.prometheus();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        body,
    )
        .into_response()
}

/// Host and Origin allow-lists, with rmcp's matching rules (what `/mcp` enforces).
struct Rebinding {
    hosts: Vec<String>,
    origins: Vec<String>,
}

/// A host (lowercase, without IPv6 brackets) and its port, if given.
fn authority(raw: &str) -> Option<(String, Option<u16>)> {
    let parsed = http::uri::Authority::try_from(raw.trim()).ok()?;
    let host = parsed
        .host()
        .trim_matches(|c| c == '[' || c == ']')
        .to_ascii_lowercase();
    Some((host, parsed.port_u16()))
}

/// An origin's scheme, host and port, or `None` for `null` or anything unparsable.
fn origin_parts(raw: &str) -> Option<(String, String, Option<u16>)> {
    let uri = http::Uri::try_from(raw.trim()).ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let (host, port) = authority(uri.authority()?.as_str())?;
    Some((scheme, host, port))
}

impl Rebinding {
    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        if self.hosts.is_empty() {
            return true;
        }
        let Some((host, port)) = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(authority)
        else {
            return false;
        };
        self.hosts.iter().any(|allowed| {
            let (a_host, a_port) = authority(allowed).unwrap_or_else(|| {
                (
                    allowed
                        .trim_matches(|c| c == '[' || c == ']')
                        .to_ascii_lowercase(),
                    None,
                )
            });
            a_host == host && a_port.is_none_or(|p| port == Some(p))
        })
    }

    fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true; // not a browser
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        if origin.trim().eq_ignore_ascii_case("null") {
            return self.origins.iter().any(|o| o.trim() == "null");
        }
        let Some((scheme, host, port)) = origin_parts(origin) else {
            return false;
        };
        let default_port = match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        };
        self.origins.iter().any(|allowed| {
            let allowed = allowed.trim();
            let (base, any_port) = match allowed.strip_suffix(":*") {
                Some(base) => (base, true),
                None => (allowed, false),
            };
            let Some((a_scheme, a_host, a_port)) = origin_parts(base) else {
                return false;
            };
            if a_scheme != scheme || a_host != host {
                return false;
            }
            match a_port {
                _ if any_port => true,
                None => true,
                Some(p) => port.or(default_port) == Some(p),
            }
        })
    }
}

/// `/metrics` gets the Host/Origin checks rmcp applies to `/mcp` (DNS rebinding).
async fn check_rebinding(
    State(rules): State<Arc<Rebinding>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    if !rules.host_allowed(request.headers()) {
        return (
            StatusCode::FORBIDDEN,
            "Forbidden: Host header is not allowed",
        )
            .into_response();
    }
    if !rules.origin_allowed(request.headers()) {
        return (StatusCode::FORBIDDEN, "Forbidden: Origin is not allowed").into_response();
    }
    next.run(request).await
}

/// Reads the whole request body within the body timeout (408) and size limit (413)
/// before the handler runs; on `/mcp`, refuses an `initialize` past the session cap
/// (503) and turns rmcp's 415 for an unreadable JSON body into 400 with its JSON-RPC
/// error.
async fn read_body(
    State(limits): State<BodyState>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(
        limits.timeout,
        Limited::new(body, limits.max_bytes).collect(),
    )
    .await;
    let bytes = match read {
        Err(_) => {
            return (
                StatusCode::REQUEST_TIMEOUT,
                [(header::CONNECTION, "close")],
                format!(
                    "Request Timeout: the body did not arrive within {} s",
                    limits.timeout.as_secs()
                ),
            )
                .into_response();
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "Payload Too Large: request body exceeds {} bytes",
                    limits.max_bytes
                ),
            )
                .into_response();
        }
        Ok(Err(e)) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("Bad Request: could not read the body: {e}"),
            )
                .into_response();
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let mcp_post = parts.method == Method::POST && parts.uri.path().starts_with("/mcp");
    if mcp_post
        && let Some(sessions) = &limits.sessions
        && !parts.headers.contains_key("mcp-session-id")
        && sessions.count().await >= sessions.max
        && is_initialize(&bytes)
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, SESSIONS_RETRY_AFTER_SECS.to_string())],
            format!(
                "Service Unavailable: {} sessions are open (--http-max-sessions); retry later, or end unused sessions with DELETE",
                sessions.max
            ),
        )
            .into_response();
    }
    let json_body = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"))
        });
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes.clone())))
        .await;
    if mcp_post && json_body && response.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return jsonrpc_fault(&bytes).unwrap_or(response);
    }
    response
}

fn is_initialize(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .is_some_and(|v| v.get("method").and_then(Value::as_str) == Some("initialize"))
}

/// The 400 JSON-RPC error for a JSON body that rmcp could not read as one message.
fn jsonrpc_fault(body: &[u8]) -> Option<Response> {
    let (id, code, message) = match serde_json::from_slice::<Value>(body) {
        Err(e) => (
            Value::Null,
            -32700,
            format!("Parse error: the body is not valid JSON ({e}); send one JSON-RPC message"),
        ),
        Ok(Value::Array(_)) => (
            Value::Null,
            -32600,
            "Invalid Request: JSON-RPC batch arrays are not supported (MCP removed batching); send one message per request".to_string(),
        ),
        Ok(value) => {
            let id = value
                .get("id")
                .filter(|id| id.is_string() || id.is_number())
                .cloned()
                .unwrap_or(Value::Null);
            let reason = match serde_json::from_value::<ClientJsonRpcMessage>(value) {
                Ok(_) => return None, // rmcp refused it for another reason: keep its answer
                Err(e) => e.to_string(),
            };
            (
                id,
                -32600,
                format!("Invalid Request: not a JSON-RPC 2.0 message ({reason})"),
            )
        }
    };
    let error = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message},
    });
    Some(
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            error.to_string(),
        )
            .into_response(),
    )
}

/// Serves until SIGINT/SIGTERM, then drains in-flight requests.
pub async fn serve(server: CortexServer, addr: SocketAddr) -> Result<(), HttpError> {
    let config: Arc<Config> = server.runtime().config.clone();
    config
        .check_bind(addr)
        .map_err(|e| HttpError::Config(e.to_string()))?;
    let ct = CancellationToken::new();
    let app = router(server, ct.child_token())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(HttpError::Serve)?;
    tracing::info!("listening on http://{local}/mcp");
    eprintln!("cortex-mcp listening on http://{local}/mcp");
    let slots = Arc::new(tokio::sync::Semaphore::new(
        config.limits.http_max_connections,
    ));
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(config.limits.http_header_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        // A free slot first: past the cap, connections wait in the backlog.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let service = WithPeer {
            inner: hyper_util::service::TowerToHyperService::new(app.clone()),
            peer,
        };
        let connection = graceful.watch(http1.serve_connection(TokioIo::new(tcp), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    // Long-lived SSE streams would hold the drain open forever: end them after a grace period.
    let shutdown_ct = ct.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        shutdown_ct.cancel();
    });
    graceful.shutdown().await;
    ct.cancel();
    Ok(())
}

/// A connection's service: each request carries the client's address
/// (`ConnectInfo<SocketAddr>`, what the rate limit keys unauthenticated callers by).
struct WithPeer<S> {
    inner: S,
    peer: SocketAddr,
}

impl<S, B> hyper::service::Service<Request<B>> for WithPeer<S>
where
    S: hyper::service::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut request: Request<B>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        self.inner.call(request)
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// A header map of `pairs`, for this module's tests and its submodules'.
#[cfg(test)]
fn test_headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

#[cfg(test)]
mod tests {
    use super::{test_headers as headers, *};

    #[test]
    fn rebinding_rules_match_rmcp() {
        let rules = Rebinding {
            hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            origins: loopback_origins(),
        };
        assert!(rules.host_allowed(&headers(&[("host", "127.0.0.1:7439")])));
        assert!(rules.host_allowed(&headers(&[("host", "[::1]:80")])));
        assert!(!rules.host_allowed(&headers(&[("host", "evil.example:7439")])));
        assert!(!rules.host_allowed(&headers(&[])));
        assert!(rules.origin_allowed(&headers(&[])));
        assert!(rules.origin_allowed(&headers(&[("origin", "http://localhost:3000")])));
        assert!(!rules.origin_allowed(&headers(&[("origin", "http://evil.example")])));
        assert!(!rules.origin_allowed(&headers(&[("origin", "https://localhost:3000")])));
        assert!(!rules.origin_allowed(&headers(&[("origin", "null")])));
    }
}
