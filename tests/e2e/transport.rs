//! Transport containment and protocol edges through real clients against the real
//! binary: raw HTTP (reqwest, TcpStream) for sessions, slow clients and error codes, raw
//! stdio for bad bytes and long lines, the rmcp client where a client is enough.
//!
//! The memory-heavy tests run the server under `RLIMIT_AS` so a regression fails the
//! test (allocation failure, or a peak RSS over the bound the test states) instead of
//! exhausting the machine; each keeps its count small enough to take a few seconds.
#![allow(deprecated)] // logging and resources/subscribe are legacy (SEP-2577), still served

use crate::common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    os::unix::process::CommandExt,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::*;
use rmcp::{
    ClientHandler, RoleClient, ServiceExt,
    model::{CallToolRequestParams, LoggingMessageNotificationParam},
    service::NotificationContext,
};
use serde_json::{Value, json};

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
/// Address space the server gets in the memory tests: ample for a healthy server
/// (virtual reservations included), far below what the floods reached before the fixes.
const ADDRESS_SPACE: u64 = 3 << 30;

/// Starts `cortex-mcp [extra] serve [serve_args] --http ADDR` under `RLIMIT_AS`.
fn limited_http_server(
    state_dir: &std::path::Path,
    extra: &[&str],
    serve_args: &[&str],
    address_space: u64,
) -> HttpServer {
    http_server_prepared(state_dir, extra, serve_args, &[], |cmd| {
        cmd.env_remove("RUST_LOG");
        limit_address_space(cmd, address_space);
    })
}

fn limit_address_space(cmd: &mut Command, bytes: u64) {
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A `/proc/<pid>/status` figure in KiB (VmRSS now, VmHWM the peak).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// POSTs `body` to `/mcp` as an MCP client would; returns status, headers and body.
async fn post(
    client: &reqwest::Client,
    base: &str,
    body: impl Into<reqwest::Body>,
    extra: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = client
        .post(format!("{base}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("POST /mcp");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap_or_default())
}

// ------------------------------------------------------------------ issue 15

#[tokio::test]
async fn session_flood_ends_in_503_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server = limited_http_server(
        dir.path(),
        &["--http-sessions", "--http-max-sessions", "40"],
        &[],
        ADDRESS_SPACE,
    );
    let pid = server.child.id();
    let client = http();
    let (mut created, mut refused, mut first) = (0, 0, None);
    for _ in 0..1500 {
        let (status, headers, _) = post(&client, &server.base, INIT, &[]).await;
        match status {
            200 => {
                created += 1;
                first.get_or_insert(headers["mcp-session-id"].to_str().unwrap().to_string());
            }
            503 => {
                refused += 1;
                assert!(headers.contains_key("retry-after"), "{headers:?}");
            }
            other => panic!("initialize answered {other}"),
        }
    }
    assert_eq!(
        created, 40,
        "exactly --http-max-sessions sessions are created"
    );
    assert_eq!(refused, 1460);
    // Ending a session frees its slot.
    let resp = client
        .delete(format!("{}/mcp", server.base))
        .header("mcp-session-id", first.unwrap())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let (status, _, _) = post(&client, &server.base, INIT, &[]).await;
    assert_eq!(status, 200, "a freed slot takes a new session");
    let peak_mib = status_kib(pid, "VmHWM") / 1024;
    eprintln!("session flood: peak RSS {peak_mib} MiB after 1,500 initialize calls");
    assert!(
        peak_mib < 200,
        "peak RSS {peak_mib} MiB after 1,500 initialize calls (bound 200 MiB)"
    );
}

#[tokio::test]
async fn slow_header_clients_are_dropped_and_calls_keep_succeeding() {
    let dir = tempfile::tempdir().unwrap();
    let server = http_server(
        dir.path(),
        &[
            "--http-max-connections",
            "8",
            "--http-header-timeout-secs",
            "1",
            "--auth-token",
            "0123456789abcdef0123",
        ],
        &[],
    );
    let addr = server.base.trim_start_matches("http://").to_string();
    // 40 clients (five times the connection cap) trickle a request head, a byte every
    // 100 ms, for up to 20 s; each reports whether the server hung up on it.
    let mut trickling = Vec::new();
    for _ in 0..40 {
        let addr = addr.clone();
        trickling.push(std::thread::spawn(move || {
            let mut tcp = TcpStream::connect(&addr).unwrap();
            tcp.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let head = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
            let started = Instant::now();
            let mut sent = 0;
            while started.elapsed() < Duration::from_secs(20) {
                let byte = head.get(sent).copied().unwrap_or(b'a');
                if tcp.write_all(&[byte]).is_err() {
                    return true;
                }
                sent += 1;
                let mut buf = [0u8; 256];
                match tcp.read(&mut buf) {
                    Ok(_) => return true, // EOF or an error response: dropped
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => return true,
                }
            }
            false
        }));
    }
    // Meanwhile normal calls (after the bearer check, with a lowercase scheme) succeed.
    let client = http();
    for i in 0..5 {
        let (status, _, body) = post(
            &client,
            &server.base,
            json!({"jsonrpc":"2.0","id":i,"method":"tools/list"}).to_string(),
            &[("authorization", "bearer 0123456789abcdef0123")],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(
            jsonrpc_message(&body)["result"]["tools"].is_array(),
            "{body}"
        );
    }
    for t in trickling {
        assert!(
            t.join().unwrap(),
            "a client trickling its headers was never dropped"
        );
    }
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408() {
    let dir = tempfile::tempdir().unwrap();
    let server = http_server(dir.path(), &["--http-body-timeout-secs", "1"], &[]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let status = tokio::task::spawn_blocking(move || {
        let mut tcp = TcpStream::connect(&addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{\"jsonrpc\"";
        tcp.write_all(head.as_bytes()).unwrap();
        let mut reply = String::new();
        let _ = tcp.read_to_string(&mut reply);
        reply
    })
    .await
    .unwrap();
    assert!(status.starts_with("HTTP/1.1 408"), "{status}");
}

#[tokio::test]
async fn metrics_gets_the_host_origin_and_token_checks_of_mcp() {
    let dir = tempfile::tempdir().unwrap();
    let server = http_server(dir.path(), &[], &[]);
    let client = http();
    let get = |host: Option<&str>, origin: Option<&str>| {
        let mut req = client.get(format!("{}/metrics", server.base));
        if let Some(h) = host {
            req = req.header("host", h);
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(None, None).await, 200);
    assert_eq!(
        get(Some("attacker.example"), None).await,
        403,
        "DNS rebinding"
    );
    assert_eq!(get(None, Some("http://attacker.example")).await, 403);
    assert_eq!(get(None, Some("http://localhost:5173")).await, 200);

    let dir = tempfile::tempdir().unwrap();
    let token = "0123456789abcdef0123";
    let server = http_server(dir.path(), &["--auth-token", token], &[]);
    let metrics = |auth: &'static str| {
        let req = client
            .get(format!("{}/metrics", server.base))
            .header("authorization", auth);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(metrics("Bearer wrong-token-wrong-token").await, 401);
    assert_eq!(metrics("bearer 0123456789abcdef0123").await, 200);
    assert_eq!(metrics("BEARER 0123456789abcdef0123").await, 200);
}

/// `--replica-id` labels every metric with the replica; a name that is not a plain label
/// value refuses to start.
#[tokio::test]
async fn every_metric_names_its_replica() {
    let dir = tempfile::tempdir().unwrap();
    let server = http_server(
        dir.path(),
        &["--toolsets", "batch", "--replica-id", "eu-1.b"],
        &[],
    );
    let client = http_client(&format!("{}/mcp", server.base), None).await;
    client.list_all_tools().await.unwrap();
    call(&client, "batch", json!({"calls": []})).await;
    let text = http()
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("cortex_") && l.contains('{'))
        .collect();
    assert!(!series.is_empty(), "{text}");
    for line in &series {
        assert!(line.contains(r#"replica="eu-1.b""#), "{line}");
    }

    let out = Command::new(BIN)
        .args(["--replica-id", "eu 1\"}", "serve"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("replica-id"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `input` to a stdio server and returns its stdout lines as JSON and its peak RSS.
fn stdio_exchange(
    args: &[&str],
    input: impl FnOnce(&mut std::process::ChildStdin),
) -> (Vec<Value>, u64, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("--state-dir")
        .arg(dir.path())
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    limit_address_space(&mut cmd, ADDRESS_SPACE);
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    input(&mut stdin);
    let peak = status_kib(pid, "VmHWM");
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit {:?}", out.status);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let replies = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("stdout is only JSON-RPC"))
        .collect();
    (
        replies,
        peak,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_stdio_line_over_the_limit_is_skipped_unheld_and_answered_32600() {
    let (replies, peak_kib, _) =
        stdio_exchange(&["--stdio-max-line-bytes", "1048576", "serve"], |stdin| {
            writeln!(stdin, "{INIT}").unwrap();
            // 64 MiB on one line, in 1 MiB writes.
            let chunk = vec![b'a'; 1 << 20];
            for _ in 0..64 {
                stdin.write_all(&chunk).unwrap();
            }
            stdin.write_all(b"\n").unwrap();
            writeln!(stdin, r#"{{"jsonrpc":"2.0","id":2,"method":"ping"}}"#).unwrap();
            stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(300));
        });
    let peak_mib = peak_kib / 1024;
    eprintln!("stdio long line: peak RSS {peak_mib} MiB while 64 MiB streamed by");
    assert!(
        peak_mib < 60,
        "peak RSS {peak_mib} MiB while a 64 MiB line streamed by (limit 1 MiB)"
    );
    assert!(
        replies.iter().any(|r| r["error"]["code"] == -32600
            && r["error"]["message"].as_str().unwrap().contains("1048576")),
        "{replies:?}"
    );
    assert!(
        replies
            .iter()
            .any(|r| r["id"] == 2 && r["result"].is_object()),
        "the session goes on: {replies:?}"
    );
}

// ------------------------------------------------------------------ issue 23

#[tokio::test]
async fn stateless_subscribes_are_refused_and_hold_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = limited_http_server(dir.path(), &[], &[], ADDRESS_SPACE);
    let pid = server.child.id();
    let client = http();
    let subscribe = |i: usize| {
        json!({"jsonrpc":"2.0","id":i,"method":"resources/subscribe",
               "params":{"uri":format!("events://never.fires.{i}")}})
        .to_string()
    };
    // Warm up (allocator, first-call caches), then measure across 20,000 subscribes.
    for i in 0..200 {
        post(&client, &server.base, subscribe(i), &[]).await;
    }
    let before = status_kib(pid, "VmRSS");
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (client, base) = (client.clone(), server.base.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..2500 {
                let (_, _, body) = post(&client, &base, subscribe(w * 10_000 + i), &[]).await;
                let reply = jsonrpc_message(&body);
                assert_eq!(reply["error"]["code"], -32600, "{body}");
                assert!(
                    reply["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("needs a session"),
                    "{body}"
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let grown_mib = status_kib(pid, "VmRSS").saturating_sub(before) / 1024;
    eprintln!(
        "stateless subscribes: RSS {} MiB before, grew {grown_mib} MiB over 20,000",
        before / 1024
    );
    assert!(
        grown_mib < 40,
        "RSS grew {grown_mib} MiB over 20,000 stateless subscribes (bound 40 MiB)"
    );
}

#[tokio::test]
async fn subscriptions_of_a_session_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client(dir.path(), &["serve"]).await;
    let mut refused = None;
    for i in 0..300 {
        let r = client
            .subscribe(rmcp::model::SubscribeRequestParams::new(format!(
                "events://topic.{i}"
            )))
            .await;
        if let Err(e) = r {
            refused = Some((i, e.to_string()));
            break;
        }
    }
    let (at, why) = refused.expect("the 257th distinct subscription is refused");
    assert_eq!(at, 256, "{why}");
    assert!(why.contains("unsubscribe"), "{why}");
    // Re-subscribing to a held uri still works, and unsubscribing frees a slot.
    client
        .subscribe(rmcp::model::SubscribeRequestParams::new("events://topic.0"))
        .await
        .unwrap();
    client
        .unsubscribe(rmcp::model::UnsubscribeRequestParams::new(
            "events://topic.1",
        ))
        .await
        .unwrap();
    client
        .subscribe(rmcp::model::SubscribeRequestParams::new(
            "events://topic.999",
        ))
        .await
        .unwrap();
}

// ------------------------------------------------------------------ issue 16

#[tokio::test]
async fn stateless_http_server_to_client_requests_fail_fast() {
    let dir = tempfile::tempdir().unwrap();
    let server = http_server_serving(
        dir.path(),
        &["--toolsets", "all"],
        &["--conformance-fixtures"],
        &[],
    );
    let client = http_client(&format!("{}/mcp", server.base), None).await;
    for (tool, args) in [
        ("test_sampling", json!({"prompt": "hi"})),
        ("test_elicitation", json!({"message": "who?"})),
    ] {
        let result = tokio::time::timeout(Duration::from_secs(60), call(&client, tool, args))
            .await
            .unwrap_or_else(|_| panic!("{tool} hung over stateless HTTP"));
        assert_eq!(result.is_error, Some(true), "{}", text(&result));
        assert!(
            text(&result).contains("--http-sessions"),
            "{}",
            text(&result)
        );
    }
}

#[test]
fn an_invalid_utf8_line_gets_32700_and_the_stdio_session_goes_on() {
    let (replies, _, _) = stdio_exchange(&["serve"], |stdin| {
        writeln!(stdin, "{INIT}").unwrap();
        stdin
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"\xff\xfe\"}\n")
            .unwrap();
        writeln!(stdin, r#"{{"jsonrpc":"2.0","id":2,"method":"ping"}}"#).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(300));
    });
    assert!(
        replies.iter().any(|r| r["error"]["code"] == -32700),
        "{replies:?}"
    );
    assert!(
        replies
            .iter()
            .any(|r| r["id"] == 2 && r["result"].is_object()),
        "the session goes on: {replies:?}"
    );
}

/// Counts `notifications/message`.
#[derive(Clone, Default)]
struct LogCount(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl ClientHandler for LogCount {
    async fn on_logging_message(
        &self,
        _params: LoggingMessageNotificationParam,
        _ctx: NotificationContext<RoleClient>,
    ) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn set_level_is_per_client_and_never_touches_the_stderr_log() {
    use rmcp::model::{LoggingLevel, SetLevelRequestParams};
    let dir = tempfile::tempdir().unwrap();
    let server = http_server_serving(
        dir.path(),
        &[
            "--toolsets",
            "all",
            "--http-sessions",
            "--log-level",
            "warn",
        ],
        &["--conformance-fixtures"],
        &[],
    );
    let url = format!("{}/mcp", server.base);
    let connect = |handler: LogCount| {
        let url = url.clone();
        async move {
            let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(url);
            handler.serve(transport).await.unwrap()
        }
    };
    let (quiet, loud) = (LogCount::default(), LogCount::default());
    let quiet_client = connect(quiet.clone()).await;
    let loud_client = connect(loud.clone()).await;
    quiet_client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Error))
        .await
        .unwrap();
    for client in [&quiet_client, &loud_client] {
        client
            .call_tool(CallToolRequestParams::new("test_tool_with_logging"))
            .await
            .unwrap();
    }
    // The quiet client called first: once the loud one has its 3 messages, any the
    // quiet one was (wrongly) sent have arrived too.
    wait_until("3 log messages", Duration::from_secs(5), || {
        loud.0.load(std::sync::atomic::Ordering::SeqCst) >= 3
    })
    .await;
    assert_eq!(quiet.0.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(
        loud.0.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "another client's setLevel does not change this one's"
    );

    // stdio, stderr captured: `--log-level warn` prints no INFO line, and a client asking
    // for debug changes nothing there.
    let setlevel =
        r#"{"jsonrpc":"2.0","id":3,"method":"logging/setLevel","params":{"level":"debug"}}"#;
    let (replies, _, stderr) = stdio_exchange(&["--log-level", "warn", "serve"], |stdin| {
        writeln!(stdin, "{INIT}").unwrap();
        writeln!(
            stdin,
            r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
        )
        .unwrap();
        writeln!(stdin, "{setlevel}").unwrap();
        writeln!(stdin, r#"{{"jsonrpc":"2.0","id":4,"method":"tools/list"}}"#).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(500));
    });
    assert!(replies.iter().any(|r| r["id"] == 4), "{replies:?}");
    for level in [" INFO ", " DEBUG ", " TRACE "] {
        assert!(
            !stderr.contains(level),
            "{level} under --log-level warn:\n{stderr}"
        );
    }
}

#[test]
fn optional_value_flags_do_not_swallow_serve_and_diff_help_is_its_own() {
    for flag in ["--read-only", "--http-sessions"] {
        let (replies, _, stderr) = stdio_exchange(&[flag, "serve"], |stdin| {
            writeln!(stdin, "{INIT}").unwrap();
        });
        assert!(
            replies
                .iter()
                .any(|r| r["id"] == 1 && r["result"].is_object()),
            "`{flag} serve` did not serve: {stderr}"
        );
    }
    // Issue 16.18: `help diff` listed every server option too.
    for args in [["diff", "--help"], ["diff", "-h"], ["help", "diff"]] {
        let out = Command::new(BIN).args(args).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}");
        assert!(help.contains("--unified"), "{args:?}: {help}");
        assert!(
            !help.contains("--toolsets") && !help.contains("--auth-token"),
            "{args:?}: {help}"
        );
    }
}

#[tokio::test]
async fn http_error_codes_follow_json_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let server = http_server(dir.path(), &["--toolsets", "mvp,batch"], &[]);
    let client = http();
    let (status, _, body) = post(&client, &server.base, "{not json", &[]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(jsonrpc_message(&body)["error"]["code"], -32700, "{body}");

    let batch = json!([{"jsonrpc":"2.0","id":1,"method":"ping"}]).to_string();
    let (status, _, body) = post(&client, &server.base, batch, &[]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(jsonrpc_message(&body)["error"]["code"], -32600, "{body}");

    let no_params = json!({"jsonrpc":"2.0","id":2,"method":"tools/call"}).to_string();
    let (_, _, body) = post(&client, &server.base, no_params, &[]).await;
    assert_eq!(jsonrpc_message(&body)["error"]["code"], -32602, "{body}");
    assert_eq!(jsonrpc_message(&body)["id"], 2, "{body}");

    let unknown = json!({"jsonrpc":"2.0","id":3,"method":"vendor/nothing"}).to_string();
    let (_, _, body) = post(&client, &server.base, unknown, &[]).await;
    assert_eq!(jsonrpc_message(&body)["error"]["code"], -32601, "{body}");

    let mcp = http_client(&format!("{}/mcp", server.base), None).await;
    let nul = err(&mcp, "read_file", json!({"path": "a\u{0}b"})).await;
    assert!(nul.contains("NUL") && nul.contains("path"), "{nul}");

    let calls: Vec<Value> = (0..51)
        .map(|i| json!({"tool": "read_file", "arguments": {"path": format!("marker-{i}-{}", "x".repeat(200))}}))
        .collect();
    let too_many = err(&mcp, "batch", json!({ "calls": calls })).await;
    assert!(
        too_many.len() < 1000,
        "{} bytes: {too_many}",
        too_many.len()
    );
    assert!(!too_many.contains("marker-50"), "{too_many}");
}
