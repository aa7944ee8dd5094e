//! Streamable HTTP transport (axum): `/mcp` (rmcp `StreamableHttpService`, both protocol
//! eras), `/healthz`, `/metrics`, plus the toolsets' own routes (`/hooks/{id}` of
//! integrations, which authenticate by their own signatures); bearer auth compared in constant time; Host and Origin
//! validation; TCP_NODELAY on accepted sockets; graceful shutdown that drains in-flight
//! calls on SIGINT/SIGTERM.
//!
//! Choices: stateless mode with plain JSON responses is the default (fastest; rmcp falls
//! back to SSE when a notification precedes the result). `http-sessions = true` turns on
//! 2025-11-25 sessions for legacy clients that want server-initiated streams. When no
//! origins are configured, only loopback origins are accepted.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::State,
    http::{HeaderValue, Request, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
    serve::ListenerExt,
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use crate::server::CortexServer;

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

#[derive(Clone)]
struct AppState {
    server: CortexServer,
    token: Option<Arc<str>>,
}

/// Builds the axum router (also used by in-process tests).
pub fn router(server: CortexServer, ct: CancellationToken) -> Router {
    let config = server.runtime().config.clone();
    let origins = if config.allowed_origins.is_empty() {
        vec![
            "http://localhost:*".to_string(),
            "http://127.0.0.1:*".to_string(),
            "http://[::1]:*".to_string(),
        ]
    } else {
        config.allowed_origins.clone()
    };
    let http_config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(config.http_sessions)
        .with_json_response(true)
        .with_allowed_hosts(config.allowed_hosts.clone())
        .with_allowed_origins(origins)
        .with_max_request_body_bytes(config.max_body_bytes)
        .with_cancellation_token(ct);
    let factory_server = server.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(factory_server.for_session()),
        LocalSessionManager::default().into(),
        http_config,
    );
    let toolset_routes = server
        .routes()
        .layer(axum::extract::DefaultBodyLimit::max(config.max_body_bytes));
    let state = AppState {
        token: config.auth_token.as_deref().map(Arc::from),
        server,
    };
    Router::new()
        .nest_service("/mcp", mcp)
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_bearer,
        ))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
        .merge(toolset_routes)
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

async fn require_bearer(
    State(state): State<AppState>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let Some(expected) = &state.token else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        return next.run(request).await;
    }
    let challenge = if presented.is_empty() {
        "Bearer realm=\"cortex-mcp\""
    } else {
        "Bearer realm=\"cortex-mcp\", error=\"invalid_token\""
    };
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
        "missing or invalid bearer token",
    )
        .into_response()
}

/// Serves until SIGINT/SIGTERM, then drains in-flight requests.
pub async fn serve(server: CortexServer, addr: SocketAddr) -> Result<(), HttpError> {
    server
        .runtime()
        .config
        .check_bind(addr)
        .map_err(|e| HttpError::Config(e.to_string()))?;
    let ct = CancellationToken::new();
    let app = router(server, ct.child_token());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(HttpError::Serve)?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tracing::info!("listening on http://{local}/mcp");
    eprintln!("cortex-mcp listening on http://{local}/mcp");
    let shutdown_ct = ct.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: draining in-flight requests");
            // Long-lived SSE streams would hold the drain open forever: end them after a grace period.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                shutdown_ct.cancel();
            });
        })
        .await
        .map_err(HttpError::Serve)?;
    ct.cancel();
    Ok(())
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
