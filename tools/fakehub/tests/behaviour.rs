//! End-to-end behaviour of the fake over real HTTP.

use fakehub::{AppConfig, FakeConfig, FakeHub};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

async fn hub(cfg: FakeConfig) -> FakeHub {
    fakehub::spawn(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn h(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

async fn get(c: &Client, url: &str, token: &str) -> Response {
    c.get(url).bearer_auth(token).send().await.unwrap()
}

/// GET `url` as `token` with one more request header.
async fn get_with(c: &Client, url: &str, token: &str, header: &str, value: &str) -> Response {
    c.get(url)
        .bearer_auth(token)
        .header(header, value)
        .send()
        .await
        .unwrap()
}

/// `method` `url` as `token` with a JSON `body`.
async fn send_json(c: &Client, method: Method, url: &str, token: &str, body: Value) -> Response {
    c.request(method, url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The JSON body of GET `url` as `token`.
async fn get_json<T: serde::de::DeserializeOwned>(c: &Client, url: &str, token: &str) -> T {
    get(c, url, token).await.json().await.unwrap()
}

async fn count(c: &Client, url: &str) -> usize {
    let mut next = Some(url.to_string());
    let mut n = 0;
    while let Some(u) = next {
        let r = get(c, &u, "pat").await;
        assert_eq!(r.status(), 200, "{u}");
        next = h(&r, "link").and_then(|l| {
            l.split(", ")
                .find(|p| p.ends_with("rel=\"next\""))
                .map(|p| p[1..p.find('>').unwrap()].to_string())
        });
        n += r.json::<Vec<Value>>().await.unwrap().len();
    }
    n
}

#[tokio::test]
async fn etag_304_is_not_charged() {
    let hub = hub(FakeConfig::default()).await;
    let c = Client::new();
    let url = format!("{}/repos/octo/hello/issues/3", hub.base_url());
    let r = get(&c, &url, "tok-etag").await;
    assert_eq!(r.status(), 200);
    let etag = h(&r, "etag").unwrap();
    assert!(etag.starts_with("W/\"") && etag.len() == 36, "{etag}");
    assert!(h(&r, "last-modified").is_some());
    assert_eq!(h(&r, "x-ratelimit-remaining").unwrap(), "4999");
    let issue: Value = r.json().await.unwrap();
    assert_eq!(issue["number"], 3);
    assert_eq!(issue["assignee"]["login"], "alice");

    let r = get_with(&c, &url, "tok-etag", "if-none-match", &etag).await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(h(&r, "x-ratelimit-remaining").unwrap(), "4999");
    assert_eq!(h(&r, "x-ratelimit-used").unwrap(), "1");
    assert_eq!(h(&r, "etag").unwrap(), etag);
    assert_eq!(h(&r, "cache-control").unwrap(), "private, max-age=60");
    assert_eq!(h(&r, "vary").unwrap(), "Accept, Authorization, Cookie");
    assert!(r.bytes().await.unwrap().is_empty());

    // If-Modified-Since works too; an etag without W/ does not match.
    let lm = h(&get(&c, &url, "tok-etag").await, "last-modified").unwrap();
    let r = get_with(&c, &url, "tok-etag", "if-modified-since", &lm).await;
    assert_eq!(r.status(), 304);
    let r = get_with(&c, &url, "tok-etag", "if-none-match", &etag[2..]).await;
    assert_eq!(r.status(), 200);

    // A write changes the ETag.
    let r = send_json(
        &c,
        Method::PATCH,
        &url,
        "tok-etag",
        json!({"title": "renamed"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = get_with(&c, &url, "tok-etag", "if-none-match", &etag).await;
    assert_eq!(r.status(), 200);
    assert_ne!(h(&r, "etag").unwrap(), etag);

    let s = hub.stats();
    assert_eq!(s.not_modified, 2);
    let t = &s.by_token["tok-etag…"];
    assert_eq!(t.not_modified, 2);
    assert_eq!(t.charged["core"], 5);
    assert_eq!(s.by_route["GET /repos/{owner}/{repo}/issues/{number}"], 6);
}

#[tokio::test]
async fn link_pagination_and_api_v3_prefix() {
    let hub = hub(FakeConfig::default()).await;
    let c = Client::new();
    let url = format!(
        "{}/api/v3/repos/octo/hello/issues?state=all&per_page=30",
        hub.base_url()
    );
    let r = get(&c, &url, "pat").await;
    let link = h(&r, "link").unwrap();
    let base = format!("{}/api/v3/repos/octo/hello/issues", hub.base_url());
    assert_eq!(
        link,
        format!(
            "<{base}?state=all&per_page=30&page=2>; rel=\"next\", <{base}?state=all&per_page=30&page=10>; rel=\"last\""
        )
    );
    let items: Vec<Value> = r.json().await.unwrap();
    assert_eq!(items[0]["number"], 290, "newest first");
    assert!(
        items[0].get("pull_request").is_some(),
        "PRs appear in the issues list"
    );
    assert!(
        items[0]["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/api/v3/", hub.base_url()))
    );

    let r = get(&c, &format!("{url}&page=3"), "pat").await;
    let link = h(&r, "link").unwrap();
    assert!(link.contains("page=2>; rel=\"prev\""), "{link}");
    assert!(link.contains("page=1>; rel=\"first\""), "{link}");
    assert_eq!(count(&c, &url).await, 290);
    assert_eq!(
        count(&c, &format!("{}/repos/octo/hello/branches", hub.base_url())).await,
        42
    );

    // Unknown route, GraphQL, root layout.
    let r = get(&c, &format!("{}/api/v3/nope", hub.base_url()), "pat").await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["message"], "Not Found");
    let r = send_json(
        &c,
        Method::POST,
        &format!("{}/api/graphql", hub.base_url()),
        "pat",
        json!({"query": "{viewer{login}}"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, "x-ratelimit-resource").unwrap(), "graphql");
    let r = get(&c, &format!("{}/api/v3/user", hub.base_url()), "pat").await;
    assert_eq!(r.json::<Value>().await.unwrap()["login"], "octocat");
}

#[tokio::test]
async fn issue_filters() {
    let hub = hub(FakeConfig::default()).await;
    let c = Client::new();
    let issues = |q: &str| {
        format!(
            "{}/repos/octo/hello/issues?per_page=100&{q}",
            hub.base_url()
        )
    };
    // Issues 1..250 plus PRs 251..290 (PR k assigned to alice when k % 3 == 0; 10,20,30,40 closed).
    let alice_open = (1..=250).filter(|n| n % 3 == 0 && n % 10 != 0).count()
        + (1..=40).filter(|k| k % 3 == 0 && k % 10 != 0).count();
    assert_eq!(count(&c, &issues("assignee=alice")).await, alice_open);
    let bug_docs = (1..=250).filter(|n| n % 35 == 0 && n % 10 != 0).count();
    assert_eq!(count(&c, &issues("labels=bug,docs")).await, bug_docs);
    assert_eq!(count(&c, &issues("state=closed")).await, 25 + 4);
    let none_all =
        (1..=250).filter(|n| n % 3 == 2).count() + (1..=40).filter(|k| k % 3 != 0).count();
    assert_eq!(
        count(&c, &issues("state=all&assignee=none")).await,
        none_all
    );
    let pulls: Vec<Value> = get_json(
        &c,
        &format!(
            "{}/repos/octo/hello/pulls?head=octo:feature-3",
            hub.base_url()
        ),
        "pat",
    )
    .await;
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0]["number"], 253);

    let r: Value = get_json(
        &c,
        &format!(
            "{}/search/issues?q=is:issue+label:bug+repo:octo/tools",
            hub.base_url()
        ),
        "pat",
    )
    .await;
    assert_eq!(r["total_count"], 3);
    let r = get(
        &c,
        &format!("{}/search/code?q=marker_f7", hub.base_url()),
        "pat",
    )
    .await;
    assert_eq!(h(&r, "x-ratelimit-resource").unwrap(), "code_search");
    assert_eq!(h(&r, "x-ratelimit-limit").unwrap(), "10");
    let r: Value = r.json().await.unwrap();
    assert_eq!(r["items"][0]["path"], "files/f7.txt");
}

#[tokio::test]
async fn secondary_limit_on_concurrency() {
    let hub = hub(FakeConfig {
        max_concurrent: 2,
        latency: Duration::from_millis(300),
        retry_after_secs: Some(1),
        ..FakeConfig::default()
    })
    .await;
    let c = Client::new();
    let url = format!("{}/repos/octo/hello", hub.base_url());
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move { get(&c, &url, "tok-conc").await })
        })
        .collect();
    let mut ok = 0;
    let mut limited = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status().as_u16() {
            200 => ok += 1,
            403 => {
                assert_eq!(h(&r, "retry-after").unwrap(), "1");
                let body: Value = r.json().await.unwrap();
                assert!(
                    body["message"]
                        .as_str()
                        .unwrap()
                        .contains("secondary rate limit")
                );
                limited += 1;
            }
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!((ok, limited), (2, 3));
    let s = hub.stats();
    assert_eq!(s.secondary_limited, 3);
    assert_eq!(s.max_in_flight, 2);
    assert_eq!(
        s.by_token["tok-conc…"].charged["core"], 2,
        "rejected requests are not charged"
    );
    // Other tokens are unaffected; after retry-after the token works again.
    assert_eq!(get(&c, &url, "other").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get(&c, &url, "tok-conc").await.status(), 200);
}

#[tokio::test]
async fn secondary_limit_on_points_and_penalty() {
    let hub = hub(FakeConfig {
        points_per_minute: 10,
        retry_after_secs: None,
        ..FakeConfig::default()
    })
    .await;
    let c = Client::new();
    let url = format!("{}/repos/octo/hello/issues/1/comments", hub.base_url());
    for _ in 0..2 {
        let r = send_json(&c, Method::POST, &url, "tok-pts", json!({"body": "hi"})).await;
        assert_eq!(r.status(), 201);
    }
    let r = send_json(&c, Method::POST, &url, "tok-pts", json!({"body": "hi"})).await;
    assert_eq!(r.status(), 403);
    assert!(h(&r, "retry-after").is_none());
    assert!(h(&r, "x-ratelimit-remaining").is_some());
    // Penalty window: even another endpoint is refused for this token.
    let r = get(
        &c,
        &format!("{}/repos/octo/hello", hub.base_url()),
        "tok-pts",
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(hub.stats().by_token["tok-pts…"].secondary_limited, 2);
    let comments: Vec<Value> = get_json(&c, &url, "someone-else").await;
    assert_eq!(
        comments.len(),
        5,
        "3 seeded + 2 created; the refused POST was not applied"
    );

    // Forced secondary + retry-after toggling.
    hub.set_retry_after(Some(7));
    hub.force_secondary(1);
    let r = get(
        &c,
        &format!("{}/repos/octo/hello", hub.base_url()),
        "tok-forced",
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(h(&r, "retry-after").unwrap(), "7");
}

#[tokio::test]
async fn primary_limit_and_injected_errors() {
    let hub = hub(FakeConfig {
        core_limit: 3,
        ..FakeConfig::default()
    })
    .await;
    let c = Client::new();
    let url = format!("{}/repos/octo/hello/languages", hub.base_url());
    hub.inject_server_errors(1, 502);
    let r = get(&c, &url, "tok-pri").await;
    assert_eq!(r.status(), 502);
    assert_eq!(h(&r, "x-ratelimit-remaining").unwrap(), "2");
    assert_eq!(get(&c, &url, "tok-pri").await.status(), 200);
    assert_eq!(get(&c, &url, "tok-pri").await.status(), 200);
    let r = get(&c, &url, "tok-pri").await;
    assert_eq!(r.status(), 403);
    assert_eq!(h(&r, "x-ratelimit-remaining").unwrap(), "0");
    assert!(h(&r, "retry-after").is_none());
    assert!(
        r.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .starts_with("API rate limit exceeded")
    );
    // /rate_limit is free and still answers.
    let r = get(&c, &format!("{}/rate_limit", hub.base_url()), "tok-pri").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["resources"]["core"]["remaining"], 0);
    assert_eq!(body["rate"]["limit"], 3);
    let s = hub.stats();
    assert_eq!((s.primary_limited, s.server_errors, s.requests), (1, 1, 5));
    // Unauthenticated: 60/h; `bad` token: 401.
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(h(&r, "x-ratelimit-limit").unwrap(), "3");
    assert_eq!(get(&c, &url, "bad").await.status(), 401);
    hub.reset_stats();
    assert_eq!(hub.stats().requests, 0);
    assert_eq!(get(&c, &url, "tok-pri").await.status(), 200);
}

#[tokio::test]
async fn writes_pulls_contents_actions() {
    let hub = hub(FakeConfig::default()).await;
    let c = Client::new();
    let b = hub.base_url();
    let file: Value = get_json(
        &c,
        &format!("{b}/repos/octo/hello/contents/src/lib.rs"),
        "pat",
    )
    .await;
    assert_eq!(file["type"], "file");
    assert!(file["content"].as_str().unwrap().ends_with('\n'));
    let r = get(
        &c,
        &format!("{b}/repos/octo/hello/contents/files/f1.txt?ref=nope"),
        "pat",
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"],
        "No commit found for the ref nope"
    );
    let raw = get(&c, file["download_url"].as_str().unwrap(), "pat")
        .await
        .text()
        .await
        .unwrap();
    assert!(raw.starts_with("pub fn greet"), "{raw}");
    let raw = get(
        &c,
        &format!("{b}/raw/octo/hello/refs/heads/feature-2/features/feature_2.md"),
        "pat",
    )
    .await;
    assert_eq!(raw.status(), 200);
    assert_eq!(
        get(&c, &format!("{b}/raw/octo/hello/HEAD/nope.txt"), "pat")
            .await
            .status(),
        404
    );
    let dir: Vec<Value> = get_json(&c, &format!("{b}/repos/octo/hello/contents"), "pat").await;
    assert_eq!(dir[0]["type"], "dir");

    let r = send_json(
        &c,
        Method::POST,
        &format!("{b}/repos/octo/hello/pulls"),
        "pat",
        json!({"title": "x", "head": "nope", "base": "main"}),
    )
    .await;
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<Value>().await.unwrap()["errors"][0]["field"],
        "head"
    );
    let diff = get_with(
        &c,
        &format!("{b}/repos/octo/hello/pulls/255"),
        "pat",
        "accept",
        "application/vnd.github.diff",
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(diff.starts_with("diff --git a/"), "{diff}");
    let merge_url = format!("{b}/repos/octo/hello/pulls/255/merge");
    let merge = || send_json(&c, Method::PUT, &merge_url, "pat", json!({}));
    let r = merge().await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["merged"], true);
    let r = merge().await;
    assert_eq!(r.status(), 405);
    let cmp: Value = get_json(
        &c,
        &format!("{b}/repos/octo/hello/compare/dev...main"),
        "pat",
    )
    .await;
    assert_eq!(cmp["status"], "diverged");

    let r = send_json(
        &c,
        Method::POST,
        &format!("{b}/repos/octo/hello/git/refs"),
        "pat",
        json!({"ref": "refs/heads/main", "sha": "0"}),
    )
    .await;
    assert_eq!(r.status(), 422);
    let r = send_json(
        &c,
        Method::POST,
        &format!("{b}/repos/octo/hello/actions/workflows/ci.yml/dispatches"),
        "pat",
        json!({"ref": "main"}),
    )
    .await;
    assert_eq!(r.status(), 204);
    let runs: Value = get_json(
        &c,
        &format!("{b}/repos/octo/hello/actions/runs?per_page=2"),
        "pat",
    )
    .await;
    assert_eq!(runs["total_count"], 6);
    assert_eq!(runs["workflow_runs"][0]["status"], "queued");
}

fn jwt(iss: Value, iat_off: i64, exp_off: i64) -> String {
    let pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/support/github-app-test-key.pem"
    ))
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": iss, "iat": now + iat_off, "exp": now + exp_off});
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .unwrap()
}

#[tokio::test]
async fn app_installation_tokens() {
    let public_key_pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/support/github-app-test-key.pub.pem"
    ))
    .unwrap();
    let app = AppConfig {
        app_id: 4242,
        installation_id: 77,
        public_key_pem,
        token_ttl: Duration::from_secs(3600),
    };
    let hub = hub(FakeConfig {
        app: Some(app),
        ..FakeConfig::default()
    })
    .await;
    let c = Client::new();
    let url = format!("{}/app/installations/77/access_tokens", hub.base_url());
    let post = |t: String| c.post(&url).bearer_auth(t).send();
    for bad in [
        jwt(json!(1), -60, 540),
        jwt(json!(4242), -60, 900),
        jwt(json!(4242), -60, -10),
        jwt(json!(4242), 300, 540),
        "not.a.jwt".into(),
    ] {
        let r = post(bad).await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.json::<Value>().await.unwrap()["message"],
            "A JSON web token could not be decoded"
        );
    }
    let r = post(jwt(json!("4242"), -60, 540)).await.unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let body: Value = r.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("ghs_"));
    assert!(chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap()).is_ok());
    let r = post(jwt(json!(4242), -60, 540)).await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(hub.stats().token_requests, 7);

    let repo = format!("{}/repos/octo/hello", hub.base_url());
    assert_eq!(get(&c, &repo, &token).await.status(), 200);
    let r = get(&c, &format!("{}/user", hub.base_url()), &token).await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"],
        "Resource not accessible by integration"
    );
    hub.revoke_installation_tokens();
    let r = get(&c, &repo, &token).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"],
        "Bad credentials"
    );
}

#[tokio::test]
async fn control_endpoints_and_shutdown() {
    let hub = hub(FakeConfig::default()).await;
    let c = Client::new();
    let b = hub.base_url();
    let r = c
        .post(format!("{b}/_fake/control"))
        .json(&json!({"inject_server_errors": {"n": 1, "status": 503}, "latency_ms": 0, "retry_after_secs": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        get(&c, &format!("{b}/repos/octo/hello"), "pat")
            .await
            .status(),
        503
    );
    let s: Value = c
        .get(format!("{b}/_fake/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["requests"], 1);
    assert_eq!(s["server_errors"], 1);
    c.post(format!("{b}/_fake/reset")).send().await.unwrap();
    assert_eq!(hub.stats().requests, 0);
    let addr = hub.addr();
    drop(hub);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn git_data_api_and_contents_api_share_one_object_model() {
    let hub = hub(FakeConfig::default()).await;
    let c = Client::new();
    let api = format!("{}/repos/octo/hello", hub.base_url());
    let head: Value = get_json(&c, &format!("{api}/git/ref/heads/dev"), "pat").await;
    let head = head["object"]["sha"].as_str().unwrap().to_string();
    let commit: Value = get_json(&c, &format!("{api}/git/commits/{head}"), "pat").await;
    let base_tree = commit["tree"]["sha"].as_str().unwrap().to_string();
    let blob: Value = send_json(
        &c,
        Method::POST,
        &format!("{api}/git/blobs"),
        "pat",
        json!({"content": "via a blob\n", "encoding": "utf-8"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let tree = send_json(
        &c,
        Method::POST,
        &format!("{api}/git/trees"),
        "pat",
        json!({
        "base_tree": base_tree,
        "tree": [{"path": "a.txt", "mode": "100644", "type": "blob", "content": "inline\n"},
                 {"path": "b/c.txt", "mode": "100644", "type": "blob", "sha": blob["sha"]}]}),
    )
    .await;
    assert_eq!(tree.status(), 201);
    let tree: Value = tree.json().await.unwrap();
    let new = send_json(
        &c,
        Method::POST,
        &format!("{api}/git/commits"),
        "pat",
        json!({"message": "two files", "tree": tree["sha"], "parents": [head]}),
    )
    .await;
    assert_eq!(new.status(), 201);
    let new: Value = new.json().await.unwrap();
    assert_eq!(new["tree"]["sha"], tree["sha"]);
    let sha = new["sha"].as_str().unwrap();
    let moved = send_json(
        &c,
        Method::PATCH,
        &format!("{api}/git/refs/heads/dev"),
        "pat",
        json!({"sha": sha, "force": false}),
    )
    .await;
    assert_eq!(moved.status(), 200);
    let file: Value = get_json(&c, &format!("{api}/contents/b/c.txt?ref=dev"), "pat").await;
    assert_eq!(file["sha"], blob["sha"]);
    // Not a fast forward (the old head does not contain the new one): refused.
    let back = send_json(
        &c,
        Method::PATCH,
        &format!("{api}/git/refs/heads/dev"),
        "pat",
        json!({"sha": head, "force": false}),
    )
    .await;
    assert_eq!(back.status(), 422);
    // The contents API: a stale sha is a 409.
    let stale = send_json(
        &c,
        Method::PUT,
        &format!("{api}/contents/a.txt"),
        "pat",
        json!({"message": "m", "content": "eA==", "sha": "0000000", "branch": "dev"}),
    )
    .await;
    assert_eq!(stale.status(), 409);
}

#[tokio::test]
async fn job_logs_redirect_to_a_log_host_that_refuses_authorization() {
    let hub = hub(FakeConfig::default()).await;
    let c = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = get(
        &c,
        &format!(
            "{}/repos/octo/hello/actions/jobs/90032/logs",
            hub.base_url()
        ),
        "pat",
    )
    .await;
    assert_eq!(r.status(), 302);
    let to = h(&r, "location").unwrap();
    assert_eq!(get(&c, &to, "pat").await.status(), 400);
    let plain = c.get(&to).send().await.unwrap();
    assert_eq!(plain.status(), 200);
    let text = plain.text().await.unwrap();
    assert!(text.contains("panicked at src/lib.rs:2:5"));
    assert_eq!(
        c.get(to.replace("sig=", "sig=0"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let stats = hub.stats();
    assert_eq!(
        (stats.log_requests, stats.log_authorization_rejected),
        (3, 1)
    );
}

#[tokio::test]
async fn graphql_draft_mutations_flip_a_pull_request_by_node_id() {
    let hub = hub(FakeConfig::default()).await;
    let c = Client::new();
    let pull_url = format!("{}/repos/octo/hello/pulls/251", hub.base_url());
    let pull: Value = get_json(&c, &pull_url, "tok-gql").await;
    assert_eq!(pull["draft"], false);
    let node_id = pull["node_id"].as_str().unwrap().to_string();
    let again: Value = get_json(&c, &pull_url, "tok-gql").await;
    assert_eq!(again["node_id"], node_id.as_str(), "node ids are stable");

    let to_draft = "mutation($pullRequestId: ID!) { convertPullRequestToDraft(input: {pullRequestId: $pullRequestId}) { pullRequest { isDraft number } } }";
    // Root layout and the Enterprise layout both serve GraphQL.
    let r = send_json(
        &c,
        Method::POST,
        &format!("{}/graphql", hub.base_url()),
        "tok-gql",
        json!({"query": to_draft, "variables": {"pullRequestId": node_id}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, "x-ratelimit-resource").unwrap(), "graphql");
    assert_eq!(h(&r, "x-ratelimit-used").unwrap(), "1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["data"]["convertPullRequestToDraft"]["pullRequest"]["isDraft"], true,
        "{v}"
    );
    assert_eq!(
        v["data"]["convertPullRequestToDraft"]["pullRequest"]["number"],
        251
    );
    let pull: Value = get_json(&c, &pull_url, "tok-gql").await;
    assert_eq!(pull["draft"], true);

    let ready = format!(
        r#"mutation {{ markPullRequestReadyForReview(input: {{pullRequestId: "{node_id}"}}) {{ pullRequest {{ isDraft }} }} }}"#
    );
    let r = send_json(
        &c,
        Method::POST,
        &format!("{}/api/graphql", hub.base_url()),
        "tok-gql",
        json!({"query": ready}),
    )
    .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["data"]["markPullRequestReadyForReview"]["pullRequest"]["isDraft"], false,
        "{v}"
    );
    let pull: Value = get_json(&c, &pull_url, "tok-gql").await;
    assert_eq!(pull["draft"], false);

    // An unknown node id and an unsupported document: HTTP 200 with `errors`.
    let r = send_json(
        &c,
        Method::POST,
        &format!("{}/graphql", hub.base_url()),
        "tok-gql",
        json!({"query": to_draft, "variables": {"pullRequestId": "PR_nope"}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"], Value::Null);
    assert_eq!(v["errors"][0]["type"], "NOT_FOUND");
    assert_eq!(
        v["errors"][0]["message"],
        "Could not resolve to a node with the global id of 'PR_nope'"
    );
    let r = send_json(
        &c,
        Method::POST,
        &format!("{}/graphql", hub.base_url()),
        "tok-gql",
        json!({"query": "{ viewer { login } }"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("this fake serves only"),
        "{v}"
    );
    let r = c
        .post(format!("{}/graphql", hub.base_url()))
        .json(&json!({"query": to_draft}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "GraphQL needs a token");

    let stats = hub.stats();
    assert_eq!(stats.by_route["POST /graphql"], 5);
    let charged = &stats.by_token["tok-gql…"].charged;
    assert_eq!(charged["graphql"], 4, "{charged:?}");
}
