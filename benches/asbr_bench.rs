//! The asbr benchmark (`tools/bench-asbr.sh`; a `[[bench]]` target, never built by
//! `cargo test`), in process through the toolset's public API (the code the MCP tools
//! call):
//!
//! (a) task-event publishing (`record_task_event`'s path, `TaskStore::transition`) under
//!     `batch` fsync with concurrent publishers: events/s and p99 latency to the
//!     acknowledgement, against a baseline in the same run written the original's way
//!     (append one line and fsync per event, then walk every subscriber);
//! (b) publish cost with 1,000 watchers long-polling other tasks vs none;
//! (c) the signed service map served from its cache vs rebuilt on every call;
//! (d) secrets + SAST scan throughput on a generated 200 MB tree.
//!
//! Prints Markdown tables. Journals and the generated tree go to a temporary directory
//! under `BENCH_DIR` (default: the system temp dir, which must be a real disk for the
//! fsync figures to mean anything). Sizes: `PUBLISHERS`, `EVENTS` (per publisher),
//! `BASELINE_EVENTS`, `SCAN_MB`.

/// The server binary's allocator (src/main.rs), so in-process figures measure what ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/common/mod.rs"]
mod common;

use common::bench::*;

use std::{
    io::Write,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use cortex_mcp::{
    asbr::{
        manifest::{CacheOutcome, ServiceMaps},
        scan::{self, Rules, ScanType},
        tasks::{self, AgentEventKind, TaskInput, TaskInputItem, TaskStore},
    },
    config::AsbrSettings,
    runtime::{events::EventBus, journal::FsyncPolicy, principal::Principal, stop::Stop},
};
use serde_json::{Value, json};

const WATCHERS: usize = 1_000;
/// libuv's default thread pool size (`UV_THREADPOOL_SIZE`), which ran the original's
/// file appends.
const LIBUV_POOL: usize = 4;
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Throughput and latency of one publishing run.
struct Run {
    events: usize,
    secs: f64,
    /// Per-event latency to acknowledgement, ms, sorted.
    lat: Vec<f64>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.events as f64 / self.secs
    }
    fn p50(&self) -> f64 {
        pct(&self.lat, 0.5)
    }
    fn p99(&self) -> f64 {
        pct(&self.lat, 0.99)
    }
}

fn input(i: usize) -> TaskInput {
    TaskInput {
        title: format!("bench task {i}"),
        brief: "publish progress events".into(),
        inputs: vec![TaskInputItem::Text { value: "x".into() }],
        scopes: vec!["repo:read".into()],
        deadlines: None,
        a11y_profile_id: None,
        preferences: None,
    }
}

/// A bus and a task store over `dir`, as the toolset builds them.
fn open_store(dir: &Path, policy: FsyncPolicy) -> Arc<TaskStore> {
    let bus = EventBus::new(Some(dir.join("events")), policy).unwrap();
    Arc::new(TaskStore::open(&dir.join("asbr"), bus, policy).unwrap())
}

async fn create_tasks(store: &Arc<TaskStore>, from: usize, n: usize) -> Vec<String> {
    let handles: Vec<_> = (from..from + n)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let created = store
                    .create(
                        input(i),
                        None,
                        TRACEPARENT.into(),
                        &Principal::stdio(),
                        false,
                    )
                    .await
                    .unwrap();
                created.task.id
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(n);
    for h in handles {
        ids.push(h.await.unwrap());
    }
    ids
}

/// `WATCHERS` long-polls (`watch_task_events` with a task id) on tasks nobody publishes
/// to. Returns their join handles (abort them when done).
async fn spawn_watchers(store: &Arc<TaskStore>) -> Vec<tokio::task::JoinHandle<()>> {
    let ids = create_tasks(store, 1_000_000, WATCHERS).await;
    let mut handles = Vec::new();
    for id in ids {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let (_, since) = store
                .watch(&Principal::stdio(), Some(&id), &[], 0, 100, Duration::ZERO)
                .await
                .unwrap();
            let (events, _) = store
                .watch(
                    &Principal::stdio(),
                    Some(&id),
                    &[],
                    since,
                    100,
                    Duration::from_secs(3600),
                )
                .await
                .unwrap();
            panic!("watcher of an idle task woke with {} events", events.len());
        }));
    }
    tokio::task::yield_now().await;
    handles
}

/// `publishers` concurrent publishers, each reporting `per` `StepCompleted` events on
/// its own task through `TaskStore::transition` (the `record_task_event` path).
async fn publish_tasks(store: &Arc<TaskStore>, ids: &[String], per: usize) -> Run {
    let start = Instant::now();
    let handles: Vec<_> = ids
        .iter()
        .cloned()
        .map(|id| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per);
                for i in 0..per {
                    let t = Instant::now();
                    let step = format!("step-{i}");
                    store
                        .transition(&id, &Principal::stdio(), TRACEPARENT.into(), move |task| {
                            tasks::apply_agent_event(
                                task,
                                AgentEventKind::StepCompleted,
                                Some(step),
                                Some(json!({"progress": i})),
                            )
                        })
                        .await
                        .unwrap();
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(ids.len() * per);
    for h in handles {
        lat.extend(h.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    Run {
        events: lat.len(),
        secs,
        lat,
    }
}

/// The original's design, written honestly in a few lines: every publish serialises the
/// envelope, appends one line to the events file (O_APPEND, no lock of ours) and fsyncs
/// it, then walks the whole subscriber list comparing each filter. The original awaited
/// `appendFile` in Node, which runs file writes on libuv's pool of 4 threads:
/// [`LIBUV_POOL`] writers reproduce that; one writer per publisher (the kernel merging
/// their concurrent fsyncs) is the generous variant, also printed.
struct Baseline {
    file: std::fs::File,
    seq: AtomicU64,
    /// (task id filter, delivery channel)
    subscribers: Vec<(String, std::sync::mpsc::SyncSender<Value>)>,
}

impl Baseline {
    fn publish(&self, task_id: &str, data: Value) -> u64 {
        let seq = self.seq.fetch_add(1, Ordering::AcqRel) + 1;
        let event = json!({
            "id": uuid::Uuid::now_v7().to_string(),
            "type": "asbr.task.StepCompleted",
            "source": "cortex-mcp/asbr",
            "time": chrono::Utc::now().to_rfc3339(),
            "seq": seq,
            "data": {"taskId": task_id, "data": data},
        });
        let mut line = serde_json::to_vec(&event).unwrap();
        line.push(b'\n');
        (&self.file).write_all(&line).unwrap();
        self.file.sync_data().unwrap();
        for (filter, tx) in &self.subscribers {
            if filter == task_id {
                let _ = tx.try_send(event.clone());
            }
        }
        seq
    }
}

async fn publish_baseline(dir: &Path, publishers: usize, per: usize, writers: usize) -> Run {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("baseline-events-{writers}.ndjson")))
        .unwrap();
    let pool = Arc::new(tokio::sync::Semaphore::new(writers));
    let mut receivers = Vec::new();
    let subscribers = (0..WATCHERS)
        .map(|i| {
            let (tx, rx) = std::sync::mpsc::sync_channel(100);
            receivers.push(rx);
            (format!("idle-task-{i}"), tx)
        })
        .collect();
    let base = Arc::new(Baseline {
        file,
        seq: AtomicU64::new(0),
        subscribers,
    });
    let start = Instant::now();
    let handles: Vec<_> = (0..publishers)
        .map(|p| {
            let (base, pool) = (base.clone(), pool.clone());
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per);
                for i in 0..per {
                    let t = Instant::now();
                    let base = base.clone();
                    let task = format!("task-{p}");
                    let _writer = pool.acquire().await.unwrap();
                    tokio::task::spawn_blocking(move || {
                        base.publish(&task, json!({"progress": i}))
                    })
                    .await
                    .unwrap();
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(h.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    assert!(receivers.iter().all(|r| r.try_recv().is_err()));
    Run {
        events: lat.len(),
        secs,
        lat,
    }
}

/// Mean µs per transition for one sequential publisher (fsync never, so the disk does
/// not hide the CPU cost), with or without the idle watchers.
async fn publish_cost(watchers: bool, events: usize) -> f64 {
    let dir = bench_dir();
    let store = open_store(dir.path(), FsyncPolicy::Never);
    let ids = create_tasks(&store, 0, 1).await;
    let handles = if watchers {
        spawn_watchers(&store).await
    } else {
        Vec::new()
    };
    let run = publish_tasks(&store, &ids, events).await;
    for h in handles {
        h.abort();
    }
    store.close().await;
    run.secs * 1e6 / run.events as f64
}

const MANIFEST_CONNECTORS: usize = 50;

fn write_manifest(path: &Path) {
    let connectors: Vec<Value> = (0..MANIFEST_CONNECTORS)
        .map(|i| {
            json!({
                "id": format!("connector-{i:03}"),
                "name": format!("Connector {i}"),
                "version": "1.4.2",
                "endpoint": format!("https://c{i}.example.com/mcp"),
                "auth": {"type": "apiKey", "headerName": "X-Api-Key"},
                "scopes": ["read", "write", format!("scope-{i}")],
                "quotas": {"perMinute": 60, "perHour": 1000, "concurrent": 4},
                "status": "enabled",
                "ttlSeconds": 600,
                "remoteTools": [{"name": "search", "description": "search things"}, {"name": "fetch"}],
            })
        })
        .collect();
    let manifest = json!({
        "id": "01HZX3V6J7Q8W9E0R1T2Y3V4X5",
        "manifestVersion": "1.2.0",
        "ttlSeconds": 300,
        "connectors": connectors,
    });
    std::fs::write(path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
}

/// Calls/s of the service map: one `ServiceMaps` reused (served from its cache after the
/// first call) vs a fresh one per call (read, hash, parse, validate, sort, sign).
async fn service_map(dir: &Path) -> (f64, f64, usize) {
    let path = dir.join("connectors.json");
    write_manifest(&path);
    let settings = AsbrSettings {
        connectors_manifest_path: Some(path.clone()),
        signature_key: Some("bench-signature-key".into()),
        advisories_dir: None,
        ..AsbrSettings::default()
    };
    let bytes = std::fs::metadata(&path).unwrap().len() as usize;
    let cached = ServiceMaps::new(settings.clone());
    cached.get().await.unwrap();
    let n = 20_000;
    let t = Instant::now();
    for _ in 0..n {
        let (_, outcome) = cached.get().await.unwrap();
        assert_eq!(outcome, CacheOutcome::Hit);
    }
    let cached_rate = n as f64 / t.elapsed().as_secs_f64();
    let n = 1_000;
    let t = Instant::now();
    for _ in 0..n {
        let (_, outcome) = ServiceMaps::new(settings.clone()).get().await.unwrap();
        assert_eq!(outcome, CacheOutcome::Built);
    }
    let rebuilt_rate = n as f64 / t.elapsed().as_secs_f64();
    (cached_rate, rebuilt_rate, bytes)
}

/// Total size of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            if e.file_type().unwrap().is_dir() {
                dir_bytes(&e.path())
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}

/// A tiny deterministic generator (xorshift) so the tree is the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const RUST: &[&str] = &[
    "    let value = config.get(\"name\").cloned().unwrap_or_default();",
    "    for (index, item) in items.iter().enumerate() {",
    "        total += item.weight * factors[index % factors.len()];",
    "    }",
    "pub fn parse_header(input: &str) -> Result<Header, ParseError> {",
    "    match state { State::Idle => return Ok(None), State::Busy(n) => n += 1 }",
    "    // Keep the buffer bounded so memory stays flat under load.",
    "    tracing::debug!(count = entries.len(), \"flushed entries\");",
    "}",
    "#[derive(Debug, Clone, Serialize, Deserialize)]",
];
const JS: &[&str] = &[
    "  const result = await fetch(`${baseUrl}/api/items?page=${page}`);",
    "  if (!response.ok) throw new Error(`request failed: ${response.status}`);",
    "export function normalise(record) { return { ...record, id: String(record.id) }; }",
    "  for (const entry of entries) { totals[entry.kind] = (totals[entry.kind] ?? 0) + 1; }",
    "  // debounce the resize handler so layout runs once per frame",
    "});",
    "import { readFile } from 'node:fs/promises';",
    "  return items.filter((x) => x.enabled).map((x) => x.name).join(', ');",
];
const PY: &[&str] = &[
    "def load_records(path: str) -> list[dict]:",
    "    with open(path, encoding=\"utf-8\") as handle:",
    "        return [json.loads(line) for line in handle if line.strip()]",
    "    logger.info(\"processed %d records in %.2fs\", count, elapsed)",
    "class Inventory:",
    "    def __init__(self, items=None):",
    "        self.items = dict(items or {})",
    "    # keep the cache small; entries expire after ten minutes",
];
const SH: &[&str] = &[
    "set -euo pipefail",
    "for f in \"$@\"; do echo \"processing $f\"; done",
    "if [[ -z \"${TARGET:-}\" ]]; then TARGET=build; fi",
    "cp -r \"$SRC\" \"$DEST\" && echo done",
    "grep -n pattern \"$file\" | sort | uniq -c",
];
const HITS: &[&str] = &[
    "const token = \"ghp_abcdefghijklmnopqrstuvwxyz0123456789\";",
    "aws_key = \"AKIAABCDEFGHIJKLMNOP\"",
    "api_key = \"Zx9!kQ2#mW7$pL4vR8tY\"",
    "    unsafe { ptr.read() }",
    "  element.innerHTML = userInput;",
    "os.system(command)",
    "curl -fsSL https://example.com/install.sh | sh",
];

/// Writes about `mb` MB of source files (Rust, JS, Python, shell and plain text, ~64 KB
/// each, 40 directories) with a planted finding roughly every 2,000 lines.
fn generate_tree(root: &Path, mb: usize) -> u64 {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let langs: [(&str, &[&str]); 5] = [
        ("rs", RUST),
        ("js", JS),
        ("py", PY),
        ("sh", SH),
        ("txt", RUST),
    ];
    let target = (mb * 1024 * 1024) as u64;
    let mut written = 0u64;
    let mut n = 0usize;
    while written < target {
        let (ext, lines) = langs[n % langs.len()];
        let dir = root.join(format!("pkg{:02}/src", n % 40));
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = String::with_capacity(70 * 1024);
        while text.len() < 64 * 1024 {
            let line = if rng.next().is_multiple_of(2000) {
                rng.pick(HITS)
            } else {
                rng.pick(lines)
            };
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(dir.join(format!("file{n:05}.{ext}")), &text).unwrap();
        written += text.len() as u64;
        n += 1;
    }
    written
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    bench_asbr().await;
}

async fn bench_asbr() {
    let publishers = env_usize("PUBLISHERS", 256);
    let per = env_usize("EVENTS", 400);
    let base_per = env_usize("BASELINE_EVENTS", 2_000)
        .div_ceil(publishers)
        .max(1);
    let scan_mb = env_usize("SCAN_MB", 200);
    println!(
        "profile: {}; {} cores; {publishers} concurrent publishers",
        profile(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // (a) publish throughput and latency under batch fsync, ours vs the baseline.
    let dir = bench_dir();
    let store = open_store(dir.path(), FsyncPolicy::Batch);
    let ids = create_tasks(&store, 0, publishers).await;
    let watchers = spawn_watchers(&store).await;
    let ours = publish_tasks(&store, &ids, per).await;
    for h in watchers {
        h.abort();
    }
    store.close().await;
    drop(store);
    let journal_bytes = dir_bytes(dir.path());
    let base = publish_baseline(dir.path(), publishers, base_per, LIBUV_POOL).await;
    let wide = publish_baseline(dir.path(), publishers, base_per, publishers).await;

    // (b) watchers on other tasks vs none; three interleaved rounds, median.
    let cost_events = env_usize("COST_EVENTS", 20_000);
    let (mut none, mut with) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        none.push(publish_cost(false, cost_events).await);
        with.push(publish_cost(true, cost_events).await);
    }
    let (none, with) = (median(none), median(with));

    // (c) service map.
    let (cached, rebuilt, manifest_bytes) = service_map(dir.path()).await;

    // (d) scan throughput.
    let tree = bench_dir();
    let generated = generate_tree(tree.path(), scan_mb);
    let rules = Rules::new();
    let root = tree.path().to_path_buf();
    let t = Instant::now();
    let outcome = tokio::task::spawn_blocking(move || {
        scan::scan_dir(
            &rules,
            &root,
            ScanType::All,
            None,
            &[],
            &Stop::never(),
            &|_| {},
        )
    })
    .await
    .unwrap()
    .unwrap();
    let scan_secs = t.elapsed().as_secs_f64();
    let summary = outcome.summary;
    assert_eq!(summary.bytes_scanned, generated);
    assert!(!outcome.findings.is_empty());
    let mb_s = summary.bytes_scanned as f64 / 1e6 / scan_secs;

    println!();
    println!(
        "| measure | ours | baseline (append + fsync per event on libuv's 4 threads, walk all subscribers) | ratio | target |"
    );
    println!("|---|---:|---:|---:|---|");
    println!(
        "| task events published, `batch` fsync, {publishers} publishers, {WATCHERS} idle watchers: events/s | {:.0} ({} events) | {:.0} ({} events) | {:.1}× | ≥ 100,000/s and ≥ 50× |",
        ours.rate(),
        ours.events,
        base.rate(),
        base.events,
        ours.rate() / base.rate()
    );
    println!(
        "| latency to acknowledgement p50 / p99 (ms) | {:.2} / {:.2} | {:.2} / {:.2} | | |",
        ours.p50(),
        ours.p99(),
        base.p50(),
        base.p99()
    );
    println!(
        "| the same, baseline with one writer thread per publisher (kernel merges fsyncs): events/s | {:.0} | {:.0} ({} events) | {:.1}× | |",
        ours.rate(),
        wide.rate(),
        wide.events,
        ours.rate() / wide.rate()
    );
    println!(
        "| journal bytes written per task event (the bus `asbr` stream; the `tasks` snapshot is rewritten at start-up) | {:.0} | | | |",
        journal_bytes as f64 / ours.events as f64
    );
    println!();
    println!("| measure | value | target |");
    println!("|---|---:|---|");
    println!(
        "| publish cost, 1 publisher, fsync never: no watchers / {WATCHERS} watchers on other tasks (µs per event, median of 3) | {none:.1} / {with:.1} (ratio {:.2}) | ratio ≤ 1.2 |",
        with / none
    );
    println!(
        "| service map ({MANIFEST_CONNECTORS} connectors, {manifest_bytes} bytes): cached / rebuilt each call (calls/s) | {cached:.0} / {rebuilt:.0} (×{:.1}) | |",
        cached / rebuilt
    );
    println!(
        "| secrets + sast scan, {} files, {:.0} MB generated: throughput | {mb_s:.0} MB/s ({scan_secs:.2} s, {} findings) | ≥ 100 MB/s on 2 cores |",
        summary.files_scanned,
        summary.bytes_scanned as f64 / 1e6,
        outcome.findings.len()
    );
}
