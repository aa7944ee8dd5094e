//! Tags and releases through a real MCP client (rmcp over stdio) against the fake
//! GitHub (`tools/fakehub`): listing tags and releases with cursors, a repeated list
//! revalidated by 304, lightweight and annotated tags, the latest release skipping
//! drafts and prereleases, creating a release and reading it back, the duplicate error,
//! and `--read-only` hiding `create_release`.

use crate::common;

use common::*;
use fakehub::{FakeConfig, FakeHub};
use serde_json::json;

const TOKEN: &str = "tok-releases-0001";
const REPO: &str = "octo/hello";

struct Setup {
    hub: FakeHub,
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
    let mut args = vec!["--toolsets", "github"];
    args.extend_from_slice(extra);
    let client = stdio_client_env(state.path(), &args, &vars).await;
    Setup {
        hub,
        client,
        _state: state,
    }
}

fn route(hub: &FakeHub, key: &str) -> u64 {
    hub.stats().by_route.get(key).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_page_with_cursors_and_a_repeated_list_is_a_304() {
    let s = setup(&[]).await;
    let first = ok(
        &s.client,
        "list_tags",
        json!({"repository": REPO, "limit": 3}),
    )
    .await;
    let names: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["v0.3.0-rc.1", "v0.2.0", "v0.1.0"], "{first}");
    assert_eq!(first["items"][0]["commit_sha"].as_str().unwrap().len(), 40);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("more tags")
        .to_string();
    let rest = ok(
        &s.client,
        "list_tags",
        json!({"repository": REPO, "limit": 3, "cursor": cursor}),
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(rest["items"][0]["name"], "v0.0.1");
    assert!(rest.get("next_cursor").is_none(), "{rest}");

    s.hub.reset_stats();
    let again = ok(
        &s.client,
        "list_tags",
        json!({"repository": REPO, "limit": 3}),
    )
    .await;
    assert_eq!(again, first);
    let stats = s.hub.stats();
    assert_eq!(stats.requests, 1, "{:?}", stats.by_route);
    assert_eq!(
        stats.not_modified, 1,
        "the repeated list is revalidated by 304"
    );
    assert_eq!(route(&s.hub, "GET /repos/{owner}/{repo}/tags"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_resolves_to_its_commit_and_an_annotated_one_to_its_tagger_and_message() {
    let s = setup(&[]).await;
    let tags = ok(&s.client, "list_tags", json!({"repository": REPO})).await;
    let sha_of = |name: &str| {
        tags["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["commit_sha"]
            .clone()
    };

    let light = ok(
        &s.client,
        "get_tag",
        json!({"repository": REPO, "tag": "v0.1.0"}),
    )
    .await;
    assert_eq!(light["annotated"], false, "{light}");
    assert_eq!(light["commit_sha"], sha_of("v0.1.0"));
    assert!(light.get("message").is_none());

    s.hub.reset_stats();
    let annotated = ok(
        &s.client,
        "get_tag",
        json!({"repository": REPO, "tag": "refs/tags/v0.2.0"}),
    )
    .await;
    assert_eq!(annotated["annotated"], true, "{annotated}");
    assert_eq!(annotated["commit_sha"], sha_of("v0.2.0"));
    assert_ne!(annotated["tag_sha"], annotated["commit_sha"]);
    assert_eq!(annotated["tagger"]["name"], "alice");
    assert!(
        annotated["message"]
            .as_str()
            .unwrap()
            .starts_with("Release 0.2.0")
    );
    assert_eq!(s.hub.stats().requests, 2, "the ref, then the tag object");

    let missing = err(
        &s.client,
        "get_tag",
        json!({"repository": REPO, "tag": "v9.9.9"}),
    )
    .await;
    assert!(
        missing.contains("v9.9.9") && missing.contains("list_tags"),
        "{missing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_list_newest_first_and_latest_skips_drafts_and_prereleases() {
    let s = setup(&[]).await;
    let page = ok(
        &s.client,
        "list_releases",
        json!({"repository": REPO, "limit": 2}),
    )
    .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items[0]["tag_name"], "v0.3.0", "{page}");
    assert_eq!(items[0]["draft"], true);
    assert!(items[0]["published_at"].is_null());
    assert_eq!(items[1]["tag_name"], "v0.3.0-rc.1");
    assert_eq!(items[1]["prerelease"], true);
    assert!(items[0].get("body").is_none(), "lists stay slim");
    let more = ok(
        &s.client,
        "list_releases",
        json!({"repository": REPO, "limit": 2, "cursor": page["next_cursor"]}),
    )
    .await;
    let tags: Vec<&str> = more["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tag_name"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["v0.2.0", "v0.1.0"], "{more}");

    let latest = ok(
        &s.client,
        "get_latest_release",
        json!({"repository": REPO, "maxBodyBytes": 256}),
    )
    .await;
    assert_eq!(latest["tag_name"], "v0.2.0", "{latest}");
    assert_eq!(latest["draft"], false);
    assert_eq!(latest["prerelease"], false);
    let assets = latest["assets"].as_array().unwrap();
    assert_eq!(assets.len(), 2);
    assert_eq!(assets[0]["name"], "hello-0.2.0-x86_64-linux.tar.gz");
    assert_eq!(assets[0]["size"], 845_120);
    assert_eq!(assets[0]["download_count"], 17);
    assert!(assets[0].get("uploader").is_none(), "assets stay slim");
    assert!(latest["body"].as_str().unwrap().contains("0.2.0"));

    let rc = ok(
        &s.client,
        "get_release_by_tag",
        json!({"repository": REPO, "tag": "v0.3.0-rc.1"}),
    )
    .await;
    assert_eq!(rc["prerelease"], true, "{rc}");
    let draft = err(
        &s.client,
        "get_release_by_tag",
        json!({"repository": REPO, "tag": "v0.3.0"}),
    )
    .await;
    assert!(draft.contains("list_releases"), "{draft}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_release_reads_back_and_a_second_one_for_its_tag_is_refused() {
    let s = setup(&[]).await;
    let created = ok(
        &s.client,
        "create_release",
        json!({"repository": REPO, "tagName": "v0.4.0", "name": "hello 0.4.0",
               "generateReleaseNotes": true}),
    )
    .await;
    assert_eq!(created["tag_name"], "v0.4.0", "{created}");
    assert_eq!(created["draft"], false);
    assert!(
        created["body"]
            .as_str()
            .unwrap()
            .contains("compare/v0.3.0-rc.1...v0.4.0"),
        "notes since the previous tag: {created}"
    );
    let id = created["id"].clone();

    let back = ok(
        &s.client,
        "get_release_by_tag",
        json!({"repository": REPO, "tag": "v0.4.0"}),
    )
    .await;
    assert_eq!(back["id"], id);
    assert_eq!(back["name"], "hello 0.4.0");
    let latest = ok(&s.client, "get_latest_release", json!({"repository": REPO})).await;
    assert_eq!(latest["id"], id, "the new release is the latest");
    let tag = ok(
        &s.client,
        "get_tag",
        json!({"repository": REPO, "tag": "v0.4.0"}),
    )
    .await;
    let main = ok(
        &s.client,
        "list_commits",
        json!({"repository": REPO, "limit": 1}),
    )
    .await;
    assert_eq!(
        tag["commit_sha"], main["items"][0]["sha"],
        "tagged at main's head"
    );

    let dup = err(
        &s.client,
        "create_release",
        json!({"repository": REPO, "tagName": "v0.4.0"}),
    )
    .await;
    assert!(
        dup.contains("already has a release") && dup.contains("hello 0.4.0"),
        "{dup}"
    );
    assert!(dup.contains(&id.to_string()), "names the release: {dup}");

    let bad = err(
        &s.client,
        "create_release",
        json!({"repository": REPO, "tagName": "v0.5.0", "targetCommitish": "no-such-branch"}),
    )
    .await;
    assert!(
        bad.contains("no-such-branch") && bad.contains("list_branches"),
        "{bad}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_hides_create_release() {
    let s = setup(&["--read-only"]).await;
    let tools = s.client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for read in [
        "list_tags",
        "get_tag",
        "list_releases",
        "get_latest_release",
        "get_release_by_tag",
    ] {
        assert!(names.contains(&read), "{read}");
    }
    assert!(!names.contains(&"create_release"));
    let t = tools.iter().find(|t| t.name == "get_tag").unwrap();
    assert_eq!(t.title.as_deref(), Some("Get tag"));
}
