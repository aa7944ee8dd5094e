//! Who may use `/mcp` and `/metrics`, and how often: the [`authenticate`] middleware
//! (static bearer tokens compared in constant time, OAuth access tokens through
//! [`OAuthVerifier`], either accepted when both are configured), the per-principal rate
//! limit (429 with `Retry-After`), the scope step-up for tools that change state
//! ([`require_write_scope`]: 403 `insufficient_scope` with `scope="cortex:write"`), and
//! the RFC 9728 protected-resource metadata ([`metadata_routes`]) that 401 challenges
//! point to with `resource_metadata`.
//!
//! Owns the HTTP answers of authentication and rate limiting; token validation is
//! `oauth.rs`'s, the buckets `rate.rs`'s. It must not pass a client's token anywhere:
//! an accepted request goes on without its `Authorization` header, carrying the
//! principal and its [`ToolAccess`] instead; a token is never logged.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, State},
    http::{HeaderMap, HeaderValue, Request, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::{
    oauth::{Failure, Grant, KeysError, OAuthVerifier, grant, needed_scopes},
    rate::{RateLimits, retry_after_secs},
};
use crate::{
    config::{Config, OAuthSettings, SCOPE_READ, SCOPE_WRITE},
    runtime::{
        principal::{Principal, ToolAccess},
        registry::Registry,
    },
};

/// The path of the protected-resource metadata (RFC 9728 §3).
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// How requests authenticate and how often they may come.
pub struct Access {
    /// The accepted static bearer tokens, each with the principal it authenticates.
    tokens: Vec<(Arc<str>, Principal)>,
    oauth: Option<Arc<OAuthVerifier>>,
    rate: Option<RateLimits>,
    /// The URL of the protected-resource metadata (with OAuth).
    metadata_url: Option<String>,
}

/// What a request's credentials come to.
enum Outcome {
    /// No authentication is configured.
    Open,
    Pass(Principal, ToolAccess),
    Unauthorized {
        reason: Option<String>,
    },
    Forbidden {
        principal: Principal,
        needed: Vec<String>,
    },
    Unavailable(KeysError),
}

impl Access {
    pub fn new(config: &Config) -> Result<Self, KeysError> {
        let oauth = config
            .oauth
            .clone()
            .map(OAuthVerifier::new)
            .transpose()?
            .map(Arc::new);
        Ok(Self {
            tokens: config
                .bearer_tokens()
                .map(|t| (Arc::from(t), Principal::http(Some(t))))
                .collect(),
            metadata_url: config.oauth.as_ref().map(|o| metadata_url(&o.audience)),
            oauth,
            rate: config.http_rate_limit.map(RateLimits::new),
        })
    }

    pub fn oauth(&self) -> Option<&Arc<OAuthVerifier>> {
        self.oauth.as_ref()
    }

    async fn outcome(&self, presented: &str) -> Outcome {
        if self.tokens.is_empty() && self.oauth.is_none() {
            return Outcome::Open;
        }
        // Every static token is compared (in constant time), so the time taken does not
        // say which one matched or how far a guess got.
        let mut matched = None;
        for (token, principal) in &self.tokens {
            if bool::from(presented.as_bytes().ct_eq(token.as_bytes())) {
                matched = Some(principal.clone());
            }
        }
        if let Some(principal) = matched {
            return Outcome::Pass(principal, ToolAccess::All);
        }
        let Some(oauth) = self.oauth.as_ref().filter(|_| !presented.is_empty()) else {
            let reason = (!presented.is_empty()).then(|| "the token is not accepted".into());
            return Outcome::Unauthorized { reason };
        };
        match oauth.verify(presented).await {
            Ok(verified) => match grant(&verified.scopes, &oauth.settings().required_scopes) {
                Grant::Tools(access) => Outcome::Pass(verified.principal, access),
                Grant::Insufficient(needed) => Outcome::Forbidden {
                    principal: verified.principal,
                    needed,
                },
            },
            Err(Failure::Rejected(rejection)) => Outcome::Unauthorized {
                reason: Some(rejection.to_string()),
            },
            Err(Failure::Keys(keys)) => Outcome::Unavailable(keys),
        }
    }

    /// The `WWW-Authenticate` value of a 401 (`reason`: why a presented token failed).
    fn unauthorized_challenge(&self, reason: Option<&str>) -> String {
        let Some((url, settings)) = self.metadata_url.as_ref().zip(self.settings()) else {
            return match reason {
                None => "Bearer realm=\"cortex-mcp\"".into(),
                Some(_) => "Bearer realm=\"cortex-mcp\", error=\"invalid_token\"".into(),
            };
        };
        let scope = needed_scopes(&settings.required_scopes, SCOPE_READ).join(" ");
        let mut challenge = String::from("Bearer ");
        if let Some(reason) = reason {
            challenge.push_str(&format!(
                "error=\"invalid_token\", error_description=\"{}\", ",
                quoted(reason)
            ));
        }
        challenge.push_str(&format!(
            "resource_metadata=\"{}\", scope=\"{}\"",
            quoted(url),
            quoted(&scope)
        ));
        challenge
    }

    /// The `WWW-Authenticate` value of a 403 for want of `needed` scopes.
    fn insufficient_scope_challenge(&self, needed: &[String], why: &str) -> String {
        let mut challenge = format!(
            "Bearer error=\"insufficient_scope\", scope=\"{}\", error_description=\"{}\"",
            quoted(&needed.join(" ")),
            quoted(why)
        );
        if let Some(url) = &self.metadata_url {
            challenge.push_str(&format!(", resource_metadata=\"{}\"", quoted(url)));
        }
        challenge
    }

    fn settings(&self) -> Option<&OAuthSettings> {
        self.oauth.as_ref().map(|o| o.settings())
    }
}

/// A value safe inside a quoted-string: no `"`, `\` or control characters.
fn quoted(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

/// The metadata URL of a resource (RFC 9728 §3.1): the well-known path inserted between
/// the host and the resource's path.
pub fn metadata_url(resource: &str) -> String {
    let Ok(url) = url::Url::parse(resource) else {
        return METADATA_PATH.to_string();
    };
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    format!("{origin}{METADATA_PATH}{path}{query}")
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive,
/// RFC 9110 §11.1), or "" when there is none.
pub fn bearer_token(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim())
}

/// The bucket a request is counted in: its principal's when it authenticated as one,
/// else its client address's.
fn rate_key(outcome: &Outcome, client: Option<SocketAddr>) -> String {
    match outcome {
        Outcome::Pass(principal, _) | Outcome::Forbidden { principal, .. } => {
            principal.as_str().to_string()
        }
        _ => match client {
            Some(addr) => format!("ip:{}", addr.ip()),
            None => "ip:unknown".to_string(),
        },
    }
}

/// Lets a request through when its credentials are accepted (or none are configured),
/// leaving the principal and its tool access in its extensions; answers 401, 403, 429 or
/// 503 otherwise.
pub async fn authenticate(
    State(access): State<Arc<Access>>,
    mut request: Request<Body>,
    next: Next,
) -> Response {
    let outcome = access.outcome(bearer_token(request.headers())).await;
    if let Some(rate) = &access.rate {
        let client = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let key = rate_key(&outcome, client);
        if let Err(wait) = rate.check(&key) {
            return too_many_requests(&key, rate, retry_after_secs(wait));
        }
    }
    match outcome {
        Outcome::Open => next.run(request).await,
        Outcome::Pass(principal, tools) => {
            // The token stops here: what follows (rmcp, the tools) sees the principal.
            request.headers_mut().remove(header::AUTHORIZATION);
            request.extensions_mut().insert(principal);
            if tools != ToolAccess::All {
                request.extensions_mut().insert(tools);
            }
            next.run(request).await
        }
        Outcome::Unauthorized { reason } => {
            rejected(if reason.is_some() {
                "invalid_token"
            } else {
                "missing_token"
            });
            let challenge = access.unauthorized_challenge(reason.as_deref());
            let body = match &reason {
                Some(reason) => format!("Unauthorized: {reason}"),
                None => "Unauthorized: missing bearer token".to_string(),
            };
            challenge_response(StatusCode::UNAUTHORIZED, &challenge, body)
        }
        Outcome::Forbidden { principal, needed } => {
            rejected("insufficient_scope");
            tracing::debug!("{principal} lacks the scopes {needed:?}");
            let why = "the token lacks a scope this server requires";
            let challenge = access.insufficient_scope_challenge(&needed, why);
            let body = format!("Forbidden: {why}; needed: {}", needed.join(" "));
            challenge_response(StatusCode::FORBIDDEN, &challenge, body)
        }
        Outcome::Unavailable(e) => {
            rejected("keys_unavailable");
            let wait = match &e {
                KeysError::CoolingDown(secs) => *secs,
                _ => access.settings().map_or(30, |s| s.jwks_cooldown.as_secs()),
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, wait.to_string())],
                format!(
                    "Service Unavailable: the authorization server's signing keys could not be fetched, so no token can be checked ({e})"
                ),
            )
                .into_response()
        }
    }
}

fn rejected(reason: &'static str) {
    metrics::counter!("cortex_http_auth_rejected_total", "reason" => reason).increment(1);
}

fn challenge_response(status: StatusCode, challenge: &str, body: String) -> Response {
    let value =
        HeaderValue::from_str(challenge).unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
    (status, [(header::WWW_AUTHENTICATE, value)], body).into_response()
}

/// 429 with `Retry-After` and a JSON-RPC error body naming the limit.
fn too_many_requests(key: &str, rate: &RateLimits, retry_after: u64) -> Response {
    metrics::counter!("cortex_http_rate_limited_total", "principal" => bucket_label(key))
        .increment(1);
    tracing::debug!("rate limit of {key} reached; retry after {retry_after} s");
    let body = json!({
        "jsonrpc": "2.0",
        "id": Value::Null,
        "error": {
            "code": -32000,
            "message": format!(
                "Too Many Requests: {key} may make {} requests (--http-rate-limit); retry after {retry_after} s",
                rate.limit()
            ),
            "data": {"retryAfterSecs": retry_after, "limit": rate.limit().to_string()},
        },
    });
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (header::RETRY_AFTER, retry_after.to_string()),
            (header::CONTENT_TYPE, "application/json".to_string()),
        ],
        body.to_string(),
    )
        .into_response()
}

/// A principal names its series; addresses share one (they are many and not principals).
fn bucket_label(key: &str) -> String {
    if key.starts_with("ip:") {
        "anonymous".to_string()
    } else {
        key.to_string()
    }
}

/// What [`require_write_scope`] needs.
#[derive(Clone)]
pub struct StepUp {
    pub access: Arc<Access>,
    pub registry: Arc<Registry>,
}

/// A `tools/call` of a tool that changes state, from a token that grants read-only tools:
/// 403 `insufficient_scope` with `scope="cortex:write"` (the MCP authorization spec's
/// step-up), before the server sees it. Runs after the body was read.
pub async fn require_write_scope(
    State(step_up): State<StepUp>,
    request: Request<Body>,
    next: Next,
) -> Response {
    if request.extensions().get::<ToolAccess>() != Some(&ToolAccess::ReadOnly) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    // The body was read whole (and bounded) by `read_body`: this only takes it back.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if let Some(tool) = called_tool(&bytes)
        && step_up
            .registry
            .get(&tool)
            .is_some_and(|def| !def.read_only)
    {
        rejected("insufficient_scope");
        let required = step_up
            .access
            .settings()
            .map(|s| s.required_scopes.clone())
            .unwrap_or_default();
        let needed = needed_scopes(&required, SCOPE_WRITE);
        let why = format!("{tool} changes state and needs {SCOPE_WRITE}");
        let challenge = step_up.access.insufficient_scope_challenge(&needed, &why);
        return challenge_response(
            StatusCode::FORBIDDEN,
            &challenge,
            format!("Forbidden: {why}"),
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The tool a `tools/call` message calls.
fn called_tool(body: &[u8]) -> Option<String> {
    let message: Value = serde_json::from_slice(body).ok()?;
    if message.get("method").and_then(Value::as_str) != Some("tools/call") {
        return None;
    }
    message
        .pointer("/params/name")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The protected-resource metadata routes (RFC 9728), served without authentication
/// and never rate limited: `/.well-known/oauth-protected-resource` and every path
/// under it (`…/mcp`, the resource's own path).
pub fn metadata_routes(settings: &OAuthSettings) -> Router {
    let mut scopes = vec![SCOPE_READ.to_string(), SCOPE_WRITE.to_string()];
    for s in &settings.required_scopes {
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    let document = Arc::new(json!({
        "resource": settings.audience,
        "authorization_servers": [settings.issuer],
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": "cortex-mcp",
    }));
    let serve = move || {
        let document = document.clone();
        async move {
            (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                    (header::CACHE_CONTROL, "max-age=300"),
                ],
                document.to_string(),
            )
                .into_response()
        }
    };
    Router::new()
        .route(METADATA_PATH, get(serve.clone()))
        .route(&format!("{METADATA_PATH}/{{*resource}}"), get(serve))
}

#[cfg(test)]
mod tests {
    use super::super::test_headers as headers;
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for value in ["Bearer abc", "bearer abc", "BEARER  abc "] {
            assert_eq!(bearer_token(&headers(&[("authorization", value)])), "abc");
        }
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Basic abc")])),
            ""
        );
        assert_eq!(bearer_token(&headers(&[])), "");
    }

    #[test]
    fn metadata_sits_between_host_and_resource_path() {
        assert_eq!(
            metadata_url("https://mcp.example.com/mcp"),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("https://mcp.example.com/"),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            metadata_url("http://127.0.0.1:7439/a/mcp/"),
            "http://127.0.0.1:7439/.well-known/oauth-protected-resource/a/mcp"
        );
    }

    #[test]
    fn only_tools_call_names_a_tool() {
        let call =
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_task"}}"#;
        assert_eq!(called_tool(call).as_deref(), Some("create_task"));
        assert_eq!(
            called_tool(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            None
        );
        assert_eq!(called_tool(b"not json"), None);
        assert_eq!(called_tool(br#"[{"method":"tools/call"}]"#), None);
    }

    #[test]
    fn quoted_strings_drop_what_would_break_the_header() {
        assert_eq!(quoted("a\"b\\c\nd"), "abcd");
    }
}
