//! The TLS step of `test_integration` through the real binary and a real MCP client,
//! against an HTTPS service served from the test on loopback with tokio-rustls and a
//! throwaway CA generated at test time (rcgen): with the CA trusted (`SSL_CERT_FILE`,
//! which rustls-platform-verifier honours on Linux through rustls-native-certs) the
//! probe reports dns, connect, tls, first-byte in that order and the service counts
//! the handshakes; with another CA trusted instead, the tls step fails naming the
//! certificate problem, no first-byte follows and the service sees the handshake
//! refused. Owns only this file's fake service; touches no other test's fixtures.

use crate::common;

use std::{
    net::SocketAddr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    routing::get,
};
use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        ServerConfig,
        crypto::aws_lc_rs,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
};

const TOKEN: &str = "tls-token-4471-secret";
const INTEGRATIONS: &[&str] = &["--toolsets", "integrations", "--fsync", "never"];

// ---------------------------------------------------------------- throwaway PKI

/// A CA that exists only for one test run; its PEM goes into `SSL_CERT_FILE`.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn throwaway_ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A server certificate for `localhost` and 127.0.0.1, signed by `ca`.
fn localhost_leaf(ca: &Ca) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (vec![cert.der().clone()], key)
}

// ---------------------------------------------------------------- the HTTPS service

/// What the service saw: completed and refused handshakes, request paths.
#[derive(Default)]
struct Seen {
    handshakes: AtomicUsize,
    refused: AtomicUsize,
    refusals: parking_lot::Mutex<Vec<String>>,
    paths: parking_lot::Mutex<Vec<String>>,
}

/// A TCP listener that hands axum only connections whose TLS handshake completed.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    seen: Arc<Seen>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            let handshake = self.acceptor.accept(tcp);
            match tokio::time::timeout(Duration::from_secs(10), handshake).await {
                Ok(Ok(tls)) => {
                    self.seen.handshakes.fetch_add(1, Ordering::SeqCst);
                    return (tls, addr);
                }
                Ok(Err(e)) => {
                    self.seen.refusals.lock().push(e.to_string());
                    self.seen.refused.fetch_add(1, Ordering::SeqCst);
                }
                Err(_) => {
                    self.seen.refusals.lock().push("timed out".into());
                    self.seen.refused.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

async fn root(State(seen): State<Arc<Seen>>, uri: Uri) -> &'static str {
    seen.paths.lock().push(uri.path().to_string());
    "ok"
}

async fn private(State(seen): State<Arc<Seen>>, uri: Uri, h: HeaderMap) -> StatusCode {
    seen.paths.lock().push(uri.path().to_string());
    let expected = format!("Bearer {TOKEN}");
    match h.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(got) if got == expected => StatusCode::OK,
        _ => StatusCode::UNAUTHORIZED,
    }
}

fn app(seen: Arc<Seen>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/private", get(private))
        .with_state(seen)
}

/// Serves HTTPS with the certificate of `ca` on 127.0.0.1 (and ::1 on the same port when
/// the host has it, so `localhost` reaches the service whichever address resolves first).
async fn start_https(ca: &Ca) -> (Arc<Seen>, u16) {
    let (chain, key) = localhost_leaf(ca);
    let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let seen = Arc::new(Seen::default());
    let v4 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = v4.local_addr().unwrap().port();
    let mut listeners = vec![v4];
    if let Ok(v6) = TcpListener::bind(("::1", port)).await {
        listeners.push(v6);
    }
    for tcp in listeners {
        let listener = TlsListener {
            tcp,
            acceptor: acceptor.clone(),
            seen: seen.clone(),
        };
        let app = app(seen.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    (seen, port)
}

/// A plain-HTTP twin of the service, to show the tls step belongs to https only.
async fn start_http() -> (Arc<Seen>, u16) {
    let seen = Arc::new(Seen::default());
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let app = app(seen.clone());
    tokio::spawn(async move {
        let _ = axum::serve(tcp, app).await;
    });
    (seen, port)
}

// ---------------------------------------------------------------- helpers

/// A server process whose platform verifier trusts only `ca`: its PEM is written under
/// `dir` for `SSL_CERT_FILE`, and `SSL_CERT_DIR` points at an empty directory there so
/// the host's store stays out.
async fn client_trusting(state: &Path, dir: &Path, ca: &Ca) -> Client {
    let roots = dir.join("trusted.pem");
    std::fs::write(&roots, &ca.pem).unwrap();
    let empty_dir = dir.join("no-certs");
    std::fs::create_dir(&empty_dir).unwrap();
    let env = [
        ("SSL_CERT_FILE", roots.to_str().unwrap()),
        ("SSL_CERT_DIR", empty_dir.to_str().unwrap()),
    ];
    stdio_client_env(state, INTEGRATIONS, &env).await
}

async fn create_api(client: &Client, name: &str, endpoint: &str, token: Option<&str>) -> String {
    let mut config = json!({"endpoint": endpoint});
    if let Some(t) = token {
        config["credentials"] = json!({"token": t});
    }
    let made = ok(
        client,
        "create_integration",
        json!({"name": name, "type": "api", "config": config}),
    )
    .await;
    made["id"].as_str().unwrap().to_string()
}

async fn probe(client: &Client, id: &str, test_type: &str) -> Value {
    ok(
        client,
        "test_integration",
        json!({"integrationId": id, "testType": test_type}),
    )
    .await
}

/// Creates an api integration for `endpoint` without credentials and probes its
/// connectivity.
async fn probe_new(client: &Client, name: &str, endpoint: &str) -> Value {
    let id = create_api(client, name, endpoint, None).await;
    probe(client, &id, "connectivity").await
}

fn step_names(t: &Value) -> Vec<String> {
    t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

/// Asserts the probe passed with exactly `steps`, in order.
#[track_caller]
fn assert_passed(t: &Value, steps: &[&str]) {
    assert_eq!(t["ok"], true, "{t}");
    assert_eq!(step_names(t), steps, "{t}");
}

fn step<'a>(t: &'a Value, name: &str) -> &'a Value {
    t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} step in {t}"))
}

fn all_ok(t: &Value) -> bool {
    t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["ok"] == true)
}

/// Waits (up to a generous bound) for the service to record `n` refused handshakes: the
/// client's alert reaches the service after the tool has already answered.
async fn wait_for_refusals(seen: &Seen, n: usize) {
    let started = Instant::now();
    while seen.refused.load(Ordering::SeqCst) < n {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the service saw {} of {n} handshakes refused",
            seen.refused.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn trusted_ca_gives_dns_connect_tls_first_byte() {
    let dir = tempfile::tempdir().unwrap();
    let ca = throwaway_ca("cortex-mcp test CA");
    let (seen, port) = start_https(&ca).await;
    let (plain_seen, plain_port) = start_http().await;

    let state = tempfile::tempdir().unwrap();
    let client = client_trusting(state.path(), dir.path(), &ca).await;

    // connectivity over https: four steps in order, all ok, one handshake at the service
    let t = probe_new(&client, "tls", &format!("https://localhost:{port}")).await;
    assert_passed(&t, &["dns", "connect", "tls", "first-byte"]);
    assert!(all_ok(&t), "{t}");
    assert_eq!(t["statusCode"], 200, "{t}");
    assert_eq!(t["status"], "active", "{t}");
    assert_eq!(step(&t, "first-byte")["detail"], "status 200", "{t}");
    let resolved = step(&t, "dns")["detail"].as_str().unwrap().to_string();
    assert!(["127.0.0.1", "::1"].contains(&resolved.as_str()), "{t}");
    assert_eq!(seen.handshakes.load(Ordering::SeqCst), 1);
    assert_eq!(seen.refused.load(Ordering::SeqCst), 0);
    assert_eq!(*seen.paths.lock(), ["/"]);

    // full: the probe opens its own connection (a second handshake) and, with the
    // right token, authentication is judged over TLS too
    let private = format!("https://localhost:{port}/private");
    let id = create_api(&client, "tls-private", &private, Some(TOKEN)).await;
    let t = probe(&client, &id, "full").await;
    assert_passed(
        &t,
        &["dns", "connect", "tls", "first-byte", "authentication"],
    );
    assert!(all_ok(&t), "{t}");
    assert_eq!(seen.handshakes.load(Ordering::SeqCst), 2);

    // the wrong token: TLS still passes, authentication fails with the 401
    ok(
        &client,
        "update_integration",
        json!({"integrationId": id, "config": {"credentials": {"token": "wrong-token"}}}),
    )
    .await;
    let t = probe(&client, &id, "full").await;
    assert_eq!(t["ok"], false, "{t}");
    assert_eq!(t["status"], "error", "{t}");
    assert_eq!(step(&t, "tls")["ok"], true, "{t}");
    assert_eq!(step(&t, "authentication")["ok"], false, "{t}");
    assert_eq!(t["statusCode"], 401, "{t}");
    let verdict = t["verdict"].as_str().unwrap();
    assert!(
        verdict.contains("401") && verdict.contains("update_integration"),
        "{t}"
    );
    assert!(!t.to_string().contains("wrong-token"), "{t}");
    assert_eq!(seen.handshakes.load(Ordering::SeqCst), 3);

    // the IP SAN: https://127.0.0.1 verifies against the same certificate
    let t = probe_new(&client, "tls-ip", &format!("https://127.0.0.1:{port}")).await;
    assert_passed(&t, &["dns", "connect", "tls", "first-byte"]);
    assert_eq!(seen.handshakes.load(Ordering::SeqCst), 4);
    assert_eq!(*seen.paths.lock(), ["/", "/private", "/private", "/"]);

    // plain http: no tls step, and the https service saw nothing more
    let t = probe_new(&client, "plain", &format!("http://localhost:{plain_port}")).await;
    assert_passed(&t, &["dns", "connect", "first-byte"]);
    assert_eq!(*plain_seen.paths.lock(), ["/"]);
    assert_eq!(seen.handshakes.load(Ordering::SeqCst), 4);
    assert_eq!(seen.refused.load(Ordering::SeqCst), 0);

    client.cancel().await.unwrap();
}

#[tokio::test]
async fn unknown_ca_fails_at_the_tls_step() {
    let dir = tempfile::tempdir().unwrap();
    let ca = throwaway_ca("cortex-mcp test CA");
    // the server process trusts another throwaway CA only, never the service's
    let other = throwaway_ca("unrelated test CA");
    let (seen, port) = start_https(&ca).await;

    let state = tempfile::tempdir().unwrap();
    let client = client_trusting(state.path(), dir.path(), &other).await;
    let id = create_api(
        &client,
        "tls",
        &format!("https://localhost:{port}/private"),
        Some(TOKEN),
    )
    .await;

    for test_type in ["connectivity", "full"] {
        let t = probe(&client, &id, test_type).await;
        assert_eq!(t["ok"], false, "{t}");
        assert_eq!(t["status"], "error", "{t}");
        assert!(t.get("statusCode").is_none(), "{t}");
        assert_eq!(step_names(&t), ["dns", "connect", "tls"], "{t}");
        assert_eq!(step(&t, "dns")["ok"], true, "{t}");
        assert_eq!(step(&t, "connect")["ok"], true, "{t}");
        let tls = step(&t, "tls");
        assert_eq!(tls["ok"], false, "{t}");
        let detail = tls["detail"].as_str().unwrap();
        assert!(
            detail.contains("invalid peer certificate") && detail.contains("UnknownIssuer"),
            "{t}"
        );
        let verdict = t["verdict"].as_str().unwrap();
        assert!(
            verdict.starts_with("tls failed:") && verdict.contains("UnknownIssuer"),
            "{t}"
        );
        assert!(
            verdict.contains("SSL_CERT_FILE"),
            "the advice names the trust store: {t}"
        );
        assert!(!t.to_string().contains(TOKEN), "{t}");
    }

    // the service saw both handshakes refused by the client, none completed, no request
    wait_for_refusals(&seen, 2).await;
    assert_eq!(seen.handshakes.load(Ordering::SeqCst), 0);
    assert!(seen.paths.lock().is_empty());
    let refusals = seen.refusals.lock().clone();
    assert!(
        refusals.iter().all(|r| r.contains("UnknownCA")),
        "{refusals:?}"
    );

    client.cancel().await.unwrap();
}
