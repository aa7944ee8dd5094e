//! Replicas on one Redis (`--store redis://…`, issue 21): state one replica writes is
//! what the others read, watch and are notified of. Real redis-server, real replicas
//! (the binary over streamable HTTP), the rmcp client.

use crate::common;

use std::time::{Duration, Instant};

use common::{redis::Persistence, redis::RedisServer, *};
use rmcp::{ServiceExt, model::SubscribeRequestParams};
use serde_json::{Value, json};

const STORE_KEY: &str = "9f1c2a7e5b3d4c6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f";

/// Three replicas on one Redis, each with its own state dir.
struct Cluster {
    _redis: RedisServer,
    replicas: Vec<HttpServer>,
    _dirs: Vec<tempfile::TempDir>,
}

fn redis_or_skip(persistence: Persistence) -> Option<RedisServer> {
    let redis = RedisServer::start("cluster-pass-9137", persistence);
    if redis.is_none() {
        skip_unless_ci("redis-server is not installed (tools/test.sh installs it as root)");
    }
    redis
}

fn replica(redis: &RedisServer, dir: &std::path::Path, serve: &[&str]) -> HttpServer {
    let store = redis.url();
    http_server_serving(
        dir,
        &["--toolsets", "asbr,integrations", "--store", &store],
        serve,
        &[("CORTEX_MCP_STORE_KEY", STORE_KEY)],
    )
}

fn cluster(persistence: Persistence, serve: &[&str]) -> Option<Cluster> {
    let redis = redis_or_skip(persistence)?;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let replicas = dirs
        .iter()
        .map(|d| replica(&redis, d.path(), serve))
        .collect();
    Some(Cluster {
        _redis: redis,
        replicas,
        _dirs: dirs,
    })
}

fn task_input(title: &str) -> Value {
    json!({"title": title, "brief": "do it", "inputs": [{"kind": "text", "value": "x"}], "scopes": ["repo:read"]})
}

/// Polls `get_task` on `client` until `check` holds (the replica applies the others'
/// events as it follows the store), for at most 10 s.
async fn task_until(
    client: &rmcp::Peer<rmcp::RoleClient>,
    id: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = call(client, "get_task", json!({"taskId": id})).await;
        if r.is_error != Some(true) {
            let task = structured(&r);
            if check(&task) {
                return task;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the task never reached the expected state here: {}",
            text(&r)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_created_on_one_replica_is_watched_read_and_moved_on_the_others() {
    let Some(cluster) = cluster(Persistence::None, &["--http-sessions"]) else {
        return;
    };
    let url = |i: usize| format!("{}/mcp", cluster.replicas[i].base);
    let a = http_client(&url(0), None).await;
    let b = http_client(&url(1), None).await;
    let recorder = UpdatedUris::default();
    let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(url(2));
    let c = recorder.clone().serve(transport).await.unwrap();

    let created = ok(&a, "create_task", json!({"input": task_input("across")})).await;
    let id = created["id"].as_str().unwrap().to_string();

    // B long-polls the task's events: PlanStarted, published on A.
    let started = Instant::now();
    let watched = ok(
        &b,
        "watch_task_events",
        json!({"taskId": id, "since_seq": 0, "wait_ms": 10000}),
    )
    .await;
    let events = watched["events"].as_array().unwrap();
    assert_eq!(events[0]["data"]["type"], "PlanStarted", "{watched}");
    eprintln!("A → B task event visible after {:?}", started.elapsed());

    // C reads it, subscribes to its events, and hears of a step recorded on B.
    let task = task_until(&c, &id, |t| t["status"] == "queued").await;
    assert_eq!(task["title"], "across");
    let uri = format!("asbr://tasks/{id}/events");
    #[allow(deprecated)] // resources/subscribe: the session-era way, what --http-sessions serves
    c.subscribe(SubscribeRequestParams::new(uri.clone()))
        .await
        .unwrap();
    ok(
        &b,
        "record_task_event",
        json!({"taskId": id, "type": "StepCompleted", "step": "plan"}),
    )
    .await;
    wait_until("resources/updated on C", Duration::from_secs(10), || {
        recorder.0.lock().unwrap().contains(&uri)
    })
    .await;
    let on_c = task_until(&c, &id, |t| t["status"] == "running").await;
    assert_eq!(on_c["currentStep"], "plan");
    // A, where the task was created, sees B's step too, and C's cancel.
    task_until(&a, &id, |t| t["status"] == "running").await;
    ok(&c, "cancel_task", json!({"taskId": id})).await;
    task_until(&a, &id, |t| t["status"] == "canceled").await;
    task_until(&b, &id, |t| t["status"] == "canceled").await;
    // The same idempotency key through another replica returns the same task.
    let again = ok(&b, "create_task", json!({"input": task_input("across")})).await;
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["reused"], true);
    drop(cluster);
}

type Seen = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A loopback HTTP endpoint recording the `Authorization` header of every request.
async fn echo_endpoint() -> (Seen, String) {
    use axum::{Json, Router, http::HeaderMap, routing::any};
    let seen = Seen::default();
    let record = seen.clone();
    let app = Router::new().fallback(any(move |h: HeaderMap| {
        let record = record.clone();
        async move {
            let auth = h
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            record.lock().unwrap().push(auth);
            Json(json!({"ok": true}))
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (seen, format!("http://{addr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integration_created_on_one_replica_calls_through_another_and_its_secret_stays_sealed() {
    let Some(cluster) = cluster(Persistence::None, &[]) else {
        return;
    };
    let url = |i: usize| format!("{}/mcp", cluster.replicas[i].base);
    let a = http_client(&url(0), None).await;
    let b = http_client(&url(1), None).await;
    let (seen, endpoint) = echo_endpoint().await;
    let canary = "canary-token-5f0c8e2d7a91b3";
    let made = ok(
        &a,
        "create_integration",
        json!({"name": "echo", "type": "api", "config": {"endpoint": endpoint, "credentials": {"token": canary}}}),
    )
    .await;
    let id = made["id"].as_str().unwrap();
    // B has never seen it: it catches up with the store, injects the credential.
    ok(
        &b,
        "execute_integration",
        json!({"integrationId": id, "operation": "GET /who"}),
    )
    .await;
    assert_eq!(
        seen.lock().unwrap().last().cloned(),
        Some(format!("Bearer {canary}")),
        "B injected the credential created on A"
    );
    // Rotated on B, used on A.
    let rotated = format!("{canary}-rotated");
    ok(
        &b,
        "update_integration",
        json!({"integrationId": id, "config": {"credentials": {"token": rotated}}}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        ok(
            &a,
            "execute_integration",
            json!({"integrationId": id, "operation": "GET /who"}),
        )
        .await;
        let last = seen.lock().unwrap().last().cloned();
        if last == Some(format!("Bearer {rotated}")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A never used the credentials rotated on B: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every key and value in Redis: the credential is nowhere in the clear.
    let everything = cluster._redis.dump_everything();
    assert!(
        everything.contains("registry"),
        "the scan read the store: {everything:.300}"
    );
    assert!(
        !everything.contains("canary-token"),
        "a credential is readable in Redis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_calls_fail_fast_naming_the_store_and_recover_when_it_is_back() {
    let Some(mut cluster) = cluster(Persistence::AofAlways, &[]) else {
        return;
    };
    let base = cluster.replicas[0].base.clone();
    let a = http_client(&format!("{base}/mcp"), None).await;
    let http = reqwest::Client::new();
    let ready = |http: reqwest::Client, base: String| async move {
        let r = http.get(format!("{base}/readyz")).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(ready(http.clone(), base.clone()).await.0, 200);
    let before = ok(&a, "create_task", json!({"input": task_input("before")})).await;

    cluster._redis.kill();
    let started = Instant::now();
    let failed = call(
        &a,
        "create_task",
        json!({"input": task_input("while down")}),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(failed.is_error, Some(true), "{}", text(&failed));
    let message = text(&failed);
    assert!(
        message.contains("redis"),
        "the error names the store: {message}"
    );
    assert!(
        !message.contains("cluster-pass-9137"),
        "no password in errors: {message}"
    );
    assert!(took < Duration::from_secs(1), "failed after {took:?}");
    eprintln!("create_task with Redis down failed after {took:?}: {message}");
    let (status, body) = ready(http.clone(), base.clone()).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        !body.contains("cluster-pass-9137") && !body.contains("127.0.0.1"),
        "an unauthenticated endpoint names no host: {body}"
    );
    let liveness = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(liveness.status().as_u16(), 200, "alive while not ready");

    cluster._redis.restart();
    let after = ok_within(
        &a,
        "create_task",
        json!({"input": task_input("after")}),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(ready(http.clone(), base.clone()).await.0, 200);
    // With AOF `always`, the task acknowledged before the restart is still there, on
    // every replica.
    let b = http_client(&format!("{}/mcp", cluster.replicas[1].base), None).await;
    for id in [&before["id"], &after["id"]] {
        task_until(&b, id.as_str().unwrap(), |t| t["status"] == "queued").await;
    }
}

/// A replica named `r<n>` serving asbr, mvp and patchkit over `work`, with artifacts on
/// the store limited to `max_artifact` bytes.
fn named_replica(
    redis: &RedisServer,
    dir: &std::path::Path,
    n: usize,
    work: &std::path::Path,
    max_artifact: &str,
) -> HttpServer {
    let store = redis.url();
    let name = format!("r{n}");
    let roots = work.display().to_string();
    http_server_serving(
        dir,
        &[
            "--toolsets",
            "asbr,mvp,patchkit",
            "--store",
            &store,
            "--replica-id",
            &name,
            "--workspace-roots",
            &roots,
            "--store-max-artifact-bytes",
            max_artifact,
        ],
        &[],
        &[("CORTEX_MCP_STORE_KEY", STORE_KEY)],
    )
}

/// Profiles, artifacts, graphs and their runs, and teaching examples written through
/// one replica are read through the others at once (each replica applies the store's
/// records in log order); a large artifact is refused naming the shared store's limit;
/// a spool session, whose files are one replica's, answers elsewhere naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replicated_store_reads_the_same_on_every_replica_and_spools_name_their_replica() {
    let Some(redis) = redis_or_skip(Persistence::None) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    write(work.path(), "notes.txt", "shared notes\n");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let replicas: Vec<HttpServer> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| named_replica(&redis, d.path(), i + 1, work.path(), "1024"))
        .collect();
    let mut clients = Vec::new();
    for r in &replicas {
        clients.push(http_client(&format!("{}/mcp", r.base), None).await);
    }
    let (a, b, c) = (&clients[0], &clients[1], &clients[2]);

    // Profiles: last write wins, read at once anywhere.
    let p = ok(
        a,
        "upsert_profile",
        json!({"id": "ada", "skill": "beginner", "tools": ["git"], "a11y": {}}),
    )
    .await;
    assert_eq!(p["created"], true);
    assert_eq!(
        ok(b, "get_profile", json!({"id": "ada"})).await["skill"],
        "beginner"
    );
    let p = ok(
        b,
        "upsert_profile",
        json!({"id": "ada", "skill": "expert", "tools": ["git"], "a11y": {}}),
    )
    .await;
    assert_eq!(p["created"], false, "B knew A's profile: {p}");
    assert_eq!(
        ok(c, "get_profile", json!({"id": "ada"})).await["skill"],
        "expert"
    );
    assert_eq!(
        ok(a, "get_profile", json!({"id": "ada"})).await["skill"],
        "expert"
    );

    // Artifacts: bytes in the store, read through another replica; deduplicated there.
    let put = ok(
        a,
        "put_artifact",
        json!({"kind": "report", "content": "across replicas"}),
    )
    .await;
    let id = put["artifact"]["id"].as_str().unwrap().to_string();
    let got = ok(b, "get_artifact", json!({"id": id})).await;
    assert_eq!(got["content"], "across replicas");
    let again = ok(
        c,
        "put_artifact",
        json!({"kind": "report", "content": "across replicas"}),
    )
    .await;
    assert_eq!(again["deduplicated"], true, "{again}");
    let listed = ok(c, "list_artifacts", json!({})).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    let big = err(
        a,
        "put_artifact",
        json!({"kind": "doc", "content": "x".repeat(1025)}),
    )
    .await;
    assert!(
        big.contains("1024") && big.contains("--store-max-artifact-bytes"),
        "{big}"
    );

    // Graphs: created on A, run on B, its run read on C.
    let g = ok(
        a,
        "create_graph",
        json!({"name": "across", "nodes": [{"id": "g", "type": "gate", "config": {"condition": "1 == 1"}}]}),
    )
    .await;
    let graph = g["graphId"].as_str().unwrap().to_string();
    let run = ok(b, "execute_graph", json!({"graphId": graph})).await;
    assert_eq!(run["status"], "completed", "{run}");
    let status = ok(c, "get_graph_status", json!({"graphId": graph})).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["lastRun"]["runId"], run["runId"], "{status}");

    // Teaching: examples captured on two replicas form one pattern on the third.
    for client in [a, b] {
        ok(
            client,
            "capture_example",
            json!({"type": "correction", "phase": "build",
                   "context": {"description": "failing parser test", "state": {"module": "parser"}},
                   "userAction": {"type": "fix", "description": "fix the parser"},
                   "outcome": {"success": true, "learningValue": 0.7}}),
        )
        .await;
    }
    let patterns = ok(c, "list_patterns", json!({})).await;
    assert_eq!(patterns["items"][0]["examples"], 2, "{patterns}");

    // Reviews: feedback sent through two replicas at once all lands (a change is made
    // on the review as every replica wrote it, again when another replica wrote first).
    write(work.path(), "repo/src/lib.rs", "pub fn f() {}\n");
    let created = ok(
        a,
        "create_review",
        json!({"repositoryUrl": "repo", "reviewers": ["style"]}),
    )
    .await;
    assert_eq!(created["review"]["status"], "completed", "{created}");
    let review = created["review"]["id"].as_str().unwrap().to_string();
    let sends = (0..12).map(|i| {
        let client = if i % 2 == 0 { b } else { c };
        let args = json!({"reviewId": review, "verdict": "comment", "reviewer": format!("r{i}"),
                          "comments": [{"message": format!("note {i}"), "severity": "low"}]});
        async move { ok(client, "submit_feedback", args).await }
    });
    futures::future::join_all(sends).await;
    let status = ok(a, "get_review_status", json!({"reviewId": review})).await;
    assert_eq!(status["review"]["feedbackCount"], 12, "{status}");

    // Spool sessions stay on the replica that opened them, and say so elsewhere.
    let root = work.path().display().to_string();
    let opened = ok(a, "spool_open", json!({"root": root})).await;
    let session = opened["session"].as_str().unwrap().to_string();
    assert!(session.ends_with("@r1"), "{session}");
    let elsewhere = err(
        b,
        "spool_write",
        json!({"session": session, "path": "n.txt", "content": "x"}),
    )
    .await;
    assert!(
        elsewhere.contains("replica `r1`") && elsewhere.contains("replica `r2`"),
        "{elsewhere}"
    );
    let closed = err(c, "spool_close", json!({"session": session})).await;
    assert!(closed.contains("replica `r1`"), "{closed}");
    ok(
        a,
        "spool_write",
        json!({"session": session, "path": "n.txt", "content": "x"}),
    )
    .await;
    ok(a, "spool_close", json!({"session": session, "reset": true})).await;
    drop(clients);
    drop(replicas);
}

/// A CA for one test run and a `localhost` certificate it signed: (CA PEM, leaf
/// certificate PEM, leaf key PEM).
fn throwaway_pki() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "redis test ca");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_pem = leaf.signed_by(&leaf_key, &issuer).unwrap().pem();
    (ca_pem, leaf_pem, leaf_key.serialize_pem())
}

/// `rediss://`: replicas reach Redis over TLS, trusting the CA `--store-tls-ca` names;
/// one that does not trust the server's certificate refuses to start, naming the store
/// (password masked) and the certificate problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rediss_store_is_reached_over_tls_trusting_the_named_ca_only() {
    let (ca_pem, cert_pem, key_pem) = throwaway_pki();
    let Some(redis) = RedisServer::start_tls("tls-pass-5521", &cert_pem, &key_pem) else {
        skip_unless_ci("redis-server is not installed (tools/test.sh installs it as root)");
        return;
    };
    let pki = tempfile::tempdir().unwrap();
    let ca_file = pki.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let ca_arg = ca_file.display().to_string();
    let store = redis.tls_url();
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let replicas: Vec<HttpServer> = dirs
        .iter()
        .map(|d| {
            http_server_serving(
                d.path(),
                &[
                    "--toolsets",
                    "asbr",
                    "--store",
                    &store,
                    "--store-tls-ca",
                    &ca_arg,
                ],
                &[],
                &[("CORTEX_MCP_STORE_KEY", STORE_KEY)],
            )
        })
        .collect();
    let a = http_client(&format!("{}/mcp", replicas[0].base), None).await;
    let b = http_client(&format!("{}/mcp", replicas[1].base), None).await;
    let created = ok(&a, "create_task", json!({"input": task_input("over tls")})).await;
    let id = created["id"].as_str().unwrap().to_string();
    let task = task_until(&b, &id, |t| t["status"] == "queued").await;
    assert_eq!(task["title"], "over tls");
    let keys = redis.cli(&["--scan"]);
    assert!(
        keys.contains("cortex:"),
        "the data went to this Redis: {keys}"
    );

    // Without the CA, the system's roots do not know the server: no start.
    let lost = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .arg("--state-dir")
        .arg(lost.path())
        .args([
            "--toolsets",
            "asbr",
            "--store",
            &store,
            "serve",
            "--http",
            "127.0.0.1:0",
        ])
        .env("CORTEX_MCP_STORE_KEY", STORE_KEY)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("rediss://:***@localhost") && !stderr.contains("tls-pass-5521"),
        "{stderr}"
    );
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    drop(replicas);
}

/// One write of each kind a replica journals on the store, by `i % 4` (`wave` keeps
/// writes of different waves distinct: a repeated task is answered without a write).
fn store_write(wave: &str, i: usize) -> (&'static str, Value) {
    let kind = i % 4;
    let i = format!("{wave}{i}");
    match kind {
        0 => (
            "create_task",
            json!({"input": task_input(&format!("t{i}"))}),
        ),
        1 => (
            "upsert_profile",
            json!({"id": format!("p{i}"), "skill": "beginner", "tools": [], "a11y": {}}),
        ),
        2 => (
            "put_artifact",
            json!({"kind": "doc", "content": format!("a{i}")}),
        ),
        _ => (
            "create_graph",
            json!({"name": format!("g{i}"), "nodes": [{"id": "g", "type": "gate", "config": {"condition": "1 == 1"}}]}),
        ),
    }
}

/// `n` writes of every kind at once; each one's tool, how long it took, and its result.
async fn concurrent_writes(
    client: &rmcp::Peer<rmcp::RoleClient>,
    wave: &str,
    n: usize,
) -> Vec<(&'static str, Duration, rmcp::model::CallToolResult)> {
    futures::future::join_all((0..n).map(|i| async move {
        let (tool, args) = store_write(wave, i);
        let started = Instant::now();
        let result = call(client, tool, args).await;
        (tool, started.elapsed(), result)
    }))
    .await
}

/// Every write failed naming the store, none after `bound`; the slowest time.
fn all_failed_within(
    results: &[(&str, Duration, rmcp::model::CallToolResult)],
    bound: Duration,
) -> Duration {
    let mut slowest = Duration::ZERO;
    for (tool, took, result) in results {
        let message = text(result);
        assert_eq!(result.is_error, Some(true), "{tool}: {message}");
        assert!(message.contains("redis store"), "{tool}: {message}");
        assert!(!message.contains("cluster-pass-9137"), "{tool}: {message}");
        assert!(*took < bound, "{tool} took {took:?}: {message}");
        slowest = slowest.max(*took);
    }
    slowest
}

/// A stuck Redis (SIGSTOP: connections stay open, the port accepts, nothing answers):
/// 16 concurrent writes of four kinds each fail within one response deadline, not one
/// deadline after another; writes during the outage fail at once; all succeed again
/// once Redis answers, without restarting the replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_redis_fails_concurrent_writes_within_a_deadline_then_at_once_and_recovers() {
    let Some(redis) = redis_or_skip(Persistence::None) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let replica = named_replica(&redis, dir.path(), 1, work.path(), "1024");
    let client = http_client(&format!("{}/mcp", replica.base), None).await;
    for i in 0..4 {
        let (tool, args) = store_write("before", i);
        ok(&client, tool, args).await;
    }

    redis.freeze();
    let onset = all_failed_within(
        &concurrent_writes(&client, "onset", 16).await,
        Duration::from_millis(1500),
    );
    let during = all_failed_within(
        &concurrent_writes(&client, "during", 16).await,
        Duration::from_secs(1),
    );
    let started = Instant::now();
    let ready = reqwest::get(format!("{}/readyz", replica.base))
        .await
        .unwrap();
    assert_eq!(
        ready.status().as_u16(),
        503,
        "not ready while Redis is stuck"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    redis.thaw();
    let thawed = Instant::now();
    eprintln!(
        "with Redis stuck, the slowest of 16 writes failed after {onset:?}; during the outage after {during:?}"
    );

    ok_within(
        &client,
        "create_task",
        json!({"input": task_input("after")}),
        Duration::from_secs(10),
    )
    .await;
    eprintln!(
        "writes succeed again {:?} after Redis answers",
        thawed.elapsed()
    );
    for i in 0..4 {
        let (tool, args) = store_write("after", i);
        ok(&client, tool, args).await;
    }
}
