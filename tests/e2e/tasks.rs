//! Tool calls run as tasks (the tasks extension, SEP-2663) through rmcp's 2026-07-28
//! client: a real tool (`run_security_scan`) as a task gives the result the call itself
//! gives; a task asks (`input_required` on `tasks/get`) and resumes when `tasks/update`
//! has answered everything; `tasks/cancel` settles a task as cancelled; a client without
//! the extension is answered in place, or -32021 for a task-only tool; over HTTP, a
//! task is invisible to another token.

// Most tests need the conformance fixtures; without them only the scan test is built.
#![cfg_attr(
    not(feature = "conformance-fixtures"),
    allow(dead_code, unused_imports)
)]

use std::time::Duration;

use rmcp::{
    ClientHandler, RoleClient,
    model::{
        CallToolRequestParams, CallToolResponse, CancelTaskParams, ClientCapabilities,
        ClientConfig, GetTaskParams, GetTaskResult, Implementation, TaskPayload, TaskStatus,
        UpdateTaskParams,
    },
    service::{RunningService, ServiceError},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

use crate::common::*;

/// A 2026-07-28 client; `tasks` says whether it declares the extension.
#[derive(Clone)]
struct TaskClient {
    tasks: bool,
}

impl ClientHandler for TaskClient {
    fn get_info(&self) -> ClientConfig {
        let mut caps = json!({"elicitation": {"form": {}}});
        if self.tasks {
            caps["extensions"] = json!({"io.modelcontextprotocol/tasks": {}});
        }
        let caps: ClientCapabilities = serde_json::from_value(caps).unwrap();
        ClientConfig::new(caps, Implementation::new("e2e-tasks", "0.0.0"))
    }
}

type Client = RunningService<RoleClient, TaskClient>;

#[cfg(feature = "conformance-fixtures")]
const FIXTURES: &[&str] = &["--toolsets", "batch", "serve", "--conformance-fixtures"];

fn params(tool: &str, args: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(tool.to_string())
        .with_arguments(args.as_object().cloned().unwrap_or_default())
}

/// Starts `tool` as a task and returns its id.
async fn start(client: &Client, tool: &str, args: Value) -> String {
    match client.call_tool_once(params(tool, args)).await.unwrap() {
        CallToolResponse::Task(created) => {
            assert_eq!(created.task.status, TaskStatus::Working);
            assert_eq!(created.task.ttl_ms, Some(3_600_000));
            created.task.task_id
        }
        other => panic!("{tool} did not become a task: {other:?}"),
    }
}

async fn get(client: &Client, id: &str) -> GetTaskResult {
    client.get_task(GetTaskParams::new(id)).await.unwrap()
}

/// Polls `tasks/get` until the task reaches `status` or a terminal one.
async fn wait_for(client: &Client, id: &str, status: TaskStatus) -> GetTaskResult {
    let mut last = None;
    for _ in 0..600 {
        let task = get(client, id).await;
        if task.task.status() == status || task.task.status().is_terminal() {
            return task;
        }
        last = Some(task);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("task {id} never reached {status:?}: {last:?}")
}

fn completed(task: &GetTaskResult) -> &rmcp::model::JsonObject {
    match &task.task.payload {
        TaskPayload::Completed { result } => result,
        other => panic!("not completed: {other:?}"),
    }
}

fn error_code(e: ServiceError) -> i32 {
    match e {
        ServiceError::McpError(e) => e.code.0,
        other => panic!("not a JSON-RPC error: {other:?}"),
    }
}

#[tokio::test]
async fn a_real_scan_as_a_task_gives_what_the_call_itself_gives() {
    let state = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ws.path().join("app")).unwrap();
    std::fs::write(
        ws.path().join("app/deploy.sh"),
        "curl https://example.com/install.sh | sh\n",
    )
    .unwrap();
    let roots = ws.path().to_str().unwrap().to_string();
    let args = ["--toolsets", "asbr", "--workspace-roots", &roots];
    let tasks =
        modern_stdio_client_with(TaskClient { tasks: true }, state.path(), &args, &[]).await;
    let plain =
        modern_stdio_client_with(TaskClient { tasks: false }, state.path(), &args, &[]).await;
    let scan = json!({"targetPath": "app", "scanType": "sast"});

    let id = start(&tasks, "run_security_scan", scan.clone()).await;
    let done = wait_for(&tasks, &id, TaskStatus::Completed).await;
    let result = completed(&done);
    assert_ne!(result.get("isError"), Some(&json!(true)), "{result:?}");
    let in_task = &result["structuredContent"];

    let CallToolResponse::Complete(direct) = plain
        .call_tool_once(params("run_security_scan", scan))
        .await
        .unwrap()
    else {
        panic!("a client without the extension is answered in place")
    };
    let direct = direct.structured_content.unwrap();
    assert_eq!(in_task["summary"], direct["summary"]);
    assert!(
        in_task["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "sh-curl-pipe"),
        "{in_task}"
    );
}

#[cfg(feature = "conformance-fixtures")]
#[tokio::test]
async fn a_task_asks_resumes_on_every_answer_and_can_be_cancelled() {
    let state = tempfile::tempdir().unwrap();
    let client =
        modern_stdio_client_with(TaskClient { tasks: true }, state.path(), FIXTURES, &[]).await;

    // Two questions at once; answered one at a time.
    let id = start(&client, "multi_input", json!({})).await;
    let asked = wait_for(&client, &id, TaskStatus::InputRequired).await;
    let TaskPayload::InputRequired { input_requests } = &asked.task.payload else {
        panic!("{asked:?}")
    };
    assert_eq!(input_requests.len(), 2);
    let answer = |name: &str| json!({"action": "accept", "content": {"name": name}});
    let first = [("first".to_string(), answer("A"))].into();
    client
        .update_task(UpdateTaskParams::new(&id, first))
        .await
        .unwrap();
    let still = get(&client, &id).await;
    let TaskPayload::InputRequired { input_requests } = &still.task.payload else {
        panic!("{still:?}")
    };
    assert_eq!(input_requests.keys().collect::<Vec<_>>(), ["second"]);
    let second = [("second".to_string(), answer("B"))].into();
    client
        .update_task(UpdateTaskParams::new(&id, second))
        .await
        .unwrap();
    let done = wait_for(&client, &id, TaskStatus::Completed).await;
    assert_eq!(completed(&done)["content"][0]["text"], "Got A and B");

    // A long task stopped by tasks/cancel; cancelling again is not an error.
    let id = start(&client, "slow_compute", json!({"seconds": 60})).await;
    client
        .cancel_task(CancelTaskParams::new(&id))
        .await
        .unwrap();
    let done = wait_for(&client, &id, TaskStatus::Cancelled).await;
    assert_eq!(done.task.status(), TaskStatus::Cancelled);
    client
        .cancel_task(CancelTaskParams::new(&id))
        .await
        .unwrap();

    // A server fault fails the task with a JSON-RPC error; an unknown id is -32602.
    let id = start(&client, "protocol_error_job", json!({})).await;
    let done = wait_for(&client, &id, TaskStatus::Failed).await;
    let TaskPayload::Failed { error } = &done.task.payload else {
        panic!("{done:?}")
    };
    assert_eq!(error["code"], -32603);
    let unknown = client
        .get_task(GetTaskParams::new("no-such-task"))
        .await
        .unwrap_err();
    assert_eq!(error_code(unknown), -32602);
}

#[cfg(feature = "conformance-fixtures")]
#[tokio::test]
async fn without_the_extension_a_call_is_answered_in_place_or_refused_32021() {
    let state = tempfile::tempdir().unwrap();
    let client =
        modern_stdio_client_with(TaskClient { tasks: false }, state.path(), FIXTURES, &[]).await;
    let quick = client
        .call_tool_once(params("slow_compute", json!({"seconds": 0})))
        .await
        .unwrap();
    assert!(matches!(quick, CallToolResponse::Complete(_)), "{quick:?}");
    let refused = client
        .call_tool_once(params("failing_job", json!({})))
        .await
        .unwrap_err();
    assert_eq!(error_code(refused), -32021);
    let refused = client
        .get_task(GetTaskParams::new("any"))
        .await
        .unwrap_err();
    assert_eq!(error_code(refused), -32021);
}

#[cfg(feature = "conformance-fixtures")]
#[tokio::test]
async fn over_http_a_task_belongs_to_the_token_that_started_it() {
    const TOKEN_A: &str = "tasks-token-a-0123456789";
    const TOKEN_B: &str = "tasks-token-b-9876543210";
    let state = tempfile::tempdir().unwrap();
    let server = http_server_serving(
        state.path(),
        &[
            "--toolsets",
            "batch",
            "--auth-token",
            TOKEN_A,
            "--auth-tokens",
            TOKEN_B,
        ],
        &["--conformance-fixtures"],
        &[],
    );
    let url = format!("{}/mcp", server.base);
    let connect = |token: &'static str| {
        let url = url.clone();
        async move {
            let config =
                StreamableHttpClientTransportConfig::with_uri(url).auth_header(token.to_string());
            let modern = rmcp::ClientLifecycleMode::Discover {
                preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
            };
            use rmcp::service::ClientServiceExt as _;
            TaskClient { tasks: true }
                .serve_with_lifecycle(StreamableHttpClientTransport::from_config(config), modern)
                .await
                .unwrap()
        }
    };
    let a = connect(TOKEN_A).await;
    let b = connect(TOKEN_B).await;
    let id = start(&a, "slow_compute", json!({"seconds": 60})).await;
    for refused in [
        b.get_task(GetTaskParams::new(&id)).await.map(|_| ()),
        b.cancel_task(CancelTaskParams::new(&id)).await,
    ] {
        assert_eq!(error_code(refused.unwrap_err()), -32602);
    }
    assert_eq!(get(&a, &id).await.task.status(), TaskStatus::Working);
    a.cancel_task(CancelTaskParams::new(&id)).await.unwrap();
    assert_eq!(
        wait_for(&a, &id, TaskStatus::Cancelled).await.task.status(),
        TaskStatus::Cancelled
    );
}

#[cfg(feature = "conformance-fixtures")]
#[tokio::test]
async fn a_finished_task_is_there_after_a_restart_and_an_interrupted_one_failed() {
    let state = tempfile::tempdir().unwrap();
    let client =
        modern_stdio_client_with(TaskClient { tasks: true }, state.path(), FIXTURES, &[]).await;
    let done = start(
        &client,
        "slow_compute",
        json!({"seconds": 0.1, "label": "kept"}),
    )
    .await;
    wait_for(&client, &done, TaskStatus::Completed).await;
    let running = start(&client, "slow_compute", json!({"seconds": 60})).await;
    client.cancel().await.unwrap(); // the server process goes with its stdio

    let client =
        modern_stdio_client_with(TaskClient { tasks: true }, state.path(), FIXTURES, &[]).await;
    let again = get(&client, &done).await;
    assert_eq!(
        completed(&again)["content"][0]["text"],
        "computed kept in 0.1 s"
    );
    let lost = get(&client, &running).await;
    let TaskPayload::Failed { error } = &lost.task.payload else {
        panic!("{lost:?}")
    };
    assert!(
        error["message"].as_str().unwrap().contains("restarted"),
        "{error:?}"
    );
}

/// One client holds at most 32 unfinished tasks: the next call is an `isError` result
/// (no task, no work) until one ends.
#[cfg(feature = "conformance-fixtures")]
#[tokio::test]
async fn a_client_holds_a_bounded_number_of_unfinished_tasks() {
    let state = tempfile::tempdir().unwrap();
    let client =
        modern_stdio_client_with(TaskClient { tasks: true }, state.path(), FIXTURES, &[]).await;
    let mut ids = Vec::new();
    for _ in 0..32 {
        ids.push(start(&client, "slow_compute", json!({"seconds": 60})).await);
    }
    let refused = client
        .call_tool_once(params("slow_compute", json!({"seconds": 60})))
        .await
        .unwrap();
    let CallToolResponse::Complete(refused) = refused else {
        panic!("a 33rd task was created: {refused:?}")
    };
    assert_eq!(refused.is_error, Some(true));
    let text = format!("{:?}", refused.content);
    assert!(text.contains("still running"), "{text}");
    client
        .cancel_task(CancelTaskParams::new(&ids[0]))
        .await
        .unwrap();
    wait_for(&client, &ids[0], TaskStatus::Cancelled).await;
    start(&client, "slow_compute", json!({"seconds": 60})).await;
}
