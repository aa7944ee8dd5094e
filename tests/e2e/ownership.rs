//! Ownership per principal through real MCP clients: one HTTP server accepting two bearer
//! tokens (`--auth-token` and `--auth-tokens`), client A and client B each with its own.
//! B cannot see or act on what A created (tasks and their approvals and events,
//! integrations and their credentials, spool sessions and their `patchkit.patch`
//! previews, graphs, reviews, artifacts), and gets the same "not found" as for an object
//! that does not exist; objects created with `shared: true` are visible to both.

use crate::common;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{Router, extract::State, http::HeaderMap, routing::any};
use common::*;
use rmcp::model::ReadResourceRequestParams;
use serde_json::{Value, json};

const TOKEN_A: &str = "client-a-token-0123456789";
const TOKEN_B: &str = "client-b-token-9876543210";
const MISSING_ID: &str = "0190c0de-0000-7000-8000-000000000000";

/// A fake upstream counting the requests it receives and the credentials they carry.
#[derive(Default)]
struct Upstream {
    requests: AtomicUsize,
    authorizations: parking_lot::Mutex<Vec<String>>,
}

async fn record(State(up): State<Arc<Upstream>>, headers: HeaderMap) -> &'static str {
    up.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        up.authorizations.lock().push(v.to_string());
    }
    "{\"ok\":true}"
}

async fn start_upstream() -> (Arc<Upstream>, String) {
    let up = Arc::new(Upstream::default());
    let app = Router::new().fallback(any(record)).with_state(up.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (up, format!("http://{addr}"))
}

fn owner_of(token: &str) -> String {
    use sha2::Digest;
    format!(
        "token:{}",
        &hex::encode(sha2::Sha256::digest(token.as_bytes()))[..12]
    )
}

async fn err_text(client: &Client, tool: &str, args: Value) -> String {
    let r = call(client, tool, args).await;
    assert_eq!(r.is_error, Some(true), "{tool} should fail: {}", text(&r));
    text(&r)
}

/// B's error for A's object `id` must read exactly as the error for a missing one.
async fn same_as_missing(client: &Client, tool: &str, args: Value, id: &str) {
    let theirs = err_text(client, tool, args.clone()).await;
    let missing: Value = serde_json::from_str(&args.to_string().replace(id, MISSING_ID)).unwrap();
    let absent = err_text(client, tool, missing).await;
    assert_eq!(
        theirs.replace(id, "<id>"),
        absent.replace(MISSING_ID, "<id>"),
        "{tool} on another principal's object must answer as for a missing one"
    );
}

fn ids(page: &Value, key: &str) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[key].as_str().unwrap().to_string())
        .collect()
}

struct Setup {
    _state: tempfile::TempDir,
    ws: tempfile::TempDir,
    _server: HttpServer,
    a: Client,
    b: Client,
}

async fn setup() -> Setup {
    let state = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    write(ws.path(), "repo/src/lib.rs", "pub fn f() {}\n");
    write(ws.path(), "notes.txt", "first\n");
    let roots = ws.path().to_str().unwrap().to_string();
    let server = http_server(
        state.path(),
        &[
            "--toolsets",
            "asbr,integrations,patchkit,mvp",
            "--workspace-roots",
            &roots,
            "--auth-token",
            TOKEN_A,
            "--auth-tokens",
            TOKEN_B,
        ],
        &[],
    );
    let url = format!("{}/mcp", server.base);
    let a = http_client(&url, Some(TOKEN_A)).await;
    let b = http_client(&url, Some(TOKEN_B)).await;
    Setup {
        _state: state,
        ws,
        _server: server,
        a,
        b,
    }
}

fn task_input(title: &str) -> Value {
    json!({"title": title, "brief": "b", "scopes": ["repo:write"]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_b_cannot_see_or_act_on_client_a_tasks() {
    let s = setup().await;
    let t = ok(&s.a, "create_task", json!({"input": task_input("deploy")})).await;
    let id = t["id"].as_str().unwrap().to_string();
    assert_eq!(t["owner"], owner_of(TOKEN_A).as_str());
    ok(
        &s.a,
        "record_task_event",
        json!({"taskId": id, "type": "AwaitingApproval", "step": "deploy-to-prod"}),
    )
    .await;

    // B neither lists nor finds it; the same input does not hand B A's task.
    let listed = ok(&s.b, "list_tasks", json!({})).await;
    assert!(ids(&listed, "id").is_empty(), "{listed}");
    let again = ok(&s.b, "create_task", json!({"input": task_input("deploy")})).await;
    assert_ne!(again["id"], id.as_str());
    assert_eq!(again["reused"], false);
    for tool in ["get_task", "cancel_task", "resume_task"] {
        same_as_missing(&s.b, tool, json!({"taskId": id}), &id).await;
    }
    same_as_missing(
        &s.b,
        "approve_task_step",
        json!({"taskId": id, "step": "deploy-to-prod", "by": "user"}),
        &id,
    )
    .await;
    same_as_missing(
        &s.b,
        "record_task_event",
        json!({"taskId": id, "type": "Failed"}),
        &id,
    )
    .await;
    same_as_missing(&s.b, "watch_task_events", json!({"taskId": id}), &id).await;
    let watched = ok(&s.b, "watch_task_events", json!({"since_seq": 0})).await;
    let theirs: Vec<&Value> = watched["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["taskId"] == id.as_str())
        .collect();
    assert!(theirs.is_empty(), "B watched A's task events: {theirs:?}");
    let uri = format!("asbr://tasks/{id}/events");
    assert!(
        s.b.read_resource(ReadResourceRequestParams::new(uri.clone()))
            .await
            .is_err(),
        "B read A's task events resource"
    );
    let tasks_topic = read_json(&s.b, "events://asbr.task.*").await;
    assert!(
        !tasks_topic.to_string().contains(&id),
        "events:// showed B A's task: {tasks_topic}"
    );

    // A's task is untouched: still paused, unapproved, and A sees all of it.
    let mine = ok(&s.a, "get_task", json!({"taskId": id})).await;
    assert_eq!(mine["status"], "paused");
    assert_eq!(mine["approvals"], json!([]));
    assert_eq!(
        read_json(&s.a, &uri).await["events"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let a_topic = read_json(&s.a, "events://asbr.task.*").await;
    assert!(a_topic.to_string().contains(&id));
    let approved = ok(
        &s.a,
        "approve_task_step",
        json!({"taskId": id, "step": "deploy-to-prod", "by": "user"}),
    )
    .await;
    assert_eq!(approved["approvals"][0]["by"], owner_of(TOKEN_A).as_str());

    // A shared task is visible to B, who may act on it.
    let shared = ok(
        &s.a,
        "create_task",
        json!({"input": task_input("team"), "shared": true}),
    )
    .await;
    let shared_id = shared["id"].as_str().unwrap();
    let seen = ok(&s.b, "list_tasks", json!({})).await;
    assert!(ids(&seen, "id").contains(&shared_id.to_string()), "{seen}");
    ok(&s.b, "cancel_task", json!({"taskId": shared_id})).await;
    assert_eq!(
        ok(&s.a, "get_task", json!({"taskId": shared_id})).await["status"],
        "canceled"
    );

    // The operator over stdio on the same state directory sees every client's tasks.
    let Setup {
        _state: state,
        _server: server,
        a,
        b,
        ..
    } = s;
    drop((a, b, server));
    let operator = stdio_client(state.path(), &["--toolsets", "asbr"]).await;
    let all = ids(&ok(&operator, "list_tasks", json!({})).await, "id");
    assert!(all.contains(&id) && all.contains(&again["id"].as_str().unwrap().to_string()));
    assert_eq!(
        ok(&operator, "get_task", json!({"taskId": id})).await["owner"],
        owner_of(TOKEN_A).as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_b_cannot_use_client_a_integration_or_its_credential() {
    let (up, base) = start_upstream().await;
    let s = setup().await;
    let made = ok(
        &s.a,
        "create_integration",
        json!({"name": "svc", "type": "api", "config": {"endpoint": base, "credentials": {"token": "a-upstream-secret-0001"}}}),
    )
    .await;
    let id = made["id"].as_str().unwrap().to_string();

    let listed = ok(&s.b, "list_integrations", json!({})).await;
    assert!(ids(&listed, "id").is_empty(), "{listed}");
    same_as_missing(
        &s.b,
        "execute_integration",
        json!({"integrationId": id, "operation": "GET /data"}),
        &id,
    )
    .await;
    same_as_missing(&s.b, "test_integration", json!({"integrationId": id}), &id).await;
    same_as_missing(
        &s.b,
        "monitor_integration",
        json!({"integrationId": id}),
        &id,
    )
    .await;
    same_as_missing(
        &s.b,
        "update_integration",
        json!({"integrationId": id, "config": {"endpoint": "http://127.0.0.1:9/"}}),
        &id,
    )
    .await;
    same_as_missing(
        &s.b,
        "delete_integration",
        json!({"integrationId": id}),
        &id,
    )
    .await;
    assert_eq!(
        up.requests.load(Ordering::SeqCst),
        0,
        "B's attempts reached the upstream"
    );
    // B may use the name for its own integration: A's names are not revealed.
    ok(
        &s.b,
        "create_integration",
        json!({"name": "svc", "type": "api", "config": {"endpoint": base}}),
    )
    .await;

    // A's integration still works for A, with A's credential.
    let r = ok(
        &s.a,
        "execute_integration",
        json!({"integrationId": id, "operation": "GET /data"}),
    )
    .await;
    assert_eq!(r["statusCode"], 200, "{r}");
    assert_eq!(up.requests.load(Ordering::SeqCst), 1);
    assert_eq!(
        up.authorizations.lock().as_slice(),
        ["Bearer a-upstream-secret-0001"]
    );
    // Its call events reach A, not B.
    let b_events = read_json(&s.b, "events://integrations.*").await;
    assert!(!b_events.to_string().contains(&id), "{b_events}");

    // Shared, B may use it.
    let shared = ok(
        &s.a,
        "create_integration",
        json!({"name": "team", "type": "api", "shared": true, "config": {"endpoint": base}}),
    )
    .await;
    let shared_id = shared["id"].as_str().unwrap();
    ok(
        &s.b,
        "execute_integration",
        json!({"integrationId": shared_id, "operation": "GET /team"}),
    )
    .await;
    assert_eq!(up.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_b_cannot_see_client_a_spool_graphs_reviews_or_artifacts() {
    let s = setup().await;
    let ws = s.ws.path().to_str().unwrap();

    // Spool: A stages and commits; B sees neither the session nor the previews.
    let session = ok(&s.a, "spool_open", json!({"root": ws})).await["session"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        &s.a,
        "spool_write",
        json!({"session": session, "path": "notes.txt", "content": "a private change\n"}),
    )
    .await;
    for tool in ["spool_status", "spool_diff", "spool_reset"] {
        same_as_missing(&s.b, tool, json!({"session": session}), &session).await;
    }
    same_as_missing(
        &s.b,
        "spool_write",
        json!({"session": session, "path": "x.txt", "content": "b"}),
        &session,
    )
    .await;
    let closed = ok(&s.b, "spool_close", json!({"session": session})).await;
    assert_eq!(closed["closed"], false);
    let committed = ok(&s.a, "spool_commit", json!({"session": session})).await;
    assert_eq!(committed["committed"].as_array().unwrap().len(), 1);
    let a_topic = read_json(&s.a, "events://patchkit.patch").await;
    assert_eq!(a_topic["events"].as_array().unwrap().len(), 1, "{a_topic}");
    let b_topic = read_json(&s.b, "events://patchkit.patch").await;
    assert_eq!(b_topic["events"], json!([]), "{b_topic}");
    assert!(!b_topic.to_string().contains("private change"));
    let everything = read_json(&s.b, "events://*").await;
    let a_owner = owner_of(TOKEN_A);
    assert!(
        everything["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["owner"] != a_owner.as_str()),
        "{everything}"
    );

    // Graphs.
    let graph = ok(
        &s.a,
        "create_graph",
        json!({"name": "g", "nodes": [{"id": "ok", "type": "gate", "config": {"condition": "true"}}]}),
    )
    .await;
    let graph_id = graph["graphId"].as_str().unwrap().to_string();
    for tool in ["get_graph_status", "execute_graph", "optimize_graph"] {
        same_as_missing(&s.b, tool, json!({"graphId": graph_id}), &graph_id).await;
    }
    same_as_missing(
        &s.b,
        "validate_graph",
        json!({"graphId": graph_id}),
        &graph_id,
    )
    .await;
    let run = ok(&s.a, "execute_graph", json!({"graphId": graph_id})).await;
    assert_eq!(run["status"], "completed", "{run}");
    let shared = ok(
        &s.a,
        "create_graph",
        json!({"name": "team", "shared": true, "nodes": [{"id": "ok", "type": "gate", "config": {"condition": "true"}}]}),
    )
    .await;
    ok(
        &s.b,
        "get_graph_status",
        json!({"graphId": shared["graphId"]}),
    )
    .await;

    // Reviews (and the task tracking one).
    let review = ok(
        &s.a,
        "create_review",
        json!({"repositoryUrl": "repo", "reviewers": ["style"]}),
    )
    .await;
    let review_id = review["review"]["id"].as_str().unwrap().to_string();
    let review_task = review["review"]["taskId"].as_str().unwrap().to_string();
    same_as_missing(
        &s.b,
        "get_review_status",
        json!({"reviewId": review_id}),
        &review_id,
    )
    .await;
    same_as_missing(
        &s.b,
        "submit_feedback",
        json!({"reviewId": review_id, "verdict": "approve"}),
        &review_id,
    )
    .await;
    assert!(ids(&ok(&s.b, "list_reviews", json!({})).await, "id").is_empty());
    same_as_missing(
        &s.b,
        "get_task",
        json!({"taskId": review_task}),
        &review_task,
    )
    .await;
    assert_eq!(
        ids(&ok(&s.a, "list_reviews", json!({})).await, "id"),
        [review_id]
    );

    // Artifacts: content-addressed, yet B learns nothing from storing the same bytes.
    let put = ok(
        &s.a,
        "put_artifact",
        json!({"kind": "plan", "content": "A's rollout plan"}),
    )
    .await;
    let artifact = put["artifact"]["id"].as_str().unwrap().to_string();
    let missing_artifact = format!("sha256:{}", "0".repeat(64));
    let theirs = err_text(&s.b, "get_artifact", json!({"id": artifact})).await;
    let absent = err_text(&s.b, "get_artifact", json!({"id": missing_artifact})).await;
    assert_eq!(
        theirs.replace(&artifact, "<id>"),
        absent.replace(&missing_artifact, "<id>")
    );
    assert!(ids(&ok(&s.b, "list_artifacts", json!({})).await, "id").is_empty());
    let b_put = ok(
        &s.b,
        "put_artifact",
        json!({"kind": "plan", "content": "A's rollout plan"}),
    )
    .await;
    assert_eq!(b_put["deduplicated"], false);
    assert_eq!(b_put["artifact"]["owner"], owner_of(TOKEN_B).as_str());
    ok(&s.b, "get_artifact", json!({"id": artifact})).await;
    assert_eq!(
        ids(&ok(&s.a, "list_artifacts", json!({})).await, "id"),
        [artifact]
    );
}

#[tokio::test]
async fn a_single_stdio_client_sees_everything_it_made() {
    let state = tempfile::tempdir().unwrap();
    let client = stdio_client(state.path(), &["--toolsets", "asbr"]).await;
    let t = ok(&client, "create_task", json!({"input": task_input("solo")})).await;
    assert_eq!(t["owner"], "stdio");
    let id = t["id"].as_str().unwrap();
    assert_eq!(ids(&ok(&client, "list_tasks", json!({})).await, "id"), [id]);
    ok(&client, "cancel_task", json!({"taskId": id})).await;
    let events = read_json(&client, "events://asbr.task.*").await;
    assert_eq!(events["events"].as_array().unwrap().len(), 2, "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated)] // resources/subscribe is legacy-only in rmcp 3.9
async fn subscriptions_notify_only_of_events_the_subscriber_may_see() {
    use rmcp::{
        ServiceExt,
        model::SubscribeRequestParams,
        transport::{
            StreamableHttpClientTransport,
            streamable_http_client::StreamableHttpClientTransportConfig,
        },
    };
    let state = tempfile::tempdir().unwrap();
    let server = http_server(
        state.path(),
        &[
            "--toolsets",
            "asbr",
            "--http-sessions",
            "--auth-token",
            TOKEN_A,
            "--auth-tokens",
            TOKEN_B,
        ],
        &[],
    );
    let url = format!("{}/mcp", server.base);
    let a = http_client(&url, Some(TOKEN_A)).await;
    let recorder = UpdatedUris::default();
    let config = StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header(TOKEN_B);
    let b = recorder
        .clone()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("initialize over HTTP with a session");
    b.subscribe(SubscribeRequestParams::new("events://asbr.task.*"))
        .await
        .unwrap();
    let theirs = ok(&a, "create_task", json!({"input": task_input("a only")})).await;
    // A's task is not B's to subscribe to either.
    let uri = format!("asbr://tasks/{}/events", theirs["id"].as_str().unwrap());
    assert!(b.subscribe(SubscribeRequestParams::new(uri)).await.is_err());
    // B's own event comes after A's on the same subscription, so A's is already passed
    // over when B is told of its own (were it not, B would be told twice).
    ok(&b, "create_task", json!({"input": task_input("b only")})).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while recorder.0.lock().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no notification of B's own task"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let notified = recorder.0.lock().unwrap().clone();
    assert_eq!(
        notified,
        ["events://asbr.task.*"],
        "B was told of A's event"
    );
}

#[tokio::test]
async fn extra_tokens_must_be_long_and_distinct() {
    let state = tempfile::tempdir().unwrap();
    for (tokens, want) in [
        ("short", "at least 16 characters"),
        (TOKEN_A, "given twice"),
        (
            "client-c-token-0000000000,client-c-token-0000000000",
            "given twice",
        ),
    ] {
        let port = free_port().to_string();
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.arg("--state-dir")
            .arg(state.path())
            .args(["--auth-token", TOKEN_A, "--auth-tokens", tokens])
            .args(["serve", "--http", &format!("127.0.0.1:{port}")])
            .kill_on_drop(true);
        let out = tokio::time::timeout(std::time::Duration::from_secs(30), cmd.output())
            .await
            .expect("the server should refuse to start, not serve")
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started with --auth-tokens {tokens}");
        assert!(
            stderr.contains("auth-tokens") && stderr.contains(want),
            "{stderr}"
        );
        assert!(!stderr.contains(tokens), "the token was echoed: {stderr}");
    }
}

/// The rest of A's `edit_files` diff stays A's: B holding A's cursor gets what an
/// expired cursor gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_b_cannot_page_through_client_a_edit_diff() {
    let s = setup().await;
    let body: String = (0..400).map(|n| format!("line {n} private\n")).collect();
    write(s.ws.path(), "big.txt", &body);
    let path = s.ws.path().join("big.txt").display().to_string();
    let first = ok(
        &s.a,
        "edit_files",
        json!({
            "edits": [{"path": path, "oldText": "private", "newText": "changed", "replaceAll": true}],
            "maxDiffBytes": 1000
        }),
    )
    .await;
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a paged diff")
        .to_string();
    let refused = err_text(&s.b, "edit_files", json!({"edits": [], "cursor": cursor})).await;
    assert!(refused.contains("no longer kept"), "{refused}");
    assert!(!refused.contains("private"), "{refused}");
    let rest = ok(&s.a, "edit_files", json!({"edits": [], "cursor": cursor})).await;
    assert!(rest["diff"].as_str().unwrap().contains("private"), "{rest}");
}
