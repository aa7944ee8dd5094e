//! `--dynamic-toolsets` through real rmcp clients: a small first `tools/list`, enabling a
//! toolset or one github group per session with `notifications/tools/list_changed`,
//! sessions kept apart over HTTP, and the error stateless HTTP answers.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};
use std::time::Duration;

use rmcp::{
    ClientHandler, RoleClient, ServiceExt,
    model::ListToolsResult,
    service::{NotificationContext, RunningService},
    transport::StreamableHttpClientTransport,
};
use serde_json::json;

use crate::common::{self, *};

/// Counts `notifications/tools/list_changed`.
#[derive(Clone, Default)]
struct ListChanged(Arc<AtomicUsize>);

impl ClientHandler for ListChanged {
    async fn on_tool_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl ListChanged {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

const DISCOVERY: [&str; 3] = [
    "list_available_toolsets",
    "get_toolset_tools",
    "enable_toolset",
];

async fn names<H: ClientHandler>(client: &RunningService<RoleClient, H>) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

/// Bytes of the `tools/list` result as sent.
async fn list_bytes<H: ClientHandler>(client: &RunningService<RoleClient, H>) -> usize {
    let mut result = ListToolsResult::default();
    result.tools = client.list_all_tools().await.unwrap();
    serde_json::to_string(&result).unwrap().len()
}

fn diff_args() -> serde_json::Value {
    json!({"path": "a.txt", "before": "one\n", "after": "two\n"})
}

#[tokio::test]
async fn stdio_starts_small_and_enables_a_toolset_for_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let changed = ListChanged::default();
    let client = stdio_client_with(
        changed.clone(),
        dir.path(),
        &["--dynamic-toolsets", "serve"],
        &[],
    )
    .await;
    let caps = client.peer_info().unwrap().capabilities.clone();
    assert_eq!(
        caps.tools.and_then(|t| t.list_changed),
        Some(true),
        "dynamic mode advertises tools.listChanged"
    );

    let bytes = list_bytes(&client).await;
    println!("first tools/list in dynamic mode: {bytes} bytes");
    assert!(bytes <= 8 * 1024, "first tools/list is {bytes} bytes");
    assert_eq!(names(&client).await, DISCOVERY);

    let available = ok(&client, "list_available_toolsets", json!({})).await;
    let patchkit = available["toolsets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "patchkit")
        .cloned()
        .expect("patchkit is available");
    assert_eq!(patchkit["enabled"], false);
    assert!(patchkit["tools"].as_u64().unwrap() > 3, "{patchkit}");

    let listed = ok(&client, "get_toolset_tools", json!({"toolset": "patchkit"})).await;
    assert!(
        listed["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "create_diff" && !t["description"].as_str().unwrap().is_empty()),
        "{listed}"
    );

    let refused = err(&client, "create_diff", diff_args()).await;
    assert!(
        refused.contains("enable_toolset") && refused.contains("patchkit"),
        "{refused}"
    );
    let unknown = err(&client, "enable_toolset", json!({"toolset": "nope"})).await;
    assert!(
        unknown.contains("patchkit"),
        "names the known ones: {unknown}"
    );

    let enabled = ok(&client, "enable_toolset", json!({"toolset": "patchkit"})).await;
    assert_eq!(enabled["already_enabled"], false);
    wait_until("tools/list_changed", Duration::from_secs(10), || {
        changed.count() == 1
    })
    .await;
    let after = names(&client).await;
    assert!(after.iter().any(|n| n == "create_diff"), "{after:?}");
    assert!(
        !after.iter().any(|n| n == "get_issue"),
        "only patchkit was enabled: {after:?}"
    );
    let diff = ok(&client, "create_diff", diff_args()).await;
    assert!(diff["diff"].as_str().unwrap().contains("+two"), "{diff}");

    let again = ok(&client, "enable_toolset", json!({"toolset": "patchkit"})).await;
    assert_eq!(again["already_enabled"], true);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn toolsets_named_with_dynamic_mode_start_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client(
        dir.path(),
        &["--dynamic-toolsets", "--toolsets", "patchkit", "serve"],
    )
    .await;
    let listed = names(&client).await;
    assert_eq!(listed[..3], DISCOVERY);
    assert!(listed.iter().any(|n| n == "create_diff"), "{listed:?}");
    let diff = ok(&client, "create_diff", diff_args()).await;
    assert!(diff["diff"].as_str().unwrap().contains("+two"));
    let info = client.peer_info().unwrap();
    let instructions = info.instructions.as_deref().unwrap_or("");
    assert!(
        instructions.contains("patchkit") && instructions.contains("enable_toolset"),
        "{instructions}"
    );
    client.cancel().await.unwrap();
}

async fn session_client(
    url: &str,
    handler: ListChanged,
) -> RunningService<RoleClient, ListChanged> {
    handler
        .serve(StreamableHttpClientTransport::from_uri(url.to_string()))
        .await
        .expect("initialize over HTTP")
}

#[tokio::test]
async fn http_sessions_enable_toolsets_each_for_itself() {
    let dir = tempfile::tempdir().unwrap();
    let server = http_server(dir.path(), &["--dynamic-toolsets", "--http-sessions"], &[]);
    let url = format!("{}/mcp", server.base);
    let (a_changed, b_changed) = (ListChanged::default(), ListChanged::default());
    let a = session_client(&url, a_changed.clone()).await;
    let b = session_client(&url, b_changed.clone()).await;
    assert_eq!(names(&a).await, DISCOVERY);
    assert_eq!(names(&b).await, DISCOVERY);

    ok(&a, "enable_toolset", json!({"toolset": "patchkit"})).await;
    wait_until("tools/list_changed", Duration::from_secs(10), || {
        a_changed.count() == 1
    })
    .await;
    let a_names = names(&a).await;
    assert!(a_names.iter().any(|n| n == "create_diff"), "{a_names:?}");
    ok(&a, "create_diff", diff_args()).await;

    assert_eq!(names(&b).await, DISCOVERY, "the other session is unchanged");
    let refused = err(&b, "create_diff", diff_args()).await;
    assert!(refused.contains("enable_toolset"), "{refused}");
    assert_eq!(b_changed.count(), 0);
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}

#[tokio::test]
async fn stateless_http_cannot_enable_and_says_to_use_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let server = http_server(dir.path(), &["--dynamic-toolsets"], &[]);
    let client = common::http_client(&format!("{}/mcp", server.base), None).await;
    assert_eq!(names(&client).await, DISCOVERY);
    let available = ok(&client, "list_available_toolsets", json!({})).await;
    assert!(available["toolsets"].as_array().unwrap().len() >= 5);
    let refused = err(&client, "enable_toolset", json!({"toolset": "patchkit"})).await;
    assert!(refused.contains("--http-sessions"), "{refused}");
    assert_eq!(names(&client).await, DISCOVERY);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_session_enables_one_github_group_then_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let changed = ListChanged::default();
    let client = stdio_client_with(
        changed.clone(),
        dir.path(),
        &["--dynamic-toolsets", "serve"],
        &[],
    )
    .await;
    let bytes = list_bytes(&client).await;
    assert!(bytes <= 8 * 1024, "first tools/list is {bytes} bytes");

    let available = ok(&client, "list_available_toolsets", json!({})).await;
    let actions = available["toolsets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "github.actions")
        .cloned()
        .unwrap_or_else(|| panic!("github.actions is listed: {available}"));
    assert_eq!(actions["part_of"], "github");
    assert_eq!(actions["enabled"], false);
    let count = actions["tools"].as_u64().unwrap() as usize;

    let listed = ok(
        &client,
        "get_toolset_tools",
        json!({"toolset": "github.actions"}),
    )
    .await;
    let group: Vec<String> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(group.len(), count);
    assert!(group.iter().any(|n| n == "get_job_logs"), "{group:?}");

    let enabled = ok(
        &client,
        "enable_toolset",
        json!({"toolset": "github.actions"}),
    )
    .await;
    assert_eq!(enabled["already_enabled"], false);
    wait_until("tools/list_changed", Duration::from_secs(10), || {
        changed.count() == 1
    })
    .await;
    let after = names(&client).await;
    assert_eq!(after[..3], DISCOVERY);
    assert_eq!(after[3..].to_vec(), group, "exactly the group's tools");

    let refused = err(
        &client,
        "get_issue",
        json!({"repository": "o/r", "number": 1}),
    )
    .await;
    assert!(
        refused.contains("enable_toolset") && refused.contains("github.issues"),
        "{refused}"
    );

    ok(&client, "enable_toolset", json!({"toolset": "github"})).await;
    wait_until("tools/list_changed", Duration::from_secs(10), || {
        changed.count() == 2
    })
    .await;
    let all = names(&client).await;
    assert!(
        all.iter().any(|n| n == "get_issue") && all.iter().any(|n| n == "get_job_logs"),
        "{all:?}"
    );
    let again = ok(
        &client,
        "enable_toolset",
        json!({"toolset": "github.issues"}),
    )
    .await;
    assert_eq!(again["already_enabled"], true, "github took its groups in");
    assert_eq!(changed.count(), 2);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_group_named_with_dynamic_mode_starts_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client(
        dir.path(),
        &["--dynamic-toolsets", "--toolsets", "github.pulls", "serve"],
    )
    .await;
    let listed = names(&client).await;
    assert!(
        listed.iter().any(|n| n == "merge_pull_request"),
        "{listed:?}"
    );
    assert!(!listed.iter().any(|n| n == "get_issue"), "{listed:?}");
    let available = ok(&client, "list_available_toolsets", json!({})).await;
    let enabled: Vec<&str> = available["toolsets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["enabled"] == true)
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(enabled, ["github.pulls"]);
    let instructions = client
        .peer_info()
        .and_then(|i| i.instructions.clone())
        .unwrap_or_default();
    assert!(
        instructions.contains("github.pulls") && !instructions.contains("github.issues ("),
        "{instructions}"
    );
    client.cancel().await.unwrap();
}
