//! The event journal through the real binary: acknowledged events survive SIGKILL, and
//! resource subscriptions are notified of new events.
#![allow(deprecated)] // resources/subscribe is legacy-only in rmcp 3.9, and still what 2025-11-25 clients use

use crate::common;

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
    let (recorder, counter) = (acked.clone(), acked.clone());
    // SIGKILL mid-stream
    sigkill_under_load(
        &mut server,
        8,
        Duration::from_millis(700),
        move || counter.lock().unwrap().len() > 60,
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

/// Seqs of the events `events://fixtures.event?since_seq={since}` returns (one page).
async fn page_seqs(
    client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    since: u64,
) -> Vec<u64> {
    let page = read_json(
        client,
        &format!("events://fixtures.event?since_seq={since}"),
    )
    .await;
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}

async fn publish(client: &rmcp::service::RunningService<rmcp::RoleClient, ()>, i: u64) -> u64 {
    let args = json!({"data": {"after": i}}).as_object().cloned().unwrap();
    let call = rmcp::model::CallToolRequestParams::new("test_publish_event").with_arguments(args);
    let r = client.call_tool(call).await.unwrap();
    assert_eq!(r.is_error, Some(false));
    r.structured_content.unwrap()["seq"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_past_its_segment_size_is_compacted_and_restarts_the_same() {
    use cortex_mcp::runtime::{
        events::{BusOptions, EventBus},
        journal::FsyncPolicy,
    };
    // 12,500 events of ~6 KB: past the 64 MiB segment size, and 2,500 more than the
    // 10,000 the ring of their type holds.
    let dir = tempfile::tempdir().unwrap();
    let events_dir = dir.path().join("events");
    let never = BusOptions {
        max_segment_bytes: u64::MAX,
        ..BusOptions::new(FsyncPolicy::Never)
    };
    let bus = EventBus::with_options(Some(events_dir.clone()), never).unwrap();
    let pad = "x".repeat(6000);
    for i in 0..12_500u64 {
        let data = json!({"i": i, "pad": pad});
        bus.publish_value("fixtures.event", "test", data)
            .await
            .unwrap();
    }
    bus.close().await;
    drop(bus);
    let segment = events_dir.join("fixtures.ndjson");
    assert!(std::fs::metadata(&segment).unwrap().len() > 64 << 20);

    let mut server = http_server_with_fixtures(dir.path());
    let client = http_client(&format!("{}/mcp", server.base), None).await;
    let oldest = page_seqs(&client, 0).await;
    assert_eq!(oldest[0], 2_501, "the ring holds the newest 10,000");
    assert_eq!(publish(&client, 0).await, 12_501);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&segment).unwrap().len() > 64 << 20 {
        assert!(std::time::Instant::now() < deadline, "no compaction");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(publish(&client, 1).await, 12_502);
    let oldest = page_seqs(&client, 0).await;
    let newest = page_seqs(&client, 12_400).await;
    assert_eq!(newest.last(), Some(&12_502));
    server.child.kill().unwrap(); // SIGKILL
    let _ = server.child.wait();
    let snapshot = events_dir.join("fixtures.snapshot.json");
    assert!(snapshot.exists());
    assert!(std::fs::metadata(&segment).unwrap().len() < 1 << 20);

    let restarted = http_server_with_fixtures(dir.path());
    let client = http_client(&format!("{}/mcp", restarted.base), None).await;
    assert_eq!(page_seqs(&client, 0).await, oldest);
    assert_eq!(page_seqs(&client, 12_400).await, newest);
    assert_eq!(publish(&client, 2).await, 12_503, "seq continues");
    client.cancel().await.unwrap();
}
