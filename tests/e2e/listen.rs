//! `subscriptions/listen` and per-request logging through rmcp's client speaking
//! protocol 2026-07-28 (server/discover, no initialize): over stdio and over stateless
//! HTTP (where the listen stream is the response stream of the listen request).
#![allow(deprecated)] // LoggingLevel is deprecated by SEP-2577; per-request logLevel is what it keeps

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::{
    ClientHandler, ClientLifecycleMode, RoleClient,
    model::{
        CallToolRequestParams, GetMeta, LoggingLevel, LoggingMessageNotificationParam,
        ProtocolVersion, RequestMetaObject, ServerNotification, SubscriptionFilter,
    },
    service::{ClientServiceExt, NotificationContext, RunningService, Subscription},
    transport::{
        StreamableHttpClientTransport, TokioChildProcess,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

use crate::common::{BIN, call, http_server, structured, wait_until};

const TOKEN_A: &str = "listen-a-token-0123456789";
const TOKEN_B: &str = "listen-b-token-9876543210";

fn modern() -> ClientLifecycleMode {
    ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    }
}

/// Collects the data of `notifications/message`.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<Value>>>);

impl ClientHandler for Logs {
    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _ctx: NotificationContext<RoleClient>,
    ) {
        self.0.lock().unwrap().push(params.data);
    }
}

async fn modern_stdio<H: ClientHandler>(
    handler: H,
    state: &std::path::Path,
    args: &[&str],
) -> RunningService<RoleClient, H> {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("--state-dir").arg(state).args(args);
    cmd.env_remove("RUST_LOG");
    let (child, _) = TokioChildProcess::builder(cmd)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn cortex-mcp");
    handler
        .serve_with_lifecycle(child, modern())
        .await
        .expect("server/discover over stdio")
}

/// An asbr server over stateless HTTP taking TOKEN_A and TOKEN_B, and a 2026-07-28
/// client for each.
async fn two_token_server(
    state: &std::path::Path,
) -> (
    crate::common::HttpServer,
    RunningService<RoleClient, ()>,
    RunningService<RoleClient, ()>,
) {
    let server = http_server(
        state,
        &[
            "--toolsets",
            "asbr",
            "--auth-token",
            TOKEN_A,
            "--auth-tokens",
            TOKEN_B,
        ],
        &[],
    );
    let url = format!("{}/mcp", server.base);
    let a = modern_http(&url, TOKEN_A).await;
    let b = modern_http(&url, TOKEN_B).await;
    (server, a, b)
}

async fn modern_http(url: &str, token: &str) -> RunningService<RoleClient, ()> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_string())
        .auth_header(token.to_string());
    ().serve_with_lifecycle(StreamableHttpClientTransport::from_config(config), modern())
        .await
        .expect("server/discover over HTTP")
}

fn task_input(title: &str) -> Value {
    json!({"title": title, "brief": "do it", "inputs": [{"kind": "text", "value": "x"}], "scopes": ["repo:read", "docs"]})
}

async fn create_task(client: &rmcp::Peer<RoleClient>, title: &str) -> String {
    let r = call(client, "create_task", json!({"input": task_input(title)})).await;
    assert_ne!(r.is_error, Some(true), "{r:?}");
    structured(&r)["id"].as_str().unwrap().to_string()
}

async fn record(client: &rmcp::Peer<RoleClient>, task: &str, kind: &str) {
    let r = call(
        client,
        "record_task_event",
        json!({"taskId": task, "type": kind, "step": "s"}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{r:?}");
}

/// The URI of the next `notifications/resources/updated` on `sub`, checking that it is
/// tagged with the stream's id.
async fn next_updated(sub: &mut Subscription) -> String {
    let note = tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .expect("no notification on the listen stream")
        .expect("listen stream failed")
        .expect("listen stream ended");
    assert_eq!(note.get_meta().subscription_id().as_ref(), Some(sub.id()));
    match note {
        ServerNotification::ResourceUpdatedNotification(n) => n.params.uri,
        other => panic!("expected resources/updated, got {other:?}"),
    }
}

#[tokio::test]
async fn listen_over_stdio_delivers_event_and_task_updates() {
    let dir = tempfile::tempdir().unwrap();
    let client = modern_stdio((), dir.path(), &["--toolsets", "asbr"]).await;
    let info = client.peer_info().expect("discovered");
    assert_eq!(
        info.capabilities.resources.as_ref().unwrap().subscribe,
        Some(true)
    );
    let id = create_task(&client, "listened").await;
    let task_uri = format!("asbr://tasks/{id}/events");
    let mut sub = client
        .listen(
            SubscriptionFilter::builder()
                .resource_subscriptions([
                    "events://asbr.task.*",
                    task_uri.as_str(),
                    "cortex://config",
                    "asbr://tasks/x/other",
                ])
                .tools_list_changed()
                .build(),
        )
        .await
        .expect("listen acknowledged");
    // Only what can change is acknowledged.
    assert_eq!(
        sub.acknowledged(),
        &SubscriptionFilter::builder()
            .resource_subscriptions(["events://asbr.task.*", task_uri.as_str()])
            .build()
    );
    let step = call(
        &client,
        "record_task_event",
        json!({"taskId": id, "type": "StepCompleted", "step": "s1"}),
    )
    .await;
    assert_ne!(step.is_error, Some(true), "{step:?}");
    let mut got = vec![next_updated(&mut sub).await, next_updated(&mut sub).await];
    got.sort();
    let mut want = vec!["events://asbr.task.*".to_string(), task_uri.clone()];
    want.sort();
    assert_eq!(got, want);
    drop(sub);
    // The listen stream ended; the session goes on.
    let again = create_task(&client, "after").await;
    assert_ne!(again, id);
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_over_stateless_http_respects_ownership() {
    let state = tempfile::tempdir().unwrap();
    let (_server, a, b) = two_token_server(state.path()).await;
    let theirs = create_task(&a, "a only").await;
    let mine = create_task(&b, "b only").await;
    let (theirs_uri, mine_uri) = (
        format!("asbr://tasks/{theirs}/events"),
        format!("asbr://tasks/{mine}/events"),
    );
    let mut sub = b
        .listen(
            SubscriptionFilter::builder()
                .resource_subscriptions([
                    "events://asbr.task.StepCompleted",
                    "events://asbr.task.AwaitingApproval",
                    theirs_uri.as_str(),
                    mine_uri.as_str(),
                ])
                .build(),
        )
        .await
        .expect("listen acknowledged over stateless HTTP");
    // An event of A's task, on its topic and on the task's URI: not B's to hear about.
    record(&a, &theirs, "StepCompleted").await;
    // B's own event, on other URIs, comes after it: the first two updates B hears of
    // are its own (were A's let through, they would come first).
    record(&b, &mine, "AwaitingApproval").await;
    let mut got = vec![next_updated(&mut sub).await, next_updated(&mut sub).await];
    got.sort();
    let mut want = vec!["events://asbr.task.AwaitingApproval".to_string(), mine_uri];
    want.sort();
    assert_eq!(got, want, "B was told of A's event");
    drop(sub);
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}

#[tokio::test]
async fn modern_requests_get_log_messages_only_when_they_ask() {
    let dir = tempfile::tempdir().unwrap();
    let logs = Logs::default();
    let client = modern_stdio(
        logs.clone(),
        dir.path(),
        &["--toolsets", "asbr", "serve", "--conformance-fixtures"],
    )
    .await;
    let with_level = |level: Option<LoggingLevel>| {
        let mut params = CallToolRequestParams::new("test_logging_tool");
        if let Some(level) = level {
            let mut meta = RequestMetaObject::default();
            meta.set_log_level(level);
            params.meta = Some(meta);
        }
        params
    };
    // No level, and a level above the message's: no log. Then two calls asking for
    // info: their two logs come after anything the first two could have sent.
    for level in [
        None,
        Some(LoggingLevel::Error),
        Some(LoggingLevel::Info),
        Some(LoggingLevel::Debug),
    ] {
        let r = client.call_tool(with_level(level)).await.unwrap();
        assert_ne!(r.is_error, Some(true), "{r:?}");
    }
    wait_until("two log messages", Duration::from_secs(10), || {
        logs.0.lock().unwrap().len() >= 2
    })
    .await;
    assert_eq!(
        *logs.0.lock().unwrap(),
        vec![
            json!("test_logging_tool ran"),
            json!("test_logging_tool ran")
        ]
    );
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_subscribe_is_offered_where_it_works() {
    let subscribe = |client: &RunningService<RoleClient, ()>| {
        client
            .peer_info()
            .and_then(|info| info.capabilities.resources.clone())
            .and_then(|resources| resources.subscribe)
    };
    for (flags, legacy_subscribe) in [
        (&["--toolsets", "asbr"][..], None),
        (&["--toolsets", "asbr", "--http-sessions"][..], Some(true)),
    ] {
        let state = tempfile::tempdir().unwrap();
        let server = http_server(state.path(), flags, &[]);
        let url = format!("{}/mcp", server.base);
        // 2025-11-25 over stateless HTTP: resources/subscribe is refused, so not offered.
        let legacy = crate::common::http_client(&url, None).await;
        assert_eq!(subscribe(&legacy), legacy_subscribe, "{flags:?}");
        legacy.cancel().await.unwrap();
        // 2026-07-28: subscriptions/listen works in both modes.
        let config = StreamableHttpClientTransportConfig::with_uri(url.clone());
        let modern =
            ().serve_with_lifecycle(StreamableHttpClientTransport::from_config(config), modern())
                .await
                .unwrap();
        assert_eq!(subscribe(&modern), Some(true), "{flags:?}");
        modern.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn dynamic_tool_list_changes_arrive_on_listen_streams() {
    let dir = tempfile::tempdir().unwrap();
    let client = modern_stdio((), dir.path(), &["--dynamic-toolsets", "serve"]).await;
    let mut sub = client
        .listen(
            SubscriptionFilter::builder()
                .tools_list_changed()
                .prompts_list_changed()
                .build(),
        )
        .await
        .expect("listen acknowledged");
    assert_eq!(
        sub.acknowledged(),
        &SubscriptionFilter::builder().tools_list_changed().build()
    );
    let r = call(&client, "enable_toolset", json!({"toolset": "patchkit"})).await;
    assert_ne!(r.is_error, Some(true), "{r:?}");
    let note = tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .expect("no notification on the listen stream")
        .expect("listen stream failed")
        .expect("listen stream ended");
    assert!(
        matches!(note, ServerNotification::ToolListChangedNotification(_)),
        "{note:?}"
    );
    assert_eq!(note.get_meta().subscription_id().as_ref(), Some(sub.id()));
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "create_diff"));
    drop(sub);
    client.cancel().await.unwrap();
}

/// `completion/complete` offers a caller its own task ids for `asbr://tasks/{id}/events`
/// and the topics it has events on for `events://{topic}`, never another token's.
#[tokio::test]
async fn completion_offers_only_what_the_caller_may_see() {
    use rmcp::model::{ArgumentInfo, CompleteRequestParams, Reference};
    let state = tempfile::tempdir().unwrap();
    let (_server, a, b) = two_token_server(state.path()).await;
    let theirs = create_task(&a, "a only").await;
    let mine = create_task(&b, "b only").await;
    let complete = |client: &RunningService<RoleClient, ()>, uri: &str, arg: &str, value: &str| {
        let request =
            CompleteRequestParams::new(Reference::for_resource(uri), ArgumentInfo::new(arg, value));
        let peer = client.peer().clone();
        async move { peer.complete(request).await.unwrap().completion }
    };
    let ids = complete(&b, "asbr://tasks/{id}/events", "id", "").await;
    assert_eq!(
        ids.values,
        std::slice::from_ref(&mine),
        "B sees its own task only"
    );
    assert_eq!(ids.has_more, Some(false));
    let none = complete(
        &b,
        "asbr://tasks/{id}/events",
        "id",
        &theirs[..theirs.len() - 1],
    )
    .await;
    assert!(none.values.is_empty(), "{none:?}");
    let ids = complete(&a, "asbr://tasks/{id}/events", "id", &theirs[..8]).await;
    assert!(ids.values.contains(&theirs), "{ids:?}");
    assert!(!ids.values.contains(&mine), "{ids:?}");

    let topics = complete(&b, "events://{topic}", "topic", "asbr.task.").await;
    assert!(
        topics.values.iter().all(|t| t.starts_with("asbr.task.")) && !topics.values.is_empty(),
        "{topics:?}"
    );
    let unknown = b
        .peer()
        .complete(CompleteRequestParams::new(
            Reference::for_resource("nope://{x}"),
            ArgumentInfo::new("x", ""),
        ))
        .await
        .unwrap_err();
    assert!(
        unknown.to_string().contains("resources/templates/list"),
        "{unknown}"
    );
}
