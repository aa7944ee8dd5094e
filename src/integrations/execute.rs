//! Calls to `api` and `webhook` integrations: operation parsing (`"METHOD /path"` or a
//! named operation), header and credential injection, the per-integration executor lane
//! (`integration:<id>:c<concurrency>`, so a changed concurrency takes effect at once),
//! GETs through the shared conditional cache, retries through the runtime's upstream
//! helper (idempotent GET/HEAD after 5xx or connection errors; any method after 429/503
//! with Retry-After, which also pauses the lane), and the capped response with a cursor
//! into the [`Spool`].
//!
//! Owns HTTP request shaping and the redaction of credential values from anything a
//! call returns. It must not touch the registry's storage, the event bus or tool wiring.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::runtime::{
    budget::Budget,
    cache::fingerprint,
    executor::{Executor, LaneConfig},
    http::{
        BodyLimit, CacheOutcome, DefaultObserver, RetryPolicy as UpstreamRetry, Upstream,
        UpstreamError, UpstreamRequest,
    },
};

use super::registry::{API_KEY_KEYS, BEARER_KEYS, Integration};

/// Largest response text returned in one call; the rest is paged with `cursor`.
pub const MAX_CHUNK_BYTES: usize = 64 * 1024;
/// Longest total wait on retries before giving up with the time to retry.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(90);

#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    #[error("operation: {0}")]
    Operation(#[from] OperationError),
    #[error("payload: {0}")]
    Payload(String),
    #[error("{0}")]
    Upstream(String),
    #[error("{endpoint} answered {status}: {body}{hint}")]
    Status {
        endpoint: String,
        status: u16,
        body: String,
        hint: &'static str,
    },
}

/// Why an HTTP operation (`"METHOD /path"`) or the URL it targets is refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum OperationError {
    #[error("`{0}` is not \"METHOD /path\" (e.g. \"GET /users?limit=5\") or a named operation")]
    Shape(String),
    #[error("`{0}` is not an HTTP method")]
    Method(String),
    #[error("path `{0}` must start with a single `/`")]
    Path(String),
    #[error(transparent)]
    Endpoint(url::ParseError),
    #[error("`{path}`: {source}")]
    Url {
        path: String,
        source: url::ParseError,
    },
    #[error("`{0}` leaves the integration's endpoint")]
    Origin(String),
    #[error("this integration has no config.endpoint; set one with update_integration")]
    NoEndpoint,
    #[error(
        "`{path}` leaves the endpoint's base path {base}/ (after resolving `..`); operations stay under it"
    )]
    BasePath { path: String, base: String },
}

/// A query parameter whose value is not a scalar.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("query parameter `{0}` must be a string, number or boolean")]
pub struct QueryParamError(String);

/// Splits `"METHOD /path"`; the path must start with `/`.
pub fn parse_http_operation(op: &str) -> Result<(Method, String), OperationError> {
    let mut parts = op.split_whitespace();
    let (Some(method), Some(path), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(OperationError::Shape(op.to_string()));
    };
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| OperationError::Method(method.to_string()))?;
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(OperationError::Path(path.to_string()));
    }
    Ok((method, path.to_string()))
}

/// A named operation's text, or the operation itself.
pub fn resolve_operation<'a>(integration: &'a Integration, operation: &'a str) -> &'a str {
    integration
        .config
        .operations
        .get(operation.trim())
        .map(String::as_str)
        .unwrap_or(operation)
}

/// Replaces every credential value (4+ characters) in `text` with `[redacted]`.
pub fn redact(text: &str, creds: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for value in creds.values().filter(|v| v.len() >= 4) {
        if out.contains(value.as_str()) {
            out = out.replace(value.as_str(), "[redacted]");
        }
    }
    out
}

/// Stable fingerprint of an integration's credentials for cache keys (never the values).
pub fn credential_fingerprint(id: &str, creds: &BTreeMap<String, String>) -> String {
    let mut basis = String::from(id);
    for (k, v) in creds {
        basis.push('\0');
        basis.push_str(k);
        basis.push('\0');
        basis.push_str(v);
    }
    fingerprint(&basis)
}

/// The executor lane of one integration.
pub fn lane(executor: &Executor, integration: &Integration) -> Arc<crate::runtime::executor::Lane> {
    let n = integration.config.concurrency as usize;
    executor.lane(&format!("integration:{}:c{n}", integration.id), || {
        LaneConfig::concurrency(n).queue(1024)
    })
}

/// Request headers: configured ones, JSON accept/content type and the credential.
pub fn request_headers(
    integration: &Integration,
    creds: &BTreeMap<String, String>,
    with_body: bool,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    if with_body {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    for (k, v) in &integration.config.headers {
        // Records written before these were refused at registration are not sent.
        if crate::runtime::http::is_credential_header(k) || k.eq_ignore_ascii_case("host") {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.insert(n, v);
        }
    }
    if let Some(token) = BEARER_KEYS.iter().find_map(|k| creds.get(*k))
        && let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {token}"))
    {
        v.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, v);
    }
    if let Some(key) = API_KEY_KEYS.iter().find_map(|k| creds.get(*k)) {
        let name = integration
            .config
            .api_key_header
            .as_deref()
            .unwrap_or("x-api-key");
        if let (Ok(n), Ok(mut v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(key),
        ) {
            v.set_sensitive(true);
            headers.insert(n, v);
        }
    }
    headers
}

/// `endpoint` + `path` (the path is appended to the endpoint's path), kept on the
/// endpoint's origin and, after dot segments (`..`, `%2e%2e`) are resolved, under the
/// endpoint's base path.
pub fn target_url(endpoint: &str, path: &str) -> Result<url::Url, OperationError> {
    let base = url::Url::parse(endpoint).map_err(OperationError::Endpoint)?;
    let mut prefix = base.clone();
    prefix.set_query(None);
    let joined = format!("{}{}", prefix.as_str().trim_end_matches('/'), path);
    let url = url::Url::parse(&joined).map_err(|source| OperationError::Url {
        path: path.to_string(),
        source,
    })?;
    if url.origin() != base.origin() {
        return Err(OperationError::Origin(path.to_string()));
    }
    let base_path = base.path().trim_end_matches('/');
    if !base_path.is_empty() {
        let under = url.path() == base_path
            || url
                .path()
                .strip_prefix(base_path)
                .is_some_and(|rest| rest.starts_with('/'));
        let lower = url.path().to_ascii_lowercase();
        if !under || lower.contains("%2f") || lower.contains("%5c") {
            return Err(OperationError::BasePath {
                path: path.to_string(),
                base: base_path.to_string(),
            });
        }
    }
    Ok(url)
}

/// One finished HTTP call, before the tool shapes its output.
pub struct HttpOutcome {
    pub method: Method,
    pub path: String,
    pub status: u16,
    pub attempts: u32,
    pub cache: CacheOutcome,
    pub content_type: Option<String>,
    pub body: Bytes,
    pub request_bytes: usize,
}

/// What one HTTP call needs besides the integration.
pub struct HttpCall<'a> {
    pub upstream: &'a Upstream,
    pub executor: &'a Executor,
    pub creds: &'a BTreeMap<String, String>,
    pub deadline: Instant,
    pub cancel: CancellationToken,
    /// The calling tool's memory budget, charged with the answer's body as it arrives.
    pub budget: Budget,
}

/// Runs one HTTP operation; returns the outcome or an error whose text is redacted.
pub async fn call_http(
    integration: &Integration,
    operation: &str,
    payload: Option<&Value>,
    call: HttpCall<'_>,
) -> Result<HttpOutcome, (ExecuteError, Option<HttpOutcome>)> {
    let op = resolve_operation(integration, operation);
    let (method, path) =
        parse_http_operation(op).map_err(|e| (ExecuteError::Operation(e), None))?;
    let endpoint = integration
        .config
        .endpoint
        .as_deref()
        .ok_or_else(|| (ExecuteError::Operation(OperationError::NoEndpoint), None))?;
    let mut url = target_url(endpoint, &path).map_err(|e| (ExecuteError::Operation(e), None))?;
    let sends_body = !matches!(method, Method::GET | Method::HEAD);
    let body = match (payload, sends_body) {
        (Some(p), true) => Some(Bytes::from(
            serde_json::to_vec(p).map_err(|e| (ExecuteError::Payload(e.to_string()), None))?,
        )),
        (Some(Value::Object(map)), false) => {
            add_query(&mut url, map).map_err(|e| (ExecuteError::Payload(e.to_string()), None))?;
            None
        }
        (Some(Value::Null) | None, _) => None,
        (Some(_), false) => {
            return Err((
                ExecuteError::Payload(format!(
                    "a {method} payload must be an object of query parameters"
                )),
                None,
            ));
        }
    };
    let request_bytes = body.as_ref().map_or(0, Bytes::len);
    let policy = integration.config.retry_policy;
    let req = UpstreamRequest {
        method: method.clone(),
        url,
        headers: request_headers(integration, call.creds, body.is_some()),
        credential: credential_fingerprint(&integration.id, call.creds),
        body,
        lane: lane(call.executor, integration),
        deadline: call.deadline,
        cancel: call.cancel,
        retry: UpstreamRetry {
            max_retries: policy.max_retries,
            base: Duration::from_millis(policy.backoff_ms),
            max_total_wait: MAX_RETRY_WAIT,
            max_error_retries: policy.max_retries,
            max_error_wait: MAX_RETRY_WAIT,
        },
        use_cache: method == Method::GET,
        budget: call.budget,
        keep: BodyLimit::Whole,
    };
    let resp = call
        .upstream
        .send(req, Arc::new(DefaultObserver))
        .await
        .map_err(|e| (upstream_error(e, call.creds), None))?;
    let outcome = HttpOutcome {
        method,
        path,
        status: resp.status,
        attempts: resp.attempts,
        cache: resp.outcome,
        content_type: resp
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: resp.body,
        request_bytes,
    };
    if outcome.status >= 400 {
        let snippet = String::from_utf8_lossy(&outcome.body[..outcome.body.len().min(512)]);
        let err = ExecuteError::Status {
            endpoint: format!("{} {}", outcome.method, outcome.path),
            status: outcome.status,
            body: redact(&snippet, call.creds),
            hint: status_hint(outcome.status),
        };
        return Err((err, Some(outcome)));
    }
    Ok(outcome)
}

fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => {
            "; the credentials were refused: check them with test_integration (testType authentication) and replace them with update_integration"
        }
        404 => "; check the operation's path against the API",
        400 | 422 => "; check the payload against the API",
        429 | 503 => "; the service is busy: try again later",
        _ if status >= 500 => "; the service failed: try again later",
        _ => "",
    }
}

fn upstream_error(e: UpstreamError, creds: &BTreeMap<String, String>) -> ExecuteError {
    ExecuteError::Upstream(redact(&e.to_string(), creds))
}

fn add_query(
    url: &mut url::Url,
    map: &serde_json::Map<String, Value>,
) -> Result<(), QueryParamError> {
    let mut pairs = url.query_pairs_mut();
    for (k, v) in map {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(_) | Value::Bool(_) => v.to_string(),
            _ => {
                return Err(QueryParamError(k.clone()));
            }
        };
        pairs.append_pair(k, &text);
    }
    Ok(())
}

/// A response or row set kept for paging: text (a UTF-8 body) or JSON rows.
#[derive(Debug, Clone)]
pub enum Spooled {
    Text(Arc<str>),
    Rows(Arc<[Value]>),
}

impl Spooled {
    fn weight(&self) -> u32 {
        let bytes = match self {
            Spooled::Text(t) => t.len(),
            Spooled::Rows(r) => r.iter().map(|v| v.to_string().len()).sum(),
        };
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

/// Where the cursor of a capped result points.
#[derive(Debug, Serialize, Deserialize)]
pub struct SpoolCursor {
    pub id: String,
    pub offset: usize,
}

/// Recent capped results (bounded by bytes, 10 minutes each) so `cursor` can page
/// through them without calling the integration again.
#[derive(Clone)]
pub struct Spool {
    entries: moka::sync::Cache<String, Spooled>,
}

impl Default for Spool {
    fn default() -> Self {
        Spool {
            entries: moka::sync::Cache::builder()
                .max_capacity(64 * 1024 * 1024)
                .weigher(|_, v: &Spooled| v.weight())
                .time_to_live(Duration::from_secs(600))
                .build(),
        }
    }
}

impl Spool {
    pub fn put(&self, value: Spooled) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.entries.insert(id.clone(), value);
        id
    }
    pub fn get(&self, id: &str) -> Option<Spooled> {
        self.entries.get(id)
    }
}

/// One chunk of `text` from byte `offset` (on a char boundary), at most
/// [`MAX_CHUNK_BYTES`]; returns the chunk and the next offset when more remains.
pub fn text_chunk(text: &str, offset: usize) -> (&str, Option<usize>) {
    let mut start = offset.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + MAX_CHUNK_BYTES).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let next = (end < text.len()).then_some(end);
    (&text[start..end], next)
}

/// The tool's view of a response body.
#[derive(Debug, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BodyView {
    /// The parsed JSON body, when it is JSON and fits in one result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// The body as text (one chunk of at most 64 KiB) when it is not JSON or too large.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub total_bytes: usize,
    pub truncated: bool,
    /// Pass back as `cursor` (same integrationId) for the next chunk.
    #[serde(rename = "next_cursor", skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

pub const CURSOR_KIND: &str = "execute_integration";

/// Shapes a body: JSON when it parses and fits, else a redacted text chunk with a
/// cursor into the spool.
pub fn body_view(body: &[u8], creds: &BTreeMap<String, String>, spool: &Spool) -> BodyView {
    let text = redact(&String::from_utf8_lossy(body), creds);
    let total_bytes = body.len();
    if text.len() <= MAX_CHUNK_BYTES {
        if let Ok(json) = serde_json::from_str::<Value>(&text) {
            return BodyView {
                body: Some(json),
                total_bytes,
                ..Default::default()
            };
        }
        return BodyView {
            text: (!text.is_empty()).then_some(text),
            total_bytes,
            ..Default::default()
        };
    }
    let text: Arc<str> = Arc::from(text);
    let (chunk, next) = text_chunk(&text, 0);
    let chunk = chunk.to_string();
    let id = spool.put(Spooled::Text(text.clone()));
    BodyView {
        text: Some(chunk),
        total_bytes,
        truncated: true,
        next_cursor: next
            .map(|offset| crate::runtime::page::encode(CURSOR_KIND, &SpoolCursor { id, offset })),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_parse() {
        let (m, p) = parse_http_operation("post /items?x=1").unwrap();
        assert_eq!(m, Method::POST);
        assert_eq!(p, "/items?x=1");
        assert!(parse_http_operation("GET items").is_err());
        assert!(parse_http_operation("GET //evil.example/x").is_err());
        assert!(parse_http_operation("GET").is_err());
    }

    #[test]
    fn urls_stay_on_the_endpoint() {
        let u = target_url("http://127.0.0.1:9/api/", "/v1/x?a=b").unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:9/api/v1/x?a=b");
        assert!(target_url("http://127.0.0.1:9", "/@evil.example/").is_ok());
        for escape in [
            "/../admin",
            "/v1/../../admin",
            "/%2e%2e/admin",
            "/..%2fadmin",
        ] {
            assert!(
                target_url("http://127.0.0.1:9/api", escape).is_err(),
                "{escape}"
            );
        }
        assert!(target_url("http://127.0.0.1:9/api", "/v1/../x").is_ok());
        assert!(target_url("http://127.0.0.1:9/apix", "/../apixy").is_err());
    }

    #[test]
    fn redaction_and_chunks() {
        let creds = BTreeMap::from([("token".to_string(), "tok-123456".to_string())]);
        assert_eq!(redact("a tok-123456 b", &creds), "a [redacted] b");
        let text = "é".repeat(MAX_CHUNK_BYTES);
        let (chunk, next) = text_chunk(&text, 0);
        assert!(chunk.len() <= MAX_CHUNK_BYTES);
        let (rest, none) = text_chunk(&text, next.unwrap());
        assert_eq!(chunk.len() + rest.len(), text.len());
        assert!(none.is_none());
    }
}
