//! The github toolset through a real MCP client (rmcp over stdio) against the fake GitHub
//! (`tools/fakehub`) on loopback: budgets, 304s, single-flight, secondary limits,
//! Retry-After pauses, App tokens, filters, cursors, errors, and every tool once.

use crate::common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use fakehub::{AppConfig, FakeConfig, FakeHub};
use serde_json::{Value, json};

const TOKEN: &str = "tok-e2e-0001";
const REPO: &str = "octo/hello";
const APP_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/github-app-test-key.pem"
);
const APP_PUB: &str = include_str!("../support/github-app-test-key.pub.pem");

async fn fake(config: FakeConfig) -> FakeHub {
    fakehub::spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("fake GitHub starts")
}

struct Setup {
    hub: FakeHub,
    client: Client,
    _state: tempfile::TempDir,
}

async fn setup_with(config: FakeConfig, extra: &[&str], env: &[(&str, &str)]) -> Setup {
    let hub = fake(config).await;
    let state = tempfile::tempdir().unwrap();
    let base = hub.base_url();
    let mut vars = vec![("GITHUB_API_URL", base.as_str())];
    vars.extend_from_slice(env);
    let mut args = vec!["--toolsets", "github,batch"];
    args.extend_from_slice(extra);
    let client = stdio_client_env(state.path(), &args, &vars).await;
    Setup {
        hub,
        client,
        _state: state,
    }
}

async fn setup(config: FakeConfig) -> Setup {
    setup_with(config, &[], &[("GITHUB_TOKEN", TOKEN)]).await
}

fn charged(hub: &FakeHub) -> u64 {
    hub.stats()
        .by_token
        .values()
        .map(|t| t.charged.get("core").copied().unwrap_or(0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_read_served_by_304_costs_no_budget() {
    let s = setup(FakeConfig::default()).await;
    for n in [3, 4, 5] {
        let first = ok(
            &s.client,
            "get_issue",
            json!({"repository": REPO, "number": n}),
        )
        .await;
        let again = ok(
            &s.client,
            "get_issue",
            json!({"repository": REPO, "number": n}),
        )
        .await;
        assert_eq!(first, again);
        assert_eq!(first["number"], n);
    }
    let stats = s.hub.stats();
    assert_eq!(stats.requests, 6, "every re-read is revalidated upstream");
    assert_eq!(stats.not_modified, 3);
    assert_eq!(charged(&s.hub), 3, "one budget unit per distinct issue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_concurrent_gets_make_one_upstream_request() {
    let s = setup(FakeConfig {
        latency: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let calls = (0..25).map(|_| {
        let c = s.client.clone();
        async move { call(&c, "get_issue", json!({"repository": REPO, "number": 9})).await }
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|r| r.is_error != Some(true)));
    let stats = s.hub.stats();
    assert_eq!(
        stats
            .by_route
            .get("GET /repos/{owner}/{repo}/issues/{number}"),
        Some(&1),
        "{:?}",
        stats.by_route
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_500_calls_trips_no_secondary_limit() {
    let s = setup(FakeConfig {
        latency: Duration::from_millis(20),
        max_concurrent: 100,
        points_per_minute: 900,
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let calls = (0..500u64).map(|i| {
        let c = s.client.clone();
        async move {
            call(
                &c,
                "get_issue",
                json!({"repository": REPO, "number": 1 + i % 250}),
            )
            .await
        }
    });
    let results = futures::future::join_all(calls).await;
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.is_error == Some(true))
        .map(text)
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    let stats = s.hub.stats();
    assert_eq!(stats.secondary_limited, 0);
    assert!(stats.max_in_flight <= 100, "{}", stats.max_in_flight);
    eprintln!(
        "500 calls in {:?}; upstream {} requests, {} 304s, max in flight {}",
        started.elapsed(),
        stats.requests,
        stats.not_modified,
        stats.max_in_flight
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_retry_after_pause_nothing_reaches_github() {
    let s = setup(FakeConfig {
        retry_after_secs: Some(2),
        ..Default::default()
    })
    .await;
    s.hub.force_secondary(1);
    let started = Instant::now();
    let first = {
        let c = s.client.clone();
        tokio::spawn(async move {
            call(&c, "get_issue", json!({"repository": REPO, "number": 1})).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let others: Vec<_> = [
        ("list_issues", json!({"repository": REPO, "limit": 5})),
        (
            "get_pull_request",
            json!({"repository": REPO, "number": 251}),
        ),
        (
            "create_issue",
            json!({"repository": REPO, "title": "queued behind the pause"}),
        ),
    ]
    .into_iter()
    .map(|(tool, args)| {
        let c = s.client.clone();
        tokio::spawn(async move { call(&c, tool, args).await })
    })
    .collect();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        s.hub.stats().requests,
        1,
        "only the rejected request reached GitHub during the pause"
    );
    let first = first.await.unwrap();
    assert!(first.is_error != Some(true), "{}", text(&first));
    for h in others {
        let r = h.await.unwrap();
        assert!(r.is_error != Some(true), "{}", text(&r));
    }
    assert!(started.elapsed() >= Duration::from_secs(2));
    let stats = s.hub.stats();
    assert_eq!(stats.secondary_limited, 1, "nothing was sent early");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_that_outlasts_the_budget_says_when_to_retry() {
    let s = setup_with(
        FakeConfig {
            retry_after_secs: Some(30),
            ..Default::default()
        },
        &["--github-max-rate-wait-secs", "1"],
        &[("GITHUB_TOKEN", TOKEN)],
    )
    .await;
    s.hub.force_secondary(1);
    let msg = err(
        &s.client,
        "get_issue",
        json!({"repository": REPO, "number": 2}),
    )
    .await;
    assert!(
        msg.contains("rate limit") && msg.contains("try again after 30 s"),
        "{msg}"
    );
    let limits = ok(&s.client, "get_rate_limit", json!({})).await;
    assert!(
        limits["paused_for_ms"].as_u64().unwrap_or(0) > 20_000,
        "{limits}"
    );
    assert_eq!(limits["secondary_limits_seen"], 1);
    assert!(
        !limits.to_string().contains(TOKEN),
        "no token in the status"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_callers_with_an_expiring_app_token_mint_once() {
    let key_path = APP_KEY.to_string();
    let s = setup_with(
        FakeConfig {
            app: Some(AppConfig {
                app_id: 4242,
                installation_id: 77,
                public_key_pem: APP_PUB.to_string(),
                // Refreshed 300 s before expiry: usable for about 2 s.
                token_ttl: Duration::from_secs(302),
            }),
            ..Default::default()
        },
        &[],
        &[
            ("GITHUB_APP_ID", "4242"),
            ("GITHUB_APP_INSTALLATION_ID", "77"),
            ("GITHUB_APP_PRIVATE_KEY_PATH", key_path.as_str()),
        ],
    )
    .await;
    let one: [&rmcp::Peer<rmcp::RoleClient>; 1] = [&s.client];
    let burst = |offset: u64| get_issues_at_once(&one, REPO, 1 + offset..21 + offset);
    assert!(burst(0).await.iter().all(|r| r.is_error != Some(true)));
    assert_eq!(s.hub.stats().token_requests, 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(burst(20).await.iter().all(|r| r.is_error != Some(true)));
    assert_eq!(
        s.hub.stats().token_requests,
        2,
        "expired token refreshed once"
    );
    s.hub.revoke_installation_tokens();
    ok(
        &s.client,
        "get_issue",
        json!({"repository": REPO, "number": 60}),
    )
    .await;
    assert_eq!(s.hub.stats().token_requests, 3, "a 401 invalidates once");

    // A plain 403 (installation tokens cannot read /user) is not a rate limit.
    let msg = err(&s.client, "get_me", json!({})).await;
    assert!(
        msg.contains("403") && msg.contains("not a rate limit"),
        "{msg}"
    );
    let limits = ok(&s.client, "get_rate_limit", json!({})).await;
    assert!(limits.get("paused_for_ms").is_none(), "{limits}");
    assert_eq!(limits["credential"], "app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_issues_filters_pages_and_refuses_foreign_cursors() {
    let s = setup(FakeConfig::default()).await;
    let all = ok(
        &s.client,
        "list_issues",
        json!({"repository": REPO, "assignee": "alice", "limit": 100}),
    )
    .await;
    let items = all["items"].as_array().unwrap();
    assert!(!items.is_empty());
    for issue in items {
        let logins: Vec<&str> = issue["assignees"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["login"].as_str().unwrap())
            .collect();
        assert!(logins.contains(&"alice"), "{issue}");
        assert_eq!(issue["state"], "open");
    }
    // The same list, 7 at a time through cursors.
    s.hub.reset_stats();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut args = json!({"repository": REPO, "assignee": "alice", "limit": 7});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let page = ok(&s.client, "list_issues", args).await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["number"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let numbers: Vec<Value> = items.iter().map(|i| i["number"].clone()).collect();
    assert_eq!(seen, numbers);

    // Only the pages needed: a limit of 5 reads one page.
    s.hub.reset_stats();
    let five = ok(
        &s.client,
        "list_issues",
        json!({"repository": REPO, "limit": 5, "labels": ["bug"]}),
    )
    .await;
    assert_eq!(five["items"].as_array().unwrap().len(), 5);
    assert!(
        five["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["labels"].to_string().contains("bug"))
    );
    assert_eq!(s.hub.stats().requests, 1);

    // Cursors are signed: one re-pointed at another host, at another path on the API,
    // with its signature cut off or flipped, is refused and nothing is sent.
    let cursor = five["next_cursor"].as_str().unwrap();
    let (body, tag) = cursor.split_once('.').expect("a signed cursor");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let decoded: Value = serde_json::from_slice(&b64.decode(body).unwrap()).unwrap();
    let repoint = |from: &str, to: &str| {
        let mut d = decoded.clone();
        d["p"]["u"] = json!(d["p"]["u"].as_str().unwrap().replace(from, to));
        b64.encode(d.to_string())
    };
    let foreign = repoint("127.0.0.1", "evil.example");
    let other_path = repoint("/repos/octo/hello/issues", "/user");
    let mut flipped = b64.decode(tag).unwrap();
    flipped[0] ^= 1;
    let before = s.hub.stats().requests;
    for forged in [
        format!("{foreign}.{tag}"),
        format!("{other_path}.{tag}"),
        other_path.clone(),
        format!("{body}.{}", b64.encode(&flipped)),
    ] {
        let msg = err(
            &s.client,
            "list_issues",
            json!({"repository": REPO, "cursor": forged}),
        )
        .await;
        assert!(
            msg.contains("cursor") && msg.contains("sign"),
            "{forged}: {msg}"
        );
    }
    assert_eq!(s.hub.stats().requests, before, "nothing was sent");
    // The genuine cursor still works.
    ok(
        &s.client,
        "list_issues",
        json!({"repository": REPO, "cursor": cursor}),
    )
    .await;
}

/// User values in URL paths are checked after percent-decoding on an Enterprise base:
/// `%2e%2e` segments, `#` and `?` are refused naming the field, and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_path_segments_are_refused_naming_the_field() {
    let hub = fake(FakeConfig::default()).await;
    let state = tempfile::tempdir().unwrap();
    let base = format!("{}/api/v3", hub.base_url());
    let client = stdio_client_env(
        state.path(),
        &["--toolsets", "github"],
        &[("GITHUB_API_URL", &base), ("GITHUB_TOKEN", TOKEN)],
    )
    .await;
    let cases = [
        (
            "get_commit",
            json!({"repository": REPO, "sha": "%2e%2e/%2e%2e/%2e%2e/user"}),
            "sha",
        ),
        (
            "get_commit",
            json!({"repository": REPO, "sha": "%2E%2E"}),
            "sha",
        ),
        (
            "get_commit",
            json!({"repository": REPO, "sha": "main#frag"}),
            "sha",
        ),
        (
            "get_commit",
            json!({"repository": REPO, "sha": "main%23frag"}),
            "sha",
        ),
        (
            "get_commit",
            json!({"repository": REPO, "sha": "main%3Fx=1"}),
            "sha",
        ),
        (
            "compare_commits",
            json!({"repository": REPO, "base": "%2e%2e/%2e%2e/x", "head": "main"}),
            "base",
        ),
        (
            "compare_commits",
            json!({"repository": REPO, "base": "main", "head": "main#frag"}),
            "head",
        ),
        (
            "get_file_contents",
            json!({"repository": REPO, "path": "docs/%2e%2e/%2e%2e/%2e%2e/user"}),
            "path",
        ),
        (
            "create_branch",
            json!({"repository": REPO, "branchName": "x", "fromBranch": "%2e%2e"}),
            "fromBranch",
        ),
    ];
    for (tool, args, field) in cases {
        let before = hub.stats().requests;
        let msg = err(&client, tool, args.clone()).await;
        assert!(
            msg.starts_with(&format!("{field}: ")) || msg.contains(&format!("{field}: `")),
            "{tool} {args}: {msg}"
        );
        assert_eq!(
            hub.stats().requests,
            before,
            "{tool} {args}: a request was sent"
        );
    }
    // Ordinary paths still reach the API under the same base.
    let r = call(
        &client,
        "get_file_contents",
        json!({"repository": REPO, "path": "README.md"}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_to_do() {
    let s = setup(FakeConfig::default()).await;
    let msg = err(
        &s.client,
        "get_issue",
        json!({"repository": REPO, "number": 99999}),
    )
    .await;
    assert!(msg.contains("not found") && msg.contains("check"), "{msg}");
    let msg = err(
        &s.client,
        "get_issue",
        json!({"repository": "no-slash", "number": 1}),
    )
    .await;
    assert!(
        msg.contains("repository") && msg.contains("owner/name"),
        "{msg}"
    );
    let msg = err(
        &s.client,
        "list_issues",
        json!({"repository": REPO, "limit": 500}),
    )
    .await;
    assert!(msg.contains("limit"), "{msg}");
    let msg = err(
        &s.client,
        "create_pull_request",
        json!({"repository": REPO, "title": "t", "head": "no-such-branch"}),
    )
    .await;
    assert!(msg.contains("422") && msg.contains("head"), "{msg}");

    // GETs retry 5xx; writes do not.
    s.hub.inject_server_errors(2, 502);
    ok(
        &s.client,
        "get_issue",
        json!({"repository": REPO, "number": 1}),
    )
    .await;
    s.hub.reset_stats();
    s.hub.inject_server_errors(1, 502);
    let msg = err(
        &s.client,
        "create_issue",
        json!({"repository": REPO, "title": "once"}),
    )
    .await;
    assert!(msg.contains("502"), "{msg}");
    assert_eq!(
        s.hub.stats().requests,
        1,
        "a failed write is not retried blindly"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_credential_github_tools_name_the_variable_and_others_work() {
    let hub = fake(FakeConfig::default()).await;
    let state = tempfile::tempdir().unwrap();
    let base = hub.base_url();
    let client = stdio_client_env(
        state.path(),
        &["--toolsets", "github,batch"],
        &[("GITHUB_API_URL", base.as_str())],
    )
    .await;
    let msg = err(
        &client,
        "get_issue",
        json!({"repository": REPO, "number": 1}),
    )
    .await;
    assert!(
        msg.contains("GITHUB_TOKEN") && msg.contains("GITHUB_APP_ID"),
        "{msg}"
    );
    assert_eq!(hub.stats().requests, 0);
    let batch = ok(
        &client,
        "batch",
        json!({"calls": [{"tool": "get_me", "arguments": {}}]}),
    )
    .await;
    assert_eq!(batch["results"][0]["ok"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_leaves_only_read_tools() {
    let s = setup_with(
        FakeConfig::default(),
        &["--read-only"],
        &[("GITHUB_TOKEN", TOKEN)],
    )
    .await;
    let tools = s.client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(names.contains(&"get_issue") && names.contains(&"search_code"));
    for write in [
        "create_issue",
        "create_pull_request",
        "merge_pull_request",
        "run_action",
        "create_branch",
    ] {
        assert!(!names.contains(&write), "{write} listed in read-only mode");
    }
    for t in &tools {
        let ann = t.annotations.as_ref().expect("annotations");
        assert_eq!(ann.read_only_hint, Some(true), "{}", t.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_runs_fifty_get_issue_within_the_lanes() {
    let s = setup(FakeConfig {
        latency: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let calls: Vec<Value> = (1..=50)
        .map(|n| json!({"tool": "get_issue", "arguments": {"repository": REPO, "number": n}}))
        .collect();
    let out = ok(&s.client, "batch", json!({"calls": calls})).await;
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 50);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["result"]["number"], i as u64 + 1);
    }
    assert_eq!(s.hub.stats().secondary_limited, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_works_against_the_fake() {
    let s = setup(FakeConfig::default()).await;
    let c = &s.client;
    let r = |v: Value| {
        let mut v = v;
        v["repository"] = json!(REPO);
        v
    };
    let info = ok(
        c,
        "get_repository_info",
        r(json!({"includeStats": true, "includeBranches": true})),
    )
    .await;
    assert_eq!(info["repository"]["default_branch"], "main");
    assert!(info["stats"]["languages"]["Rust"].as_u64().unwrap() > 0);
    assert!(info["branches"]["next_cursor"].is_string());
    let more = ok(
        c,
        "list_branches",
        r(json!({"cursor": info["branches"]["next_cursor"]})),
    )
    .await;
    assert!(!more["items"].as_array().unwrap().is_empty());

    let issue = ok(
        c,
        "create_issue",
        r(json!({"title": "From the e2e test", "body": "hello", "labels": ["bug"]})),
    )
    .await;
    let number = issue["number"].as_u64().unwrap();
    let got = ok(c, "get_issue", r(json!({"number": number}))).await;
    assert_eq!(got["body"], "hello");
    let closed = ok(
        c,
        "update_issue",
        r(json!({"number": number, "state": "closed"})),
    )
    .await;
    assert_eq!(closed["state"], "closed");
    let comment = ok(
        c,
        "add_issue_comment",
        r(json!({"number": number, "body": "done"})),
    )
    .await;
    assert_eq!(comment["body"], "done");
    let comments = ok(c, "list_issue_comments", r(json!({"number": 1}))).await;
    assert_eq!(comments["items"].as_array().unwrap().len(), 3);

    let prs = ok(c, "list_pull_requests", r(json!({"limit": 5}))).await;
    let pr_number = prs["items"][0]["number"].as_u64().unwrap();
    let pr = ok(c, "get_pull_request", r(json!({"number": pr_number}))).await;
    assert_eq!(pr["number"], pr_number);
    let files = ok(c, "get_pull_request_files", r(json!({"number": pr_number}))).await;
    assert!(!files["items"].as_array().unwrap().is_empty());
    let diff = ok(
        c,
        "get_pull_request_diff",
        r(json!({"number": pr_number, "maxBytes": 1024})),
    )
    .await;
    assert!(
        diff["text"].as_str().unwrap().starts_with("diff --git"),
        "{diff}"
    );
    let branch = ok(
        c,
        "create_branch",
        r(json!({"branchName": "e2e-branch", "fromBranch": "dev"})),
    )
    .await;
    assert_eq!(branch["ref"], "refs/heads/e2e-branch");
    let new_pr = ok(
        c,
        "create_pull_request",
        r(json!({"title": "E2E", "head": "e2e-branch"})),
    )
    .await;
    let merged = ok(
        c,
        "merge_pull_request",
        r(json!({"number": new_pr["number"], "mergeMethod": "squash"})),
    )
    .await;
    assert_eq!(merged["merged"], true);

    let readme = ok(c, "get_file_contents", r(json!({"path": "README.md"}))).await;
    assert_eq!(readme["type"], "file");
    assert!(!readme["content"]["text"].as_str().unwrap().is_empty());
    let dir = ok(
        c,
        "get_file_contents",
        r(json!({"path": "src", "ref": "main"})),
    )
    .await;
    assert!(dir["entries"].as_array().unwrap().len() >= 2);
    let commits = ok(c, "list_commits", r(json!({"limit": 3}))).await;
    let sha = commits["items"][0]["sha"].as_str().unwrap().to_string();
    let commit = ok(c, "get_commit", r(json!({"sha": sha}))).await;
    assert_eq!(commit["sha"], sha.as_str());
    let cmp = ok(
        c,
        "compare_commits",
        r(json!({"base": "main", "head": "feature-1"})),
    )
    .await;
    assert!(cmp["status"].is_string());

    let found = ok(
        c,
        "search_issues",
        json!({"query": "repo:octo/hello is:issue label:bug", "limit": 5}),
    )
    .await;
    assert!(found["total_count"].as_u64().unwrap() > 0);
    let code = ok(c, "search_code", json!({"query": "repo:octo/hello lib"})).await;
    assert!(code["items"].is_array());
    let repos = ok(c, "search_repositories", json!({"query": "hello"})).await;
    assert!(repos["total_count"].as_u64().unwrap() >= 1);

    let dispatched = ok(
        c,
        "run_action",
        r(json!({"workflow": "ci.yml", "inputs": {"level": "full"}})),
    )
    .await;
    assert_eq!(dispatched["dispatched"], true);
    let runs = ok(c, "list_workflow_runs", r(json!({"limit": 10}))).await;
    let run_id = runs["items"][0]["id"].as_u64().unwrap();
    let run = ok(c, "get_workflow_run", r(json!({"runId": run_id}))).await;
    assert_eq!(run["id"], run_id);
    let me = ok(c, "get_me", json!({})).await;
    assert_eq!(me["login"], "octocat");
    let limits = ok(c, "get_rate_limit", json!({})).await;
    assert!(
        limits["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["resource"] == "core")
    );
    assert!(limits["lanes"].as_array().unwrap().len() >= 4);

    // Writes were published on the event bus.
    let events = read_json(c, "events://github.*").await;
    let types: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for t in [
        "github.issue.action",
        "github.pull_request.action",
        "github.workflow.status",
    ] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
}

/// A persistent 5xx ends after a few quick retries (its own budget, not the rate-limit
/// wait) with `isError` naming the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_server_error_ends_after_three_retries() {
    let s = setup(FakeConfig::default()).await;
    s.hub.inject_server_errors(1_000, 502);
    let msg = err(
        &s.client,
        "get_issue",
        json!({"repository": REPO, "number": 1}),
    )
    .await;
    assert!(msg.contains("502"), "{msg}");
    assert_eq!(
        s.hub.stats().server_errors,
        4,
        "one attempt and three retries"
    );
}

/// Without `base`/`fromBranch`, writes use the repository's default branch, not `main`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branch_and_pull_request_default_to_the_default_branch() {
    let s = setup(FakeConfig::default()).await;
    s.hub.rename_default_branch(REPO, "trunk");
    let branch = ok(
        &s.client,
        "create_branch",
        json!({"repository": REPO, "branchName": "from-default"}),
    )
    .await;
    assert_eq!(branch["ref"], "refs/heads/from-default");
    let pr = ok(
        &s.client,
        "create_pull_request",
        json!({"repository": REPO, "title": "into the default", "head": "feature-1"}),
    )
    .await;
    assert!(pr.to_string().contains("trunk"), "{pr}");
}

/// A diff request answered with JSON (the upstream ignored `Accept`) fails clearly
/// instead of returning the JSON as the diff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diff_answered_as_json_is_refused() {
    let s = setup(FakeConfig::default()).await;
    let prs = ok(
        &s.client,
        "list_pull_requests",
        json!({"repository": REPO, "limit": 1}),
    )
    .await;
    let number = prs["items"][0]["number"].as_u64().unwrap();
    s.hub.set_ignore_accept(true);
    let msg = err(
        &s.client,
        "get_pull_request_diff",
        json!({"repository": REPO, "number": number}),
    )
    .await;
    assert!(
        msg.contains("application/json") && msg.contains("diff"),
        "{msg}"
    );
    s.hub.set_ignore_accept(false);
    let diff = ok(
        &s.client,
        "get_pull_request_diff",
        json!({"repository": REPO, "number": number}),
    )
    .await;
    assert!(diff["text"].as_str().unwrap().starts_with("diff --git"));
}

/// After the installation token is revoked, every one of ten concurrent callers that got
/// a 401 retries once with the refreshed token; one token request serves them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_caller_refused_after_a_token_rotation_retries_once() {
    let key_path = APP_KEY.to_string();
    let s = setup_with(
        FakeConfig {
            app: Some(AppConfig {
                app_id: 4242,
                installation_id: 77,
                public_key_pem: APP_PUB.to_string(),
                token_ttl: Duration::from_secs(3600),
            }),
            ..Default::default()
        },
        &[],
        &[
            ("GITHUB_APP_ID", "4242"),
            ("GITHUB_APP_INSTALLATION_ID", "77"),
            ("GITHUB_APP_PRIVATE_KEY_PATH", key_path.as_str()),
        ],
    )
    .await;
    ok(
        &s.client,
        "get_issue",
        json!({"repository": REPO, "number": 1}),
    )
    .await;
    assert_eq!(s.hub.stats().token_requests, 1);
    s.hub.revoke_installation_tokens();
    // Every call is in flight with the stale token before the first 401 comes back.
    s.hub.set_latency(Duration::from_millis(300));
    let calls = (0..10u64).map(|i| {
        let c = s.client.clone();
        async move {
            call(
                &c,
                "get_issue",
                json!({"repository": REPO, "number": 2 + i}),
            )
            .await
        }
    });
    let results = futures::future::join_all(calls).await;
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.is_error == Some(true))
        .map(text)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of 10 failed: {failed:?}",
        failed.len()
    );
    assert_eq!(s.hub.stats().token_requests, 2, "one refresh for all");
}

/// Issue 16 item 2: against an upstream that admits only 4 requests at once, the read
/// lane's window adapts (halves on secondary-limit answers, widens slowly on success)
/// instead of re-sending the full window after every pause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_reads_against_four_concurrent_slots_adapt_the_window() {
    let s = setup(FakeConfig {
        latency: Duration::from_millis(50),
        max_concurrent: 4,
        retry_after_secs: Some(1),
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let calls = (1..=60u64).map(|n| {
        let c = s.client.clone();
        async move { call(&c, "get_issue", json!({"repository": REPO, "number": n})).await }
    });
    let results = futures::future::join_all(calls).await;
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.is_error == Some(true))
        .map(text)
        .collect();
    let stats = s.hub.stats();
    eprintln!(
        "60 reads, upstream allowing 4 at once: {} secondary-limit answers, {} failed, max in flight {}, {:?}",
        stats.secondary_limited,
        failed.len(),
        stats.max_in_flight,
        started.elapsed()
    );
    assert!(
        failed.is_empty(),
        "{} failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    assert!(
        stats.secondary_limited <= 5,
        "{} secondary-limit answers",
        stats.secondary_limited
    );
    let limits = ok(&s.client, "get_rate_limit", json!({})).await;
    let read = limits["lanes"]
        .as_array()
        .and_then(|lanes| {
            lanes
                .iter()
                .find(|l| l["name"].as_str().is_some_and(|n| n.ends_with(":read")))
        })
        .cloned()
        .unwrap_or_default();
    let window = read["window"].as_u64().unwrap_or(0);
    assert!(
        (1..=16).contains(&window) && read["max_concurrent"] == 16,
        "{limits}"
    );
}
