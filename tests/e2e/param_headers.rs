//! SEP-2243 `Mcp-Param-*` headers on the GitHub tools over HTTP (protocol 2026-07-28): a
//! tool's `repository` argument travels as `Mcp-Param-Repository` too, so a gateway can
//! route by repository. Raw requests against the real binary (stateless and with
//! `--http-sessions`) with the fake GitHub behind it: the right header (plain or in its
//! `=?base64?...?=` form) reaches GitHub; a missing, different or badly encoded one is
//! HTTP 400 with JSON-RPC -32020 and GitHub sees nothing. A 2025-11-25 client sends no
//! such header and is served; rmcp's 2026-07-28 client sends it by itself from the
//! listed schemas. With `--conformance-fixtures`, the fixture `test_param_header`
//! (`Mcp-Param-Region`) is the first annotated tool, the one the conformance suite calls.

use fakehub::{FakeConfig, FakeHub};
use rmcp::{
    ClientLifecycleMode, RoleClient,
    model::ProtocolVersion,
    service::{ClientServiceExt, RunningService},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

use crate::common::*;

const TOKEN: &str = "tok-param-headers-0001";
const REPO: &str = "octo/hello";
/// JSON-RPC `HeaderMismatch` (SEP-2243).
const HEADER_MISMATCH: i64 = -32020;

/// The fake GitHub and a cortex-mcp HTTP server (github toolset) using it.
async fn setup(serve_args: &[&str]) -> (FakeHub, HttpServer, tempfile::TempDir) {
    let hub = fakehub::spawn(FakeConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("fake GitHub starts");
    let state = tempfile::tempdir().unwrap();
    let base = hub.base_url();
    let server = http_server_serving(
        state.path(),
        &["--toolsets", "github"],
        serve_args,
        &[("GITHUB_API_URL", base.as_str()), ("GITHUB_TOKEN", TOKEN)],
    );
    (hub, server, state)
}

/// A 2026-07-28 `tools/call` of `get_issue` on `repository`, with the standard headers
/// (`Mcp-Method`, `Mcp-Name`) and `extra`; returns the status and the JSON-RPC message.
async fn call_get_issue(base: &str, repository: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let arguments = json!({"repository": repository, "number": 1});
    raw_call(base, "get_issue", arguments, extra).await
}

/// A 2026-07-28 `tools/call` of `tool` with the standard headers and `extra`.
async fn raw_call(
    base: &str,
    tool: &str,
    arguments: Value,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let body = json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {
            "name": tool,
            "arguments": arguments,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "e2e-raw", "version": "0"},
                "io.modelcontextprotocol/clientCapabilities": {}
            }
        }
    });
    let mut request = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(body.to_string());
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("POST /mcp");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, jsonrpc_message(&text))
}

/// The call was answered with issue #1 of the fake.
fn assert_issue(status: u16, reply: &Value, case: &str) {
    assert_eq!(status, 200, "{case}: {reply}");
    let result = &reply["result"];
    assert_ne!(result["isError"], true, "{case}: {reply}");
    assert_eq!(result["structuredContent"]["number"], 1, "{case}: {reply}");
}

/// The call was refused before dispatch: HTTP 400, JSON-RPC -32020 naming the header.
fn assert_header_mismatch(status: u16, reply: &Value, case: &str) {
    assert_eq!(status, 400, "{case}: {reply}");
    assert_eq!(reply["error"]["code"], HEADER_MISMATCH, "{case}: {reply}");
    let said = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(said.contains("Mcp-Param-Repository"), "{case}: {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_header_must_match_the_argument_before_github_is_called() {
    for serve_args in [&[][..], &["--http-sessions"][..]] {
        let (hub, server, _state) = setup(serve_args).await;
        let base = server.base.as_str();

        // A missing, different or badly encoded header: refused, GitHub never called.
        let refused: [(&str, &[(&str, &str)]); 4] = [
            ("header omitted", &[]),
            (
                "other repository",
                &[("mcp-param-repository", "octo/other")],
            ),
            // "octo/hello" without its padding.
            (
                "unpadded base64",
                &[("mcp-param-repository", "=?base64?b2N0by9oZWxsbw?=")],
            ),
            (
                "non-alphabet base64",
                &[("mcp-param-repository", "=?base64?b2N0!!!by9oZWxsbw==?=")],
            ),
        ];
        for (case, headers) in refused {
            let (status, reply) = call_get_issue(base, REPO, headers).await;
            assert_header_mismatch(status, &reply, &format!("{serve_args:?} {case}"));
        }
        assert_eq!(hub.stats().requests, 0, "{serve_args:?}: {:?}", hub.stats());

        // The header as the argument, plain, in any case of its name, or Base64-wrapped.
        let accepted: [(&str, &[(&str, &str)]); 3] = [
            ("plain", &[("Mcp-Param-Repository", REPO)]),
            ("lowercase name", &[("mcp-param-repository", REPO)]),
            (
                "base64",
                &[("Mcp-Param-Repository", "=?base64?b2N0by9oZWxsbw==?=")],
            ),
        ];
        for (case, headers) in accepted {
            let (status, reply) = call_get_issue(base, REPO, headers).await;
            assert_issue(status, &reply, &format!("{serve_args:?} {case}"));
        }
        assert!(
            hub.stats().requests > 0,
            "{serve_args:?}: {:?}",
            hub.stats()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_mode_checks_the_header_of_a_tool_the_session_has_not_enabled() {
    let hub = fakehub::spawn(FakeConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("fake GitHub starts");
    let state = tempfile::tempdir().unwrap();
    let base = hub.base_url();
    let server = http_server(
        state.path(),
        &["--toolsets", "patchkit", "--dynamic-toolsets"],
        &[("GITHUB_API_URL", base.as_str()), ("GITHUB_TOKEN", TOKEN)],
    );
    // The headers belong to the tool, whichever toolsets the session has enabled.
    let (status, reply) = call_get_issue(&server.base, REPO, &[]).await;
    assert_header_mismatch(status, &reply, "dynamic, github not enabled");
    let (status, reply) =
        call_get_issue(&server.base, REPO, &[("mcp-param-repository", REPO)]).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["result"]["isError"], true, "not enabled: {reply}");
    assert_eq!(hub.stats().requests, 0, "{:?}", hub.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2025_11_25_client_needs_no_repository_header() {
    let (hub, server, _state) = setup(&[]).await;
    let client = http_client(&format!("{}/mcp", server.base), None).await;
    let version = client.peer_info().map(|i| i.protocol_version.clone());
    assert_eq!(version, Some(ProtocolVersion::V_2025_11_25));
    let issue = ok(
        &client,
        "get_issue",
        json!({"repository": REPO, "number": 1}),
    )
    .await;
    assert_eq!(issue["number"], 1, "{issue}");
    assert!(hub.stats().requests > 0);
    client.cancel().await.unwrap();
}

async fn modern_http_client(url: &str) -> RunningService<RoleClient, ()> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_string());
    let modern = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    ().serve_with_lifecycle(StreamableHttpClientTransport::from_config(config), modern)
        .await
        .expect("server/discover over HTTP")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_2026_07_28_client_keeps_the_annotated_tools_and_sends_the_header() {
    for serve_args in [&[][..], &["--http-sessions"][..]] {
        let (hub, server, _state) = setup(serve_args).await;
        let client = modern_http_client(&format!("{}/mcp", server.base)).await;
        // rmcp's client drops a listed tool whose x-mcp-header annotations break SEP-2243:
        // every GitHub tool is kept, those taking a repository annotated.
        let tools = client.list_all_tools().await.unwrap();
        let d = tempfile::tempdir().unwrap();
        let catalog = std::process::Command::new(BIN)
            .arg("--state-dir")
            .arg(d.path())
            .args(["--toolsets", "github", "tools", "--json"])
            .output()
            .unwrap();
        let listed: Vec<Value> = serde_json::from_slice(&catalog.stdout)
            .unwrap_or_else(|e| panic!("tools --json: {e}: {catalog:?}"));
        assert_eq!(tools.len(), listed.len(), "{serve_args:?}");
        let annotated = tools
            .iter()
            .filter(|t| {
                t.input_schema
                    .get("properties")
                    .map(|p| &p["repository"]["x-mcp-header"])
                    == Some(&json!("Repository"))
            })
            .count();
        assert!(annotated > 20, "{serve_args:?}: {annotated}");

        // The client copies `repository` into Mcp-Param-Repository: the server accepts it.
        let issue = ok(
            &client,
            "get_issue",
            json!({"repository": REPO, "number": 1}),
        )
        .await;
        assert_eq!(issue["number"], 1, "{serve_args:?}: {issue}");
        let pulls = ok(&client, "list_pull_requests", json!({"repository": REPO})).await;
        assert!(pulls["items"].is_array(), "{serve_args:?}: {pulls}");
        assert!(hub.stats().requests >= 2, "{:?}", hub.stats());
        client.cancel().await.unwrap();
    }
}

/// The conformance fixture `test_param_header` (`serve --conformance-fixtures`) is the
/// first tool of the catalog with an `x-mcp-header`: the suite's
/// `http-custom-header-server-validation` calls that one, not a GitHub tool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_fixture_is_the_first_tool_with_a_param_header() {
    let state = tempfile::tempdir().unwrap();
    let server = http_server_serving(
        state.path(),
        &["--toolsets", "all"],
        &["--conformance-fixtures"],
        &[],
    );
    let client = modern_http_client(&format!("{}/mcp", server.base)).await;
    let tools = client.list_all_tools().await.unwrap();
    let first = tools
        .iter()
        .find(|t| {
            t.input_schema
                .get("properties")
                .and_then(Value::as_object)
                .is_some_and(|p| p.values().any(|p| p.get("x-mcp-header").is_some()))
        })
        .map(|t| t.name.to_string());
    assert_eq!(first.as_deref(), Some("test_param_header"));
    // rmcp's client sends Mcp-Param-Region by itself; the value needs Base64 here.
    let echoed = call(
        &client,
        "test_param_header",
        json!({"region": " eu-west 1"}),
    )
    .await;
    assert_eq!(text(&echoed), "region:  eu-west 1");
    client.cancel().await.unwrap();

    let region = json!({"region": "Hello"});
    let (status, reply) = raw_call(&server.base, "test_param_header", region.clone(), &[]).await;
    assert_eq!(
        (status, &reply["error"]["code"]),
        (400, &json!(HEADER_MISMATCH)),
        "{reply}"
    );
    let header = [("mcp-param-region", "=?base64?SGVsbG8=?=")];
    let (status, reply) = raw_call(&server.base, "test_param_header", region, &header).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["result"]["content"][0]["text"], "region: Hello",
        "{reply}"
    );
}
