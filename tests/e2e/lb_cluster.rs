//! The cluster as `tools/cluster.sh` starts it — Redis, three replicas on it, HAProxy in
//! front, round robin — driven through the load balancer by the rmcp client (issue 21):
//! the GitHub budget holds across replicas, task events cross replicas, and a replica
//! killed mid-burst plus a Redis restart lose no acknowledged task.

use crate::common;

use std::{
    io::BufRead,
    os::unix::process::CommandExt,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{redis::Persistence, redis::RedisServer, *};
use fakehub::{FakeConfig, FakeHub};
use futures::StreamExt;
use serde_json::{Value, json};

const STORE_KEY: &str = "4b8e0d6f2a1c3e5d7f9b0a2c4e6d8f1a3b5c7d9e0f2a4c6e8d0b1f3a5c7e9d2b";
const TOKEN: &str = "ghp_lbclustertoken000000000000000000000";

/// What `tools/cluster.sh` started; SIGTERM to the script stops it all.
struct LbCluster {
    script: Child,
    endpoint: String,
    /// Each replica's URL and pid.
    replicas: Vec<(String, u32)>,
    _dir: tempfile::TempDir,
}

impl Drop for LbCluster {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.script.id() as i32, libc::SIGTERM);
        }
        let _ = self.script.wait();
    }
}

fn haproxy_present() -> bool {
    [
        "/usr/sbin/haproxy",
        "/usr/bin/haproxy",
        "/usr/local/sbin/haproxy",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists())
}

/// Runs `tools/cluster.sh` with `args` and `env`, waiting for its `ready` line.
fn start(args: &[&str], env: &[(&str, &str)]) -> Option<LbCluster> {
    if !haproxy_present() {
        skip_unless_ci("haproxy is not installed (tools/test.sh installs it as root)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/cluster.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script)
        .args(["--dir", dir.path().to_str().unwrap()])
        .args(args)
        .env("CORTEX_MCP_BIN", BIN)
        .env("CORTEX_MCP_STORE_KEY", STORE_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut script = cmd.spawn().expect("bash tools/cluster.sh");
    let stdout = script.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut endpoint = None;
    let mut replicas = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("tools/cluster.sh printed `ready`");
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["replica", _, url, "pid", pid] => {
                replicas.push((url.to_string(), pid.parse().unwrap()))
            }
            ["endpoint", url] => endpoint = Some(url.to_string()),
            ["ready"] => break,
            _ => {}
        }
    }
    Some(LbCluster {
        script,
        endpoint: endpoint.expect("an endpoint line"),
        replicas,
        _dir: dir,
    })
}

/// The fake GitHub with `config`, and three `github` replicas behind HAProxy on it with
/// one token; `None` (skipped) without haproxy.
async fn github_behind_the_balancer(config: FakeConfig) -> Option<(FakeHub, LbCluster)> {
    if !haproxy_present() {
        skip_unless_ci("haproxy is not installed (tools/test.sh installs it as root)");
        return None;
    }
    let hub: FakeHub = fakehub::spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("fake GitHub starts");
    let api = hub.base_url();
    let cluster = start(
        &["--replicas", "3", "--", "--toolsets", "github"],
        &[("GITHUB_API_URL", &api), ("GITHUB_TOKEN", TOKEN)],
    )?;
    Some((hub, cluster))
}

fn task_input(title: &str) -> Value {
    json!({"title": title, "brief": "b", "inputs": [], "scopes": ["repo:read"]})
}

/// How many `tool` calls a replica served, from its `/metrics`.
async fn calls_served(replica_url: &str, tool: &str) -> u64 {
    let metrics_url = replica_url.replace("/mcp", "/metrics");
    let body = reqwest::get(&metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body.lines()
        .filter(|l| {
            l.starts_with("cortex_tool_calls_total") && l.contains(&format!("tool=\"{tool}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn six_hundred_github_calls_through_the_load_balancer_keep_one_budget() {
    let Some((hub, cluster)) = github_behind_the_balancer(FakeConfig {
        latency: Duration::from_millis(30),
        max_concurrent: 20,
        points_per_minute: 900,
        retry_after_secs: Some(2),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let client = http_client(&cluster.endpoint, None).await;
    let repo = "octo/hello";
    let started = Instant::now();
    let results: Vec<_> = futures::stream::iter(0..600u64)
        .map(|i| {
            let client = client.clone();
            async move {
                call(
                    &client,
                    "get_issue",
                    json!({"repository": repo, "number": 1 + i % 240}),
                )
                .await
            }
        })
        .buffer_unordered(200)
        .collect()
        .await;
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.is_error == Some(true))
        .map(text)
        .collect();
    let stats = hub.stats();
    let mut served = Vec::new();
    for (url, _) in &cluster.replicas {
        served.push(calls_served(url, "get_issue").await);
    }
    eprintln!(
        "600 calls through HAProxy in {:?}: per replica {served:?}, upstream {} requests ({} 304s), max in flight {}, {} secondary-limit answers",
        started.elapsed(),
        stats.requests,
        stats.not_modified,
        stats.max_in_flight,
        stats.secondary_limited
    );
    assert!(
        failed.is_empty(),
        "{} failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    assert!(stats.max_in_flight <= 20, "{}", stats.max_in_flight);
    assert_eq!(stats.secondary_limited, 0);
    assert_eq!(served.iter().sum::<u64>(), 600, "{served:?}");
    assert!(
        served.iter().all(|&n| n > 0),
        "every replica served calls: {served:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_burst_and_a_redis_restart_lose_no_acknowledged_task() {
    if !haproxy_present() {
        return skip_unless_ci("haproxy is not installed (tools/test.sh installs it as root)");
    }
    let Some(mut redis) = RedisServer::start("lb-cluster-pass-3171", Persistence::AofAlways) else {
        return skip_unless_ci("redis-server is not installed (tools/test.sh installs it as root)");
    };
    let url = redis.url();
    let Some(cluster) = start(
        &[
            "--replicas",
            "3",
            "--redis-url",
            &url,
            "--",
            "--toolsets",
            "asbr",
        ],
        &[],
    ) else {
        return;
    };

    // Cross-replica latency: created through replica 1, long-polled on replica 2.
    let one = http_client(&cluster.replicas[0].0, None).await;
    let two = http_client(&cluster.replicas[1].0, None).await;
    let mut latencies = Vec::new();
    for i in 0..50 {
        let started = Instant::now();
        let made = ok(
            &one,
            "create_task",
            json!({"input": task_input(&format!("lat {i}"))}),
        )
        .await;
        let id = made["id"].as_str().unwrap();
        let seen = ok(
            &two,
            "watch_task_events",
            json!({"taskId": id, "since_seq": 0, "wait_ms": 10000}),
        )
        .await;
        assert_eq!(seen["events"][0]["data"]["type"], "PlanStarted");
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    eprintln!(
        "create on replica 1 → its event returned by watch_task_events on replica 2: p50 {:.2} ms, p99 {:.2} ms",
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100]
    );

    // A burst through the load balancer; replica 2 is SIGKILLed once 40 are acknowledged.
    let client = http_client(&cluster.endpoint, None).await;
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let victim = cluster.replicas[1].1;
    let results: Vec<Option<Value>> = futures::stream::iter(0..200)
        .map(|i| {
            let (client, acked) = (client.clone(), acked.clone());
            async move {
                let made = try_ok(
                    &client,
                    "create_task",
                    json!({"input": task_input(&format!("burst {i}"))}),
                )
                .await;
                if let Some(task) = &made {
                    let mut acked = acked.lock().unwrap();
                    acked.push(task["id"].as_str().unwrap().to_string());
                    if acked.len() == 40 {
                        unsafe {
                            libc::kill(victim as i32, libc::SIGKILL);
                        }
                    }
                }
                made
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let acked = acked.lock().unwrap().clone();
    eprintln!(
        "burst: {} of {} acknowledged (replica 2 killed after 40)",
        acked.len(),
        results.len()
    );
    assert!(acked.len() >= 40, "{}", acked.len());

    // Redis killed and started again from its AOF (fsync always).
    redis.kill();
    redis.restart();
    let survivors = [&cluster.replicas[0].0, &cluster.replicas[2].0];
    for url in survivors {
        let reader = http_client(url, None).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        for id in &acked {
            loop {
                let r = call(&reader, "get_task", json!({"taskId": id})).await;
                if r.is_error != Some(true) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "acknowledged task {id} missing on {url}: {}",
                    text(&r)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_issues_read_ten_times_over_three_replicas_cost_one_unit_each() {
    let Some((hub, cluster)) = github_behind_the_balancer(FakeConfig {
        latency: Duration::from_millis(20),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let client = http_client(&cluster.endpoint, None).await;
    // Ten rounds; in each, all 20 issues at once (so replicas also ask for the same
    // issue at the same moment).
    for round in 0..10 {
        if round > 0 {
            // Past the one second in which a just-fetched entry is served as is: every
            // later read revalidates the shared entry (a 304 costs no budget).
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        let results: Vec<_> = futures::stream::iter(1..=20u64)
            .map(|n| {
                let client = client.clone();
                async move {
                    call(
                        &client,
                        "get_issue",
                        json!({"repository": "octo/hello", "number": n}),
                    )
                    .await
                }
            })
            .buffer_unordered(20)
            .collect()
            .await;
        for r in &results {
            assert_ne!(r.is_error, Some(true), "{}", text(r));
        }
    }
    let stats = hub.stats();
    let units: u64 = stats
        .by_token
        .values()
        .map(|t| t.charged.get("core").copied().unwrap_or(0))
        .sum();
    eprintln!(
        "200 reads of 20 issues over 3 replicas: {} upstream requests, {} of them 304, {units} primary-budget units",
        stats.requests, stats.not_modified
    );
    assert!(
        units <= 20,
        "{units} units for 20 unchanged issues: {stats:?}"
    );

    // 30 calls at once for one issue no replica has: one upstream request.
    let before = hub.stats().requests;
    let results: Vec<_> = futures::stream::iter(0..30)
        .map(|_| {
            let client = client.clone();
            async move {
                call(
                    &client,
                    "get_issue",
                    json!({"repository": "octo/hello", "number": 99}),
                )
                .await
            }
        })
        .buffer_unordered(30)
        .collect()
        .await;
    for r in &results {
        assert_ne!(r.is_error, Some(true), "{}", text(r));
    }
    let after = hub.stats();
    let upstream = after.requests - before;
    eprintln!(
        "30 concurrent reads of one new issue over 3 replicas: {upstream} upstream request(s), {} 304",
        after.not_modified - stats.not_modified
    );
    assert_eq!(upstream, 1, "single flight across replicas");
}
