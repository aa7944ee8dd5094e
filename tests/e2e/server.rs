//! The foundation through real MCP clients: the rmcp client over stdio and over
//! streamable HTTP against the real binary.

use crate::common;

use common::*;
use rmcp::model::ReadResourceRequestParams;
use serde_json::json;

const FIXTURES: &[&str] = &["--toolsets", "all", "serve", "--conformance-fixtures"];

#[tokio::test]
async fn stdio_lists_calls_and_reports_errors() {
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client(dir.path(), FIXTURES).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(info.server_info.as_ref().unwrap().name, "cortex-mcp");

    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(
        names.contains(&"batch") && names.contains(&"test_echo"),
        "{names:?}"
    );
    // Conformance fixtures that return raw content (images, audio) have no output schema.
    #[cfg(feature = "conformance-fixtures")]
    let raw: Vec<String> = cortex_mcp::fixtures::conformance::tools()
        .into_iter()
        .chain(cortex_mcp::fixtures::rounds::tools())
        .chain(cortex_mcp::fixtures::tasks::tools())
        .map(|t| t.name.to_string())
        .collect();
    #[cfg(not(feature = "conformance-fixtures"))]
    let raw: Vec<String> = Vec::new();
    for t in &tools {
        assert!(t.annotations.is_some(), "{} has no annotations", t.name);
        assert!(
            t.output_schema.is_some() || raw.contains(&t.name.to_string()),
            "{} has no output schema",
            t.name
        );
    }
    let again = client.list_all_tools().await.unwrap();
    assert_eq!(tools, again, "tool order is deterministic");

    let ok = call(&client, "test_echo", json!({"message": "hello"})).await;
    assert_eq!(ok.is_error, Some(false));
    assert_eq!(ok.structured_content, Some(json!({"text": "hello"})));

    let missing = call(&client, "test_echo", json!({})).await;
    assert_eq!(missing.is_error, Some(true));
    assert!(
        text(&missing).contains("message"),
        "names the field: {}",
        text(&missing)
    );

    let out_of_range = call(&client, "test_tool_with_progress", json!({"steps": 500})).await;
    assert_eq!(out_of_range.is_error, Some(true));
    assert!(
        text(&out_of_range).contains("/steps"),
        "{}",
        text(&out_of_range)
    );

    let unknown = client
        .call_tool(rmcp::model::CallToolRequestParams::new("no_such_tool"))
        .await
        .expect_err("unknown tool is a protocol error");
    assert!(
        unknown.to_string().contains("-32602") || unknown.to_string().contains("unknown tool"),
        "{unknown}"
    );

    client.cancel().await.unwrap();
}

#[tokio::test]
async fn batch_validates_everything_before_running_anything() {
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client(dir.path(), FIXTURES).await;
    let good = call(
        &client,
        "batch",
        json!({"calls": [
            {"tool": "test_echo", "arguments": {"message": "a"}},
            {"tool": "test_error_handling"},
            {"tool": "test_echo", "arguments": {"message": "c"}}
        ]}),
    )
    .await;
    let out = good.structured_content.unwrap();
    let results = out["results"].as_array().unwrap();
    assert_eq!(
        results
            .iter()
            .map(|r| r["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(results[0]["result"]["text"], "a");
    assert_eq!(results[1]["ok"], false);
    assert_eq!(out["succeeded"], 2);

    let bad = call(
        &client,
        "batch",
        json!({"calls": [
            {"tool": "test_echo", "arguments": {"message": "a"}},
            {"tool": "test_echo", "arguments": {}},
            {"tool": "batch", "arguments": {"calls": []}}
        ]}),
    )
    .await;
    assert_eq!(bad.is_error, Some(true));
    let msg = text(&bad);
    assert!(
        msg.contains("no call was run") && msg.contains("calls[1]") && msg.contains("calls[2]"),
        "{msg}"
    );

    let metrics = client
        .read_resource(ReadResourceRequestParams::new("cortex://metrics"))
        .await
        .unwrap();
    let body = serde_json::to_string(&metrics).unwrap();
    assert!(body.contains("cortex_tool_calls_total"), "{body}");
    // The invalid batch ran nothing: only the three calls of the first batch (plus the batch itself) ran test_echo/test_error_handling.
    let snapshot: serde_json::Value = match &metrics.contents[0] {
        rmcp::model::ResourceContents::TextResourceContents { text, .. } => {
            serde_json::from_str(text).unwrap()
        }
        other => panic!("unexpected {other:?}"),
    };
    let echo_calls: f64 = snapshot["cortex_tool_calls_total"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["labels"]["tool"] == "test_echo")
        .map(|s| s["value"].as_f64().unwrap())
        .sum();
    assert_eq!(echo_calls, 2.0);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn config_resource_redacts_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client(
        dir.path(),
        &["--auth-token", "very-secret-token-123456", "serve"],
    )
    .await;
    let config = client
        .read_resource(ReadResourceRequestParams::new("cortex://config"))
        .await
        .unwrap();
    let body = serde_json::to_string(&config).unwrap();
    assert!(
        body.contains("redacted") && !body.contains("very-secret-token"),
        "{body}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn http_auth_origin_health_metrics_and_calls() {
    let dir = tempfile::tempdir().unwrap();
    let token = "test-token-0123456789abcdef";
    let server = http_server(
        dir.path(),
        &["--toolsets", "all", "--auth-token", token],
        &[],
    );
    let http = reqwest::Client::new();
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let post = |auth: Option<&str>, origin: Option<&str>| {
        let mut req = http
            .post(format!("{}/mcp", server.base))
            .header("accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let none = post(None, None).await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers().get("www-authenticate").is_some());
    assert_eq!(
        post(Some("wrong-token-xxxxxxxxxxxx"), None)
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        post(Some(token), Some("https://evil.example"))
            .await
            .unwrap()
            .status(),
        403
    );
    let ok = post(Some(token), None).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(
        ok.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "plain JSON reply"
    );

    let health = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let big = "x".repeat(5 * 1024 * 1024);
    let oversized = http
        .post(format!("{}/mcp", server.base))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"ping\",\"params\":{{\"pad\":\"{big}\"}}}}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), 413);

    let client = http_client(&format!("{}/mcp", server.base), Some(token)).await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "batch"));
    let r = call(&client, "batch", json!({"calls": []})).await;
    assert_eq!(r.is_error, Some(true), "empty batch is an input error");
    client.cancel().await.unwrap();

    let metrics = http
        .get(format!("{}/metrics", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("cortex_tool_calls_total"), "{metrics}");
}

#[test]
fn non_loopback_bind_without_token_refuses_to_start() {
    let out = std::process::Command::new(BIN)
        .args(["serve", "--http", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("auth token"));
}

#[test]
fn bad_option_fails_at_start_naming_it() {
    let out = std::process::Command::new(BIN)
        .args(["--toolsets", "githib", "tools"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("toolsets") && err.contains("githib"), "{err}");
}

#[test]
fn schemas_snapshot_matches_the_code() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas");
    let out = std::process::Command::new(BIN)
        .args(["--toolsets", "all", "schemas", "--check", dir])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn malformed_stdio_lines_get_parse_errors_and_the_server_keeps_serving() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(BIN)
        .arg("--state-dir")
        .arg(dir.path())
        .args(FIXTURES)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let lines = [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"this is {not json"#,
        r#"{"jsonrpc":"2.0","id":7,"method":7}"#,
        r#"{"jsonrpc":"2.0","method":"vendor/unknown","params":{"x":1}}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_echo","arguments":{"message":"still here"}}}"#,
    ];
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin); // EOF: the server finishes the in-flight call, then exits
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let replies: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("stdout is only JSON-RPC"))
        .collect();
    assert!(
        replies.iter().any(|r| r["error"]["code"] == -32700),
        "{stdout}"
    );
    assert!(
        replies
            .iter()
            .any(|r| r["id"] == 7 && r["error"]["code"] == -32600),
        "JSON that is not a message is answered with its id: {stdout}"
    );
    assert_eq!(
        replies.len(),
        4,
        "initialize, -32700, -32600 and the call; the notification gets no answer: {stdout}"
    );
    assert!(
        replies
            .iter()
            .any(|r| r["id"] == 2 && r["result"]["structuredContent"]["text"] == "still here"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_cancelled_call_stops_its_work() {
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client(dir.path(), FIXTURES).await;
    let args = json!({"steps": 100, "delay_ms": 50})
        .as_object()
        .cloned()
        .unwrap();
    let slow = client.call_tool(
        rmcp::model::CallToolRequestParams::new("test_tool_with_progress").with_arguments(args),
    );
    // Dropping the pending call makes the rmcp client send notifications/cancelled.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), slow)
            .await
            .is_err()
    );
    let mut cancelled = 0.0;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let res = client
            .read_resource(ReadResourceRequestParams::new("cortex://metrics"))
            .await
            .unwrap();
        let snapshot: serde_json::Value = match &res.contents[0] {
            rmcp::model::ResourceContents::TextResourceContents { text, .. } => {
                serde_json::from_str(text).unwrap()
            }
            other => panic!("unexpected {other:?}"),
        };
        cancelled = snapshot["cortex_tool_errors_total"]
            .as_array()
            .map(|series| {
                series
                    .iter()
                    .filter(|s| {
                        s["labels"]["tool"] == "test_tool_with_progress"
                            && s["labels"]["kind"] == "cancelled"
                    })
                    .map(|s| s["value"].as_f64().unwrap())
                    .sum()
            })
            .unwrap_or(0.0);
        if cancelled > 0.0 {
            break;
        }
    }
    assert_eq!(
        cancelled, 1.0,
        "the server stopped the call (5 s of work) when the client cancelled it"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn sigterm_drains_in_flight_http_calls() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = http_server_serving(
        dir.path(),
        &["--toolsets", "all"],
        &["--conformance-fixtures"],
        &[],
    );
    let client = http_client(&format!("{}/mcp", server.base), None).await;
    let args = json!({"steps": 20, "delay_ms": 40})
        .as_object()
        .cloned()
        .unwrap();
    let slow = tokio::spawn(async move {
        let r = client
            .call_tool(
                rmcp::model::CallToolRequestParams::new("test_tool_with_progress")
                    .with_arguments(args),
            )
            .await;
        (r, client)
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    let (result, _client) = slow.await.unwrap();
    let result = result.expect("the in-flight call completes during shutdown");
    assert_eq!(result.structured_content.unwrap()["text"], "counted to 20");
    let status = tokio::task::spawn_blocking(move || server.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exits cleanly after draining: {status:?}");
}

/// The conformance fixtures are an ordinary toolset: their raw-content tools, prompts
/// and media resources go through the registry and the toolset contracts, and without
/// `--conformance-fixtures` none of them exists.
#[cfg(feature = "conformance-fixtures")]
#[tokio::test]
#[allow(deprecated)] // resources/subscribe is legacy-only in rmcp 3.9
async fn conformance_fixtures_serve_tools_prompts_and_resources_through_the_toolset_seam() {
    use rmcp::model::{
        ContentBlock, ErrorCode, GetPromptRequestParams, ResourceContents, SubscribeRequestParams,
    };
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client(dir.path(), FIXTURES).await;

    let image = call(&client, "test_image_content", json!({})).await;
    assert_eq!(image.is_error, Some(false));
    assert!(
        matches!(&image.content[0], ContentBlock::Image(i) if i.mime_type == "image/png"),
        "{image:?}"
    );
    let failed = call(&client, "test_error_handling", json!({})).await;
    assert_eq!(failed.is_error, Some(true));
    let echoed = call(
        &client,
        "json_schema_2020_12_tool",
        json!({"name": "n", "email": "e"}),
    )
    .await;
    assert!(text(&echoed).starts_with("received "), "{echoed:?}");

    let prompts = client.list_all_prompts().await.unwrap();
    assert_eq!(prompts.len(), 5, "{prompts:?}");
    let prompt = client
        .get_prompt(GetPromptRequestParams::new("test_simple_prompt"))
        .await
        .unwrap();
    assert_eq!(prompt.messages.len(), 1);
    let missing = client
        .get_prompt(GetPromptRequestParams::new("no_such_prompt"))
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("call prompts/list"),
        "{missing}"
    );

    let resources = client.list_all_resources().await.unwrap();
    let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    assert!(
        uris.contains(&"cortex://health") && uris.contains(&"test://static-binary"),
        "{uris:?}"
    );
    let blob = client
        .read_resource(ReadResourceRequestParams::new("test://static-binary"))
        .await
        .unwrap();
    assert!(
        matches!(&blob.contents[0], ResourceContents::BlobResourceContents { mime_type: Some(m), .. } if m == "image/png"),
        "{blob:?}"
    );
    let templated = read_json(&client, "test://template/7/data").await;
    assert_eq!(templated["id"], "7");
    let templates = client.list_all_resource_templates().await.unwrap();
    assert!(
        templates
            .iter()
            .any(|t| t.uri_template == "test://template/{id}/data"),
        "{templates:?}"
    );
    let unknown = client
        .read_resource(ReadResourceRequestParams::new("test://nothing"))
        .await
        .unwrap_err();
    assert!(
        unknown.to_string().contains("call resources/list"),
        "{unknown}"
    );

    client
        .subscribe(SubscribeRequestParams::new("test://watched-resource"))
        .await
        .unwrap();
    let refused = client
        .subscribe(SubscribeRequestParams::new("test://static-text"))
        .await
        .unwrap_err();
    match refused {
        rmcp::ServiceError::McpError(e) => {
            assert_eq!(e.code, ErrorCode::INVALID_PARAMS, "{e:?}");
            assert!(e.message.contains("cannot be subscribed"), "{e:?}");
        }
        other => panic!("{other:?}"),
    }
    client.cancel().await.unwrap();

    // Without the flag: no fixture tool, prompt or resource.
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client(dir.path(), &["--toolsets", "all"]).await;
    assert!(client.list_all_prompts().await.unwrap().is_empty());
    let absent = client
        .call_tool(rmcp::model::CallToolRequestParams::new(
            "test_image_content",
        ))
        .await
        .unwrap_err();
    assert!(absent.to_string().contains("unknown tool"), "{absent}");
    let resources = client.list_all_resources().await.unwrap();
    assert!(
        resources.iter().all(|r| !r.uri.starts_with("test://")),
        "{resources:?}"
    );
    client.cancel().await.unwrap();
}
