//! The asbr toolset through the real binary and a real MCP client: idempotent task
//! creation, the state machine, long polls, resource subscriptions, durability under
//! SIGKILL, and the cached, signed connector service map.
#![allow(deprecated)] // resources/subscribe is legacy-only in rmcp 3.9

use crate::common;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::*;
use rmcp::model::{CallToolResult, SubscribeRequestParams};
use serde_json::{Value, json};

const ASBR: &[&str] = &["--toolsets", "asbr", "--fsync", "batch"];

fn ok(r: &CallToolResult) -> Value {
    assert_ne!(r.is_error, Some(true), "tool error: {}", text(r));
    r.structured_content.clone().expect("structured content")
}

fn err(r: &CallToolResult) -> String {
    assert_eq!(r.is_error, Some(true), "expected an error, got {}", text(r));
    text(r)
}

/// `record_task_event` of a `kind` event at `step` of task `id`.
async fn record_step(
    client: &rmcp::Peer<rmcp::RoleClient>,
    id: &str,
    kind: &str,
    step: &str,
) -> CallToolResult {
    call(
        client,
        "record_task_event",
        json!({"taskId": id, "type": kind, "step": step}),
    )
    .await
}

/// Asserts that every rule in `want` has a finding in `findings`.
#[track_caller]
fn assert_rules_found(findings: &[Value], want: &[&str]) {
    let rules: std::collections::BTreeSet<&str> = findings
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for want in want {
        assert!(rules.contains(want), "missing {want}: {rules:?}");
    }
}

fn task_input(title: &str) -> Value {
    json!({"title": title, "brief": "do it", "inputs": [{"kind": "text", "value": "x"}], "scopes": ["repo:read", "docs"]})
}

#[tokio::test]
async fn tasks_are_idempotent_and_follow_the_state_machine() {
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client(dir.path(), ASBR).await;

    let a = ok(&call(&client, "create_task", json!({"input": task_input("one")})).await);
    assert_eq!(a["status"], "queued");
    assert_eq!(a["reused"], false);
    let key = a["idempotencyKey"].as_str().unwrap();
    assert_eq!(key.len(), 16);
    // same content, scopes in another order → same task
    let mut again = task_input("one");
    again["scopes"] = json!(["docs", "repo:read"]);
    let b = ok(&call(&client, "create_task", json!({"input": again})).await);
    assert_eq!(b["id"], a["id"]);
    assert_eq!(b["reused"], true);
    let explicit = ok(&call(
        &client,
        "create_task",
        json!({"input": task_input("one"), "idempotencyKey": "k-1"}),
    )
    .await);
    assert_ne!(explicit["id"], a["id"]);

    let mut empty = task_input("x");
    empty["scopes"] = json!([]);
    let e = err(&call(&client, "create_task", json!({"input": empty})).await);
    assert!(e.contains("scopes"), "{e}");

    let id = a["id"].as_str().unwrap();
    let e = err(&call(&client, "resume_task", json!({"taskId": id})).await);
    assert!(e.contains("queued"), "{e}");
    let r = ok(&record_step(&client, id, "StepCompleted", "plan").await);
    assert_eq!(r["task"]["status"], "running");
    let r = ok(&record_step(&client, id, "AwaitingApproval", "apply").await);
    assert_eq!(r["task"]["status"], "paused");
    let e = err(&record_step(&client, id, "StepCompleted", "apply").await);
    assert!(e.contains("paused"), "{e}");
    // A step waiting for approval cannot be skipped with resume_task.
    let e = err(&call(&client, "resume_task", json!({"taskId": id})).await);
    assert!(
        e.contains("approve_task_step") && e.contains("apply"),
        "{e}"
    );
    let t = ok(&call(&client, "get_task", json!({"taskId": id})).await);
    assert_eq!(t["status"], "paused");
    assert_eq!(t["approvals"], json!([]));
    let e = err(&call(
        &client,
        "approve_task_step",
        json!({"taskId": id, "step": "other", "by": "user"}),
    )
    .await);
    assert!(e.contains("apply"), "{e}");
    let t = ok(&call(
        &client,
        "approve_task_step",
        json!({"taskId": id, "step": "apply", "by": "user"}),
    )
    .await);
    assert_eq!(t["status"], "running");
    // Recorded under the authenticated caller (stdio here); the claimed role is a label.
    assert_eq!(t["approvals"][0]["by"], "stdio");
    assert_eq!(t["approvals"][0]["label"], "user");
    let r = ok(&call(
        &client,
        "record_task_event",
        json!({"taskId": id, "type": "DeliverableReady", "data": {"artifacts": ["sha256:00"]}}),
    )
    .await);
    assert_eq!(r["task"]["status"], "succeeded");
    assert_eq!(r["task"]["artifacts"][0], "sha256:00");
    let e = err(&call(&client, "cancel_task", json!({"taskId": id})).await);
    assert!(e.contains("succeeded"), "{e}");

    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut params = rmcp::model::CallToolRequestParams::new("cancel_task").with_arguments(
        json!({"taskId": explicit["id"]})
            .as_object()
            .cloned()
            .unwrap(),
    );
    params
        .meta
        .get_or_insert_with(Default::default)
        .insert("traceparent".into(), json!(tp));
    let canceled = client.call_tool(params).await.unwrap();
    assert_eq!(ok(&canceled)["status"], "canceled");

    let w = ok(&call(&client, "watch_task_events", json!({"taskId": id})).await);
    let kinds: Vec<&str> = w["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "PlanStarted",
            "StepCompleted",
            "AwaitingApproval",
            "Resumed",
            "DeliverableReady"
        ]
    );
    for e in w["events"].as_array().unwrap() {
        assert!(!e["data"]["ariaLiveHint"].as_str().unwrap().is_empty());
        assert_eq!(e["data"]["traceparent"].as_str().unwrap().len(), 55);
    }
    let all = ok(&call(&client, "watch_task_events", json!({"types": ["Canceled"]})).await);
    assert_eq!(all["events"][0]["data"]["traceparent"], tp);

    let list = ok(&call(&client, "list_tasks", json!({"limit": 1})).await);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let rest = ok(&call(
        &client,
        "list_tasks",
        json!({"limit": 10, "cursor": list["next_cursor"]}),
    )
    .await);
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    let done = ok(&call(&client, "list_tasks", json!({"status": "succeeded"})).await);
    assert_eq!(done["items"][0]["id"], id);
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_wakes_on_a_new_event() {
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client(dir.path(), ASBR).await;
    let t = ok(&call(&client, "create_task", json!({"input": task_input("poll")})).await);
    let id = t["id"].as_str().unwrap().to_string();
    let first = ok(&call(&client, "watch_task_events", json!({"taskId": id})).await);
    let since = first["next_seq"].as_u64().unwrap();
    let peer = client.peer().clone();
    let waiter = {
        let id = id.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let r = call(
                &peer,
                "watch_task_events",
                json!({"taskId": id, "since_seq": since, "wait_ms": 20000}),
            )
            .await;
            (r, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    ok(&record_step(&client, &id, "StepCompleted", "s1").await);
    let (r, waited) = waiter.await.unwrap();
    let r = ok(&r);
    assert!(waited < Duration::from_secs(10), "woke late: {waited:?}");
    assert_eq!(r["events"][0]["data"]["step"], "s1");
    assert!(r["next_seq"].as_u64().unwrap() > since);
    let quiet = ok(&call(
        &client,
        "watch_task_events",
        json!({"taskId": id, "since_seq": r["next_seq"], "wait_ms": 50}),
    )
    .await);
    assert!(quiet["events"].as_array().unwrap().is_empty());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn task_event_resource_subscription_is_notified() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = UpdatedUris::default();
    let client = stdio_client_with(recorder.clone(), dir.path(), ASBR, &[]).await;
    let t = ok(&call(&client, "create_task", json!({"input": task_input("sub")})).await);
    let id = t["id"].as_str().unwrap();
    let uri = format!("asbr://tasks/{id}/events");
    client
        .subscribe(SubscribeRequestParams::new(uri.clone()))
        .await
        .unwrap();
    ok(&record_step(&client, id, "StepCompleted", "s").await);
    let deadline = Instant::now() + Duration::from_secs(5);
    while recorder.0.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no resources/updated notification"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(recorder.0.lock().unwrap()[0], uri);
    let page = read_json(&client, &uri).await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["data"]["type"], "StepCompleted");
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_tasks_and_events_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = http_server(dir.path(), ASBR, &[]);
    // (task id, number of acknowledged StepCompleted events)
    let acked = Arc::new(Mutex::new(Vec::<(String, u64)>::new()));
    let (recorder, counter) = (acked.clone(), acked.clone());
    sigkill_under_load(
        &mut server,
        6,
        Duration::from_millis(1500),
        move || counter.lock().unwrap().len() > 12,
        move |client, w| {
            let acked = recorder.clone();
            async move {
                for i in 0.. {
                    let input = task_input(&format!("w{w}-{i}"));
                    let Some(task) = try_ok(&client, "create_task", json!({"input": input})).await
                    else {
                        break;
                    };
                    let id = task["id"].as_str().unwrap().to_string();
                    let slot = {
                        let mut a = acked.lock().unwrap();
                        a.push((id.clone(), 0));
                        a.len() - 1
                    };
                    for s in 0..3 {
                        let args =
                            json!({"taskId": id, "type": "StepCompleted", "step": format!("s{s}")});
                        if try_ok(&client, "record_task_event", args).await.is_none() {
                            return;
                        }
                        acked.lock().unwrap()[slot].1 += 1;
                    }
                }
            }
        },
    )
    .await;
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 10, "the workload ran ({} tasks)", acked.len());

    let client = stdio_client(dir.path(), ASBR).await;
    for (id, steps) in &acked {
        let w = ok(&call(
            &client,
            "watch_task_events",
            json!({"taskId": id, "limit": 500}),
        )
        .await);
        let got = w["events"].as_array().unwrap().len() as u64;
        assert!(
            got > *steps,
            "task {id}: {got} events after restart, {} acknowledged",
            steps + 1
        );
        let t = ok(&call(&client, "get_task", json!({"taskId": id})).await);
        // a step may be journaled but not yet acknowledged when the kill lands
        if *steps > 0 {
            assert_eq!(t["status"], "running", "task {id}");
        } else {
            assert!(
                t["status"] == "queued" || t["status"] == "running",
                "task {id}: {t}"
            );
        }
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn artifacts_and_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client(dir.path(), ASBR).await;
    let p = ok(&call(
        &client,
        "upsert_profile",
        json!({"id": "me", "skill": "expert", "tools": ["git"], "a11y": {"screenReader": true}}),
    )
    .await);
    assert_eq!(p["created"], true);
    let g = ok(&call(&client, "get_profile", json!({"id": "me"})).await);
    assert_eq!(g["a11y"]["screenReader"], true);
    err(&call(&client, "get_profile", json!({"id": "nobody"})).await);

    let a = ok(&call(
        &client,
        "put_artifact",
        json!({"kind": "report", "content": "hello"}),
    )
    .await);
    let id = a["artifact"]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sha256:2cf24dba"));
    let again = ok(&call(
        &client,
        "put_artifact",
        json!({"kind": "report", "content": "aGVsbG8=", "encoding": "base64"}),
    )
    .await);
    assert_eq!(again["deduplicated"], true);
    let bin = ok(&call(
        &client,
        "put_artifact",
        json!({"kind": "diff", "content": "/w==", "encoding": "base64"}),
    )
    .await);
    let got = ok(&call(&client, "get_artifact", json!({"id": id})).await);
    assert_eq!(got["content"], "hello");
    assert_eq!(got["notModified"], false);
    let cached = ok(&call(
        &client,
        "get_artifact",
        json!({"id": id, "ifNoneMatch": got["digest"]}),
    )
    .await);
    assert_eq!(cached["notModified"], true);
    assert!(cached.get("content").is_none());
    let b = ok(&call(
        &client,
        "get_artifact",
        json!({"id": bin["artifact"]["id"]}),
    )
    .await);
    assert_eq!(b["encoding"], "base64");
    let reports = ok(&call(&client, "list_artifacts", json!({"kind": "report"})).await);
    assert_eq!(reports["items"].as_array().unwrap().len(), 1);
    let none = ok(&call(
        &client,
        "list_artifacts",
        json!({"createdAfter": "2999-01-01T00:00:00Z"}),
    )
    .await);
    assert!(none["items"].as_array().unwrap().is_empty());
    let paged = ok(&call(&client, "list_artifacts", json!({"limit": 1})).await);
    assert!(paged["next_cursor"].is_string());
    client.cancel().await.unwrap();

    // state is rebuilt from the journals
    let client = stdio_client(dir.path(), ASBR).await;
    ok(&call(&client, "get_profile", json!({"id": "me"})).await);
    let got = ok(&call(&client, "get_artifact", json!({"id": id})).await);
    assert_eq!(got["content"], "hello");
    client.cancel().await.unwrap();
}

const MANIFEST: &str = r#"{"id":"01HZX3V6J7Q8W9E0R1T2Y3V4X5","manifestVersion":"1.2.0","ttlSeconds":300,
  "connectors":[
    {"id":"wiki","name":"Wiki","version":"1","endpoint":"https://wiki.example","auth":{"type":"bearer"},"scopes":["read"],"ttlSeconds":120},
    {"id":"crm","name":"CRM","version":"2","endpoint":"https://crm.example","auth":{"type":"apiKey","headerName":"X-Key"},"scopes":["read","write"],"ttlSeconds":600}]}"#;

fn metric(snapshot: &Value, outcome: &str) -> u64 {
    snapshot["asbr_service_map_total"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["labels"]["outcome"] == outcome)
        .and_then(|s| s["value"].as_f64())
        .unwrap_or(0.0) as u64
}

#[tokio::test]
async fn service_map_is_signed_cached_and_refreshed() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("connectors.json");
    std::fs::write(&manifest, MANIFEST).unwrap();

    let none = stdio_client_env(dir.path(), ASBR, &[]).await;
    let e = err(&call(&none, "get_connector_service_map", json!({})).await);
    assert!(e.contains("CONNECTORS_SIGNATURE_KEY"), "{e}");
    none.cancel().await.unwrap();

    let path = manifest.to_str().unwrap();
    let client = stdio_client_env(
        dir.path(),
        ASBR,
        &[
            ("CONNECTORS_SIGNATURE_KEY", "test-key-123"),
            ("CONNECTORS_MANIFEST_PATH", path),
        ],
    )
    .await;
    let first = ok(&call(&client, "get_connector_service_map", json!({})).await);
    assert_eq!(first["cache"], "built");
    let map = &first["map"];
    assert_eq!(map["connectors"][0]["id"], "crm");
    assert_eq!(map["ttlSeconds"], 120);
    let sig = map["signature"].as_str().unwrap().to_string();
    for _ in 0..5 {
        let again = ok(&call(&client, "get_connector_service_map", json!({})).await);
        assert_eq!(again["cache"], "hit");
        assert_eq!(again["map"]["signature"], sig.as_str());
    }
    let metrics = read_json(&client, "cortex://metrics").await;
    assert_eq!(metric(&metrics, "built"), 1, "{metrics}");
    assert_eq!(metric(&metrics, "hit"), 5, "{metrics}");

    let v = ok(&call(&client, "verify_service_map", json!({"map": map})).await);
    assert_eq!(v["valid"], true);
    let mut tampered = map.clone();
    tampered["ttlSeconds"] = json!(9999);
    let v = ok(&call(&client, "verify_service_map", json!({"map": tampered})).await);
    assert_eq!(v["valid"], false);

    // a changed file is picked up on the next call
    std::fs::write(
        &manifest,
        MANIFEST.replace("\"ttlSeconds\":120", "\"ttlSeconds\":60"),
    )
    .unwrap();
    let changed = ok(&call(&client, "get_connector_service_map", json!({})).await);
    assert_eq!(changed["cache"], "built");
    assert_eq!(changed["map"]["ttlSeconds"], 60);
    assert_ne!(changed["map"]["signature"], sig.as_str());

    // an invalid manifest names the JSON path
    std::fs::write(&manifest, MANIFEST.replace("https://wiki.example", "wiki")).unwrap();
    let e = err(&call(&client, "get_connector_service_map", json!({})).await);
    assert!(e.contains("$.connectors[0].endpoint"), "{e}");
    client.cancel().await.unwrap();
}

fn plant(root: &std::path::Path, files: &[(&str, String)]) {
    for (path, body) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

#[tokio::test]
async fn security_scan_finds_planted_issues_and_refuses_escapes() {
    let state = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    let dirty = ws.path().join("dirty");
    let clean = ws.path().join("clean");
    // secrets are assembled at run time so this file does not itself look like one
    let gh = format!("gh{}_{}", "p", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8");
    let aws = format!("AKIA{}", "ABCDEFGHIJKLMNOP");
    let pem = format!("-----BEGIN RSA {} KEY-----\nMIIB\n", "PRIVATE");
    plant(
        &dirty,
        &[
            ("config.env", format!("GITHUB_TOKEN={gh}\nAWS_KEY={aws}\n")),
            ("keys/id_rsa", pem),
            ("app.py", "import pickle\nobj = pickle.loads(data)\nsubprocess.run(cmd, shell=True)\n".into()),
            ("web/index.js", "const x = eval(userInput);\n".into()),
            ("deploy.sh", "curl https://get.example | sh\n".into()),
            ("Cargo.lock", "version = 3\n\n[[package]]\nname = \"oldcrate\"\nversion = \"1.1.0\"\n".into()),
            ("js/package-lock.json", r#"{"lockfileVersion":3,"packages":{"":{},"node_modules/leftpadx":{"version":"1.2.0"}}}"#.into()),
            ("py/requirements.txt", "yamlish==5.1\nrequests==2.31.0\n".into()),
            ("ignored/leak.txt", format!("token = {gh}\n")),
            (".gitignore", "ignored/\n".into()),
        ],
    );
    plant(
        &clean,
        &[
            ("main.rs", "fn main() { println!(\"hello\"); }\n".into()),
            (
                "Cargo.lock",
                "version = 3\n\n[[package]]\nname = \"oldcrate\"\nversion = \"1.2.0\"\n".into(),
            ),
            ("notes.md", "password = see the vault\n".into()),
        ],
    );
    let osv = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/osv");
    let roots = ws.path().to_str().unwrap().to_string();
    let client = stdio_client_env(
        state.path(),
        &["--toolsets", "asbr", "--workspace-roots", &roots],
        &[("ASBR_ADVISORIES_DIR", osv)],
    )
    .await;
    let r = ok(&call(&client, "run_security_scan", json!({"targetPath": "dirty"})).await);
    let findings = r["findings"].as_array().unwrap();
    assert_rules_found(
        findings,
        &[
            "github-token",
            "aws-access-key-id",
            "private-key",
            "py-pickle",
            "py-shell-true",
            "js-eval",
            "sh-curl-pipe",
            "RUSTSEC-2099-0001",
            "GHSA-fixt-ure0-0001",
            "PYSEC-2099-0001",
        ],
    );
    assert!(
        findings
            .iter()
            .all(|f| !f["file"].as_str().unwrap().starts_with("ignored/"))
    );
    let text = r.to_string();
    assert!(!text.contains(&gh), "secret leaked in the result");
    let tok = findings
        .iter()
        .find(|f| f["rule"] == "github-token")
        .unwrap();
    assert_eq!(tok["file"], "config.env");
    assert_eq!(tok["line"], 1);

    let high = ok(&call(
        &client,
        "run_security_scan",
        json!({"targetPath": "dirty", "scanType": "secrets", "severity": "critical"}),
    )
    .await);
    assert!(
        high["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] == "critical" && f["type"] == "secrets")
    );

    let c = ok(&call(
        &client,
        "run_security_scan",
        json!({"targetPath": clean.to_str().unwrap()}),
    )
    .await);
    assert!(c["findings"].as_array().unwrap().is_empty(), "{c}");
    assert!(c["summary"]["filesScanned"].as_u64().unwrap() >= 3);

    let e = err(&call(&client, "run_security_scan", json!({"targetPath": "../"})).await);
    assert!(e.contains("outside the workspace roots"), "{e}");
    let e = err(&call(&client, "run_security_scan", json!({"targetPath": "/etc"})).await);
    assert!(e.contains("outside the workspace roots"), "{e}");
    client.cancel().await.unwrap();
}

fn review_fixture(ws: &std::path::Path) {
    let aws = format!("AKIA{}", "QRSTUVWXYZABCDEF");
    let mut long_fn = String::from("def build(rows):\n");
    for i in 0..90 {
        long_fn.push_str(&format!("    v{i} = rows[{i}]\n"));
    }
    long_fn.push_str("    return rows\n");
    plant(
        &ws.join("repo"),
        &[
            ("settings.py", format!("AWS_KEY = \"{aws}\"\nimport os\nos.system(cmd)\n")),
            (
                "src/orders.py",
                "def totals(ids):\n    for i in ids:\n        cur.execute(\"select * from o where id = %s\", (i,))\n    data = fh.read()\n".into(),
            ),
            (
                "src/match.rs",
                "pub fn pairs(a: &[u32], b: &[u32]) -> usize {\n    let mut n = 0;\n    for x in a {\n        for y in b {\n            if x == y {\n                n += 1;\n            }\n        }\n    }\n    n\n}\n".into(),
            ),
            ("web/app.js", "// FIXME: handle errors   \nconst x = 1;\n".into()),
            ("tools/build.py", long_fn),
        ],
    );
    plant(
        &ws.join("tidy"),
        &[
            (
                "main.rs",
                "fn main() {\n    println!(\"hello\");\n}\n".into(),
            ),
            ("util.py", "def inc(x):\n    return x + 1\n".into()),
        ],
    );
}

/// A state dir and a workspace holding [`review_fixture`], served by asbr processes
/// whose workspace root it is.
struct Reviews {
    state: tempfile::TempDir,
    ws: tempfile::TempDir,
}

impl Reviews {
    fn planted() -> Reviews {
        let reviews = Reviews {
            state: tempfile::tempdir().unwrap(),
            ws: tempfile::tempdir().unwrap(),
        };
        review_fixture(reviews.ws.path());
        reviews
    }

    /// A new server on the same state dir (a restart when an earlier one was canceled).
    async fn client(&self) -> Client {
        let roots = self.ws.path().to_str().unwrap();
        let args = ["--toolsets", "asbr", "--workspace-roots", roots];
        stdio_client(self.state.path(), &args).await
    }
}

#[tokio::test]
async fn reviews_find_planted_issues_record_feedback_and_survive_restart() {
    let setup = Reviews::planted();
    let client = setup.client().await;

    let r = ok(&call(
        &client,
        "create_review",
        json!({"repositoryUrl": "repo", "reviewers": ["security", "performance", "style"]}),
    )
    .await);
    let review = &r["review"];
    assert_eq!(review["status"], "completed", "{r}");
    let id = review["id"].as_str().unwrap().to_string();
    let by_reviewer = &review["findings"]["byReviewer"];
    for k in ["security", "performance", "style"] {
        assert!(by_reviewer[k].as_u64().unwrap_or(0) > 0, "{k}: {r}");
    }
    assert!(!r["topFindings"].as_array().unwrap().is_empty());

    let d = ok(&call(
        &client,
        "get_review_status",
        json!({"reviewId": id, "includeDetails": true, "limit": 500}),
    )
    .await);
    let details = d["details"].as_array().unwrap();
    assert_rules_found(
        details,
        &[
            "aws-access-key-id",
            "py-os-system",
            "perf-query-in-loop",
            "perf-nested-loop",
            "perf-unbounded-read",
            "style-todo",
            "style-trailing-whitespace",
            "style-long-function",
        ],
    );
    let nested = details
        .iter()
        .find(|f| f["rule"] == "perf-nested-loop")
        .unwrap();
    assert_eq!(
        (nested["file"].as_str(), nested["line"].as_u64()),
        (Some("src/match.rs"), Some(4))
    );
    assert!(!d.to_string().contains("QRSTUVWXYZABCDEF"), "secret leaked");
    // paginated details
    let p1 = ok(&call(
        &client,
        "get_review_status",
        json!({"reviewId": id, "includeDetails": true, "limit": 2}),
    )
    .await);
    assert_eq!(p1["details"].as_array().unwrap().len(), 2);
    let cur = p1["detailsNextCursor"].as_str().unwrap();
    let p2 = ok(&call(
        &client,
        "get_review_status",
        json!({"reviewId": id, "includeDetails": true, "limit": 2, "cursor": cur}),
    )
    .await);
    assert_eq!(p2["details"][0], details[2]);
    let brief = ok(&call(&client, "get_review_status", json!({"reviewId": id})).await);
    assert!(brief.get("details").is_none());

    // the review's work is a task with published events
    let task_id = review["taskId"].as_str().unwrap();
    let t = ok(&call(&client, "get_task", json!({"taskId": task_id})).await);
    assert_eq!(t["status"], "succeeded");
    let w = ok(&call(&client, "watch_task_events", json!({"taskId": task_id})).await);
    let steps: Vec<&str> = w["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["data"]["step"].as_str())
        .collect();
    assert_eq!(
        steps,
        ["security review", "performance review", "style review"]
    );

    // paths narrow the files
    let s = ok(&call(
        &client,
        "create_review",
        json!({"repositoryUrl": "repo", "scope": "full", "paths": ["src"], "reviewers": ["performance", "style"]}),
    )
    .await);
    assert!(s["review"]["findings"]["total"].as_u64().unwrap() > 0);
    assert!(
        s["topFindings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["file"].as_str().unwrap().starts_with("src/"))
    );

    // a clean tree has no findings
    let c = ok(&call(&client, "create_review", json!({"repositoryUrl": "tidy"})).await);
    assert_eq!(c["review"]["status"], "completed");
    assert_eq!(c["review"]["findings"]["total"], 0, "{c}");
    let clean_id = c["review"]["id"].as_str().unwrap().to_string();

    // feedback
    let e = err(&call(
        &client,
        "submit_feedback",
        json!({"reviewId": id, "verdict": "request_changes"}),
    )
    .await);
    assert!(e.contains("comments"), "{e}");
    let f = ok(&call(
        &client,
        "submit_feedback",
        json!({"reviewId": id, "verdict": "request_changes", "comments": [
            {"file": "src/orders.py", "line": 3, "severity": "high", "message": "batch the query"}]}),
    )
    .await);
    assert_eq!(f["review"]["verdict"], "request_changes");
    assert_eq!(f["review"]["feedbackCount"], 1);
    let e = err(&call(
        &client,
        "submit_feedback",
        json!({"reviewId": id, "verdict": "comment", "comments": [
            {"file": "../x", "severity": "low", "message": "m"}]}),
    )
    .await);
    assert!(e.contains("comments[0].file"), "{e}");
    let e = err(&call(
        &client,
        "submit_feedback",
        json!({"reviewId": "nope", "verdict": "approve"}),
    )
    .await);
    assert!(e.contains("reviewId") && e.contains("list_reviews"), "{e}");
    let snap = read_json(&client, "events://asbr.*").await;
    let text = snap.to_string();
    for t in [
        "asbr.review.created",
        "asbr.review.completed",
        "asbr.feedback.submitted",
    ] {
        assert!(text.contains(t), "missing {t}");
    }
    assert!(text.contains("batch the query") || text.contains("\"comments\":1"));

    // list with cursor
    let l1 = ok(&call(&client, "list_reviews", json!({"limit": 2})).await);
    assert_eq!(l1["items"].as_array().unwrap().len(), 2);
    let cur = l1["next_cursor"].as_str().unwrap();
    let l2 = ok(&call(&client, "list_reviews", json!({"limit": 2, "cursor": cur})).await);
    let last = l2["items"].as_array().unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0]["id"], id.as_str());
    assert!(l2.get("next_cursor").is_none());
    let reqd = ok(&call(&client, "list_reviews", json!({"reviewer": "security"})).await);
    assert_eq!(reqd["items"].as_array().unwrap().len(), 2);

    // escapes and remote forms are refused
    let e = err(&call(&client, "create_review", json!({"repositoryUrl": "../"})).await);
    assert!(
        e.contains("repositoryUrl") && e.contains("outside the workspace roots"),
        "{e}"
    );
    let e = err(&call(&client, "create_review", json!({"repositoryUrl": "/etc"})).await);
    assert!(e.contains("outside the workspace roots"), "{e}");
    let e = err(&call(
        &client,
        "create_review",
        json!({"repositoryUrl": "octo/widgets", "pullRequestId": 7}),
    )
    .await);
    assert!(
        e.contains("pullRequestId") && e.contains("github toolset") && e.contains("--toolsets"),
        "{e}"
    );
    let e = err(&call(
        &client,
        "create_review",
        json!({"repositoryUrl": "octo/widgets"}),
    )
    .await);
    assert!(
        e.contains("not a local directory") && e.contains("pullRequestId"),
        "{e}"
    );
    let e = err(&call(
        &client,
        "create_review",
        json!({"repositoryUrl": "repo", "paths": ["../../etc"]}),
    )
    .await);
    assert!(e.contains("paths"), "{e}");
    let e = err(&call(
        &client,
        "create_review",
        json!({"repositoryUrl": "repo", "scope": "everything"}),
    )
    .await);
    assert!(e.contains("scope"), "{e}");
    client.cancel().await.unwrap();

    // restart keeps reviews, findings and feedback
    let client = setup.client().await;
    let d = ok(&call(
        &client,
        "get_review_status",
        json!({"reviewId": id, "includeDetails": true, "limit": 500}),
    )
    .await);
    assert_eq!(d["review"]["status"], "completed");
    assert_eq!(d["details"].as_array().unwrap().len(), details.len());
    assert_eq!(
        d["feedback"][0]["comments"][0]["message"],
        "batch the query"
    );
    let c = ok(&call(&client, "get_review_status", json!({"reviewId": clean_id})).await);
    assert_eq!(c["review"]["findings"]["total"], 0);
    let l = ok(&call(&client, "list_reviews", json!({"status": "completed"})).await);
    assert_eq!(l["items"].as_array().unwrap().len(), 3);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn incremental_reviews_cover_only_files_changed_since_the_last_one() {
    let setup = Reviews::planted();
    let client = setup.client().await;
    let reviewers = json!(["security", "performance", "architecture", "style"]);

    let first = ok(&call(
        &client,
        "create_review",
        json!({"repositoryUrl": "repo", "reviewers": reviewers}),
    )
    .await);
    assert!(first["review"].get("incrementalSince").is_none(), "{first}");
    let scanned = first["review"]["findings"]["filesScanned"]
        .as_u64()
        .unwrap();
    assert!(scanned >= 4, "{first}");

    // Nothing changed: the next incremental review has nothing to look at.
    let quiet = ok(&call(
        &client,
        "create_review",
        json!({"repositoryUrl": "repo", "reviewers": reviewers}),
    )
    .await);
    assert_eq!(
        quiet["review"]["incrementalSince"]["reviewId"],
        first["review"]["id"]
    );
    assert_eq!(quiet["review"]["findings"]["total"], 0, "{quiet}");

    // One file changes (its mtime moves past the last review): only it is reviewed.
    let changed = setup.ws.path().join("repo/web/app.js");
    std::fs::write(&changed, "// TODO: retry\nconst y = 2;\n").unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&changed)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let next = ok(&call(
        &client,
        "create_review",
        json!({"repositoryUrl": "repo", "reviewers": reviewers}),
    )
    .await);
    let files: std::collections::BTreeSet<&str> = next["topFindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["web/app.js"].into(), "{next}");

    // full ignores the base; security-only runs the security reviewer alone.
    let full = ok(&call(
        &client,
        "create_review",
        json!({"repositoryUrl": "repo", "scope": "full", "reviewers": reviewers}),
    )
    .await);
    assert!(
        full["review"]["findings"]["total"].as_u64().unwrap() > 5,
        "{full}"
    );
    let sec = ok(&call(
        &client,
        "create_review",
        json!({"repositoryUrl": "repo", "scope": "security-only", "reviewers": ["style", "ai"]}),
    )
    .await);
    assert_eq!(sec["review"]["reviewers"], json!(["security", "ai"]));
    let by = &sec["review"]["findings"]["byReviewer"];
    assert!(
        by["security"].as_u64().unwrap() > 0 && by.get("style").is_none(),
        "{sec}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn pull_request_reviews_read_changed_files_through_the_github_toolset() {
    let hub = fakehub::spawn(
        fakehub::FakeConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("fake GitHub starts");
    let state = tempfile::tempdir().unwrap();
    let base = hub.base_url();
    let vars = [
        ("GITHUB_API_URL", base.as_str()),
        ("GITHUB_TOKEN", "tok-review-1"),
    ];
    let client = stdio_client_env(state.path(), &["--toolsets", "github,asbr"], &vars).await;

    // Pull request 289 (feature-39) changes src/lib.rs and files/f39.txt and adds
    // scripts/deploy.py with a planted AWS key id and subprocess(shell=True).
    let r = ok(&call(
        &client,
        "create_review",
        json!({"repositoryUrl": "https://github.com/octo/hello", "pullRequestId": 289}),
    )
    .await);
    let review = &r["review"];
    assert_eq!(review["status"], "completed", "{r}");
    assert_eq!(review["repositoryPath"], "octo/hello#289");
    let pr = &review["pullRequest"];
    assert_eq!(pr["repository"], "octo/hello");
    assert_eq!(pr["files"], 3, "{pr}");
    let head = ok(&call(
        &client,
        "get_pull_request",
        json!({"repository": "octo/hello", "number": 289}),
    )
    .await);
    assert_eq!(pr["headSha"], head["head"]["sha"]);
    let id = review["id"].as_str().unwrap();
    let d = ok(&call(
        &client,
        "get_review_status",
        json!({"reviewId": id, "includeDetails": true, "limit": 500}),
    )
    .await);
    let found: std::collections::BTreeSet<(&str, &str)> = d["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule"].as_str().unwrap(), f["file"].as_str().unwrap()))
        .collect();
    assert!(
        found.contains(&("aws-access-key-id", "scripts/deploy.py")),
        "{found:?}"
    );
    assert!(
        found.contains(&("py-shell-true", "scripts/deploy.py")),
        "{found:?}"
    );
    assert!(!d.to_string().contains("FAKEHUBPLANTED01"), "secret leaked");
    // the scratch checkout is gone once the review is done
    let checkouts = state.path().join("asbr/checkouts");
    let left = std::fs::read_dir(&checkouts).map_or(0, |d| d.count());
    assert_eq!(left, 0, "scratch checkouts left behind");

    // a missing pull request is the github toolset's own error
    let e = err(&call(
        &client,
        "create_review",
        json!({"repositoryUrl": "octo/hello", "pullRequestId": 99999}),
    )
    .await);
    assert!(
        e.contains("octo/hello#99999") && e.contains("not found"),
        "{e}"
    );
    client.cancel().await.unwrap();
}

/// Creates a task and pauses it for approval of `step`; returns its id.
async fn paused_for_approval(
    client: &rmcp::Peer<rmcp::RoleClient>,
    title: &str,
    step: &str,
) -> String {
    let t = ok(&call(client, "create_task", json!({"input": task_input(title)})).await);
    let id = t["id"].as_str().unwrap().to_string();
    ok(&record_step(client, &id, "AwaitingApproval", step).await);
    id
}

#[tokio::test]
async fn approvals_over_http_are_recorded_under_the_token_not_the_claimed_name() {
    let dir = tempfile::tempdir().unwrap();
    let token = "approval-token-0123456789";
    let server = http_server(dir.path(), &[ASBR, &["--auth-token", token]].concat(), &[]);
    let client = http_client(&format!("{}/mcp", server.base), Some(token)).await;
    let id = paused_for_approval(&client, "http approval", "ship").await;

    let e = err(&call(&client, "resume_task", json!({"taskId": id})).await);
    assert!(e.contains("approve_task_step"), "{e}");
    let t = ok(&call(
        &client,
        "approve_task_step",
        json!({"taskId": id, "step": "ship", "by": "policy"}),
    )
    .await);
    assert_eq!(t["status"], "running");
    use sha2::Digest;
    let fingerprint = hex::encode(sha2::Sha256::digest(token.as_bytes()));
    let want = format!("token:{}", &fingerprint[..12]);
    assert_eq!(t["approvals"][0]["by"], want.as_str());
    assert_eq!(t["approvals"][0]["label"], "policy");
    assert!(!text(&call(&client, "get_task", json!({"taskId": id})).await).contains(token));
    drop(client);
    drop(server);

    // Without a token over HTTP the approver is anonymous, whatever name it claims.
    let server = http_server(dir.path(), ASBR, &[]);
    let client = http_client(&format!("{}/mcp", server.base), None).await;
    let id = paused_for_approval(&client, "anonymous approval", "ship").await;
    let t = ok(&call(
        &client,
        "approve_task_step",
        json!({"taskId": id, "step": "ship", "by": "user"}),
    )
    .await);
    assert_eq!(t["approvals"][0]["by"], "http:anonymous");
}

#[tokio::test]
async fn finished_tasks_are_answered_after_they_leave_memory() {
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client(
        dir.path(),
        &[ASBR, &["--asbr-task-retention", "1s"]].concat(),
    )
    .await;
    let id = paused_for_approval(&client, "short-lived", "check").await;
    ok(&call(
        &client,
        "approve_task_step",
        json!({"taskId": id, "step": "check", "by": "user"}),
    )
    .await);
    let done = ok(&call(&client, "cancel_task", json!({"taskId": id})).await);
    assert_eq!(done["status"], "canceled");
    // Past the retention (1 s from the moment it finished, a cache TTL nothing
    // observable marks) the task has left memory; it is rebuilt from the journal.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = ok(&call(&client, "get_task", json!({"taskId": id})).await);
    assert_eq!(again, done);
    let w = ok(&call(&client, "watch_task_events", json!({"taskId": id})).await);
    assert_eq!(w["events"].as_array().unwrap().len(), 4, "{w}");
    // An id that never existed names the retention and the flag.
    let e = err(&call(
        &client,
        "get_task",
        json!({"taskId": "0190a0a0-0000-7000-8000-000000000000"}),
    )
    .await);
    assert!(
        e.contains("--asbr-task-retention") && e.contains("1s"),
        "{e}"
    );
}
