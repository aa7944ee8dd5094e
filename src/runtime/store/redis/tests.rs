//! The Redis backend against a real `redis-server` on a loopback port: the seam's
//! conformance, two processes' worth of backends on one Redis, an unreachable Redis and
//! a password that never shows in errors. Without `redis-server` the tests skip (and
//! fail under `CI=true`).

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::*;
use crate::runtime::store::tests::conformance;
use crate::runtime::store::{Compaction, Stream};

/// A `redis-server` in a temp dir on a loopback port, killed on drop.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    fn url(&self, password: Option<&str>) -> String {
        match password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `redis-server` (with `requirepass` when `password` is given), or `None` after
/// [`skip_unless_ci`] when it is not installed.
fn start(password: Option<&str>) -> Option<Server> {
    start_with(password, &[])
}

/// [`start`] with more `redis-server` arguments.
fn start_with(password: Option<&str>, extra: &[&str]) -> Option<Server> {
    let Some(bin) = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        skip_unless_ci(
            "redis-server is not installed; install it with `apt-get install -y redis-server` (tools/test.sh does as root) to run this test",
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null());
    if let Some(pw) = password {
        cmd.args(["--requirepass", pw]);
    }
    cmd.args(extra);
    let child = cmd.spawn().unwrap();
    let server = Server {
        child,
        port,
        _dir: dir,
    };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis-server did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(server)
}

/// A test tool this machine lacks: outside CI the test skips with `why`; under
/// `CI=true` it fails, so a missing install step cannot pass unnoticed.
fn skip_unless_ci(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why} (CI=true: a missing test tool fails the run; tools/test.sh installs it)");
    }
    eprintln!("SKIPPED: {why}");
}

fn record(from: &str, i: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "from": from, "i": i })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_backend_conforms() {
    let Some(server) = start(None) else { return };
    let backend = RedisBackend::new(&server.url(None), DEFAULT_PREFIX).unwrap();
    conformance(&backend).await;
    assert_eq!(backend.streams().await.unwrap(), vec!["kv".to_string()]);
}

/// `--store-wait-replicas 1`: without a Redis replica an append is refused once `WAIT`
/// gives up, saying how many replicas acknowledged it (not as a timeout, which would be
/// an outage); with a replica attached, appends are acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_wait_for_the_redis_replicas_asked_for() {
    let Some(primary) = start_with(Some("wait-pw"), &["--repl-diskless-sync-delay", "0"]) else {
        return;
    };
    let backend = RedisBackend::new(&primary.url(Some("wait-pw")), "wait:")
        .unwrap()
        .with_wait_replicas(1);
    let (log, _) = backend
        .open("waited", StreamOptions::default())
        .await
        .unwrap();
    let started = Instant::now();
    let refused = log
        .append(vec![record("w", 0)])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("only 0 of the 1 Redis replicas"),
        "{refused}"
    );
    assert!(!refused.contains("wait-pw"), "{refused}");
    assert!(started.elapsed() < Duration::from_secs(1));

    let primary_port = primary.port.to_string();
    let Some(_replica) = start_with(
        Some("wait-pw"),
        &[
            "--replicaof",
            "127.0.0.1",
            &primary_port,
            "--masterauth",
            "wait-pw",
        ],
    ) else {
        return;
    };
    let attached = Instant::now();
    loop {
        match log.append(vec![record("w", 1)]).await {
            Ok(_) => break,
            Err(e) => assert!(
                attached.elapsed() < Duration::from_secs(20),
                "the replica never acknowledged: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Right after its initial sync a replica takes up to a second (its periodic
    // `REPLCONF ACK`) before the primary streams writes to it; from then on every append
    // is acknowledged.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for i in 2..12 {
        log.append(vec![record("w", i)]).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_backends_on_one_redis_get_distinct_positions_and_read_each_other() {
    let Some(server) = start(None) else { return };
    let a = RedisBackend::new(&server.url(None), DEFAULT_PREFIX).unwrap();
    let b = RedisBackend::new(&server.url(None), DEFAULT_PREFIX).unwrap();
    let options = StreamOptions::default();
    let (log_a, _) = a.open("shared", options).await.unwrap();
    let (log_b, _) = b.open("shared", options).await.unwrap();

    // Appends of one and of three records from both sides at once.
    let mut tasks = Vec::new();
    for (name, log) in [("a", &log_a), ("b", &log_b)] {
        for i in 0..40u64 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let batch: Vec<_> = (0..1 + 2 * (i % 2))
                    .map(|j| record(name, i * 10 + j))
                    .collect();
                let n = batch.len() as u64;
                let first = log.append(batch).await.unwrap();
                (first.get()..first.get() + n).collect::<Vec<_>>()
            }));
        }
    }
    let mut positions: Vec<u64> = Vec::new();
    for t in futures::future::join_all(tasks).await {
        positions.extend(t.unwrap());
    }
    positions.sort_unstable();
    let total = positions.len() as u64;
    assert_eq!(total, 2 * (20 + 20 * 3));
    assert_eq!(
        positions,
        (1..=total).collect::<Vec<_>>(),
        "dense and distinct"
    );

    // Each side reads every record, the other's included, at the positions handed out.
    for log in [&log_a, &log_b] {
        let read = log.read_after(Position::START).await.unwrap();
        assert!(read.snapshot.is_none());
        let at: Vec<u64> = read.records.iter().map(|(p, _)| p.get()).collect();
        assert_eq!(at, positions);
        for from in ["a", "b"] {
            let n = read
                .records
                .iter()
                .filter(|(_, r)| r["from"] == from)
                .count();
            assert_eq!(n, 80, "{from}'s records");
        }
    }

    // A wait on one side ends with the other side's append.
    let waiting = tokio::spawn({
        let log_a = log_a.clone();
        async move { log_a.durable(Position(total)).await }
    });
    let next = log_b.append(vec![record("b", 999)]).await.unwrap();
    assert_eq!(next, Position(total + 1));
    let seen = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the waiter wakes on the other backend's append")
        .unwrap()
        .unwrap();
    assert_eq!(seen, Position(total + 1));
    assert_eq!(log_a.last_position(), Position(total + 1));

    // A compaction on one side is what the other reads next.
    log_b
        .compact(Box::new(|all: Vec<serde_json::Value>| {
            all.into_iter().rev().take(1).collect()
        }))
        .await
        .unwrap();
    let read = log_a.read_after(Position(3)).await.unwrap();
    assert_eq!(
        read.snapshot,
        Some((
            Position(total + 1),
            vec![serde_json::json!({"from": "b", "i": 999})]
        ))
    );
    assert!(read.records.is_empty());
    assert_eq!(
        log_a.append(vec![record("a", 1000)]).await.unwrap(),
        Position(total + 2)
    );

    // Another prefix is another deployment.
    let other = RedisBackend::new(&server.url(None), "other:").unwrap();
    assert!(other.streams().await.unwrap().is_empty());
    let (log_o, replay) = other.open("shared", options).await.unwrap();
    assert!(replay.snapshot.is_none() && replay.records.is_empty());
    assert_eq!(
        log_o.append(vec![record("o", 0)]).await.unwrap(),
        Position(1)
    );
    assert_eq!(a.streams().await.unwrap(), vec!["shared".to_string()]);
    assert_eq!(other.streams().await.unwrap(), vec!["shared".to_string()]);
    for log in [log_a, log_b, log_o] {
        log.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_is_an_error_naming_the_store_without_its_password() {
    let password = "s3cret-Pa55word";
    let Some(mut server) = start(Some(password)) else {
        return;
    };
    let url = server.url(Some(password));
    let backend = RedisBackend::new(&url, DEFAULT_PREFIX).unwrap();
    assert!(!backend.shown().contains(password), "{}", backend.shown());
    let (log, _) = backend.open("kv", StreamOptions::default()).await.unwrap();
    assert_eq!(log.append(vec![record("a", 1)]).await.unwrap(), Position(1));
    let waiting = tokio::spawn({
        let log = log.clone();
        async move { log.durable(Position(1)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop();

    let check = |e: StoreError| {
        let text = e.to_string();
        assert!(matches!(e, StoreError::Redis { .. }), "{text}");
        assert!(!text.contains(password), "{text}");
        assert!(
            text.contains(&format!("redis://:***@127.0.0.1:{}", server.port)),
            "names the store: {text}"
        );
    };
    let failed = tokio::time::timeout(Duration::from_secs(2), log.append(vec![record("a", 2)]))
        .await
        .expect("an error, not a hang");
    check(failed.unwrap_err());
    let failed = tokio::time::timeout(Duration::from_secs(2), log.read_after(Position::START))
        .await
        .expect("an error, not a hang");
    check(failed.unwrap_err());
    let woke = tokio::time::timeout(Duration::from_secs(4), waiting)
        .await
        .expect("a waiter is told, not left hanging")
        .unwrap();
    check(woke.unwrap_err());

    // A fresh backend on the stopped server fails to open just as fast.
    let fresh = RedisBackend::new(&url, DEFAULT_PREFIX).unwrap();
    let failed = tokio::time::timeout(
        Duration::from_secs(2),
        fresh.open("kv", StreamOptions::default()),
    )
    .await
    .expect("an error, not a hang");
    check(failed.err().expect("no Redis to open on"));
    log.close().await;
}

#[tokio::test]
async fn a_wrong_password_is_an_error_that_does_not_show_it() {
    let Some(server) = start(Some("the-right-one")) else {
        return;
    };
    let wrong = "wr0ng%2Fpass";
    let backend = RedisBackend::new(&server.url(Some(wrong)), DEFAULT_PREFIX).unwrap();
    let e = tokio::time::timeout(
        Duration::from_secs(2),
        backend.open("kv", StreamOptions::default()),
    )
    .await
    .expect("an error, not a hang")
    .err()
    .expect("the password is wrong");
    let text = e.to_string();
    assert!(
        !text.contains(wrong) && !text.contains("wr0ng/pass"),
        "{text}"
    );
    assert!(text.contains("***"), "{text}");
    let e = backend.streams().await.unwrap_err().to_string();
    assert!(!e.contains("wr0ng"), "{e}");
    assert!(matches!(
        backend.open("../kv", StreamOptions::default()).await,
        Err(StoreError::InvalidStream(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_past_the_limit_compact_in_the_background_losing_nothing() {
    let Some(server) = start(None) else { return };
    let backend = RedisBackend::new(&server.url(None), DEFAULT_PREFIX).unwrap();
    let last_per_key = || Compaction::<serde_json::Value>::last_per_key(|v| v["k"].to_string());
    let options = StreamOptions::new(crate::config::Fsync::Batch, 2048);
    let (s, _) = Stream::open(&backend, "kv", options, last_per_key())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..1000u64)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.append(&serde_json::json!({"k": format!("k{}", i % 10), "v": i}))
                    .await
            })
        })
        .collect();
    for t in futures::future::join_all(tasks).await {
        t.unwrap().unwrap();
    }
    s.close().await;

    let (s, replay) = Stream::open(&backend, "kv", options, last_per_key())
        .await
        .unwrap();
    assert!(replay.snapshot.is_some(), "compacted");
    let records = replay.into_records();
    let mut last = std::collections::HashMap::new();
    for r in &records {
        last.insert(r["k"].to_string(), r["v"].as_u64().unwrap());
    }
    assert_eq!(last.len(), 10, "every key is there");
    assert!(records.len() < 1000, "{} records left", records.len());
    assert_eq!(s.last_position(), Position(1000));
    assert!(!s.needs_compaction(), "the log was trimmed");
    s.close().await;
}

/// A state that records the order records reached it.
#[derive(Default)]
struct Order(parking_lot::Mutex<Vec<String>>);

impl crate::runtime::store::Fold<String> for Order {
    fn apply(&self, record: String) {
        self.0.lock().push(record);
    }

    fn reset(&self, records: Vec<String>) {
        *self.0.lock() = records;
    }
}

/// Two processes' replicated streams on one Redis, appending concurrently: each writer
/// sees its own record (and everything before it) when its append returns, and both
/// states end up holding every record in the same (log) order, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_states_apply_every_record_once_in_log_order_on_every_process() {
    use crate::runtime::store::Replicated;
    let Some(server) = start(None) else { return };
    let open = || {
        let backend = RedisBackend::new(&server.url(None), "rep:").unwrap();
        Replicated::<String>::open_now(
            &backend,
            "names",
            StreamOptions::default(),
            Compaction::discard(),
        )
        .unwrap()
        .0
    };
    let (one, two) = (Arc::new(open()), Arc::new(open()));
    let (first, second) = (Arc::new(Order::default()), Arc::new(Order::default()));
    one.follow(&first);
    two.follow(&second);
    let writer = |log: Arc<Replicated<String>>, state: Arc<Order>, tag: &'static str| {
        tokio::spawn(async move {
            for i in 0..100 {
                let record = format!("{tag}{i}");
                log.append(record.clone(), &*state).await.unwrap();
                assert!(state.0.lock().contains(&record), "own record applied");
            }
        })
    };
    let a = writer(one.clone(), first.clone(), "a");
    let b = writer(two.clone(), second.clone(), "b");
    a.await.unwrap();
    b.await.unwrap();
    one.catch_up(&*first).await.unwrap();
    two.catch_up(&*second).await.unwrap();
    let (x, y) = (first.0.lock().clone(), second.0.lock().clone());
    assert_eq!(x.len(), 200, "every record once");
    assert_eq!(x, y, "the same order on both");
    let log: Vec<String> = one
        .stream()
        .read_after(Position::START)
        .await
        .unwrap()
        .into_records();
    assert_eq!(x, log, "the log's order");
}

/// A counter kept as the last record.
#[derive(Default)]
struct Counter(parking_lot::Mutex<u64>);

impl crate::runtime::store::Fold<u64> for Counter {
    fn apply(&self, record: u64) {
        *self.0.lock() = record;
    }

    fn reset(&self, records: Vec<u64>) {
        *self.0.lock() = records.last().copied().unwrap_or_default();
    }
}

/// Read-modify-write from two processes at once: every increment lands (none is lost to
/// the other's write), each on the value before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_read_modify_writes_from_two_processes_lose_nothing() {
    use crate::runtime::store::{Fold, Replicated};
    let Some(server) = start(None) else { return };
    // A process's state starts from what the stream held when it opened (the other
    // may have written by then), as a store's does.
    let open = || {
        let backend = RedisBackend::new(&server.url(None), "rmw:").unwrap();
        let (log, replay) = Replicated::<u64>::open_now(
            &backend,
            "counter",
            StreamOptions::default(),
            Compaction::discard(),
        )
        .unwrap();
        let state = Counter::default();
        state.reset(replay.into_records());
        (Arc::new(log), Arc::new(state))
    };
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (log, state) = open();
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let next = || Ok::<u64, ()>(*state.0.lock() + 1);
                log.append_current(&*state, next).await.unwrap().unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let values: Vec<u64> = open()
        .0
        .stream()
        .read_after(Position::START)
        .await
        .unwrap()
        .into_records();
    assert_eq!(values, (1..=100).collect::<Vec<u64>>());
}
