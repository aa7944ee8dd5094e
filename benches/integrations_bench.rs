//! The integrations benchmark (`tools/bench-integrations.sh`; a `[[bench]]` target, never
//! built by `cargo test`).
//! Prints a Markdown table:
//! 1. `execute_integration` (GET through the lane and the conditional cache, over MCP
//!    stdio) against a direct keep-alive reqwest GET of the same loopback endpoint, p50 —
//!    and a no-op MCP call (`list_integrations`) as the transport floor. Each is measured
//!    through a minimal line client (what the server adds) and through the rmcp client
//!    (what an rmcp-based agent sees), interleaved in one loop.
//! 2. Event pipeline CPU per 100 events: publish in bursts of 100 (journal with group
//!    commit, fan-out) plus the batching HTTP sink's encode and POST, in process; the
//!    receiving target runs on its own thread and its CPU time is subtracted. Two rounds
//!    of 20,000: right after start (the in-memory ring filling) and steady state.
//! 3. Flush latency p99 with batching: publish → received at the target, at a steady
//!    2,000 events/s.
//! 4. Events lost while the sink target is down for `SINK_DOWN_SECS` (default 30) at
//!    100 events/s, then back up.

/// The server binary's allocator (src/main.rs), so in-process figures measure what ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/common/mod.rs"]
mod common;

use common::bench::*;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use common::*;
use cortex_mcp::runtime::{
    events::{EventBus, SinkOptions},
    journal::FsyncPolicy,
};
use serde_json::{Value, json};

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn process_cpu_ns() -> u64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (us(ru.ru_utime) + us(ru.ru_stime)) * 1000
}

// ---------------------------------------------------------------- the sink target

#[derive(Default)]
struct Target {
    down: AtomicBool,
    received: parking_lot::Mutex<HashMap<String, Instant>>,
    duplicates: AtomicU64,
    /// CPU time of the target's own thread after its last request.
    cpu_ns: AtomicU64,
}

async fn receive(State(t): State<Arc<Target>>, Json(body): Json<Value>) -> StatusCode {
    if t.down.load(Ordering::SeqCst) {
        t.cpu_ns.store(thread_cpu_ns(), Ordering::SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let now = Instant::now();
    let events = match body {
        Value::Array(a) => a,
        one => vec![one],
    };
    {
        let mut got = t.received.lock();
        for e in events {
            if let Some(id) = e["id"].as_str()
                && got.insert(id.to_string(), now).is_some()
            {
                t.duplicates.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    t.cpu_ns.store(thread_cpu_ns(), Ordering::SeqCst);
    StatusCode::OK
}

/// Serves the target on its own thread (current-thread runtime) so its CPU is separate.
fn start_target() -> (Arc<Target>, String) {
    let target = Arc::new(Target::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let t = target.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = Router::new().route("/events", post(receive)).with_state(t);
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (target, format!("http://{addr}/events"))
}

fn sink_opts(url: &str) -> SinkOptions {
    let mut opts = SinkOptions::new(url);
    opts.batching = true;
    opts.max_backoff = Duration::from_secs(5);
    opts
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn wait_delivered(target: &Target, n: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while target.received.lock().len() < n {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

// ---------------------------------------------------------------- 1. overhead

/// A minimal JSON-RPC client on the server's stdin/stdout: one line out, one line in, no
/// service loop. It shows what the server adds; the rmcp client (measured beside it) adds
/// its own tasks and channels on the client side.
struct LineClient {
    _child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::BufReader<tokio::process::ChildStdout>,
    next_id: u64,
    line: String,
}

impl LineClient {
    async fn start(state_dir: &std::path::Path, args: &[&str]) -> Self {
        let mut child = tokio::process::Command::new(BIN)
            .arg("--state-dir")
            .arg(state_dir)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn cortex-mcp");
        let mut client = LineClient {
            stdin: child.stdin.take().unwrap(),
            stdout: tokio::io::BufReader::new(child.stdout.take().unwrap()),
            _child: child,
            next_id: 0,
            line: String::new(),
        };
        let init = json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}});
        client.request("initialize", init).await;
        client
            .send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        client
    }

    async fn send(&mut self, message: &Value) {
        use tokio::io::AsyncWriteExt;
        let mut line = serde_json::to_vec(message).unwrap();
        line.push(b'\n');
        self.stdin.write_all(&line).await.unwrap();
    }

    async fn request(&mut self, method: &str, params: Value) -> Value {
        use tokio::io::AsyncBufReadExt;
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            self.line.clear();
            assert!(
                self.stdout.read_line(&mut self.line).await.unwrap() > 0,
                "server closed stdout"
            );
            let message: Value = serde_json::from_str(&self.line).unwrap();
            if message["id"] == id {
                return message;
            }
        }
    }

    /// Calls `tool`; panics unless it succeeded.
    async fn call(&mut self, tool: &str, args: Value) -> Value {
        let answer = self
            .request("tools/call", json!({"name": tool, "arguments": args}))
            .await;
        let result = &answer["result"];
        assert!(
            result.is_object() && result["isError"] != json!(true),
            "{tool} failed: {answer}"
        );
        answer
    }
}

/// p50 of one round of `N` calls each: direct GET, `execute_integration` and a no-op MCP
/// call through the minimal line client, and the same two through the rmcp client.
struct Overhead {
    direct: f64,
    via: f64,
    floor: f64,
    via_rmcp: f64,
    floor_rmcp: f64,
}

async fn overhead() -> Overhead {
    let app = Router::new().route(
        "/ping",
        axum::routing::get(|| async { Json(json!({"pong": true})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let server_args = [
        "--toolsets",
        "integrations",
        "--fsync",
        "never",
        "--log-level",
        "warn",
    ];
    let state = tempfile::tempdir().unwrap();
    let mut raw = LineClient::start(state.path(), &server_args).await;
    let made = raw
        .call(
            "create_integration",
            json!({"name": "bench", "type": "api", "config": {"endpoint": base}}),
        )
        .await;
    let made: Value =
        serde_json::from_str(made["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    let id = made["id"].as_str().unwrap().to_string();
    let rmcp_state = tempfile::tempdir().unwrap();
    let mcp = stdio_client(rmcp_state.path(), &server_args).await;
    let rmcp_id = ok(
        &mcp,
        "create_integration",
        json!({"name": "bench", "type": "api", "config": {"endpoint": base}}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let execute = json!({"integrationId": id, "operation": "GET /ping"});
    let execute_rmcp = json!({"integrationId": rmcp_id, "operation": "GET /ping"});
    let no_op = json!({"limit": 1});
    let http = client();
    const WARM_UP: usize = 50;
    const N: usize = 1000;
    let mut samples: [Vec<f64>; 5] = Default::default();
    for round in 0..WARM_UP + N {
        let mut took = [0.0; 5];
        let t = Instant::now();
        http.get(format!("{base}/ping"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        took[0] = ms_since(t);
        let t = Instant::now();
        raw.call("execute_integration", execute.clone()).await;
        took[1] = ms_since(t);
        let t = Instant::now();
        raw.call("list_integrations", no_op.clone()).await;
        took[2] = ms_since(t);
        let t = Instant::now();
        ok(&mcp, "execute_integration", execute_rmcp.clone()).await;
        took[3] = ms_since(t);
        let t = Instant::now();
        ok(&mcp, "list_integrations", no_op.clone()).await;
        took[4] = ms_since(t);
        if round >= WARM_UP {
            for (kind, ms) in took.into_iter().enumerate() {
                samples[kind].push(ms);
            }
        }
    }
    let [direct, via, floor, via_rmcp, floor_rmcp] = samples.map(|v| pct(&sorted(v), 0.5));
    Overhead {
        direct,
        via,
        floor,
        via_rmcp,
        floor_rmcp,
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------- 2-4. event pipeline

/// CPU per 100 events over two rounds of 20,000: the first right after start, while the
/// bus's in-memory ring for the type (10,000 events) fills and the heap grows; the second
/// with the ring full (the steady state of a running server).
async fn pipeline_cpu(dir: &std::path::Path) -> (f64, f64) {
    let (target, url) = start_target();
    let bus = EventBus::new(Some(dir.join("cpu")), FsyncPolicy::Batch).unwrap();
    let sink = bus.attach_http_sink(sink_opts(&url), client(), "integrations.*");
    // warm up connections and the journal
    for i in 0..200 {
        bus.publish("bench", &Called(json!({"i": i})))
            .await
            .unwrap();
    }
    assert!(wait_delivered(&target, 200, Duration::from_secs(30)).await);
    let first = cpu_per_100(&bus, &target, 200).await;
    let steady = cpu_per_100(&bus, &target, 200 + PIPELINE_EVENTS).await;
    sink.drain(Duration::from_secs(10)).await;
    bus.close().await;
    (first, steady)
}

const PIPELINE_EVENTS: usize = 20_000;

/// Publishes `PIPELINE_EVENTS` in bursts of 100 concurrent publishers (as concurrent tool
/// calls publish; they share journal group commits), waits until the target has them
/// all (`before` were delivered earlier), and returns the process CPU per 100 events
/// minus the target's own.
async fn cpu_per_100(bus: &EventBus, target: &Target, before: usize) -> f64 {
    let cpu0 = process_cpu_ns();
    let target0 = target.cpu_ns.load(Ordering::SeqCst);
    for burst in 0..PIPELINE_EVENTS / 100 {
        let publishes = (0..100).map(|i| {
            let data = json!({"integrationId": "bench", "method": "GET", "endpoint": "/ping", "statusCode": 200, "duration": 0.4, "i": burst * 100 + i});
            async move { bus.publish("bench", &Called(data)).await }
        });
        for r in futures::future::join_all(publishes).await {
            r.unwrap();
        }
    }
    assert!(
        wait_delivered(target, before + PIPELINE_EVENTS, Duration::from_secs(120)).await,
        "not all delivered"
    );
    let cpu = process_cpu_ns() - cpu0;
    let target_cpu = target.cpu_ns.load(Ordering::SeqCst) - target0;
    (cpu.saturating_sub(target_cpu)) as f64 / 1e6 / (PIPELINE_EVENTS as f64 / 100.0)
}

async fn flush_latency(dir: &std::path::Path) -> (f64, f64) {
    let (target, url) = start_target();
    let bus = EventBus::new(Some(dir.join("latency")), FsyncPolicy::Batch).unwrap();
    let sink = bus.attach_http_sink(sink_opts(&url), client(), "integrations.*");
    let mut published: Vec<(String, Instant)> = Vec::new();
    // 2,000 events/s: 20 events every 10 ms for 5 s
    let started = Instant::now();
    for tick in 0..500u32 {
        let due = started + Duration::from_millis(10) * tick;
        tokio::time::sleep_until(due.into()).await;
        for i in 0..20 {
            let t = Instant::now();
            let ev = bus
                .publish("bench", &Called(json!({"i": i})))
                .await
                .unwrap();
            published.push((ev.id.clone(), t));
        }
    }
    assert!(wait_delivered(&target, published.len(), Duration::from_secs(60)).await);
    let lat: Vec<f64> = {
        let got = target.received.lock();
        published
            .iter()
            .map(|(id, t)| (got[id] - *t).as_secs_f64() * 1000.0)
            .collect()
    };
    sink.drain(Duration::from_secs(10)).await;
    bus.close().await;
    let lat = sorted(lat);
    (pct(&lat, 0.5), pct(&lat, 0.99))
}

async fn outage(dir: &std::path::Path, down: Duration) -> (usize, usize, u64) {
    let (target, url) = start_target();
    let bus = EventBus::new(Some(dir.join("outage")), FsyncPolicy::Batch).unwrap();
    let sink = bus.attach_http_sink(sink_opts(&url), client(), "integrations.*");
    target.down.store(true, Ordering::SeqCst);
    let mut ids = Vec::new();
    let started = Instant::now();
    let mut tick = 0u32;
    while started.elapsed() < down {
        tokio::time::sleep_until((started + Duration::from_millis(10) * tick).into()).await;
        let ev = bus
            .publish("bench", &Called(json!({"tick": tick})))
            .await
            .unwrap();
        ids.push(ev.id.clone());
        tick += 1;
    }
    target.down.store(false, Ordering::SeqCst);
    wait_delivered(&target, ids.len(), Duration::from_secs(60)).await;
    let lost = {
        let got = target.received.lock();
        ids.iter().filter(|id| !got.contains_key(*id)).count()
    };
    sink.drain(Duration::from_secs(10)).await;
    bus.close().await;
    (ids.len(), lost, target.duplicates.load(Ordering::Relaxed))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    bench_integrations().await;
}

async fn bench_integrations() {
    let down_secs: u64 = std::env::var("SINK_DOWN_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    let Overhead {
        direct,
        via,
        floor,
        via_rmcp,
        floor_rmcp,
    } = overhead().await;
    let (cpu_first, cpu) = pipeline_cpu(dir.path()).await;
    let (p50, p99) = flush_latency(dir.path()).await;
    let (sent, lost, dupes) = outage(dir.path(), Duration::from_secs(down_secs)).await;
    println!();
    println!("| measure | result | target |");
    println!("|---|---|---|");
    println!("| direct loopback GET, p50 (reqwest, keep-alive) | {direct:.3} ms | |");
    println!(
        "| `execute_integration` GET over MCP stdio, p50 (line client / rmcp client) | {via:.3} / {via_rmcp:.3} ms | |"
    );
    println!(
        "| no-op MCP call (`list_integrations`), p50 (line client / rmcp client) | {floor:.3} / {floor_rmcp:.3} ms | |"
    );
    println!(
        "| overhead: execute − direct, p50 (line client) | {:.3} ms | ≤ 0.3 ms |",
        via - direct
    );
    println!(
        "| overhead: execute − direct, p50 (rmcp client, its own tasks and channels included) | {:.3} ms | |",
        via_rmcp - direct
    );
    println!(
        "| overhead beyond the MCP round trip: execute − direct − no-op, p50 | {:.3} ms | |",
        via - direct - floor
    );
    println!(
        "| event pipeline CPU per 100 events (publish + journal + batching sink), first 20,000 after start (ring filling) | {cpu_first:.3} ms | |"
    );
    println!(
        "| event pipeline CPU per 100 events (publish + journal + batching sink), next 20,000 (steady state) | {cpu:.3} ms | ≤ 1 ms |"
    );
    println!(
        "| flush latency with batching at 2,000 events/s, p50 / p99 | {p50:.1} / {p99:.1} ms | p99 ≤ 50 ms |"
    );
    println!(
        "| events lost, sink down {down_secs} s at 100 events/s ({sent} events) | {lost} (re-sent duplicates: {dupes}) | 0 |"
    );
}

/// Untyped data published as `integrations.api.called` (the shape the bench or test measures).
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Called(serde_json::Value);

impl cortex_mcp::runtime::events::EventPayload for Called {
    const TYPE: &'static str = "integrations.api.called";
    const VERSION: u32 = 1;
}
