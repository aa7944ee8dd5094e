//! Helpers shared by the integration tests: spawn the real binary and talk MCP to it.
#![allow(dead_code)]

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, TokioChildProcess,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_cortex-mcp");

pub type Client = RunningService<RoleClient, ()>;

/// A stdio client over the real binary with `args` after the global flags.
pub async fn stdio_client(state_dir: &std::path::Path, args: &[&str]) -> Client {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("--state-dir")
        .arg(state_dir)
        .args(args)
        .stderr(Stdio::null());
    cmd.env_remove("RUST_LOG");
    ().serve(TokioChildProcess::new(cmd).expect("spawn cortex-mcp"))
        .await
        .expect("initialize over stdio")
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
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(BIN);
    cmd.arg("--state-dir")
        .arg(state_dir)
        .args(extra)
        .args(["serve", "--http", &addr]);
    cmd.stderr(Stdio::null()).stdout(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn cortex-mcp --http");
    let base = format!("http://{addr}");
    let started = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "server did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    HttpServer { child, base }
}

pub async fn http_client(url: &str, token: Option<&str>) -> Client {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string());
    if let Some(t) = token {
        config = config.auth_header(t.to_string());
    }
    let transport = StreamableHttpClientTransport::from_config(config);
    ().serve(transport).await.expect("initialize over HTTP")
}

pub async fn call(client: &Client, tool: &str, args: Value) -> CallToolResult {
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
