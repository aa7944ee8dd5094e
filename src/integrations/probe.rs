//! `test_integration` for HTTP integrations: one request made step by step so each step
//! is timed — DNS resolution, TCP connect, TLS handshake (https; rustls with the
//! platform verifier), and the first byte of the response (hyper HTTP/1.1 over the
//! connection). Authentication is judged from the status: 401/403 fail.
//!
//! The address it connects to is the first resolved one the outbound address policy
//! allows. Owns the probe only; it opens its own connection (outside the pooled client) because
//! a pooled connection would hide the DNS/connect/TLS steps. It must not touch the
//! registry, events or tool wiring.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use http::{HeaderMap, Method, Request};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use schemars::JsonSchema;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};

use super::address::AddressPolicy;

/// One timed step.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// dns | connect | tls | first-byte | authentication | query
    pub name: String,
    pub ok: bool,
    pub ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Step {
    pub fn new(name: &str, ok: bool, took: Duration, detail: Option<String>) -> Self {
        Step {
            name: name.to_string(),
            ok,
            ms: (took.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            detail,
        }
    }
}

/// What the probe found.
pub struct ProbeReport {
    pub steps: Vec<Step>,
    pub status: Option<u16>,
}

fn fail(steps: &mut Vec<Step>, name: &str, started: Instant, detail: String) -> ProbeReport {
    steps.push(Step::new(name, false, started.elapsed(), Some(detail)));
    ProbeReport {
        steps: std::mem::take(steps),
        status: None,
    }
}

/// Probes `url` with GET and `headers` (credentials included when authenticating),
/// connecting only to a resolved address `policy` allows.
pub async fn probe_http(
    url: &url::Url,
    headers: HeaderMap,
    timeout: Duration,
    policy: AddressPolicy,
) -> ProbeReport {
    let mut steps = Vec::new();
    let host = url.host_str().unwrap_or("").to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let t = Instant::now();
    let addrs =
        match tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), port))).await {
            Ok(Ok(a)) => a.collect::<Vec<_>>(),
            Ok(Err(e)) => return fail(&mut steps, "dns", t, format!("cannot resolve {host}: {e}")),
            Err(_) => return fail(&mut steps, "dns", t, format!("resolving {host} timed out")),
        };
    let Some(first) = addrs.first().copied() else {
        return fail(&mut steps, "dns", t, format!("{host} has no address"));
    };
    let Some(addr) = addrs.iter().copied().find(|a| policy.check(a.ip()).is_ok()) else {
        let reason = policy
            .check(first.ip())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        return fail(&mut steps, "dns", t, reason);
    };
    steps.push(Step::new(
        "dns",
        true,
        t.elapsed(),
        Some(addr.ip().to_string()),
    ));
    let t = Instant::now();
    let tcp = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return fail(&mut steps, "connect", t, format!("{addr}: {e}")),
        Err(_) => return fail(&mut steps, "connect", t, format!("{addr}: timed out")),
    };
    let _ = tcp.set_nodelay(true);
    steps.push(Step::new("connect", true, t.elapsed(), None));
    if url.scheme() == "https" {
        let t = Instant::now();
        let tls = match tls_connect(&host, tcp, timeout).await {
            Ok(s) => s,
            Err(e) => return fail(&mut steps, "tls", t, e.to_string()),
        };
        steps.push(Step::new("tls", true, t.elapsed(), None));
        first_byte(steps, tls, url, headers, timeout).await
    } else {
        first_byte(steps, tcp, url, headers, timeout).await
    }
}

/// Why the TLS step of a probe failed.
#[derive(Debug, thiserror::Error)]
enum TlsError {
    #[error("TLS setup: {0}")]
    Setup(tokio_rustls::rustls::Error),
    #[error("{host}: {source}")]
    Name {
        host: String,
        source: tokio_rustls::rustls::pki_types::InvalidDnsNameError,
    },
    #[error("handshake with {host}: {source}")]
    Handshake {
        host: String,
        source: std::io::Error,
    },
    #[error("handshake with {0} timed out")]
    TimedOut(String),
}

async fn tls_connect(
    host: &str,
    tcp: tokio::net::TcpStream,
    timeout: Duration,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, TlsError> {
    use rustls_platform_verifier::ConfigVerifierExt;
    let config =
        tokio_rustls::rustls::ClientConfig::with_platform_verifier().map_err(TlsError::Setup)?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_string()).map_err(
        |source| TlsError::Name {
            host: host.to_string(),
            source,
        },
    )?;
    match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(source)) => Err(TlsError::Handshake {
            host: host.to_string(),
            source,
        }),
        Err(_) => Err(TlsError::TimedOut(host.to_string())),
    }
}

async fn first_byte<S>(
    mut steps: Vec<Step>,
    io: S,
    url: &url::Url,
    headers: HeaderMap,
    timeout: Duration,
) -> ProbeReport
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let t = Instant::now();
    let (mut sender, conn) =
        match hyper::client::conn::http1::handshake::<_, Empty<bytes::Bytes>>(TokioIo::new(io))
            .await
        {
            Ok(pair) => pair,
            Err(e) => return fail(&mut steps, "first-byte", t, e.to_string()),
        };
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri(target)
        .header(http::header::HOST, host_header(url))
        .header(http::header::USER_AGENT, crate::runtime::USER_AGENT);
    if let Some(h) = builder.headers_mut() {
        h.extend(headers);
    }
    let request = match builder.body(Empty::new()) {
        Ok(r) => r,
        Err(e) => return fail(&mut steps, "first-byte", t, e.to_string()),
    };
    let result = tokio::time::timeout(timeout, sender.send_request(request)).await;
    driver.abort();
    match result {
        Ok(Ok(resp)) => {
            let status = resp.status().as_u16();
            steps.push(Step::new(
                "first-byte",
                true,
                t.elapsed(),
                Some(format!("status {status}")),
            ));
            ProbeReport {
                steps,
                status: Some(status),
            }
        }
        Ok(Err(e)) => fail(&mut steps, "first-byte", t, e.to_string()),
        Err(_) => fail(
            &mut steps,
            "first-byte",
            t,
            "no response before the timeout".into(),
        ),
    }
}

fn host_header(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// The authentication verdict of an HTTP status.
pub fn auth_verdict(status: u16) -> (bool, String) {
    match status {
        401 | 403 => (
            false,
            format!(
                "refused with {status}: the credentials are wrong or lack permission; replace them with update_integration"
            ),
        ),
        _ => (true, format!("accepted (status {status})")),
    }
}
