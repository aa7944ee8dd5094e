//! Three `cortex-mcp serve --http` replicas on one Redis store (`--store redis://…`)
//! against one fake GitHub (`tools/fakehub`), one credential: the replicas share its
//! GitHub budget (issue 21). A burst spread round robin over them keeps the cluster-wide
//! window (the fake sees at most 20 in flight and no secondary limit); a secondary limit
//! met through one replica holds the other two until its Retry-After has passed; a Redis
//! that goes away fails GitHub calls with an error naming the store (password masked),
//! and they work again once it is back. Needs Debian's `redis-server` (skips without it,
//! fails under `CI=true`).

use crate::common;

use std::time::{Duration, Instant};

use common::{
    redis::{Persistence, RedisServer},
    *,
};
use fakehub::{FakeConfig, FakeHub};
use futures::StreamExt;
use serde_json::json;

const TOKEN: &str = "tok-cluster-0001";
const REPO: &str = "octo/hello";
const PASSWORD: &str = "cluster-pw-8080";
const STORE_KEY: &str = "8d3c0f4a5b6e7d8c9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60";

/// A redis-server on a loopback port (`tests/common/redis.rs`), or `None` after
/// [`skip_unless_ci`] when it is missing.
fn start_redis() -> Option<RedisServer> {
    let redis = RedisServer::start(PASSWORD, Persistence::None);
    if redis.is_none() {
        skip_unless_ci(
            "redis-server is not installed; install it with `apt-get install -y redis-server` (tools/test.sh does as root) to run this test",
        );
    }
    redis
}

/// One replica: its server process, its state dir and an MCP client over HTTP.
struct Replica {
    client: Client,
    _server: HttpServer,
    _state: tempfile::TempDir,
}

/// A replica's server on `store` against `hub`, with the GitHub credential `credential`
/// (environment variables).
fn replica_server(
    hub: &FakeHub,
    store: &str,
    credential: &[(&str, &str)],
) -> (HttpServer, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let base = hub.base_url();
    let mut env = vec![
        ("GITHUB_API_URL", base.as_str()),
        ("CORTEX_MCP_STORE_KEY", STORE_KEY),
    ];
    env.extend_from_slice(credential);
    let server = http_server(
        state.path(),
        &["--toolsets", "github", "--store", store],
        &env,
    );
    (server, state)
}

async fn replica(hub: &FakeHub, store: &str) -> Replica {
    let (server, state) = replica_server(hub, store, &[("GITHUB_TOKEN", TOKEN)]);
    let client = http_client(&format!("{}/mcp", server.base), None).await;
    Replica {
        client,
        _server: server,
        _state: state,
    }
}

async fn cluster(hub: &FakeHub, redis: &RedisServer, n: usize) -> Vec<Replica> {
    let mut replicas = Vec::new();
    for _ in 0..n {
        replicas.push(replica(hub, &redis.url()).await);
    }
    replicas
}

async fn fake(config: FakeConfig) -> FakeHub {
    fakehub::spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("fake GitHub starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn six_hundred_calls_over_three_replicas_keep_the_shared_window() {
    let Some(redis) = start_redis() else {
        return;
    };
    let hub = fake(FakeConfig {
        latency: Duration::from_millis(30),
        max_concurrent: 20,
        points_per_minute: 900,
        // Short, so that a failure of this test does not hang it for a minute.
        retry_after_secs: Some(2),
        ..Default::default()
    })
    .await;
    let replicas = cluster(&hub, &redis, 3).await;
    let started = Instant::now();
    let results: Vec<_> = futures::stream::iter(0..600u64)
        .map(|i| {
            let client = replicas[(i % 3) as usize].client.clone();
            async move {
                call(
                    &client,
                    "get_issue",
                    json!({"repository": REPO, "number": 1 + i % 240}),
                )
                .await
            }
        })
        .buffer_unordered(300)
        .collect()
        .await;
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.is_error == Some(true))
        .map(text)
        .collect();
    let stats = hub.stats();
    eprintln!(
        "600 calls over 3 replicas in {:?}: upstream {} requests, {} 304s, max in flight {}, {} secondary-limit answers",
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
    assert!(stats.requests >= 240, "{}", stats.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secondary_limit_met_by_one_replica_holds_the_others_until_retry_after() {
    let Some(redis) = start_redis() else {
        return;
    };
    let hub = fake(FakeConfig {
        retry_after_secs: Some(3),
        ..Default::default()
    })
    .await;
    let replicas = cluster(&hub, &redis, 3).await;
    for (n, r) in replicas.iter().enumerate() {
        ok(
            &r.client,
            "get_issue",
            json!({"repository": REPO, "number": 1 + n}),
        )
        .await;
    }
    hub.force_secondary(1);
    let first = {
        let c = replicas[0].client.clone();
        tokio::spawn(async move {
            call(&c, "get_issue", json!({"repository": REPO, "number": 10})).await
        })
    };
    wait_until(
        "the secondary-limit answer",
        Duration::from_secs(10),
        || hub.stats().secondary_limited == 1,
    )
    .await;
    // The replica that got it shares the pause: one key, named by the credential's
    // fingerprint (never the token), expiring with the Retry-After.
    let mut pause = String::new();
    wait_until("the shared pause", Duration::from_secs(5), || {
        pause = redis
            .cli(&["--scan", "--pattern", "cortex:github:*:pause"])
            .trim()
            .to_string();
        !pause.is_empty()
    })
    .await;
    assert!(!pause.contains(TOKEN), "{pause}");
    let pttl = |key: &str| {
        redis
            .cli(&["PTTL", key])
            .trim()
            .parse::<i64>()
            .unwrap_or(-2)
    };
    assert!((1..=3000).contains(&pttl(&pause)), "{}", pttl(&pause));
    let before = hub.stats().requests;
    let others: Vec<_> = [
        (1, "get_issue", json!({"repository": REPO, "number": 11})),
        (2, "get_issue", json!({"repository": REPO, "number": 12})),
        (1, "list_issues", json!({"repository": REPO, "limit": 5})),
        (
            2,
            "get_pull_request",
            json!({"repository": REPO, "number": 251}),
        ),
    ]
    .into_iter()
    .map(|(r, tool, args)| {
        let c = replicas[r].client.clone();
        tokio::spawn(async move { call(&c, tool, args).await })
    })
    .collect();
    // Until the Retry-After has passed (with a margin for the fake's own clock), no
    // replica sends anything for this credential.
    while pttl(&pause) > 250 {
        assert_eq!(
            hub.stats().requests,
            before,
            "a request reached GitHub during the shared pause"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let first = first.await.unwrap();
    assert!(first.is_error != Some(true), "{}", text(&first));
    for h in others {
        let r = h.await.unwrap();
        assert!(r.is_error != Some(true), "{}", text(&r));
    }
    let stats = hub.stats();
    eprintln!(
        "shared pause: {} requests before it, none during it, {} after; {} secondary-limit answer(s)",
        before, stats.requests, stats.secondary_limited
    );
    assert!(
        stats.requests >= before + 5,
        "they proceeded: {}",
        stats.requests
    );
    assert_eq!(stats.secondary_limited, 1, "nothing was sent early");
}

/// Redis, the fake GitHub and one replica on them that has read issue 1 (so the
/// store, the budget and the cache have each answered once).
async fn one_replica_that_read_an_issue() -> Option<(RedisServer, FakeHub, Vec<Replica>)> {
    let redis = start_redis()?;
    let hub = fake(FakeConfig::default()).await;
    let replicas = cluster(&hub, &redis, 1).await;
    ok(
        &replicas[0].client,
        "get_issue",
        json!({"repository": REPO, "number": 1}),
    )
    .await;
    Some((redis, hub, replicas))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_redis_a_github_call_fails_naming_the_store_then_recovers() {
    let Some((mut redis, _hub, replicas)) = one_replica_that_read_an_issue().await else {
        return;
    };
    let port = redis.port;
    let client = &replicas[0].client;
    redis.kill();
    let message = err(
        client,
        "get_issue",
        json!({"repository": REPO, "number": 2}),
    )
    .await;
    assert!(
        message.contains(&format!("127.0.0.1:{port}")) && message.contains("store"),
        "{message}"
    );
    assert!(!message.contains(PASSWORD), "{message}");
    eprintln!("Redis gone: {message}");
    redis.restart();
    ok(
        client,
        "get_issue",
        json!({"repository": REPO, "number": 3}),
    )
    .await;
}

/// A stuck Redis (SIGSTOP): a GitHub call, which takes its slot from the shared budget,
/// fails naming the store within about a second; the next fails at once; once Redis
/// answers, calls succeed again without restarting the replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_redis_fails_github_calls_fast_and_they_recover_when_it_answers() {
    let Some((redis, _hub, replicas)) = one_replica_that_read_an_issue().await else {
        return;
    };
    let client = &replicas[0].client;
    redis.freeze();
    let mut took = Vec::new();
    for number in [2, 3] {
        let started = Instant::now();
        let message = err(
            client,
            "get_issue",
            json!({"repository": REPO, "number": number}),
        )
        .await;
        took.push(started.elapsed());
        assert!(message.contains("store"), "{message}");
        assert!(!message.contains(PASSWORD), "{message}");
    }
    redis.thaw();
    eprintln!("with Redis stuck, GitHub calls failed after {took:?}");
    assert!(took[0] < Duration::from_millis(1500), "{took:?}");
    assert!(
        took[1] < Duration::from_millis(500),
        "the second at once: {took:?}"
    );
    ok_within(
        client,
        "get_issue",
        json!({"repository": REPO, "number": 4}),
        Duration::from_secs(10),
    )
    .await;
}

const APP_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/github-app-test-key.pem"
);
const APP_PUB: &str = include_str!("../support/github-app-test-key.pub.pem");

/// A replica authenticating as a GitHub App installation.
fn app_replica(hub: &FakeHub, store: &str) -> (HttpServer, tempfile::TempDir) {
    let app = [
        ("GITHUB_APP_ID", "4242"),
        ("GITHUB_APP_INSTALLATION_ID", "77"),
        ("GITHUB_APP_PRIVATE_KEY_PATH", APP_KEY),
    ];
    replica_server(hub, store, &app)
}

/// Three replicas of one GitHub App installation mint its token once for the cluster
/// (the others take it, sealed, from the store), mint once again after GitHub revokes
/// it, and the token is nowhere in Redis in the clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_app_installation_token_is_minted_once_for_the_cluster_and_kept_sealed() {
    let Some(redis) = start_redis() else { return };
    let hub = fake(FakeConfig {
        app: Some(fakehub::AppConfig {
            app_id: 4242,
            installation_id: 77,
            public_key_pem: APP_PUB.to_string(),
            token_ttl: Duration::from_secs(3600),
        }),
        ..Default::default()
    })
    .await;
    let servers: Vec<_> = (0..3).map(|_| app_replica(&hub, &redis.url())).collect();
    let mut clients = Vec::new();
    for (server, _) in &servers {
        clients.push(http_client(&format!("{}/mcp", server.base), None).await);
    }
    let peers: Vec<&rmcp::Peer<rmcp::RoleClient>> = clients.iter().map(|c| &**c).collect();
    let burst = |offset: u64| get_issues_at_once(&peers, REPO, 1 + offset..31 + offset);
    let first = burst(0).await;
    assert!(
        first.iter().all(|r| r.is_error != Some(true)),
        "{:?}",
        first.iter().map(text).collect::<Vec<_>>()
    );
    assert_eq!(hub.stats().token_requests, 1, "one mint for three replicas");

    // GitHub revokes it: each replica is refused once, and the cluster mints once more.
    hub.revoke_installation_tokens();
    let second = burst(30).await;
    assert!(
        second.iter().all(|r| r.is_error != Some(true)),
        "{:?}",
        second.iter().map(text).collect::<Vec<_>>()
    );
    let minted = hub.stats().token_requests;
    assert!(
        minted == 2,
        "after a revocation the cluster mints once more, not once per replica: {minted} mints"
    );

    let everything = redis.dump_everything();
    assert!(
        everything.contains("app-token"),
        "the scan read the store: {everything:.300}"
    );
    assert!(
        !everything.contains("ghs_"),
        "an installation token is readable in Redis"
    );
    drop(clients);
}
