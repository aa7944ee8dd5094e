//! Triage and repository creation through a real MCP client (rmcp over stdio) against the
//! fake GitHub (`tools/fakehub`): notifications with a cursor and marking them read,
//! labels (list, get, create, the duplicate error), the three security alert lists (a
//! secret-scanning alert's secret never reaches a result), forking then reading the
//! fork, creating a repository and the duplicate error, the events the writes publish,
//! and `--read-only` hiding the writes.

use crate::common;

use common::*;
use fakehub::{FakeConfig, FakeHub};
use serde_json::{Value, json};

const TOKEN: &str = "tok-triage-0001";
const REPO: &str = "octo/hello";
/// The secret fakehub seeds in `octo/hello`'s first secret-scanning alert.
const SEEDED_SECRET: &str = "ghp_FAKEHUBseededSecretValue0123456789xyz";

struct Setup {
    _hub: FakeHub,
    client: Client,
    _state: tempfile::TempDir,
}

async fn setup(extra: &[&str]) -> Setup {
    let hub = fakehub::spawn(FakeConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("fake GitHub starts");
    let state = tempfile::tempdir().unwrap();
    let base = hub.base_url();
    let vars = [("GITHUB_API_URL", base.as_str()), ("GITHUB_TOKEN", TOKEN)];
    let mut args = vec!["--toolsets", "github.triage,github.repos"];
    args.extend_from_slice(extra);
    let client = stdio_client_env(state.path(), &args, &vars).await;
    Setup {
        _hub: hub,
        client,
        _state: state,
    }
}

fn items(v: &Value) -> &Vec<Value> {
    v["items"].as_array().expect("items")
}

fn event_types(events: &Value) -> Vec<String> {
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_page_with_a_cursor_and_marking_read_clears_unread() {
    let s = setup(&[]).await;
    let c = &s.client;
    let first = ok(c, "list_notifications", json!({"limit": 3})).await;
    assert_eq!(items(&first).len(), 3, "{first}");
    let n = &items(&first)[0];
    assert_eq!(n["unread"], true);
    assert_eq!(n["repository"], "octo/tools", "newest first: {first}");
    assert_eq!(n["reason"], "assign");
    assert_eq!(n["subject"]["type"], "Issue");
    assert!(
        n["subject"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/repos/octo/tools/issues/2")
    );
    let cursor = first["next_cursor"].as_str().expect("more").to_string();
    let rest = ok(
        c,
        "list_notifications",
        json!({"limit": 3, "cursor": cursor}),
    )
    .await;
    assert_eq!(items(&rest).len(), 2, "five unread in all: {rest}");
    assert!(rest.get("next_cursor").is_none());

    let all = ok(c, "list_notifications", json!({"all": true})).await;
    assert_eq!(items(&all).len(), 6, "the read one too: {all}");
    let mine = ok(c, "list_notifications", json!({"participating": true})).await;
    assert!(
        items(&mine)
            .iter()
            .all(|n| n["reason"] != "subscribed" && n["reason"] != "ci_activity"),
        "{mine}"
    );
    let bad = err(c, "list_notifications", json!({"since": "yesterday"})).await;
    assert!(bad.contains("ISO 8601"), "{bad}");

    // One repository first: octo/hello's unread ones turn read, octo/tools' stay.
    let marked = ok(c, "mark_notifications_read", json!({"repository": REPO})).await;
    assert_eq!(marked["repository"], REPO, "{marked}");
    assert_eq!(marked["in_background"], true, "three threads: GitHub's 202");
    let all = ok(c, "list_notifications", json!({"all": true})).await;
    for n in items(&all) {
        let hello = n["repository"] == REPO;
        assert_eq!(n["unread"], !hello, "{n}");
    }
    let marked = ok(c, "mark_notifications_read", json!({})).await;
    assert!(marked.get("repository").is_none(), "{marked}");
    assert_eq!(marked["in_background"], false, "two threads: 205");
    let unread = ok(c, "list_notifications", json!({})).await;
    assert!(items(&unread).is_empty(), "{unread}");
    let all = ok(c, "list_notifications", json!({"all": true})).await;
    assert!(items(&all).iter().all(|n| n["unread"] == false), "{all}");

    let events = read_json(c, "events://github.*").await;
    let types = event_types(&events);
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "github.notifications.read")
            .count(),
        2,
        "{types:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_list_get_create_and_a_duplicate_is_refused() {
    let s = setup(&[]).await;
    let c = &s.client;
    let labels = ok(c, "list_labels", json!({"repository": REPO})).await;
    let names: Vec<&str> = items(&labels)
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bug", "docs", "enhancement"], "{labels}");
    let bug = ok(c, "get_label", json!({"repository": REPO, "name": "BUG"})).await;
    assert_eq!(bug["name"], "bug", "case-insensitive: {bug}");
    assert_eq!(bug["color"], "d73a4a");
    let missing = err(c, "get_label", json!({"repository": REPO, "name": "nope"})).await;
    assert!(missing.contains("list_labels"), "{missing}");

    let created = ok(
        c,
        "create_label",
        json!({"repository": REPO, "name": "area/ui", "color": "#1D76DB",
               "description": "User interface"}),
    )
    .await;
    assert_eq!(created["name"], "area/ui", "{created}");
    assert_eq!(created["color"], "1d76db");
    let back = ok(
        c,
        "get_label",
        json!({"repository": REPO, "name": "area/ui"}),
    )
    .await;
    assert_eq!(
        back["description"], "User interface",
        "a slash in the name: {back}"
    );

    let dup = call(
        c,
        "create_label",
        json!({"repository": REPO, "name": "Area/UI", "color": "000000"}),
    )
    .await;
    assert_eq!(dup.is_error, Some(true), "{dup:?}");
    let msg = text(&dup);
    assert!(
        msg.contains("already has a label") && msg.contains("existing label"),
        "{msg}"
    );
    let bad = err(
        c,
        "create_label",
        json!({"repository": REPO, "name": "x", "color": "red"}),
    )
    .await;
    assert!(bad.contains("six hex digits"), "{bad}");

    let types = event_types(&read_json(c, "events://github.*").await);
    assert_eq!(types, ["github.label.action"], "one label created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_list_with_filters_and_a_secret_never_appears() {
    let s = setup(&[]).await;
    let c = &s.client;
    let code = ok(c, "list_code_scanning_alerts", json!({"repository": REPO})).await;
    assert_eq!(items(&code).len(), 3, "{code}");
    let open = ok(
        c,
        "list_code_scanning_alerts",
        json!({"repository": REPO, "state": "open", "severity": "high", "toolName": "CodeQL",
               "ref": "refs/heads/main"}),
    )
    .await;
    assert_eq!(items(&open).len(), 1, "{open}");
    let a = &items(&open)[0];
    assert_eq!(a["rule"], "rust/hard-coded-cryptographic-value");
    assert_eq!(a["severity"], "high");
    assert_eq!(a["tool"], "CodeQL");
    assert_eq!(a["path"], "src/main.rs");
    assert_eq!(a["line"], 12);
    assert_eq!(a["ref"], "refs/heads/main");

    let deps = ok(
        c,
        "list_dependabot_alerts",
        json!({"repository": REPO, "state": "open", "limit": 1}),
    )
    .await;
    assert_eq!(items(&deps).len(), 1, "{deps}");
    let cursor = deps["next_cursor"].as_str().expect("a second open alert");
    let more = ok(
        c,
        "list_dependabot_alerts",
        json!({"repository": REPO, "state": "open", "limit": 1, "cursor": cursor}),
    )
    .await;
    let both: Vec<&str> = [&deps, &more]
        .iter()
        .map(|p| items(p)[0]["package"].as_str().unwrap())
        .collect();
    assert_eq!(both, ["smallvec", "time"], "newest first");
    let smallvec = &items(&deps)[0];
    assert_eq!(smallvec["severity"], "critical");
    assert_eq!(smallvec["ecosystem"], "rust");
    assert_eq!(smallvec["first_patched_version"], "0.6.14");
    assert_eq!(smallvec["manifest_path"], "Cargo.lock");
    let none = ok(
        c,
        "list_dependabot_alerts",
        json!({"repository": REPO, "ecosystem": "npm"}),
    )
    .await;
    assert!(items(&none).is_empty(), "{none}");
    let off = err(
        c,
        "list_dependabot_alerts",
        json!({"repository": "octo/tools"}),
    )
    .await;
    assert!(
        off.contains("disabled") && off.contains("not available"),
        "{off}"
    );

    let result = call(
        c,
        "list_secret_scanning_alerts",
        json!({"repository": REPO}),
    )
    .await;
    let secrets = structured(&result);
    assert_eq!(items(&secrets).len(), 2, "{secrets}");
    assert_eq!(
        items(&secrets)[0]["secret_type"],
        "github_personal_access_token"
    );
    assert_eq!(items(&secrets)[0]["validity"], "active");
    assert_eq!(items(&secrets)[1]["resolution"], "revoked");
    let whole = format!(
        "{}\n{}",
        text(&result),
        serde_json::to_string(&result).unwrap()
    );
    for leak in [SEEDED_SECRET, "FAKEHUBseeded", "AKIAFAKEHUBSECRET0002"] {
        assert!(!whole.contains(leak), "{leak} leaked: {whole}");
    }
    assert!(items(&secrets).iter().all(|a| a.get("secret").is_none()));
    let open = ok(
        c,
        "list_secret_scanning_alerts",
        json!({"repository": REPO, "state": "open", "secretType": "github_personal_access_token"}),
    )
    .await;
    assert_eq!(items(&open).len(), 1, "{open}");

    // The secret is in no tool's schema either.
    let tools = c.list_all_tools().await.unwrap();
    let t = tools
        .iter()
        .find(|t| t.name == "list_secret_scanning_alerts")
        .unwrap();
    let schema = serde_json::to_string(&t.output_schema).unwrap();
    assert!(!schema.contains("\"secret\""), "{schema}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_reads_like_any_repository_and_a_taken_name_is_refused() {
    let s = setup(&[]).await;
    let c = &s.client;
    let fork = ok(c, "fork_repository", json!({"repository": REPO})).await;
    assert_eq!(fork["full_name"], "octocat/hello", "{fork}");
    assert_eq!(fork["html_url"], "https://github.com/octocat/hello");
    assert!(
        fork["note"].as_str().unwrap().contains("a moment"),
        "{fork}"
    );
    let info = ok(
        c,
        "get_repository_info",
        json!({"repository": "octocat/hello"}),
    )
    .await;
    assert_eq!(info["repository"]["full_name"], "octocat/hello", "{info}");
    assert_eq!(info["repository"]["default_branch"], "main", "{info}");
    let branches = |r: &'static str| async move {
        let page = ok(c, "list_branches", json!({"repository": r, "limit": 100})).await;
        items(&page).len()
    };
    let (source, copied) = (branches(REPO).await, branches("octocat/hello").await);
    assert!(
        source > 1 && copied == source,
        "every branch copied: {copied} of {source}"
    );
    let head = ok(c, "list_commits", json!({"repository": REPO, "limit": 1})).await;
    let fork_head = ok(
        c,
        "list_commits",
        json!({"repository": "octocat/hello", "limit": 1}),
    )
    .await;
    assert_eq!(items(&fork_head)[0]["sha"], items(&head)[0]["sha"]);

    let org = ok(
        c,
        "fork_repository",
        json!({"repository": REPO, "organization": "octo", "name": "hello-mirror",
               "defaultBranchOnly": true}),
    )
    .await;
    assert_eq!(org["full_name"], "octo/hello-mirror", "{org}");
    let branches = ok(
        c,
        "list_branches",
        json!({"repository": "octo/hello-mirror"}),
    )
    .await;
    assert_eq!(items(&branches).len(), 1, "default branch only: {branches}");

    let made = ok(
        c,
        "create_repository",
        json!({"name": "scratch", "description": "A place to try things", "private": true,
               "autoInit": true}),
    )
    .await;
    assert_eq!(made["full_name"], "octocat/scratch", "{made}");
    assert_eq!(made["private"], true);
    let readme = ok(
        c,
        "get_file_contents",
        json!({"repository": "octocat/scratch", "path": "README.md"}),
    )
    .await;
    assert!(
        readme["content"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("A place to try things"),
        "{readme}"
    );
    let dup = call(c, "create_repository", json!({"name": "Scratch"})).await;
    assert_eq!(dup.is_error, Some(true), "{dup:?}");
    let msg = text(&dup);
    assert!(msg.contains("already has a repository named"), "{msg}");
    let in_org = ok(
        c,
        "create_repository",
        json!({"name": "team-notes", "organization": "octo"}),
    )
    .await;
    assert_eq!(in_org["full_name"], "octo/team-notes", "{in_org}");
    let dup = err(
        c,
        "create_repository",
        json!({"name": "hello", "organization": "octo"}),
    )
    .await;
    assert!(dup.contains("octo already has a repository"), "{dup}");

    let events = read_json(c, "events://github.*").await;
    let actions: Vec<(&str, &str)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "github.repository.action")
        .map(|e| {
            (
                e["data"]["action"].as_str().unwrap(),
                e["data"]["repository"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("forked", "octocat/hello"),
            ("forked", "octo/hello-mirror"),
            ("created", "octocat/scratch"),
            ("created", "octo/team-notes"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_hides_the_writes() {
    let s = setup(&["--read-only"]).await;
    let tools = s.client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for read in [
        "list_notifications",
        "list_labels",
        "get_label",
        "list_code_scanning_alerts",
        "list_dependabot_alerts",
        "list_secret_scanning_alerts",
    ] {
        assert!(names.contains(&read), "{read}");
    }
    for write in [
        "mark_notifications_read",
        "create_label",
        "fork_repository",
        "create_repository",
    ] {
        assert!(!names.contains(&write), "{write}");
    }
}
