//! Damaged state through the real binary and a real MCP client: a corrupt record in the
//! middle of a journal, a damaged `credentials.json`, and a toolset whose state cannot
//! load at all never stop the server; the bad bytes are moved aside, every good record
//! is served, and the damage is reported in `cortex://health` and the mvp `health` tool.

use crate::common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{Value, json};

fn task_input(title: &str) -> Value {
    json!({"title": title, "brief": "b", "inputs": [], "scopes": ["repo"]})
}

/// Files in `dir` whose name starts with `prefix`.
fn files_starting(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect()
}

/// The `damage` entries of `cortex://health` whose `file` ends with `suffix`.
async fn health_damage(client: &Client, suffix: &str) -> Vec<Value> {
    let health = read_json(client, "cortex://health").await;
    assert_eq!(health["status"], "degraded", "{health}");
    health["damage"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["file"].as_str().unwrap().ends_with(suffix))
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_corrupt_journal_record_is_quarantined_and_every_good_one_served() {
    let dir = tempfile::tempdir().unwrap();
    let args = &["--toolsets", "asbr,mvp", "--fsync", "always"];
    let client = stdio_client(dir.path(), args).await;
    let health = read_json(&client, "cortex://health").await;
    assert_eq!(health, json!({"status": "ok", "damage": []}));
    let mut ids = Vec::new();
    for title in ["first", "second", "third"] {
        let t = ok(&client, "create_task", json!({"input": task_input(title)})).await;
        ids.push(t["id"].as_str().unwrap().to_string());
    }
    client.cancel().await.unwrap();

    // A corrupt line between the first and the second task's events.
    let journal = dir.path().join("events/asbr.ndjson");
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    lines.insert(1, "{\"seq\":2,\"rec\":{\"id\":\"torn");
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();

    let client = stdio_client(dir.path(), args).await;
    for id in &ids {
        let t = ok(&client, "get_task", json!({"taskId": id})).await;
        assert_eq!(t["status"], "queued");
    }
    let moved = files_starting(&dir.path().join("events"), "asbr.quarantine-");
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(
        std::fs::read_to_string(&moved[0]).unwrap(),
        "{\"seq\":2,\"rec\":{\"id\":\"torn\n"
    );
    assert_eq!(std::fs::read_to_string(&journal).unwrap(), text);

    let damage = health_damage(&client, "asbr.ndjson").await;
    assert_eq!(damage.len(), 1, "{damage:?}");
    assert_eq!(damage[0]["records"], 1);
    assert_eq!(damage[0]["quarantine"], moved[0].display().to_string());
    let h = ok(&client, "health", json!({})).await;
    assert_eq!(h["status"], "degraded");
    assert!(
        h["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("asbr.quarantine-")),
        "{h}"
    );
    // The server keeps publishing on the repaired stream.
    ok(
        &client,
        "create_task",
        json!({"input": task_input("fourth")}),
    )
    .await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_damaged_credential_file_is_moved_aside_and_named_by_calls_that_need_it() {
    let dir = tempfile::tempdir().unwrap();
    let args = &["--toolsets", "integrations", "--fsync", "never"];
    let client = stdio_client(dir.path(), args).await;
    let made = ok(
        &client,
        "create_integration",
        // No retries: the endpoint refuses connections, and the default policy would
        // spend 7 s backing off before the call below answers.
        json!({"name": "svc", "type": "api", "config": {"endpoint": "http://127.0.0.1:9", "credentials": {"token": "s3cret-value"}, "retryPolicy": {"maxRetries": 0}}}),
    )
    .await;
    let id = made["id"].as_str().unwrap().to_string();
    client.cancel().await.unwrap();

    let vault = dir.path().join("integrations/credentials.json");
    std::fs::write(&vault, b"{\"int-1\": {\"token\": \"s3cr").unwrap();

    let client = stdio_client(dir.path(), args).await;
    let listed = ok(&client, "list_integrations", json!({})).await;
    assert!(listed.to_string().contains(&id), "{listed}");
    let e = err(
        &client,
        "execute_integration",
        json!({"integrationId": id, "operation": "GET /x"}),
    )
    .await;
    assert!(
        e.contains("credentials were lost") && e.contains("credentials.json.quarantine-"),
        "{e}"
    );
    let moved = files_starting(
        &dir.path().join("integrations"),
        "credentials.json.quarantine-",
    );
    assert_eq!(moved.len(), 1);
    assert!(!vault.exists());
    assert_eq!(health_damage(&client, "credentials.json").await.len(), 1);

    // Giving the credential again makes the integration usable.
    ok(
        &client,
        "update_integration",
        json!({"integrationId": id, "config": {"credentials": {"token": "s3cret-value"}}}),
    )
    .await;
    let e = err(
        &client,
        "execute_integration",
        json!({"integrationId": id, "operation": "GET /x"}),
    )
    .await;
    assert!(!e.contains("credentials were lost"), "{e}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_toolset_whose_state_cannot_load_answers_is_error_and_the_rest_serve() {
    let dir = tempfile::tempdir().unwrap();
    // The tasks journal is a directory: the asbr toolset cannot open it.
    std::fs::create_dir_all(dir.path().join("asbr/tasks.ndjson")).unwrap();
    let client = stdio_client(dir.path(), &["--toolsets", "asbr,patchkit"]).await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "get_task"));
    let e = err(&client, "create_task", json!({"input": task_input("x")})).await;
    assert!(
        e.contains("asbr toolset is unavailable") && e.contains("tasks"),
        "{e}"
    );
    let damage = health_damage(&client, "asbr").await;
    assert_eq!(damage.len(), 1, "{damage:?}");
    // Another toolset still works.
    let patch = "--- a/f.txt\n+++ b/f.txt\n@@ -1 +1 @@\n-a\n+b\n";
    let r = call(&client, "parse_patch", json!({"diff": patch})).await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    client.cancel().await.unwrap();
}
