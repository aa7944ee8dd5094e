//! Helpers shared by the integration tests: spawn the real binary and talk MCP to it.
#![allow(dead_code)]

pub mod bench;
pub mod otlp;
pub mod redis;

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rmcp::{
    ClientHandler, Peer, RoleClient, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResult, ProgressNotificationParam,
        ReadResourceRequestParams, ResourceContents, ResourceUpdatedNotificationParam,
    },
    service::{NotificationContext, RunningService},
    transport::{
        StreamableHttpClientTransport, TokioChildProcess,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_cortex-mcp");

pub type Client = RunningService<RoleClient, ()>;

const GITHUB_VARS: &[&str] = &[
    "GITHUB_TOKEN",
    "GITHUB_PERSONAL_ACCESS_TOKEN",
    "GITHUB_API_URL",
    "GITHUB_APP_ID",
    "GITHUB_APP_PRIVATE_KEY",
    "GITHUB_APP_PRIVATE_KEY_PATH",
    "GITHUB_APP_INSTALLATION_ID",
];

/// A stdio client over the real binary with `args` after the global flags.
pub async fn stdio_client(state_dir: &std::path::Path, args: &[&str]) -> Client {
    stdio_client_env(state_dir, args, &[]).await
}

/// Like [`stdio_client`], with extra environment variables (GitHub credentials are
/// always cleared first so the host's environment cannot leak in).
pub async fn stdio_client_env(
    state_dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Client {
    stdio_client_with((), state_dir, args, env).await
}

/// The server binary started with `--state-dir state_dir`, `args` and `env`, without the
/// caller's `RUST_LOG` or GitHub credentials, its stdio ready for a client.
fn server_process(
    state_dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> TokioChildProcess {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("--state-dir").arg(state_dir).args(args);
    cmd.env_remove("RUST_LOG");
    for var in GITHUB_VARS {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    // `TokioChildProcess::new` would reset stderr to inherit; the builder keeps the
    // server's log out of the test output.
    let (child, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cortex-mcp");
    child
}

/// Like [`stdio_client_env`], with `handler` receiving the server's notifications
/// (progress, resource updates).
pub async fn stdio_client_with<H: ClientHandler>(
    handler: H,
    state_dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> RunningService<RoleClient, H> {
    let child = server_process(state_dir, args, env);
    handler.serve(child).await.expect("initialize over stdio")
}

/// Like [`stdio_client_with`], for a client speaking protocol 2026-07-28 (server/discover,
/// per-request `_meta`, no initialize): its requests declare the capabilities of
/// `handler.get_info()`, and `call_tool` on it answers `input_required` rounds through
/// `handler`.
pub async fn modern_stdio_client_with<H: ClientHandler>(
    handler: H,
    state_dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> RunningService<RoleClient, H> {
    let child = server_process(state_dir, args, env);
    use rmcp::service::ClientServiceExt as _;
    let modern = rmcp::ClientLifecycleMode::Discover {
        preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
    };
    handler
        .serve_with_lifecycle(child, modern)
        .await
        .expect("server/discover over stdio")
}

/// Collects the URIs of `notifications/resources/updated`.
#[derive(Clone, Default)]
pub struct UpdatedUris(pub Arc<Mutex<Vec<String>>>);

impl ClientHandler for UpdatedUris {
    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _ctx: NotificationContext<RoleClient>,
    ) {
        self.0.lock().unwrap().push(params.uri);
    }
}

/// Collects the messages of `notifications/progress`.
#[derive(Clone, Default)]
pub struct ProgressMessages(pub Arc<Mutex<Vec<String>>>);

impl ClientHandler for ProgressMessages {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _ctx: NotificationContext<RoleClient>,
    ) {
        if let Some(m) = params.message {
            self.0.lock().unwrap().push(m);
        }
    }
}

/// Polls `cond` every 20 ms until it holds; panics naming `what` after `timeout`. For
/// waiting on something the test can observe (a file, a counter, a notification)
/// instead of sleeping a fixed time.
pub async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running HTTP server process, killed on drop.
pub struct HttpServer {
    pub child: Child,
    pub base: String,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http_server(
    state_dir: &std::path::Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> HttpServer {
    http_server_serving(state_dir, extra, &[], env)
}

/// [`http_server`] with `serve_args` passed to the `serve` subcommand.
pub fn http_server_serving(
    state_dir: &std::path::Path,
    extra: &[&str],
    serve_args: &[&str],
    env: &[(&str, &str)],
) -> HttpServer {
    http_server_prepared(state_dir, extra, serve_args, env, |_| {})
}

/// [`http_server_serving`] with `prepare` applied to the command before it is spawned
/// (resource limits, removed variables).
///
/// Ready means the server printed its own "listening on" line: a TCP probe can be
/// answered by another test's server that took the same port, or by a self-connect.
/// A server that could not bind its port (another process took it first) is started
/// again on a fresh one.
pub fn http_server_prepared(
    state_dir: &std::path::Path,
    extra: &[&str],
    serve_args: &[&str],
    env: &[(&str, &str)],
    prepare: impl Fn(&mut Command),
) -> HttpServer {
    let mut last_error = String::new();
    for _ in 0..5 {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new(BIN);
        cmd.arg("--state-dir")
            .arg(state_dir)
            .args(extra)
            .arg("serve")
            .args(serve_args)
            .args(["--http", &addr]);
        cmd.stderr(Stdio::piped()).stdout(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        prepare(&mut cmd);
        let mut child = cmd.spawn().expect("spawn cortex-mcp --http");
        match wait_for_listening(&mut child, &addr) {
            Ok(()) => {
                return HttpServer {
                    child,
                    base: format!("http://{addr}"),
                };
            }
            Err(stderr) => {
                let _ = child.kill();
                let _ = child.wait();
                if !stderr.contains("Address already in use") {
                    panic!("server did not listen on {addr}:\n{stderr}");
                }
                last_error = stderr;
            }
        }
    }
    panic!("no free port after 5 tries:\n{last_error}")
}

/// Reads the child's stderr until it says it listens on `addr` (then keeps draining it
/// in the background so the server never blocks on a full pipe), or until it exits or
/// 20 s pass, returning what it printed.
fn wait_for_listening(child: &mut Child, addr: &str) -> Result<(), String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("stderr is piped");
    let wanted = format!("listening on http://{addr}/mcp");
    // `Ok(line)`: a line printed before the server listened; `Err(())`: it listens.
    let (tx, rx) = std::sync::mpsc::channel::<Result<String, ()>>();
    std::thread::spawn(move || {
        let mut ready = false;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !ready {
                ready = line.contains(&wanted);
                let _ = tx.send(if ready { Err(()) } else { Ok(line) });
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut printed = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Err(())) => return Ok(()),
            Ok(Ok(line)) => {
                printed.push_str(&line);
                printed.push('\n');
            }
            Err(_) => return Err(printed),
        }
    }
}

/// The JSON-RPC message of an HTTP response body (plain JSON, or the last SSE `data:`
/// line).
pub fn jsonrpc_message(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .next_back()
            .unwrap_or_else(|| panic!("no JSON-RPC message in {body:?}"))
    })
}

pub async fn http_client(url: &str, token: Option<&str>) -> Client {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string());
    if let Some(t) = token {
        config = config.auth_header(t.to_string());
    }
    let transport = StreamableHttpClientTransport::from_config(config);
    ().serve(transport).await.expect("initialize over HTTP")
}

pub async fn call(client: &Peer<RoleClient>, tool: &str, args: Value) -> CallToolResult {
    let args = args.as_object().cloned().unwrap_or_default();
    client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("tools/call {tool} failed at the protocol level: {e}"))
}

pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads a JSON resource through any client (stdio or HTTP, any handler).
pub async fn read_json<H: ClientHandler>(
    client: &rmcp::service::RunningService<RoleClient, H>,
    uri: &str,
) -> Value {
    let res = client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap();
    match &res.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => serde_json::from_str(text).unwrap(),
        other => panic!("unexpected {other:?}"),
    }
}

/// The structured result of a call that must succeed.
pub fn structured(result: &CallToolResult) -> Value {
    assert!(
        result.is_error != Some(true),
        "tool failed: {}",
        text(result)
    );
    result
        .structured_content
        .clone()
        .expect("structured content")
}

/// Calls a tool that must succeed; returns its structured result.
pub async fn ok(client: &Peer<RoleClient>, tool: &str, args: Value) -> Value {
    structured(&call(client, tool, args).await)
}

/// `get_issue` for each of `numbers` in `repo`, all at once, spread round robin over
/// `clients`; the results in the order of `numbers`.
pub async fn get_issues_at_once(
    clients: &[&Peer<RoleClient>],
    repo: &str,
    numbers: std::ops::Range<u64>,
) -> Vec<CallToolResult> {
    let calls = numbers.enumerate().map(|(i, number)| {
        let client = clients[i % clients.len()];
        call(
            client,
            "get_issue",
            serde_json::json!({"repository": repo, "number": number}),
        )
    });
    futures::future::join_all(calls).await
}

/// Calls a tool every 20 ms until it succeeds (a server recovering by itself), for at
/// most `within`; returns its structured result.
pub async fn ok_within(
    client: &Peer<RoleClient>,
    tool: &str,
    args: Value,
    within: std::time::Duration,
) -> Value {
    let started = std::time::Instant::now();
    loop {
        let r = call(client, tool, args.clone()).await;
        if r.is_error != Some(true) {
            return structured(&r);
        }
        assert!(
            started.elapsed() < within,
            "{tool} never succeeded within {within:?}: {}",
            text(&r)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The structured result of a call, or `None` when it failed at the protocol level (the
/// server is gone) or returned `isError`: for workloads that run until the server dies.
pub async fn try_ok(client: &Peer<RoleClient>, tool: &str, args: Value) -> Option<Value> {
    let args = args.as_object().cloned().unwrap_or_default();
    let r = client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
        .await
        .ok()?;
    if r.is_error == Some(true) {
        return None;
    }
    Some(r.structured_content.expect("structured content"))
}

/// Runs `workers` HTTP clients of `server` at once, each doing `work(client, worker)`
/// (which records what the server acknowledged and returns once a call fails), lets
/// them run for at least `run_for` and until `enough()` holds (so a loaded machine
/// still kills mid-stream after real work; at most 60 s), then SIGKILLs the server and
/// waits until every worker has stopped.
pub async fn sigkill_under_load<W, F>(
    server: &mut HttpServer,
    workers: usize,
    run_for: Duration,
    enough: impl Fn() -> bool,
    work: W,
) where
    W: Fn(Client, usize) -> F + Clone + Send + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let url = format!("{}/mcp", server.base);
    let mut running = Vec::new();
    for w in 0..workers {
        let (url, work) = (url.clone(), work.clone());
        running.push(tokio::spawn(async move {
            let client = http_client(&url, None).await;
            work(client, w).await;
        }));
    }
    tokio::time::sleep(run_for).await;
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    while !enough() && std::time::Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().unwrap();
    let _ = server.child.wait();
    for w in running {
        let _ = w.await;
    }
}

/// Calls a tool that must fail with `isError`; returns its text.
pub async fn err(client: &Peer<RoleClient>, tool: &str, args: Value) -> String {
    let r = call(client, tool, args).await;
    assert_eq!(r.is_error, Some(true), "{tool} should fail: {}", text(&r));
    text(&r)
}

/// Writes `body` to `dir/rel`, creating the directories on the way.
pub fn write(dir: &std::path::Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// A tiny dependency-free, offline crate with one passing and one failing test.
pub fn failing_crate(dir: &std::path::Path) {
    write(
        dir,
        "Cargo.toml",
        "[package]\nname = \"fx\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    write(
        dir,
        "src/lib.rs",
        "pub fn add(a: i32, b: i32) -> i32 { a + b }\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() { assert_eq!(super::add(2, 2), 4); }\n    #[test]\n    fn subtracts_wrongly() { assert_eq!(super::add(2, -2), 1, \"planted failure\"); }\n}\n",
    );
}

/// A test tool or service this machine lacks: outside CI the test skips with `why`;
/// under `CI=true` it fails, so a missing install step cannot pass unnoticed.
pub fn skip_unless_ci(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why} (CI=true: a missing test tool fails the run; tools/test.sh installs it)");
    }
    eprintln!("SKIPPED: {why}");
}

/// After a batch of `count` files `f000.txt…` was killed mid-write and the server
/// restarted: every file holds its `old` content, and no temp file or batch record is
/// left in `ws` or under `<state>/patchkit/batches`.
pub fn assert_batch_rolled_back(
    ws: &std::path::Path,
    state: &std::path::Path,
    count: usize,
    old: impl Fn(usize) -> String,
) {
    for i in 0..count {
        let now = std::fs::read_to_string(ws.join(format!("f{i:03}.txt"))).unwrap();
        assert!(
            now == old(i),
            "f{i:03}.txt is not its old content after the restart"
        );
    }
    let leftovers: Vec<String> = std::fs::read_dir(ws)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".spool-"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    let records = std::fs::read_dir(state.join("patchkit/batches"))
        .unwrap()
        .count();
    assert_eq!(records, 0, "batch records left after recovery");
}
