//! The runtime journal / event-bus benchmark (`tools/bench-journal.sh`; a `[[bench]]`
//! target, never built by `cargo test`), in process through the runtime's public API:
//!
//! - acknowledged appends/s under `batch` fsync (an append resolves only once its batch
//!   is written and fsynced) with 1, 64 and `APPENDERS` concurrent appenders, and the
//!   p50 / p99 latency to the acknowledgement;
//! - event publish cost with 10,000 subscribers on other topics (exact types, then prefix
//!   filters) vs none, and vs a single prefix subscriber (the topic index should keep it
//!   flat); bus without a journal so only the fan-out is measured.
//!
//! Prints Markdown tables. Journals go to a temporary directory under `BENCH_DIR`
//! (default: the system temp dir, which must be a real disk). Sizes: `APPENDERS`,
//! `APPENDS` (total per row), `PUBLISHES`.

/// The server binary's allocator (src/main.rs), so in-process figures measure what ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/common/mod.rs"]
mod common;

use common::bench::*;

use std::time::Instant;

use cortex_mcp::runtime::{
    events::{EventBus, Subscription},
    journal::{FsyncPolicy, Journal},
};
use serde::Serialize;

const SUBSCRIBERS: usize = 10_000;

/// A record of the size a typical event envelope has.
#[derive(Serialize)]
struct Record {
    appender: usize,
    n: usize,
    kind: &'static str,
    detail: &'static str,
}

/// `appenders` concurrent tasks appending `total` records between them to one `batch`
/// journal. Returns (appends/s, p50 ms, p99 ms).
async fn appends(appenders: usize, total: usize) -> (f64, f64, f64) {
    let dir = bench_dir();
    let (journal, _) = Journal::open(dir.path(), "bench", FsyncPolicy::Batch).unwrap();
    let per = total.div_ceil(appenders);
    let start = Instant::now();
    let handles: Vec<_> = (0..appenders)
        .map(|a| {
            let journal = journal.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per);
                for n in 0..per {
                    let record = Record {
                        appender: a,
                        n,
                        kind: "asbr.task.StepCompleted",
                        detail: "a record about as long as a small event envelope's payload",
                    };
                    let t = Instant::now();
                    journal.append(&record).await.unwrap();
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(per * appenders);
    for h in handles {
        lat.extend(h.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(journal.last_seq(), lat.len() as u64);
    journal.close().await;
    lat.sort_by(f64::total_cmp);
    (lat.len() as f64 / secs, pct(&lat, 0.5), pct(&lat, 0.99))
}

/// Which subscriptions sit on other topics while one publisher publishes.
#[derive(Clone, Copy)]
enum Others {
    None,
    /// `n` exact types (`other.topicN.changed`).
    Exact(usize),
    /// `n` prefix filters (`otherN.*`).
    Prefix(usize),
}

/// Mean ns per publish for one publisher with `others` subscribed to topics it never
/// publishes to, plus one subscriber of its own topic.
async fn publish_cost(others: Others, publishes: usize) -> f64 {
    let bus = EventBus::new(None, FsyncPolicy::Never).unwrap();
    let filters: Vec<String> = match others {
        Others::None => Vec::new(),
        Others::Exact(n) => (0..n).map(|i| format!("other.topic{i}.changed")).collect(),
        Others::Prefix(n) => (0..n).map(|i| format!("other{i}.*")).collect(),
    };
    let subs: Vec<Subscription> = filters.iter().map(|f| bus.subscribe(f, 16)).collect();
    let mut watched = bus.subscribe("bench.tick", 16);
    let start = Instant::now();
    for i in 0..publishes {
        bus.publish("bench", &Tick { i }).await.unwrap();
    }
    let ns = start.elapsed().as_secs_f64() * 1e9 / publishes as f64;
    assert!(watched.try_recv().is_some());
    assert_eq!(watched.lagged(), publishes as u64 - 16);
    drop(subs);
    ns
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    bench_journal().await;
}

async fn bench_journal() {
    let appenders = env_usize("APPENDERS", 512);
    let total = env_usize("APPENDS", 200_000);
    let publishes = env_usize("PUBLISHES", 100_000);
    println!(
        "profile: {}; {} cores",
        profile(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut rows = Vec::new();
    for c in [1, 64, appenders] {
        let n = if c == 1 { total.min(2_000) } else { total };
        rows.push((c, n, appends(c, n).await));
    }
    let cases = [
        ("0 other subscribers", Others::None),
        (
            "10,000 exact-type subscribers on other topics",
            Others::Exact(SUBSCRIBERS),
        ),
        (
            "10,000 prefix subscribers (`otherN.*`) on other topics",
            Others::Prefix(SUBSCRIBERS),
        ),
        ("1 prefix subscriber on another topic", Others::Prefix(1)),
    ];
    let mut costs = vec![Vec::new(); cases.len()];
    for _ in 0..3 {
        for (i, (_, others)) in cases.iter().enumerate() {
            costs[i].push(publish_cost(*others, publishes).await);
        }
    }
    let costs: Vec<f64> = costs.into_iter().map(median).collect();

    println!();
    println!(
        "| journal, `batch` fsync | appends | acknowledged appends/s | p50 / p99 to ack (ms) | target |"
    );
    println!("|---|---:|---:|---:|---|");
    for (c, n, (rate, p50, p99)) in rows {
        println!(
            "| {c} concurrent appender{} | {n} | {rate:.0} | {p50:.2} / {p99:.2} | {} |",
            if c == 1 { "" } else { "s" },
            if c == appenders { "≥ 100,000/s" } else { "" }
        );
    }
    println!();
    println!(
        "| event bus publish (no journal), 1 publisher, {publishes} events | ns per publish (median of 3) | ratio to 0 subscribers (target: flat) |"
    );
    println!("|---|---:|---:|");
    for ((label, _), ns) in cases.iter().zip(&costs) {
        println!("| {label} | {ns:.0} | {:.2} |", ns / costs[0]);
    }
}

/// Untyped data published as `bench.tick` (the shape the bench or test measures).
/// A typed payload as toolsets publish them (one field, like the `json!({"i": i})` the
/// bench published before payloads were typed).
#[derive(serde::Serialize)]
struct Tick {
    i: usize,
}

impl cortex_mcp::runtime::events::EventPayload for Tick {
    const TYPE: &'static str = "bench.tick";
    const VERSION: u32 = 1;
}
