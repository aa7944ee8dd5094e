//! The integrations toolset through the real binary and a real MCP client, against a
//! loopback fake HTTP service and (when installed) real PostgreSQL and Redis started in
//! temporary directories: credentials never appear in outputs or logs, retries only
//! where allowed, Retry-After honoured, lane limits respected, monitor figures match the
//! calls, webhooks verified by HMAC, the A2A sink loses nothing across an outage.

use crate::common;

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{any, get, post},
};
use common::*;
use rmcp::{ServiceExt, transport::TokioChildProcess};
use serde_json::{Value, json};

const SECRET: &str = "tok-Zx81-very-secret-credential";

// ---------------------------------------------------------------- the fake service

#[derive(Default)]
struct Fake {
    hits: parking_lot::Mutex<HashMap<String, usize>>,
    times: parking_lot::Mutex<HashMap<String, Vec<Instant>>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    sink_down: AtomicBool,
    sink_posts: AtomicUsize,
    sink_ids: parking_lot::Mutex<Vec<String>>,
}

type S = State<Arc<Fake>>;

impl Fake {
    fn hit(&self, key: &str) -> usize {
        self.times
            .lock()
            .entry(key.to_string())
            .or_default()
            .push(Instant::now());
        let mut hits = self.hits.lock();
        let n = hits.entry(key.to_string()).or_default();
        *n += 1;
        *n
    }
    fn count(&self, key: &str) -> usize {
        self.hits.lock().get(key).copied().unwrap_or(0)
    }
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn echo(State(f): S, h: HeaderMap) -> Json<Value> {
    f.hit("echo");
    Json(json!({"authorization": header(&h, "authorization"), "custom": header(&h, "x-team")}))
}

async fn flaky(State(f): S) -> Response {
    if f.hit("flaky") == 1 {
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    } else {
        Json(json!({"ok": true})).into_response()
    }
}

async fn always_500(State(f): S) -> Response {
    f.hit("fail");
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

async fn limited(State(f): S) -> Response {
    if f.hit("limited") == 1 {
        (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response()
    } else {
        (StatusCode::CREATED, Json(json!({"made": true}))).into_response()
    }
}

async fn slow(State(f): S) -> Json<Value> {
    f.hit("slow");
    let now = f.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    f.max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    f.in_flight.fetch_sub(1, Ordering::SeqCst);
    Json(json!({"slow": true}))
}

async fn refused(State(f): S, h: HeaderMap) -> Response {
    f.hit("refused");
    let body = format!("bad credentials: {}", header(&h, "authorization"));
    (StatusCode::UNAUTHORIZED, body).into_response()
}

async fn big(State(f): S) -> String {
    f.hit("big");
    "abcdefghij".repeat(20_000)
}

async fn sink(State(f): S, Json(body): Json<Value>) -> StatusCode {
    f.sink_posts.fetch_add(1, Ordering::SeqCst);
    if f.sink_down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let events = match body {
        Value::Array(a) => a,
        one => vec![one],
    };
    let mut ids = f.sink_ids.lock();
    ids.extend(
        events
            .iter()
            .filter_map(|e| e["id"].as_str().map(str::to_string)),
    );
    StatusCode::OK
}

async fn start_fake() -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/echo", get(echo).post(echo))
        .route("/flaky", get(flaky))
        .route("/fail", any(always_500))
        .route("/limited", post(limited))
        .route("/slow", post(slow))
        .route("/refused", get(refused))
        .route("/big", get(big))
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route("/sink", post(sink))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (fake, format!("http://{addr}"))
}

// ---------------------------------------------------------------- helpers

const INTEGRATIONS: &[&str] = &["--toolsets", "integrations", "--fsync", "never"];

/// A stdio client whose server logs at debug level into `log`.
async fn logged_client(state: &Path, log: &Path, extra: &[&str]) -> Client {
    let file = std::fs::File::create(log).unwrap();
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("--state-dir")
        .arg(state)
        .args(INTEGRATIONS)
        .args(["--log-level", "debug"])
        .args(extra);
    cmd.env_remove("RUST_LOG");
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap();
    ().serve(transport).await.unwrap()
}

async fn create_api(client: &Client, name: &str, base: &str, config: Value) -> String {
    let mut cfg = json!({"endpoint": base});
    if let (Some(c), Some(extra)) = (cfg.as_object_mut(), config.as_object()) {
        c.extend(extra.clone());
    }
    let made = ok(
        client,
        "create_integration",
        json!({"name": name, "type": "api", "config": cfg}),
    )
    .await;
    made["id"].as_str().unwrap().to_string()
}

/// `execute_integration` arguments: `operation` on integration `id`, with `payload`
/// unless it is null.
fn execute_args(id: &str, operation: &str, payload: Value) -> Value {
    let mut args = json!({"integrationId": id, "operation": operation});
    if !payload.is_null() {
        args["payload"] = payload;
    }
    args
}

/// Runs `operation` on integration `id`, expecting success.
async fn execute(client: &Client, id: &str, operation: &str, payload: Value) -> Value {
    ok(
        client,
        "execute_integration",
        execute_args(id, operation, payload),
    )
    .await
}

/// Runs `operation` on integration `id`, expecting an error result; returns its text.
async fn execute_err(client: &Client, id: &str, operation: &str, payload: Value) -> String {
    err(
        client,
        "execute_integration",
        execute_args(id, operation, payload),
    )
    .await
}

/// Every page after `first` of a chunked `execute_integration` result, following
/// `next_cursor` until it runs out.
async fn later_pages(client: &Client, id: &str, first: &Value) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut cursor = first["next_cursor"].as_str().map(str::to_string);
    while let Some(c) = cursor {
        let next = ok(
            client,
            "execute_integration",
            json!({"integrationId": id, "cursor": c}),
        )
        .await;
        cursor = next["next_cursor"].as_str().map(str::to_string);
        pages.push(next);
    }
    pages
}

/// `test_integration` of integration `id` (of `test_type`, or the default one).
async fn probe(client: &Client, id: &str, test_type: Option<&str>) -> Value {
    let mut args = json!({"integrationId": id});
    if let Some(t) = test_type {
        args["testType"] = json!(t);
    }
    ok(client, "test_integration", args).await
}

/// `update_integration` of integration `id` with the fields of `changes`.
async fn update(client: &Client, id: &str, changes: Value) -> Value {
    let mut args = json!({"integrationId": id});
    if let (Some(a), Some(c)) = (args.as_object_mut(), changes.as_object()) {
        a.extend(c.clone());
    }
    ok(client, "update_integration", args).await
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_appear_in_outputs_logs_or_journals() {
    let (fake, base) = start_fake().await;
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("server.log");
    let client = logged_client(state.path(), &log, &[]).await;
    let mut seen = Vec::new();

    let made = ok(
        &client,
        "create_integration",
        json!({"name": "svc", "type": "api", "config": {"endpoint": base, "credentials": {"token": SECRET}, "headers": {"X-Team": "blue"}}}),
    )
    .await;
    seen.push(made.to_string());
    assert_eq!(made["config"]["credentialNames"], json!(["token"]));
    assert_eq!(made["status"], "active");
    let id = made["id"].as_str().unwrap();

    let e = err(
        &client,
        "create_integration",
        json!({"name": "x", "type": "api", "config": {"endpoint": "ftp://h"}}),
    )
    .await;
    assert!(e.contains("config.endpoint"), "{e}");
    let e = err(&client, "create_integration", json!({"name": "x", "type": "api", "config": {"endpoint": base, "headers": {"Authorization": "Bearer x"}}})).await;
    assert!(e.contains("config.headers.Authorization"), "{e}");

    // the fake echoes the Authorization header: the secret reached it, not us
    let echoed = execute(&client, id, "GET /echo", Value::Null).await;
    seen.push(echoed.to_string());
    assert_eq!(echoed["statusCode"], 200);
    assert_eq!(echoed["body"]["authorization"], "Bearer [redacted]");
    assert_eq!(echoed["body"]["custom"], "blue");
    let e = execute_err(&client, id, "GET /refused", Value::Null).await;
    assert!(e.contains("401") && e.contains("test_integration"), "{e}");
    seen.push(e);
    let t = probe(&client, id, Some("full")).await;
    seen.push(t.to_string());
    assert_eq!(t["ok"], true);
    let names: Vec<&str> = t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dns", "connect", "first-byte", "authentication"]);
    let listed = ok(&client, "list_integrations", json!({})).await;
    seen.push(listed.to_string());
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let updated = update(
        &client,
        id,
        json!({"config": {"credentials": {"token": SECRET, "apiKey": SECRET}}}),
    )
    .await;
    seen.push(updated.to_string());
    assert_eq!(
        updated["config"]["credentialNames"],
        json!(["apiKey", "token"])
    );
    assert_eq!(updated["revision"], 2);
    seen.push(
        read_json(&client, "events://integrations.*")
            .await
            .to_string(),
    );
    seen.push(read_json(&client, "cortex://metrics").await.to_string());
    seen.push(read_json(&client, "cortex://config").await.to_string());
    assert_eq!(fake.count("echo"), 1);

    client.cancel().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for text in &seen {
        assert!(!text.contains(SECRET), "secret in output: {text}");
    }
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.contains("DEBUG") || logs.contains("INFO"),
        "the server logged nothing: {logs}"
    );
    let leaks: Vec<String> = logs
        .lines()
        .filter(|l| l.contains(SECRET))
        .map(|l| l.replace(SECRET, "<SECRET>").chars().take(300).collect())
        .collect();
    assert!(leaks.is_empty(), "secret in the log: {leaks:#?}");
    let vault = state.path().join("integrations/credentials.json");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&vault).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    for file in files_under(state.path()) {
        if file == vault || file == log {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "secret in {}",
            file.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_only_where_allowed_and_retry_after_is_honoured() {
    let (fake, base) = start_fake().await;
    let state = tempfile::tempdir().unwrap();
    let client = stdio_client(state.path(), INTEGRATIONS).await;
    let id = create_api(
        &client,
        "r",
        &base,
        json!({"retryPolicy": {"maxRetries": 2, "backoffMs": 10}}),
    )
    .await;

    let r = execute(&client, &id, "GET /flaky", Value::Null).await;
    assert_eq!(
        (r["statusCode"].as_u64(), r["attempts"].as_u64()),
        (Some(200), Some(2))
    );
    assert_eq!(fake.count("flaky"), 2);

    let e = execute_err(&client, &id, "POST /fail", json!({"a": 1})).await;
    assert!(e.contains("500"), "{e}");
    assert_eq!(fake.count("fail"), 1, "a POST is not retried after a 500");

    let e = execute_err(&client, &id, "GET /fail", Value::Null).await;
    assert!(e.contains("500"), "{e}");
    assert_eq!(
        fake.count("fail"),
        1 + 3,
        "a GET is retried maxRetries times"
    );

    let r = execute(&client, &id, "POST /limited", json!({})).await;
    assert_eq!(
        (r["statusCode"].as_u64(), r["attempts"].as_u64()),
        (Some(201), Some(2))
    );
    let times = fake.times.lock()["limited"].clone();
    assert_eq!(times.len(), 2);
    assert!(
        times[1] - times[0] >= Duration::from_millis(950),
        "retried before Retry-After: {:?}",
        times[1] - times[0]
    );

    let none = create_api(
        &client,
        "n",
        &base,
        json!({"retryPolicy": {"maxRetries": 0, "backoffMs": 10}}),
    )
    .await;
    execute_err(&client, &none, "GET /fail", Value::Null).await;
    assert_eq!(fake.count("fail"), 5, "maxRetries 0 never retries");

    // a body over 64 KiB comes in chunks through the cursor
    let first = execute(&client, &id, "GET /big", Value::Null).await;
    assert_eq!(first["truncated"], true);
    let mut text = first["text"].as_str().unwrap().to_string();
    for next in later_pages(&client, &id, &first).await {
        text.push_str(next["text"].as_str().unwrap());
    }
    assert_eq!(text.len(), 200_000);
    assert!(
        text == "abcdefghij".repeat(20_000),
        "the chunks do not add up to the body"
    );
    assert_eq!(fake.count("big"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lane_limits_concurrency_and_monitor_matches_the_calls() {
    let (fake, base) = start_fake().await;
    let state = tempfile::tempdir().unwrap();
    let client = stdio_client(state.path(), INTEGRATIONS).await;
    let id = create_api(&client, "lane", &base, json!({"concurrency": 2})).await;

    let calls = (0..8).map(|i| {
        let id = id.clone();
        let peer = client.peer().clone();
        async move {
            call(
                &peer,
                "execute_integration",
                json!({"integrationId": id, "operation": "POST /slow", "payload": {"i": i}}),
            )
            .await
        }
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|r| r.is_error != Some(true)));
    assert_eq!(fake.count("slow"), 8);
    assert_eq!(
        fake.max_in_flight.load(Ordering::SeqCst),
        2,
        "lane of 2 let more through"
    );

    for _ in 0..3 {
        execute_err(&client, &id, "GET /missing", Value::Null).await;
    }
    // input errors are not calls
    execute_err(&client, &id, "FETCH", Value::Null).await;
    let m = ok(&client, "monitor_integration", json!({"integrationId": id})).await;
    assert_eq!(m["calls"], 11);
    assert_eq!(m["errorCount"], 3);
    assert_eq!(m["successRate"].as_f64().unwrap(), 8.0 / 11.0);
    assert!(m["latency"]["p50Ms"].as_f64().unwrap() >= 100.0);
    let only = ok(
        &client,
        "monitor_integration",
        json!({"integrationId": id, "metrics": ["error-count"]}),
    )
    .await;
    assert_eq!(only["errorCount"], 3);
    assert!(only.get("latency").is_none() && only.get("successRate").is_none());
    let past = ok(&client, "monitor_integration", json!({"integrationId": id, "timeRange": {"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"}})).await;
    assert_eq!(past["calls"], 0);
    let e = err(
        &client,
        "monitor_integration",
        json!({"integrationId": id, "timeRange": {"start": "yesterday"}}),
    )
    .await;
    assert!(e.contains("timeRange.start"), "{e}");

    let events = settled_events(&client, "events://integrations.api.called", 11).await;
    assert_eq!(events.len(), 11);
    assert_eq!(
        events.iter().filter(|e| e["data"]["ok"] == false).count(),
        3
    );
    assert!(
        events
            .iter()
            .all(|e| e["data"]["integrationId"] == id.as_str())
    );

    let off = update(&client, &id, json!({"status": "inactive"})).await;
    assert_eq!(off["status"], "inactive");
    let e = execute_err(&client, &id, "GET /echo", Value::Null).await;
    assert!(e.contains("inactive"), "{e}");
    ok(&client, "delete_integration", json!({"integrationId": id})).await;
    let e = err(&client, "monitor_integration", json!({"integrationId": id})).await;
    assert!(e.contains("list_integrations"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_need_a_valid_signature() {
    let state = tempfile::tempdir().unwrap();
    let server = http_server(state.path(), INTEGRATIONS, &[]);
    let client = http_client(&format!("{}/mcp", server.base), None).await;
    let made = ok(&client, "create_integration", json!({"name": "hook", "type": "webhook", "config": {"credentials": {"webhookSecret": "whsec-123456"}}})).await;
    let id = made["id"].as_str().unwrap();
    let url = format!("{}/hooks/{id}", server.base);
    let body = br#"{"action":"opened","number":7}"#;
    let http = reqwest::Client::new();
    let post = |sig: Option<String>| {
        let mut req = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(s) = sig {
            req = req.header("X-Signature-256", s);
        }
        req.send()
    };
    let good = cortex_mcp::integrations::hooks::sign(b"whsec-123456", body);
    let bad = cortex_mcp::integrations::hooks::sign(b"wrong-secret", body);
    assert_eq!(post(Some(bad)).await.unwrap().status(), 401);
    assert_eq!(post(None).await.unwrap().status(), 401);
    let accepted = post(Some(good.clone())).await.unwrap();
    assert_eq!(accepted.status(), 202);
    let unknown = http
        .post(format!("{}/hooks/nope", server.base))
        .header("X-Signature-256", good)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let events = read_json(&client, "events://integrations.webhook.received").await;
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "only the signed delivery is published");
    assert_eq!(events[0]["data"]["payload"]["number"], 7);
    assert_eq!(events[0]["data"]["integrationId"], id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_a2a_sink_loses_nothing_across_an_outage() {
    let (fake, base) = start_fake().await;
    fake.sink_down.store(true, Ordering::SeqCst);
    let state = tempfile::tempdir().unwrap();
    let sink_url = format!("{base}/sink");
    let client = stdio_client(
        state.path(),
        &[
            INTEGRATIONS,
            &[
                "--events-sink-url",
                &sink_url,
                "--events-sink-batching",
                "--events-sink-filter",
                "integrations.*",
            ],
        ]
        .concat(),
    )
    .await;
    let id = create_api(&client, "sinky", &base, json!({})).await;
    for _ in 0..40 {
        execute(&client, &id, "POST /echo", json!({})).await;
    }
    // the target refused everything so far, and the sink kept retrying
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.sink_posts.load(Ordering::SeqCst) < 3 {
        assert!(Instant::now() < deadline, "the sink did not retry");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fake.sink_ids.lock().is_empty());
    fake.sink_down.store(false, Ordering::SeqCst);
    for _ in 0..20 {
        execute(&client, &id, "POST /echo", json!({})).await;
    }
    // each POST publishes integrations.api.called and integrations.data.synced
    let published: HashSet<String> = settled_events(&client, "events://integrations.*", 120)
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(published.len(), 120);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: HashSet<String> = fake.sink_ids.lock().iter().cloned().collect();
        if got == published {
            break;
        }
        assert!(
            got.is_subset(&published),
            "the sink sent events it should not have"
        );
        assert!(
            Instant::now() < deadline,
            "{} of {} events delivered",
            got.len(),
            published.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ids = fake.sink_ids.lock().clone();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        120,
        "every event delivered, once after de-duplication"
    );
}

// ---------------------------------------------------------------- PostgreSQL and Redis

fn pg_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

fn missing(what: &str, install: &str) {
    skip_unless_ci(&format!(
        "{what} is not installed; install it with `apt-get install -y {install}` (tools/test.sh does as root) to run this test"
    ));
}

/// A PostgreSQL cluster in a temp dir on a loopback port, stopped on drop.
struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
    port: u16,
}

fn as_postgres(args: &[&str]) -> std::process::Output {
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]);
        c.args(args);
        c
    } else {
        let mut c = std::process::Command::new(args[0]);
        c.args(&args[1..]);
        c
    };
    cmd.output().expect("run a PostgreSQL program")
}

impl Postgres {
    fn start(password: &str) -> Option<Postgres> {
        let bin = pg_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("cortex-pg")
            .tempdir_in("/tmp")
            .unwrap();
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, password).unwrap();
        if unsafe { libc::geteuid() } == 0 {
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let s = |p: &Path| p.display().to_string();
        let init = as_postgres(&[
            &s(&bin.join("initdb")),
            "-D",
            &s(&data),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            "--pwfile",
            &s(&pwfile),
            "-E",
            "UTF8",
            // A throwaway cluster: skipping initdb's final fsync saves seconds.
            "--no-sync",
        ]);
        assert!(
            init.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = free_port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            s(dir.path())
        );
        let start = as_postgres(&[
            &s(&bin.join("pg_ctl")),
            "-D",
            &s(&data),
            "-o",
            &opts,
            "-l",
            &s(&dir.path().join("log")),
            "-w",
            "start",
        ]);
        assert!(
            start.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&start.stderr)
        );
        Some(Postgres {
            bin,
            data,
            _dir: dir,
            port,
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let s = |p: &Path| p.display().to_string();
        as_postgres(&[
            &s(&self.bin.join("pg_ctl")),
            "-D",
            &s(&self.data),
            "-m",
            "immediate",
            "stop",
        ]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_queries_run_read_only_unless_writes_are_allowed() {
    let Some(pg) = Postgres::start("pg-pass-98765") else {
        return missing(
            "PostgreSQL (initdb, pg_ctl under /usr/lib/postgresql)",
            "postgresql",
        );
    };
    let state = tempfile::tempdir().unwrap();
    let client = stdio_client(state.path(), INTEGRATIONS).await;
    let endpoint = format!("postgres://postgres@127.0.0.1:{}/postgres", pg.port);
    let e = err(&client, "create_integration", json!({"name": "db", "type": "database", "config": {"endpoint": format!("postgres://postgres:pw@127.0.0.1:{}/postgres", pg.port)}})).await;
    assert!(
        e.contains("config.endpoint") && e.contains("password"),
        "{e}"
    );
    let made = ok(&client, "create_integration", json!({"name": "db", "type": "database", "config": {"endpoint": endpoint, "credentials": {"password": "wrong-password"}}})).await;
    let id = made["id"].as_str().unwrap();
    let t = probe(&client, id, Some("authentication")).await;
    assert_eq!(t["ok"], false, "{t}");
    assert_eq!(t["status"], "error");
    assert!(
        t["verdict"]
            .as_str()
            .unwrap()
            .contains("authentication failed"),
        "{t}"
    );
    update(
        &client,
        id,
        json!({"config": {"credentials": {"password": "pg-pass-98765"}}}),
    )
    .await;
    let t = probe(&client, id, Some("full")).await;
    assert_eq!(t["ok"], true, "{t}");

    let e = execute_err(
        &client,
        id,
        "CREATE TABLE items (id int, name text)",
        Value::Null,
    )
    .await;
    assert!(e.contains("read-only") && e.contains("allowWrites"), "{e}");
    update(&client, id, json!({"config": {"allowWrites": true}})).await;
    execute(
        &client,
        id,
        "CREATE TABLE items (id int, name text, tags jsonb)",
        Value::Null,
    )
    .await;
    let ins = execute(
        &client,
        id,
        "INSERT INTO items SELECT g, 'item ' || g, $1::jsonb FROM generate_series(1, $2::int) g",
        json!([{"k": "v"}, 250]),
    )
    .await;
    assert_eq!(ins["rowsAffected"], 250);
    update(&client, id, json!({"config": {"allowWrites": false}})).await;
    let e = execute_err(&client, id, "DELETE FROM items", Value::Null).await;
    assert!(e.contains("read-only"), "{e}");

    let r = execute(
        &client,
        id,
        "SELECT id, name, tags FROM items WHERE id > $1 ORDER BY id",
        json!([10]),
    )
    .await;
    assert_eq!(r["rowCount"], 240);
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 100);
    assert_eq!(
        rows[0],
        json!({"id": 11, "name": "item 11", "tags": {"k": "v"}})
    );
    let mut all = rows.len();
    for page in later_pages(&client, id, &r).await {
        all += page["rows"].as_array().unwrap().len();
    }
    assert_eq!(all, 240);
    let e = execute_err(&client, id, "SELECT $1::int", json!(["x"])).await;
    assert!(e.contains("$1"), "{e}");
    let m = ok(&client, "monitor_integration", json!({"integrationId": id})).await;
    // both refused writes and the bad parameter reached the database: 6 calls, 3 failed
    assert_eq!(m["calls"], 6);
    assert_eq!(m["errorCount"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_streams_publish_and_read() {
    let Some(redis) =
        common::redis::RedisServer::start("redis-pass-4321", common::redis::Persistence::None)
    else {
        return missing("redis-server", "redis-server");
    };
    let state = tempfile::tempdir().unwrap();
    let client = stdio_client(state.path(), INTEGRATIONS).await;
    let made = ok(&client, "create_integration", json!({"name": "q", "type": "message-queue", "config": {"endpoint": format!("redis://127.0.0.1:{}/", redis.port), "credentials": {"password": "nope-wrong"}}})).await;
    let id = made["id"].as_str().unwrap();
    let t = probe(&client, id, Some("authentication")).await;
    assert_eq!(t["ok"], false, "{t}");
    update(
        &client,
        id,
        json!({"config": {"credentials": {"password": "redis-pass-4321"}}}),
    )
    .await;
    let t = probe(&client, id, None).await;
    assert_eq!(t["ok"], true, "{t}");
    let mut ids = Vec::new();
    for n in 0..3 {
        let r = execute(
            &client,
            id,
            "publish",
            json!({"stream": "orders", "fields": {"n": n, "kind": "new"}}),
        )
        .await;
        ids.push(r["result"]["id"].as_str().unwrap().to_string());
    }
    let r = execute(&client, id, "read", json!({"stream": "orders", "count": 2})).await;
    let entries = r["result"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["id"], ids[0].as_str());
    assert_eq!(entries[1]["fields"], json!({"kind": "new", "n": "1"}));
    let since = r["result"]["nextSince"].as_str().unwrap();
    let r = execute(
        &client,
        id,
        "read",
        json!({"stream": "orders", "since": since}),
    )
    .await;
    let entries = r["result"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["id"], ids[2].as_str());
    let e = execute_err(&client, id, "drop", Value::Null).await;
    assert!(e.contains("publish or read"), "{e}");
    let m = ok(&client, "monitor_integration", json!({"integrationId": id})).await;
    assert_eq!(m["calls"], 5);
    assert_eq!(m["errorCount"], 0);
    // three XADDs wrote, two XRANGEs returned entries
    let synced = settled_events(&client, "events://integrations.data.synced", 5).await;
    let records: Vec<(String, u64)> = synced
        .iter()
        .map(|e| {
            (
                e["data"]["direction"].as_str().unwrap().to_string(),
                e["data"]["records"].as_u64().unwrap(),
            )
        })
        .collect();
    let writes = records
        .iter()
        .filter(|(d, n)| d == "write" && *n == 1)
        .count();
    let reads: u64 = records
        .iter()
        .filter(|(d, _)| d == "read")
        .map(|(_, n)| n)
        .sum();
    assert_eq!((synced.len(), writes, reads), (5, 3, 3), "{synced:?}");
}

/// The events at `uri` once at least `n` are there (10 s at most): `api.called` is
/// published just after the call answers, so a read right after the last call can come
/// before its event.
async fn settled_events(client: &Client, uri: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = read_json(client, uri).await["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if events.len() >= n || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------- trust boundaries

/// Every request a fake saw: (path, lower-cased header name → value).
type Seen = Arc<parking_lot::Mutex<Vec<(String, HashMap<String, String>)>>>;

/// A fake that records every request and answers 200 `{"ok":true}`, or, for
/// `/rNNN`, redirects with status NNN to `redirect_to` + `/landed`.
async fn recording_fake(redirect_to: Option<String>) -> (Seen, String) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = Router::new().fallback(any(move |uri: axum::http::Uri, h: HeaderMap| {
        let s = s.clone();
        let to = redirect_to.clone();
        async move {
            let headers = h
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            let path = uri.path().to_string();
            s.lock().push((path.clone(), headers));
            let code = path
                .strip_prefix("/r")
                .and_then(|c| c.parse::<u16>().ok())
                .filter(|c| (300..400).contains(c));
            match (code, to) {
                (Some(code), Some(to)) => (
                    StatusCode::from_u16(code).unwrap(),
                    [("location", format!("{to}/landed"))],
                )
                    .into_response(),
                _ => Json(json!({"ok": true})).into_response(),
            }
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (seen, format!("http://{addr}"))
}

/// The credential-looking headers in one recorded request.
fn credential_headers(headers: &HashMap<String, String>) -> Vec<String> {
    headers
        .keys()
        .filter(|k| {
            matches!(
                k.as_str(),
                "authorization" | "proxy-authorization" | "cookie" | "x-api-key" | "x-vendor-key"
            )
        })
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_not_sent_across_origins_on_redirect() {
    let (target, target_base) = recording_fake(None).await;
    let (origin, origin_base) = recording_fake(Some(target_base)).await;
    let state = tempfile::tempdir().unwrap();
    let client = stdio_client(state.path(), INTEGRATIONS).await;
    let configs = [
        ("bearer", json!({"credentials": {"token": SECRET}})),
        ("api-key", json!({"credentials": {"apiKey": SECRET}})),
        (
            "custom-key",
            json!({"credentials": {"apiKey": SECRET}, "apiKeyHeader": "X-Vendor-Key"}),
        ),
    ];
    let mut calls = 0;
    for (name, config) in configs {
        let id = create_api(&client, name, &origin_base, config).await;
        for code in [301, 302, 307, 308] {
            for method in ["GET", "POST"] {
                let r = execute(&client, &id, &format!("{method} /r{code}"), Value::Null).await;
                assert_eq!(r["statusCode"], 200, "{name} {method} {code}: {r}");
                calls += 1;
            }
        }
    }
    let origin = origin.lock().clone();
    let target = target.lock().clone();
    assert_eq!(origin.len(), calls);
    assert_eq!(target.len(), calls, "every redirect was followed");
    for (path, headers) in &origin {
        assert_eq!(
            credential_headers(headers).len(),
            1,
            "the origin gets the credential ({path}: {headers:?})"
        );
    }
    for (path, headers) in &target {
        assert_eq!(path, "/landed");
        assert!(
            credential_headers(headers).is_empty(),
            "a credential header reached the other origin: {headers:?}"
        );
        assert!(!headers.values().any(|v| v.contains(SECRET)), "{headers:?}");
    }
}

/// A TCP listener that records every byte it is sent (answering PostgreSQL startup
/// messages with a cleartext-password request when `postgres`).
async fn recording_listener(postgres: bool) -> (Arc<parking_lot::Mutex<Vec<u8>>>, u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let got: Arc<parking_lot::Mutex<Vec<u8>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let g = got.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let g = g.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut asked = false;
                while let Ok(n) = sock.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    g.lock().extend_from_slice(&buf[..n]);
                    if postgres && !asked {
                        asked = true;
                        // AuthenticationCleartextPassword
                        let _ = sock.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await;
                    }
                }
            });
        }
    });
    (got, port)
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_the_endpoint_to_another_origin_drops_the_credentials() {
    let (old_seen, old_base) = recording_fake(None).await;
    let (new_seen, new_base) = recording_fake(None).await;
    let state = tempfile::tempdir().unwrap();
    let client = stdio_client(state.path(), INTEGRATIONS).await;

    // HTTP: bearer token and API key
    for (name, creds) in [
        ("bearer", json!({"token": SECRET})),
        ("key", json!({"apiKey": SECRET})),
    ] {
        let id = create_api(&client, name, &old_base, json!({"credentials": creds})).await;
        execute(&client, &id, "GET /before", Value::Null).await;
        let moved = update(&client, &id, json!({"config": {"endpoint": new_base}})).await;
        assert_eq!(moved["config"]["credentialNames"], json!([]), "{moved}");
        let notice = moved["credentialsDropped"].as_str().unwrap_or("");
        assert!(
            notice.contains("another origin") && notice.contains("config.credentials"),
            "{moved}"
        );
        execute(&client, &id, "GET /after", Value::Null).await;
        probe(&client, &id, Some("authentication")).await;
        // a path change on the same origin keeps them
        let same = update(
            &client,
            &id,
            json!({"config": {"endpoint": format!("{new_base}/v2"), "credentials": creds}}),
        )
        .await;
        assert!(same.get("credentialsDropped").is_none(), "{same}");
        let kept = update(
            &client,
            &id,
            json!({"config": {"endpoint": format!("{new_base}/v3")}}),
        )
        .await;
        assert_eq!(
            kept["config"]["credentialNames"].as_array().unwrap().len(),
            1,
            "{kept}"
        );
    }
    let old_seen = old_seen.lock().clone();
    assert_eq!(old_seen.len(), 2);
    assert!(
        old_seen
            .iter()
            .all(|(_, h)| credential_headers(h).len() == 1)
    );
    let new_seen = new_seen.lock().clone();
    assert_eq!(new_seen.len(), 4, "{new_seen:?}");
    for (path, headers) in &new_seen {
        assert!(
            credential_headers(headers).is_empty(),
            "{path} carried a credential to the new origin: {headers:?}"
        );
    }

    // Redis AUTH and the PostgreSQL password go nowhere new either
    for (kind, scheme, postgres) in [
        ("message-queue", "redis", false),
        ("database", "postgres", true),
    ] {
        let password = format!("{scheme}-secret-pw-5521");
        let (old_got, old_port) = recording_listener(postgres).await;
        let (new_got, new_port) = recording_listener(postgres).await;
        let endpoint = |port: u16| {
            if postgres {
                format!("postgres://postgres@127.0.0.1:{port}/postgres")
            } else {
                format!("redis://127.0.0.1:{port}/")
            }
        };
        let made = ok(
            &client,
            "create_integration",
            json!({"name": kind, "type": kind, "config": {
            "endpoint": endpoint(old_port),
            "credentials": {"password": password}}}),
        )
        .await;
        let id = made["id"].as_str().unwrap().to_string();
        let (op, payload) = if postgres {
            ("SELECT 1", Value::Null)
        } else {
            ("publish", json!({"stream": "s", "fields": {"a": 1}}))
        };
        let call = |id: String| {
            let client = &client;
            let payload = payload.clone();
            async move {
                let mut args = execute_args(&id, op, payload);
                args["timeout"] = json!(1000);
                err(client, "execute_integration", args).await
            }
        };
        call(id.clone()).await;
        let before = Instant::now();
        while !contains(&old_got.lock(), &password) && before.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            contains(&old_got.lock(), &password),
            "{kind}: the first origin gets the password"
        );
        let moved = update(
            &client,
            &id,
            json!({"config": {"endpoint": endpoint(new_port)}}),
        )
        .await;
        assert!(moved["credentialsDropped"].is_string(), "{moved}");
        let e = call(id.clone()).await;
        assert!(!e.contains(&password), "{e}");
        probe(&client, &id, Some("authentication")).await;
        let got = new_got.lock().clone();
        assert!(!got.is_empty(), "{kind}: the new origin was contacted");
        assert!(
            !contains(&got, &password),
            "{kind}: the password reached the new origin"
        );
        if !postgres {
            assert!(
                !contains(&got.to_ascii_uppercase(), "AUTH"),
                "{kind}: AUTH sent"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbound_address_policy_refuses_metadata_private_and_odd_addresses() {
    let (seen, base) = recording_fake(Some("http://169.254.169.254".into())).await;
    let port = base.rsplit(':').next().unwrap().to_string();
    // over stdio loopback is allowed by default, metadata never
    let state = tempfile::tempdir().unwrap();
    let client = stdio_client(state.path(), INTEGRATIONS).await;
    for refused in [
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://0.0.0.0:80/",
        "http://0xa9fea9fe/",
        "http://2852039166/",
    ] {
        let e = err(
            &client,
            "create_integration",
            json!({"name": "m", "type": "api", "config": {"endpoint": refused}}),
        )
        .await;
        assert!(
            e.contains("config.endpoint") && e.contains("outbound address policy"),
            "{refused}: {e}"
        );
    }
    let e = err(&client, "create_integration", json!({"name": "m", "type": "database", "config": {"endpoint": "postgres://u@0251.0376.0251.0376/db"}})).await;
    assert!(e.contains("link-local"), "{e}");
    let id = create_api(&client, "loop", &format!("http://127.1:{port}"), json!({})).await;
    execute(&client, &id, "GET /fine", Value::Null).await;
    // a redirect to the metadata address is not followed
    let e = execute_err(&client, &id, "GET /r302", Value::Null).await;
    assert!(
        e.contains("169.254.169.254") && e.contains("link-local"),
        "{e}"
    );
    drop(client);

    // with --integrations-deny-private, loopback in any spelling is refused too
    let state = tempfile::tempdir().unwrap();
    let mut args = INTEGRATIONS.to_vec();
    args.push("--integrations-deny-private");
    let client = stdio_client(state.path(), &args).await;
    let hits = seen.lock().len();
    for (i, endpoint) in [
        format!("http://127.0.0.1:{port}"),
        format!("http://2130706433:{port}"),
        format!("http://0x7f.1:{port}"),
        format!("http://0177.0.0.1:{port}"),
        format!("http://127.1:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        format!("http://localhost:{port}"),
    ]
    .iter()
    .enumerate()
    {
        let id = create_api(&client, &format!("p{i}"), endpoint, json!({})).await;
        let e = execute_err(&client, &id, "GET /x", Value::Null).await;
        assert!(e.contains("loopback or private"), "{endpoint}: {e}");
        let t = probe(&client, &id, None).await;
        assert_eq!(t["ok"], false, "{endpoint}: {t}");
    }
    for (kind, endpoint) in [
        ("database", format!("postgres://u@127.1:{port}/db")),
        ("message-queue", format!("redis://127.1:{port}/")),
    ] {
        let made = ok(
            &client,
            "create_integration",
            json!({"name": kind, "type": kind, "config": {"endpoint": endpoint}}),
        )
        .await;
        assert!(
            made["config"]["endpoint"]
                .as_str()
                .unwrap()
                .contains("127.0.0.1"),
            "odd forms are stored as the resolver reads them: {made}"
        );
        let id = made["id"].as_str().unwrap();
        let (op, payload) = if kind == "database" {
            ("SELECT 1", Value::Null)
        } else {
            ("read", json!({"stream": "s"}))
        };
        let e = execute_err(&client, id, op, payload).await;
        assert!(e.contains("loopback or private"), "{kind}: {e}");
    }
    assert_eq!(seen.lock().len(), hits, "nothing reached the loopback fake");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_host_and_hop_by_hop_headers_and_escaping_operations_are_refused() {
    let state = tempfile::tempdir().unwrap();
    let client = stdio_client(state.path(), INTEGRATIONS).await;
    let create = |config: Value| {
        let client = &client;
        async move {
            let mut cfg = json!({"endpoint": "http://127.0.0.1:9/api"});
            cfg.as_object_mut()
                .unwrap()
                .extend(config.as_object().unwrap().clone());
            err(
                client,
                "create_integration",
                json!({"name": "h", "type": "api", "config": cfg}),
            )
            .await
        }
    };
    for name in ["Host", "Connection", "Transfer-Encoding", "Upgrade", "TE"] {
        let e = create(json!({"headers": {name: "x"}})).await;
        assert!(
            e.contains(&format!("config.headers.{name}")) && e.contains("cannot be configured"),
            "{e}"
        );
    }
    let e = create(json!({"apiKeyHeader": "Host"})).await;
    assert!(e.contains("config.apiKeyHeader"), "{e}");
    for name in [
        "X-API-Key",
        "X-Auth-Token",
        "Private-Token",
        "Authorization",
        "Cookie",
        "X-Client-Secret",
    ] {
        let e = create(json!({"headers": {name: "s3cr3t-value"}})).await;
        assert!(
            e.contains(&format!("config.headers.{name}")) && e.contains("config.credentials"),
            "{e}"
        );
        assert!(!e.contains("s3cr3t-value"), "{e}");
    }
    for op in ["GET /../admin", "GET /v1/../../admin", "GET /%2e%2e/admin"] {
        let e = create(json!({"operations": {"escape": op}})).await;
        assert!(
            e.contains("config.operations.escape") && e.contains("base path"),
            "{e}"
        );
    }
    let journal = std::fs::read_to_string(state.path().join("integrations/registry.ndjson"))
        .unwrap_or_default();
    assert!(!journal.contains("s3cr3t-value"));
    let (seen, base) = recording_fake(None).await;
    let id = create_api(
        &client,
        "ok",
        &format!("{base}/api"),
        json!({"operations": {"list": "GET /v1/../items"}}),
    )
    .await;
    execute(&client, &id, "list", Value::Null).await;
    let e = execute_err(&client, &id, "GET /../admin", Value::Null).await;
    assert!(e.contains("base path"), "{e}");
    let paths: Vec<String> = seen.lock().iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(paths, vec!["/api/items"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_and_stale_webhook_deliveries_are_refused() {
    let state = tempfile::tempdir().unwrap();
    let server = http_server(state.path(), INTEGRATIONS, &[]);
    let client = http_client(&format!("{}/mcp", server.base), None).await;
    let secret = "whsec-replay-1";
    let made = ok(&client, "create_integration", json!({"name": "hook", "type": "webhook", "config": {"credentials": {"webhookSecret": secret}}})).await;
    let url = format!("{}/hooks/{}", server.base, made["id"].as_str().unwrap());
    let http = reqwest::Client::new();
    let post = |body: &[u8], delivery: &str, sig: String| {
        http.post(&url)
            .header("X-Signature-256", sig)
            .header("X-GitHub-Delivery", delivery)
            .body(body.to_vec())
            .send()
    };
    let sign = |b: &[u8]| cortex_mcp::integrations::hooks::sign(secret.as_bytes(), b);
    let body: &[u8] = br#"{"n":1}"#;
    assert_eq!(post(body, "d-1", sign(body)).await.unwrap().status(), 202);
    let again = post(body, "d-1", sign(body)).await.unwrap();
    assert_eq!(again.status(), 409);
    assert!(again.text().await.unwrap().contains("already received"));
    // the delivery id is not signed: a fresh one does not make a replay new
    assert_eq!(post(body, "d-2", sign(body)).await.unwrap().status(), 409);
    let other: &[u8] = br#"{"n":2}"#;
    assert_eq!(post(other, "d-3", sign(other)).await.unwrap().status(), 202);

    // signed timestamps: stale ones are refused
    let made = ok(&client, "create_integration", json!({"name": "ts", "type": "webhook", "config": {"credentials": {"webhookSecret": secret}, "webhookTimestampHeader": "X-Signature-Timestamp"}})).await;
    let ts_url = format!("{}/hooks/{}", server.base, made["id"].as_str().unwrap());
    let post_ts = |ts: i64, delivery: &str| {
        let signed = format!("{ts}.{}", String::from_utf8_lossy(body));
        http.post(&ts_url)
            .header("X-Signature-256", sign(signed.as_bytes()))
            .header("X-Signature-Timestamp", ts.to_string())
            .header("X-GitHub-Delivery", delivery)
            .body(body.to_vec())
            .send()
    };
    let now = chrono::Utc::now().timestamp();
    assert_eq!(post_ts(now, "t-1").await.unwrap().status(), 202);
    assert_eq!(post_ts(now, "t-1").await.unwrap().status(), 409);
    let stale = post_ts(now - 3600, "t-2").await.unwrap();
    assert_eq!(stale.status(), 401);
    assert!(stale.text().await.unwrap().contains("stale"));
    let unsigned_ts = http
        .post(&ts_url)
        .header("X-Signature-256", sign(body))
        .header("X-Signature-Timestamp", now.to_string())
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned_ts.status(), 401, "the timestamp must be signed");
    let events = read_json(&client, "events://integrations.webhook.received").await;
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events.iter().all(|e| e["data"]["schemaVersion"] == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_synced_is_published_when_data_moves() {
    let (_seen, base) = recording_fake(None).await;
    let (_, missing_base) = start_fake().await;
    let state = tempfile::tempdir().unwrap();
    let client = stdio_client(state.path(), INTEGRATIONS).await;
    let id = create_api(&client, "svc", &base, json!({})).await;
    execute(&client, &id, "GET /items", Value::Null).await;
    execute(&client, &id, "POST /items", json!({"name": "x"})).await;
    let gone = create_api(&client, "gone", &missing_base, json!({})).await;
    execute_err(&client, &gone, "GET /missing", Value::Null).await;
    let called = settled_events(&client, "events://integrations.api.called", 3).await;
    assert_eq!(called.len(), 3);
    assert!(called.iter().all(|e| e["data"]["schemaVersion"] == 1));
    let synced = settled_events(&client, "events://integrations.data.synced", 2).await;
    assert_eq!(synced.len(), 2, "{synced:?}");
    let mut dirs: Vec<&str> = synced
        .iter()
        .map(|e| e["data"]["direction"].as_str().unwrap())
        .collect();
    dirs.sort();
    assert_eq!(dirs, vec!["read", "write"]);
    for e in &synced {
        assert_eq!(e["data"]["schemaVersion"], 1);
        assert_eq!(e["data"]["integrationId"], id.as_str());
        assert_eq!(e["data"]["target"], "/items");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_timeout_bounds_the_statement_and_leaves_no_backend() {
    let Some(pg) = Postgres::start("pg-pass-timeout") else {
        return missing(
            "PostgreSQL (initdb, pg_ctl under /usr/lib/postgresql)",
            "postgresql",
        );
    };
    let state = tempfile::tempdir().unwrap();
    let client = stdio_client(state.path(), INTEGRATIONS).await;
    let endpoint = format!("postgres://postgres@127.0.0.1:{}/postgres", pg.port);
    let made = ok(&client, "create_integration", json!({"name": "db", "type": "database", "config": {"endpoint": endpoint, "credentials": {"password": "pg-pass-timeout"}}})).await;
    let id = made["id"].as_str().unwrap();
    let started = Instant::now();
    let mut args = execute_args(id, "SELECT pg_sleep(600)", Value::Null);
    args["timeout"] = json!(500);
    let e = err(&client, "execute_integration", args).await;
    eprintln!(
        "pg_sleep(600) with timeout 500 answered after {:?}",
        started.elapsed()
    );
    assert!(
        e.contains("timeout (500 ms)") && e.contains("cancelled"),
        "{e}"
    );
    // the backend stops; poll while the cancel lands
    let check = "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%pg_sleep(600)%' AND state <> 'idle' AND pid <> pg_backend_pid()";
    let until = Instant::now() + Duration::from_secs(20);
    let left = loop {
        let r = execute(&client, id, check, Value::Null).await;
        let n = r["rows"][0]["n"].as_i64().unwrap();
        if n == 0 || Instant::now() > until {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(left, 0, "a backend still runs the statement");
    // the pool still works after the cancelled call
    let r = execute(&client, id, "SELECT 41 + 1 AS x", Value::Null).await;
    assert_eq!(r["rows"][0]["x"], 42);
}
