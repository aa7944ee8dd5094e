//! The shared budget's scripts against a real `redis-server` on a loopback port: leases
//! bound a window across two "replicas", expire when their holder dies, pauses and
//! exhausted buckets hold the right lanes, rates and spacing pace starts, and an
//! unreachable Redis fails fast, naming the store without its password, then recovers.
//! Without `redis-server` the tests skip (and fail under `CI=true`).

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use super::*;

/// A `redis-server` in a temp dir on a loopback port, killed on drop.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn url(&self) -> String {
        format!("redis://:pw-5150@127.0.0.1:{}/", self.port)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `redis-server` with a password on `port`, or `None` after skipping (failing
/// under `CI=true`) when it is not installed.
fn start_on(port: u16) -> Option<Server> {
    let Some(bin) = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        let why = "redis-server is not installed; install it with `apt-get install -y redis-server` (tools/test.sh does as root) to run this test";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{why} (CI=true: a missing test tool fails the run; tools/test.sh installs it)");
        }
        eprintln!("SKIPPED: {why}");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            "pw-5150",
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis-server did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(Server {
        child,
        port,
        _dir: dir,
    })
}

fn start() -> Option<Server> {
    start_on(free_port())
}

fn budget(server: &Server, fp: &str) -> Arc<SharedBudget> {
    SharedBudget::new(&server.url(), "test:", fp, 64).unwrap()
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

async fn count(server: &Server, key: &str) -> i64 {
    let b = budget(server, "unused");
    b.connector
        .eval::<i64>(
            "counting",
            "return redis.call('ZCARD', KEYS[1])",
            &[key],
            &[],
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_bound_a_window_across_two_replicas_and_are_released() {
    let Some(server) = start() else { return };
    let config = LaneConfig::concurrency(3);
    let lanes = [
        Arc::new(budget(&server, "fp1").lane("read", &config, &["core"])),
        Arc::new(budget(&server, "fp1").lane("read", &config, &["core"])),
    ];
    let running = Arc::new(AtomicUsize::new(0));
    let highest = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let lane = lanes[i % 2].clone();
            let (running, highest) = (running.clone(), highest.clone());
            tokio::spawn(async move {
                let cancel = CancellationToken::new();
                let ticket = lane.admit(far(), &cancel).await.unwrap();
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                highest.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(15)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                drop(ticket);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let highest = highest.load(Ordering::SeqCst);
    assert!((1..=3).contains(&highest), "{highest} in flight");
    // Releases run in the background.
    let started = Instant::now();
    while count(&server, "test:github:{fp1}:lease:read").await != 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "leases not released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count(&server, "test:github:{fp1}:lease").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_holders_lease_expires() {
    let Some(server) = start() else { return };
    let b = budget(&server, "fp2");
    let keys = [
        "test:github:{fp2}:lease:read",
        "test:github:{fp2}:lease",
        "test:github:{fp2}:last:read",
    ];
    // A lease of 150 ms in a window of 1, taken as a replica that then dies would.
    let ask = |id: &'static str| {
        let b = b.clone();
        async move {
            b.connector
                .eval::<Vec<i64>>(
                    "asking",
                    ACQUIRE,
                    &keys,
                    &[id, "150", "1", "64", "0", "0"].map(String::from),
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(ask("a").await, vec![1, 0, 0]);
    assert_eq!(ask("b").await, vec![0, 0, 2], "the window of 1 is full");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ask("c").await, vec![1, 0, 0], "the dead lease expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_holds_every_lane_and_an_empty_bucket_only_its_own() {
    let Some(server) = start() else { return };
    let b = budget(&server, "fp3");
    let config = LaneConfig::concurrency(4);
    let read = b.lane("read", &config, &["core"]);
    let search = b.lane("search", &config, &["search"]);
    b.hold("empty:search", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(matches!(
        search.ask().await.unwrap().0,
        Answer::Wait(w, Refusal::Exhausted) if w > Duration::from_secs(4)
    ));
    assert_eq!(read.ask().await.unwrap().0, Answer::Granted);
    b.hold("pause", Duration::from_secs(3)).await.unwrap();
    // A shorter pause never shortens a longer one.
    b.hold("pause", Duration::from_millis(10)).await.unwrap();
    let (answer, lease) = read.ask().await.unwrap();
    assert!(lease.is_none());
    assert!(
        matches!(answer, Answer::Wait(w, Refusal::Paused) if w > Duration::from_secs(2)),
        "{answer:?}"
    );
    // A caller whose deadline ends within the pause is refused at the deadline; the
    // replica is told of the pause.
    let told = Arc::new(parking_lot::Mutex::new(None));
    let hook = told.clone();
    let read = read.on_pause(Arc::new(move |wait| *hook.lock() = Some(wait)));
    let cancel = CancellationToken::new();
    let soon = Instant::now() + Duration::from_millis(100);
    assert_eq!(
        read.admit(soon, &cancel).await.err(),
        Some(SharedRefusal::Deadline)
    );
    assert!(told.lock().is_some_and(|w| w > Duration::from_secs(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_and_spacing_pace_starts_across_replicas() {
    let Some(server) = start() else { return };
    let rated = LaneConfig::concurrency(8).rate(3, Duration::from_secs(10));
    let a = budget(&server, "fp4").lane("read", &rated, &["core"]);
    let b = budget(&server, "fp4").lane("read", &rated, &["core"]);
    for lane in [&a, &b, &a] {
        assert_eq!(lane.ask().await.unwrap().0, Answer::Granted);
    }
    let answer = b.ask().await.unwrap().0;
    assert!(
        matches!(answer, Answer::Wait(w, Refusal::Rate) if w > Duration::from_secs(8) && w <= Duration::from_secs(10)),
        "{answer:?}"
    );
    let spaced = LaneConfig::concurrency(8).spacing(Duration::from_secs(2));
    let a = budget(&server, "fp4").lane("write", &spaced, &["core"]);
    let b = budget(&server, "fp4").lane("write", &spaced, &["core"]);
    assert_eq!(a.ask().await.unwrap().0, Answer::Granted);
    assert!(matches!(
        b.ask().await.unwrap().0,
        Answer::Wait(w, Refusal::Spacing) if w > Duration::from_secs(1)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_fails_fast_without_its_password_and_recovers() {
    let port = free_port();
    let url = format!("redis://:pw-5150@127.0.0.1:{port}/");
    let b = SharedBudget::new(&url, "test:", "fp5", 64).unwrap();
    let lane = b.lane("read", &LaneConfig::concurrency(2), &["core"]);
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let refused = lane.admit(far(), &cancel).await.err();
    assert!(started.elapsed() < Duration::from_millis(1500));
    let Some(SharedRefusal::Failed(message)) = refused else {
        panic!("{refused:?}")
    };
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(
        message.contains("***") && !message.contains("pw-5150"),
        "{message}"
    );
    let Some(_server) = start_on(port) else {
        return;
    };
    assert!(
        lane.admit(far(), &cancel).await.is_ok(),
        "recovered by itself"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limits_of_a_shared_credential_write_their_pauses_to_the_store() {
    use crate::github::limits::Limits;
    use crate::runtime::{executor::Executor, http::ResponseObserver};
    use http::{HeaderMap, HeaderValue};
    let Some(server) = start() else { return };
    let limits = Limits::new(&Executor::default(), "fp6", Default::default());
    limits.share(budget(&server, "fp6"));
    let mut h = HeaderMap::new();
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 30;
    h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
    h.insert("x-ratelimit-resource", HeaderValue::from_static("search"));
    h.insert(
        "x-ratelimit-reset",
        HeaderValue::from_str(&reset.to_string()).unwrap(),
    );
    limits.observe(200, &h, b"{}");
    limits.observe(
        429,
        &HeaderMap::from_iter([(http::header::RETRY_AFTER, HeaderValue::from_static("7"))]),
        b"",
    );
    let probe = budget(&server, "fp6");
    let pttl = |key: &'static str| {
        let probe = probe.clone();
        async move {
            probe
                .connector
                .eval::<i64>("probing", "return redis.call('PTTL', KEYS[1])", &[key], &[])
                .await
                .unwrap()
        }
    };
    let started = Instant::now();
    while pttl("test:github:{fp6}:pause").await < 0
        || pttl("test:github:{fp6}:empty:search").await < 0
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "pauses not written"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!((5_000..=7_000).contains(&pttl("test:github:{fp6}:pause").await));
    assert!((25_000..=31_000).contains(&pttl("test:github:{fp6}:empty:search").await));
    // Another replica's read lane is held by the pause, not by the search bucket.
    let other = budget(&server, "fp6").lane("read", &LaneConfig::concurrency(2), &["core"]);
    assert!(matches!(
        other.ask().await.unwrap().0,
        Answer::Wait(_, Refusal::Paused)
    ));
}
