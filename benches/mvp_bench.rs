//! The mvp benchmark (`tools/bench-mvp.sh`; a `[[bench]]` target, never built by
//! `cargo test`): PRP latency without external commands (through a real MCP client over
//! stdio), a graph of 100 independent `tool` nodes sequential vs parallel, and teaching
//! capture time over 100,000 captures (in process, journal with fsync never). Prints a
//! Markdown table.

/// The server binary's allocator (src/main.rs), so in-process figures measure what ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/common/mod.rs"]
mod common;

use common::bench::*;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const PHASES: [&str; 3] = ["strategy", "build", "evaluation"];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    bench_mvp().await;
}

async fn bench_mvp() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let roots = work.path().display().to_string();
    let client = stdio_client(
        state.path(),
        &[
            "--toolsets",
            "mvp",
            "--fsync",
            "never",
            "--workspace-roots",
            &roots,
            "--exec-allow",
            "sleep",
            "--exec-max-processes",
            "10",
        ],
    )
    .await;
    // PRP without external commands.
    let mut lat = Vec::new();
    for i in 0..500 {
        let t = Instant::now();
        let r = call(&client, "run_prp_workflow", json!({"blueprint": {"title": format!("t{i}"), "description": "d", "requirements": ["the thing does one", "the thing does two"]}})).await;
        assert_ne!(r.is_error, Some(true));
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(f64::total_cmp);
    let (p50, p95) = (pct(&lat, 0.5), pct(&lat, 0.95));
    // 100 independent tool nodes.
    let nodes: Vec<Value> = (0..100)
        .map(|i| json!({"id": format!("n{i}"), "type": "tool", "config": {"tool": "run_command", "arguments": {"program": "sleep", "args": ["0.05"]}}}))
        .collect();
    let g = call(
        &client,
        "create_graph",
        json!({"name": "wide", "nodes": nodes}),
    )
    .await;
    let id = g.structured_content.unwrap()["graphId"].clone();
    let mut times = Vec::new();
    for parallel in [false, true] {
        let r = call(
            &client,
            "execute_graph",
            json!({"graphId": id, "config": {"parallel": parallel}}),
        )
        .await;
        let v = r.structured_content.unwrap();
        assert_eq!(v["status"], "completed");
        times.push(v["durationMs"].as_f64().unwrap());
    }
    let speedup = times[0] / times[1];
    client.cancel().await.unwrap();
    // Teaching, in process.
    let dir = tempfile::tempdir().unwrap();
    let teaching = cortex_mcp::mvp::teaching::Teaching::open(
        &cortex_mcp::runtime::store::LocalBackend::new(dir.path()),
        cortex_mcp::runtime::journal::FsyncPolicy::Never,
        200_000,
    )
    .unwrap();
    let mut per = Vec::with_capacity(100_000);
    for i in 0..100_000u32 {
        let e: cortex_mcp::mvp::teaching::Example = serde_json::from_value(json!({
            "id": format!("ex-{i}"), "type": "workflow", "phase": PHASES[i as usize % 3],
            "context": {"description": "step of the workflow", "state": {"k": i}},
            "userAction": {"type": format!("a{}", i % 50), "description": "do it", "parameters": {}},
            "outcome": {"success": i % 3 != 0, "learningValue": 0.5, "notes": ""},
            "tags": [], "capturedAt": chrono::Utc::now().timestamp_millis()})).unwrap();
        let t = Instant::now();
        teaching.capture(e).await.unwrap();
        per.push(t.elapsed());
    }
    let mean =
        |s: &[Duration]| s.iter().map(|d| d.as_secs_f64() * 1e6).sum::<f64>() / s.len() as f64;
    let median = |s: &[Duration]| {
        let mut v: Vec<f64> = s.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (first, last) = (mean(&per[..1000]), mean(&per[per.len() - 1000..]));
    let (first_med, last_med) = (median(&per[..1000]), median(&per[per.len() - 1000..]));
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!(
        "| PRP workflow, no workspace, through MCP stdio: p50 / p95 | {p50:.2} ms / {p95:.2} ms | p95 ≤ 5 ms |"
    );
    println!(
        "| 100 independent `run_command sleep 0.05` nodes: sequential / parallel | {:.0} ms / {:.0} ms (×{speedup:.1}) | ≥ 0.8 × 10 (exec lane) = ×8 |",
        times[0], times[1]
    );
    println!(
        "| teaching capture (journaled), first / last 1,000 of 100,000: mean | {first:.1} µs / {last:.1} µs (ratio {:.2}) | ratio ≤ 1.5 |",
        last / first
    );
    println!(
        "| teaching capture (journaled), first / last 1,000 of 100,000: median | {first_med:.1} µs / {last_med:.1} µs (ratio {:.2}) | ratio ≤ 1.5 |",
        last_med / first_med
    );
}
