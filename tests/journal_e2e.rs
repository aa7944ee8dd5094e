//! The event journal through the real binary: acknowledged events survive SIGKILL, and
//! resource subscriptions are notified of new events.
#![allow(deprecated)] // resources/subscribe is legacy-only in rmcp 3.9, and still what 2025-11-25 clients use

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::*;
use rmcp::model::SubscribeRequestParams;
use serde_json::json;

const FIXTURES: &[&str] = &["--toolsets", "all", "--fsync", "batch"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = http_server_with_fixtures(dir.path());
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let recorder = acked.clone();
    // SIGKILL mid-stream
    sigkill_under_load(
        &mut server,
        8,
        Duration::from_millis(700),
        move |client, w| {
            let acked = recorder.clone();
            async move {
                for i in 0.. {
                    let args = json!({"data": {"worker": w, "i": i}});
                    let Some(event) = try_ok(&client, "test_publish_event", args).await else {
                        break;
                    };
                    let id = event["id"].as_str().unwrap().to_string();
                    acked.lock().unwrap().push(id);
                }
            }
        },
    )
    .await;
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "the workload ran ({} acknowledged)",
        acked.len()
    );

    let restarted = http_server_with_fixtures(dir.path());
    let client = http_client(&format!("{}/mcp", restarted.base), None).await;
    let mut seen = std::collections::HashSet::new();
    let mut since = 0u64;
    loop {
        let page = read_json(
            &client,
            &format!("events://fixtures.event?since_seq={since}"),
        )
        .await;
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            break;
        }
        for e in events {
            seen.insert(e["id"].as_str().unwrap().to_string());
        }
        since = page["next_seq"].as_u64().unwrap();
    }
    let lost: Vec<&String> = acked.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged events lost after SIGKILL",
        lost.len(),
        acked.len()
    );
    client.cancel().await.unwrap();
}

fn http_server_with_fixtures(dir: &std::path::Path) -> HttpServer {
    http_server_serving(dir, FIXTURES, &["--conformance-fixtures"], &[])
}

#[tokio::test]
async fn subscribed_event_resource_is_notified() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> = FIXTURES
        .iter()
        .copied()
        .chain(["serve", "--conformance-fixtures"])
        .collect();
    let recorder = UpdatedUris::default();
    let client = stdio_client_with(recorder.clone(), dir.path(), &args, &[]).await;
    let uri = "events://fixtures.*";
    client
        .subscribe(SubscribeRequestParams::new(uri))
        .await
        .unwrap();
    let args = json!({"data": {"hello": "world"}})
        .as_object()
        .cloned()
        .unwrap();
    let r = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("test_publish_event").with_arguments(args),
        )
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(false));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while recorder.0.lock().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no resources/updated notification"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(recorder.0.lock().unwrap()[0], uri);
    let page = read_json(&client, uri).await;
    assert_eq!(page["events"][0]["data"]["hello"], "world");
    assert_eq!(page["events"][0]["type"], "fixtures.event");
    client.cancel().await.unwrap();
}
