//! The OAuth 2.1 resource server and the per-principal rate limit, against the real
//! binary over HTTP with a real authorization server started by each test:
//! oauth2-mock-server (pinned in tools/oauth/package.json, installed by tools/test.sh),
//! run by tools/oauth/authz-server.mjs, which mints tokens through its token endpoint
//! and rotates its signing keys on command. Raw HTTP (reqwest) for status codes and
//! challenges, the rmcp client for tool calls.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
};

use crate::common::*;

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"oauth-test","version":"1"}}}"#;

/// The authorization server process (killed on drop).
struct AuthServer {
    issuer: String,
    _child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    http: reqwest::Client,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/oauth/authz-server.mjs")
}

impl AuthServer {
    /// Starts it; `None` (the test skips, or fails under CI) when Node or the package is
    /// missing.
    async fn start() -> Option<Self> {
        let installed = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tools/oauth/node_modules/oauth2-mock-server/package.json");
        if !installed.exists() {
            skip_unless_ci("oauth2-mock-server is not installed (tools/test.sh installs it)");
            return None;
        }
        let mut child = match Command::new("node")
            .arg(script())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                skip_unless_ci(&format!("node cannot be started: {e}"));
                return None;
            }
        };
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
            .await
            .expect("the authorization server starts within 30 s")
            .unwrap()
            .expect("the authorization server prints its issuer");
        let issuer = serde_json::from_str::<Value>(&first).unwrap()["issuer"]
            .as_str()
            .unwrap()
            .to_string();
        Some(Self {
            issuer,
            _child: child,
            stdin,
            stdout,
            http: reqwest::Client::new(),
        })
    }

    async fn command(&mut self, line: &str) -> Value {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(30), self.stdout.next_line())
            .await
            .expect("the authorization server answers")
            .unwrap()
            .unwrap();
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert!(answer.get("error").is_none(), "{answer}");
        answer
    }

    /// Adds a signing key; returns its key id.
    async fn rotate(&mut self, alg: &str) -> String {
        self.command(&format!("rotate {alg}")).await["kid"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// How many requests the server had on `path`.
    async fn requests(&mut self, path: &str) -> u64 {
        self.command("stats").await["counts"][path]
            .as_u64()
            .unwrap_or(0)
    }

    /// An access token from the token endpoint (client credentials grant) with these
    /// form fields (`scope`, `aud`, and the script's test fields `sub`, `exp_in`, …).
    async fn token(&self, fields: &[(&str, &str)]) -> String {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        form.extend_pairs(fields);
        let answer: Value = self
            .http
            .post(format!("{}/token", self.issuer))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.finish())
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["access_token"].as_str().unwrap().to_string()
    }

    /// A token for `sub` with `scope` whose audience is `aud`.
    async fn token_for(&self, sub: &str, scope: &str, aud: &str) -> String {
        self.token(&[("sub", sub), ("scope", scope), ("aud", aud)])
            .await
    }

    /// A token signed with the key `kid` (keys take turns: at most one per key).
    async fn token_signed_by(&self, kid: &str, sub: &str, aud: &str) -> String {
        for _ in 0..8 {
            let token = self.token_for(sub, "cortex:write", aud).await;
            if header(&token)["kid"] == kid {
                return token;
            }
        }
        panic!("no token signed with {kid}");
    }
}

/// A token's JOSE header.
fn header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// cortex-mcp over HTTP with OAuth for `issuer`; its audience is its own `/mcp` URL.
fn cortex(dir: &Path, issuer: &str, extra: &[&str]) -> (HttpServer, String) {
    let mut args = vec!["--toolsets", "asbr", "--oauth-issuer", issuer];
    args.extend_from_slice(extra);
    let server = http_server_prepared(dir, &args, &[], &[], |cmd| {
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let at = args.iter().position(|a| a == "--http").unwrap();
        cmd.env(
            "CORTEX_MCP_OAUTH_AUDIENCE",
            format!("http://{}/mcp", args[at + 1]),
        );
    });
    let audience = format!("{}/mcp", server.base);
    (server, audience)
}

/// POSTs an `initialize` to `/mcp` with `token` (none when empty).
async fn post_init(base: &str, token: &str) -> (u16, reqwest::header::HeaderMap, String) {
    post_mcp(base, token, INIT).await
}

async fn post_mcp(
    base: &str,
    token: &str,
    body: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .body(body.to_string());
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("POST /mcp");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap_or_default())
}

fn challenge(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("www-authenticate")
        .expect("a WWW-Authenticate challenge")
        .to_str()
        .unwrap()
        .to_string()
}

async fn get_json(url: &str) -> (u16, Value) {
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Token request fields for alice with cortex:write, plus `extra`.
fn at<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![("sub", "alice"), ("scope", "cortex:write")];
    fields.extend_from_slice(extra);
    fields
}

/// `token` with its payload changed (`sub` → "mallory") and the signature kept.
fn tampered(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["sub"] = json!("mallory");
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

/// An unsigned (`alg: none`) token with the claims of `token`.
fn unsigned(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    format!("{head}.{payload}.")
}

/// An HS256 token with the claims and key id of `token`, keyed with a guessable secret.
fn hmac_signed(token: &str) -> String {
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let mut head = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    head.kid = header(token)["kid"].as_str().map(str::to_string);
    jsonwebtoken::encode(
        &head,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"secret"),
    )
    .unwrap()
}

#[tokio::test]
async fn metadata_and_challenges_point_clients_to_the_authorization_server() {
    let Some(auth) = AuthServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (server, audience) = cortex(dir.path(), &auth.issuer, &[]);
    let base = &server.base;
    let metadata_url = format!("{base}/.well-known/oauth-protected-resource/mcp");

    for url in [
        format!("{base}/.well-known/oauth-protected-resource"),
        metadata_url.clone(),
    ] {
        let (status, doc) = get_json(&url).await;
        assert_eq!(status, 200, "{url}");
        assert_eq!(doc["resource"], audience.as_str(), "{doc}");
        assert_eq!(doc["authorization_servers"], json!([auth.issuer]), "{doc}");
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]), "{doc}");
        let scopes = doc["scopes_supported"].as_array().unwrap();
        assert!(scopes.contains(&json!("cortex:read")) && scopes.contains(&json!("cortex:write")));
    }
    assert_eq!(get_json(&format!("{base}/healthz")).await.0, 200);

    // No token: 401 pointing to the metadata, no error code.
    let (status, headers, _) = post_init(base, "").await;
    assert_eq!(status, 401);
    let c = challenge(&headers);
    assert!(c.starts_with("Bearer "), "{c}");
    assert!(
        c.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{c}"
    );
    assert!(!c.contains("error="), "{c}");

    // A good token passes; every broken one is 401 invalid_token, and no answer
    // repeats the token.
    let good = auth.token_for("alice", "cortex:write", &audience).await;
    assert_eq!(post_init(base, &good).await.0, 200);
    let aud = audience.as_str();
    let cases = [
        (
            "wrong audience",
            auth.token(&at(&[("aud", "https://other.example/mcp")]))
                .await,
            "audience",
        ),
        ("no audience", auth.token(&at(&[])).await, "claim"),
        (
            "expired",
            auth.token(&at(&[("aud", aud), ("exp_in", "-600")])).await,
            "expired",
        ),
        (
            "not yet valid",
            auth.token(&at(&[("aud", aud), ("nbf_in", "600")])).await,
            "not valid yet",
        ),
        (
            "wrong issuer",
            auth.token(&at(&[("aud", aud), ("iss", "http://127.0.0.1:9/other")]))
                .await,
            "issuer",
        ),
        (
            "no subject",
            auth.token(&[("scope", "cortex:write"), ("aud", aud)]).await,
            "claim",
        ),
        ("tampered signature", tampered(&good), "signature"),
        ("alg none", unsigned(&good), "not a well-formed"),
        ("HS256 with the key id", hmac_signed(&good), "algorithm"),
        (
            "not a JWT",
            "not-a-jwt-at-all".to_string(),
            "not a well-formed",
        ),
    ];
    for (what, token, reason) in cases {
        let (status, headers, body) = post_init(base, &token).await;
        assert_eq!(status, 401, "{what}: {body}");
        let c = challenge(&headers);
        assert!(c.contains("error=\"invalid_token\""), "{what}: {c}");
        assert!(
            c.contains(&format!("resource_metadata=\"{metadata_url}\"")),
            "{what}: {c}"
        );
        assert!(body.contains(reason), "{what}: {body}");
        assert!(
            !body.contains(&token) && !c.contains(&token),
            "{what} echoed"
        );
    }
    // The issuer has no RFC 8414 document: its keys were found through OpenID
    // discovery, the fallback.
    let mut auth = auth;
    assert!(
        auth.requests("/.well-known/oauth-authorization-server")
            .await
            >= 1
    );
    assert!(auth.requests("/.well-known/openid-configuration").await >= 1);

    // A token for both this server and another is for this one too (aud is a list).
    let both = auth
        .token(&at(&[("aud", "https://other.example/mcp"), ("aud", aud)]))
        .await;
    assert_eq!(post_init(base, &both).await.0, 200);
}

#[tokio::test]
async fn a_valid_token_calls_tools_as_its_subject() {
    let Some(auth) = AuthServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (server, audience) = cortex(dir.path(), &auth.issuer, &[]);
    let alice = auth.token_for("alice", "cortex:write", &audience).await;
    let client = http_client(&audience, Some(&alice)).await;
    let task = ok(
        &client,
        "create_task",
        json!({"input": {"title": "oauth", "brief": "do it", "inputs": [{"kind": "text", "value": "x"}], "scopes": ["docs"]}}),
    )
    .await;
    let id = task["id"].as_str().unwrap().to_string();
    ok(
        &client,
        "record_task_event",
        json!({"taskId": id, "type": "AwaitingApproval", "step": "ship"}),
    )
    .await;
    let approved = ok(
        &client,
        "approve_task_step",
        json!({"taskId": id, "step": "ship", "by": "user"}),
    )
    .await;
    assert_eq!(approved["approvals"][0]["by"], "oauth:alice");
    let shown = text(&call(&client, "get_task", json!({"taskId": id})).await);
    assert!(shown.contains("oauth:alice") && !shown.contains(&alice));
    let config = read_json(&client, "cortex://config").await;
    assert_eq!(config["oauth"]["issuer"], auth.issuer.as_str());
    assert!(!config.to_string().contains(&alice));
    client.cancel().await.unwrap();

    // Another subject is another principal: alice's task is not bob's to see. Scopes
    // as an `scp` array count the same.
    let bob = auth
        .token(&[
            ("sub", "bob"),
            ("scope", "cortex:write"),
            ("aud", audience.as_str()),
            ("scp", "1"),
        ])
        .await;
    let client = http_client(&audience, Some(&bob)).await;
    let r = call(&client, "get_task", json!({"taskId": id})).await;
    assert_eq!(r.is_error, Some(true), "{}", text(&r));
    client.cancel().await.unwrap();
    drop(server);
}

#[tokio::test]
async fn scopes_decide_which_tools_a_token_reaches() {
    let Some(auth) = AuthServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (server, audience) = cortex(
        dir.path(),
        &auth.issuer,
        &["--oauth-required-scopes", "mcp:use"],
    );
    let base = &server.base;

    // Lacking the required scope, or any cortex scope: 403 insufficient_scope.
    for (scope, wanted) in [
        ("cortex:write", "mcp:use cortex:read"),
        ("mcp:use", "mcp:use cortex:read"),
    ] {
        let token = auth.token_for("carol", scope, &audience).await;
        let (status, headers, body) = post_init(base, &token).await;
        assert_eq!(status, 403, "{scope}: {body}");
        let c = challenge(&headers);
        assert!(c.contains("error=\"insufficient_scope\""), "{c}");
        assert!(c.contains(&format!("scope=\"{wanted}\"")), "{c}");
        assert!(c.contains("resource_metadata=\""), "{c}");
    }

    // cortex:read lists and calls the read-only tools only.
    let writer = auth
        .token_for("carol", "mcp:use cortex:write", &audience)
        .await;
    let reader = auth
        .token_for("carol", "mcp:use cortex:read", &audience)
        .await;
    let full = http_client(&audience, Some(&writer)).await;
    let all: Vec<String> = full
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    full.cancel().await.unwrap();
    let client = http_client(&audience, Some(&reader)).await;
    let listed: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    for name in ["get_task", "list_tasks", "watch_task_events"] {
        assert!(
            listed.iter().any(|t| t == name),
            "{name} missing from {listed:?}"
        );
    }
    for name in ["create_task", "approve_task_step", "cancel_task"] {
        assert!(all.iter().any(|t| t == name), "{name}");
        assert!(
            !listed.iter().any(|t| t == name),
            "{name} listed for cortex:read"
        );
    }
    assert!(listed.iter().all(|t| all.contains(t)));
    let tasks = ok(&client, "list_tasks", json!({})).await;
    assert!(tasks.is_object(), "{tasks}");
    client.cancel().await.unwrap();

    // A write tool with cortex:read: 403 asking for cortex:write (step-up), before the
    // server runs anything.
    let create = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "create_task",
        "arguments": {"input": {"title": "t", "brief": "do it", "inputs": [{"kind": "text", "value": "x"}], "scopes": ["docs"]}}}});
    let (status, headers, body) = post_mcp(base, &reader, &create.to_string()).await;
    assert_eq!(status, 403, "{body}");
    let c = challenge(&headers);
    assert!(c.contains("error=\"insufficient_scope\""), "{c}");
    assert!(c.contains("scope=\"mcp:use cortex:write\""), "{c}");
    assert!(body.contains("create_task"), "{body}");
    let client = http_client(&audience, Some(&writer)).await;
    let tasks = ok(&client, "list_tasks", json!({})).await;
    assert_eq!(tasks["items"].as_array().map(Vec::len), Some(0), "{tasks}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn rotated_keys_are_fetched_at_most_once_per_cooldown() {
    let Some(mut auth) = AuthServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (server, audience) = cortex(
        dir.path(),
        &auth.issuer,
        &["--oauth-jwks-cooldown-secs", "1"],
    );
    let first = auth.token_for("dave", "cortex:write", &audience).await;
    assert_eq!(post_init(&server.base, &first).await.0, 200);
    let fetched = auth.requests("/jwks").await;
    assert!(fetched >= 1);

    // New keys of other kinds: accepted once the cooldown since the last fetch passed.
    for alg in ["ES256", "EdDSA"] {
        let kid = auth.rotate(alg).await;
        let token = auth.token_signed_by(&kid, "dave", &audience).await;
        assert_eq!(header(&token)["alg"], alg);
        tokio::time::sleep(Duration::from_millis(1100)).await; // the 1 s cooldown
        let (status, _, body) = post_init(&server.base, &token).await;
        assert_eq!(status, 200, "{alg}: {body}");
    }
    assert_eq!(auth.requests("/jwks").await, fetched + 2);
    drop(server);

    // With the default cooldown (30 s), tokens naming unknown keys do not make the
    // server fetch again: they are refused and the issuer sees no more requests.
    let (server, audience) = cortex(dir.path(), &auth.issuer, &[]);
    let known = auth.token_for("dave", "cortex:write", &audience).await;
    assert_eq!(post_init(&server.base, &known).await.0, 200);
    let before = auth.requests("/jwks").await;
    let kid = auth.rotate("RS256").await;
    let unknown = auth.token_signed_by(&kid, "dave", &audience).await;
    for _ in 0..5 {
        let (status, headers, body) = post_init(&server.base, &unknown).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("does not publish"), "{body}");
        assert!(challenge(&headers).contains("invalid_token"));
    }
    assert_eq!(auth.requests("/jwks").await, before);
}

#[tokio::test]
async fn rate_limits_answer_429_per_principal_then_recover() {
    let Some(auth) = AuthServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let static_token = "static-token-0123456789abcdef";
    let (server, audience) = cortex(
        dir.path(),
        &auth.issuer,
        &["--http-rate-limit", "2/s", "--auth-token", static_token],
    );
    let base = &server.base;
    let alice = auth.token_for("alice", "cortex:write", &audience).await;
    let bob = auth.token_for("bob", "cortex:write", &audience).await;

    let mut limited = None;
    for _ in 0..50 {
        let (status, headers, body) = post_init(base, &alice).await;
        if status == 429 {
            limited = Some((headers, body));
            break;
        }
        assert_eq!(status, 200, "{body}");
    }
    let (headers, body) = limited.expect("alice reaches the limit of 2/s");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(retry_after, 1, "half a second rounded up");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], -32000, "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("oauth:alice") && message.contains("2/s"),
        "{message}"
    );
    assert!(!body.contains(&alice));

    // Bob has his own bucket; health and metadata are never limited.
    assert_eq!(post_init(base, &bob).await.0, 200);
    for _ in 0..10 {
        assert_eq!(get_json(&format!("{base}/healthz")).await.0, 200);
        let url = format!("{base}/.well-known/oauth-protected-resource/mcp");
        assert_eq!(get_json(&url).await.0, 200);
    }

    // After Retry-After, alice is served again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(post_init(base, &alice).await.0, 200);

    // The static token is accepted beside OAuth; the metrics name the principal.
    let metrics = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(static_token)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("cortex_http_rate_limited_total{principal=\"oauth:alice\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains(&alice));
}

#[tokio::test]
async fn without_authentication_the_rate_limit_keys_by_address() {
    let dir = tempfile::tempdir().unwrap();
    let server = http_server(
        dir.path(),
        &["--toolsets", "asbr", "--http-rate-limit", "1/min"],
        &[],
    );
    assert_eq!(post_init(&server.base, "").await.0, 200);
    let (status, headers, body) = post_init(&server.base, "").await;
    assert_eq!(status, 429, "{body}");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(body.contains("ip:127.0.0.1"), "{body}");
    assert_eq!(get_json(&format!("{}/healthz", server.base)).await.0, 200);
}

#[test]
fn an_issuer_without_an_audience_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .arg("--state-dir")
        .arg(dir.path())
        .args([
            "--oauth-issuer",
            "https://auth.example.com",
            "serve",
            "--http",
            "127.0.0.1:0",
        ])
        .env_remove("CORTEX_MCP_OAUTH_AUDIENCE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("oauth-audience") && stderr.contains("required"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_issuer_is_503_with_retry_after_not_401() {
    let dir = tempfile::tempdir().unwrap();
    let closed = format!("http://127.0.0.1:{}", free_port());
    let (server, _) = cortex(dir.path(), &closed, &[]);
    let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#);
    let body = URL_SAFE_NO_PAD.encode(br#"{"sub":"alice"}"#);
    let token = format!("{head}.{body}.c2ln");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, headers, text) = rt.block_on(post_init(&server.base, &token));
    assert_eq!(status, 503, "{text}");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=31).contains(&retry_after), "{retry_after}");
    assert!(text.contains("signing keys could not be fetched"), "{text}");
    assert!(!text.contains(&token));
    // Without a token it is still 401 with the metadata to go to.
    assert_eq!(rt.block_on(post_init(&server.base, "")).0, 401);
}

/// Runs tools/oauth/ts-client.mjs (the TypeScript SDK with a client-credentials OAuth
/// provider) against `url`; its one line of JSON.
async fn ts_sdk_client(url: &str, issuer: &str, scope: &str) -> Option<Value> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tools/oauth/node_modules/@modelcontextprotocol/sdk/package.json");
    if !sdk.exists() {
        skip_unless_ci(
            "@modelcontextprotocol/sdk is not installed in tools/oauth (tools/test.sh installs it)",
        );
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/oauth/ts-client.mjs");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new("node")
            .arg(script)
            .args([url, issuer, scope, "ts-client"])
            .stderr(Stdio::null())
            .output(),
    )
    .await
    .expect("the TypeScript client finishes within 60 s")
    .unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    Some(serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}")))
}

#[tokio::test]
async fn the_typescript_sdk_follows_the_authorization_flow_by_itself() {
    let Some(mut auth) = AuthServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (server, audience) = cortex(dir.path(), &auth.issuer, &[]);
    // No token given: the SDK gets 401, reads the protected-resource metadata, the
    // issuer's metadata, and asks the token endpoint for a token for this resource.
    let Some(read) = ts_sdk_client(&audience, &auth.issuer, "cortex:read").await else {
        return;
    };
    assert!(read.get("error").is_none(), "{read}");
    let tools: Vec<&str> = read["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        tools.contains(&"get_task") && !tools.contains(&"create_task"),
        "{tools:?}"
    );
    assert_eq!(read["listTasks"]["items"], json!([]), "{read}");
    assert!(auth.requests("/token").await >= 1);

    let write = ts_sdk_client(&audience, &auth.issuer, "cortex:write")
        .await
        .unwrap();
    assert!(write.get("error").is_none(), "{write}");
    assert!(
        write["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("create_task")),
        "{write}"
    );
    drop(server);
}
