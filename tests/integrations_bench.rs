//! The integrations benchmark (`tools/bench-integrations.sh`; ignored by `cargo test`).
//! Prints a Markdown table:
//! 1. `execute_integration` (GET through the lane and the conditional cache, over a real
//!    MCP stdio client) against a direct keep-alive reqwest GET of the same loopback
//!    endpoint, p50 — and a no-op MCP call (`list_integrations`) as the transport floor.
//! 2. Event pipeline CPU per 100 events: publish in bursts of 100 (journal with group
//!    commit, fan-out) plus the batching HTTP sink's encode and POST, in process; the
//!    receiving target runs on its own thread and its CPU time is subtracted. Two rounds
//!    of 20,000: right after start (the in-memory ring filling) and steady state.
//! 3. Flush latency p99 with batching: publish → received at the target, at a steady
//!    2,000 events/s.
//! 4. Events lost while the sink target is down for `SINK_DOWN_SECS` (default 30) at
//!    100 events/s, then back up.

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

async fn overhead() -> (f64, f64, f64) {
    let app = Router::new().route(
        "/ping",
        axum::routing::get(|| async { Json(json!({"pong": true})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let state = tempfile::tempdir().unwrap();
    let mcp = stdio_client(
        state.path(),
        &[
            "--toolsets",
            "integrations",
            "--fsync",
            "never",
            "--log-level",
            "warn",
        ],
    )
    .await;
    let made = ok(
        &mcp,
        "create_integration",
        json!({"name": "bench", "type": "api", "config": {"endpoint": base}}),
    )
    .await;
    let id = made["id"].as_str().unwrap().to_string();
    let http = client();
    const N: usize = 1000;
    let mut direct = Vec::with_capacity(N);
    let mut via = Vec::with_capacity(N);
    let mut floor = Vec::with_capacity(N);
    for _ in 0..50 {
        http.get(format!("{base}/ping"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        ok(
            &mcp,
            "execute_integration",
            json!({"integrationId": id, "operation": "GET /ping"}),
        )
        .await;
    }
    for _ in 0..N {
        let t = Instant::now();
        http.get(format!("{base}/ping"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        direct.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        ok(
            &mcp,
            "execute_integration",
            json!({"integrationId": id, "operation": "GET /ping"}),
        )
        .await;
        via.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        ok(&mcp, "list_integrations", json!({"limit": 1})).await;
        floor.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    (
        pct(&sorted(direct), 0.5),
        pct(&sorted(via), 0.5),
        pct(&sorted(floor), 0.5),
    )
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
        bus.publish_value("integrations.api.called", "bench", json!({"i": i}))
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
            bus.publish_value("integrations.api.called", "bench", data)
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
                .publish_value("integrations.api.called", "bench", json!({"i": i}))
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
            .publish_value("integrations.api.called", "bench", json!({"tick": tick}))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run tools/bench-integrations.sh"]
async fn bench_integrations() {
    let down_secs: u64 = std::env::var("SINK_DOWN_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    let (direct, via, floor) = overhead().await;
    let (cpu_first, cpu) = pipeline_cpu(dir.path()).await;
    let (p50, p99) = flush_latency(dir.path()).await;
    let (sent, lost, dupes) = outage(dir.path(), Duration::from_secs(down_secs)).await;
    println!();
    println!("| measure | result | target |");
    println!("|---|---|---|");
    println!("| direct loopback GET, p50 (reqwest, keep-alive) | {direct:.3} ms | |");
    println!("| `execute_integration` GET over MCP stdio, p50 | {via:.3} ms | |");
    println!("| no-op MCP call (`list_integrations`), p50 | {floor:.3} ms | |");
    println!(
        "| overhead: execute − direct, p50 | {:.3} ms | ≤ 0.3 ms |",
        via - direct
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
