//! Pull request reviews and updates through a real MCP client (rmcp over stdio) against
//! the fake GitHub (`tools/fakehub`): a review whose inline comment is outside the diff
//! is refused naming the nearest commentable lines and nothing is posted; a good review
//! posts and reads back with its comments; replies thread; reviewers are requested;
//! title and state change; a stale `expectedHeadSha` is refused and a current one merges
//! the base into the head; pull request search finds pull requests only; `--read-only`
//! hides the writes; `draft` converts to a draft and back through one GraphQL mutation
//! each (none when already in that state), on both API layouts.

use crate::common;

use common::*;
use fakehub::{FakeConfig, FakeHub};
use serde_json::{Value, json};

const TOKEN: &str = "tok-pulls-0001";
const REPO: &str = "octo/hello";
/// feature-1 into main, by alice: `files/f1.txt` (one hunk, new lines 3-9, old line 6
/// removed) and `src/lib.rs` (new lines 9-15).
const PR: u64 = 251;

struct Setup {
    hub: FakeHub,
    client: Client,
    _state: tempfile::TempDir,
}

async fn setup(extra: &[&str]) -> Setup {
    setup_at("", extra).await
}

/// With the API base at the fake's root plus `layout` (`""` like api.github.com,
/// `/api/v3` like GitHub Enterprise Server).
async fn setup_at(layout: &str, extra: &[&str]) -> Setup {
    let hub = fakehub::spawn(FakeConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("fake GitHub starts");
    let state = tempfile::tempdir().unwrap();
    let base = format!("{}{layout}", hub.base_url());
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

const POST_REVIEWS: &str = "POST /repos/{owner}/{repo}/pulls/{number}/reviews";

/// The fake's own view of a pull request (what GitHub would show anyone).
async fn fake_pull(hub: &FakeHub, number: u64) -> Value {
    reqwest::Client::new()
        .get(format!("{}/repos/{REPO}/pulls/{number}", hub.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_outside_the_diff_is_refused_naming_the_nearest_lines_and_nothing_is_posted() {
    let s = setup(&[]).await;
    s.hub.reset_stats();
    let refused = err(
        &s.client,
        "create_pull_request_review",
        json!({"repository": REPO, "number": PR, "event": "COMMENT", "body": "A few notes",
        "comments": [
            {"path": "files/f1.txt", "line": 6, "body": "fine line"},
            {"path": "files/f1.txt", "line": 40, "body": "not in the diff"},
        ]}),
    )
    .await;
    assert!(
        refused.contains("files/f1.txt line 40 is not in the diff; commentable lines near it: 3-9"),
        "{refused}"
    );
    assert!(refused.contains("Nothing was sent"), "{refused}");
    assert!(
        !refused.contains("line 6 "),
        "the good comment is not blamed: {refused}"
    );
    assert_eq!(
        route(&s.hub, POST_REVIEWS),
        0,
        "no review reached GitHub: {:?}",
        s.hub.stats().by_route
    );
    assert_eq!(
        route(&s.hub, "GET /repos/{owner}/{repo}/pulls/{number}/files"),
        1
    );

    // LEFT addresses old line numbers: old line 6 was removed, new line 10 does not exist.
    let left = err(
        &s.client,
        "create_pull_request_review",
        json!({"repository": REPO, "number": PR, "event": "COMMENT",
        "comments": [
            {"path": "src/lib.rs", "line": 20, "body": "past the end"},
            {"path": "files/f1.txt", "line": 2, "side": "LEFT", "body": "before the hunk"},
        ]}),
    )
    .await;
    assert!(
        left.contains("src/lib.rs line 20 is not in the diff; commentable lines near it: 9-15"),
        "{left}"
    );
    assert!(
        left.contains("files/f1.txt line 2 is not in the diff (LEFT: old line numbers); commentable lines near it: 3-9"),
        "{left}"
    );

    let elsewhere = err(
        &s.client,
        "create_pull_request_review",
        json!({"repository": REPO, "number": PR, "event": "COMMENT",
               "comments": [{"path": "README.md", "line": 1, "body": "?"}]}),
    )
    .await;
    assert!(
        elsewhere.contains("README.md is not changed by #251")
            && elsewhere.contains("files/f1.txt, src/lib.rs"),
        "{elsewhere}"
    );

    let empty = err(
        &s.client,
        "create_pull_request_review",
        json!({"repository": REPO, "number": PR, "event": "REQUEST_CHANGES"}),
    )
    .await;
    assert!(empty.contains("need a body or inline comments"), "{empty}");
    assert_eq!(route(&s.hub, POST_REVIEWS), 0, "still nothing posted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_posts_reads_back_with_its_comments_and_replies_thread() {
    let s = setup(&[]).await;
    let review = ok(
        &s.client,
        "create_pull_request_review",
        json!({"repository": REPO, "number": PR, "event": "REQUEST_CHANGES",
        "body": "Please keep the old wording.",
        "comments": [
            {"path": "files/f1.txt", "line": 6, "body": "Why this tweak?"},
            {"path": "files/f1.txt", "line": 6, "side": "LEFT", "body": "This line was fine."},
            {"path": "src/lib.rs", "line": 13, "body": "Name it better."},
        ]}),
    )
    .await;
    assert_eq!(review["state"], "CHANGES_REQUESTED", "{review}");
    let review_id = review["id"].as_u64().unwrap();
    assert!(
        review["html_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("#pullrequestreview-{review_id}"))
    );
    assert_eq!(route(&s.hub, POST_REVIEWS), 1);

    let reviews = ok(
        &s.client,
        "list_pull_request_reviews",
        json!({"repository": REPO, "number": PR}),
    )
    .await;
    let items = reviews["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{reviews}");
    assert_eq!(items[0]["id"], review_id);
    assert_eq!(items[0]["state"], "CHANGES_REQUESTED");
    assert_eq!(items[0]["user"]["login"], "octocat");
    assert_eq!(items[0]["body"], "Please keep the old wording.");
    assert_eq!(items[0]["commit_id"].as_str().unwrap().len(), 40);
    assert!(items[0].get("node_id").is_none(), "reviews stay slim");

    let comments = ok(
        &s.client,
        "list_pull_request_review_comments",
        json!({"repository": REPO, "number": PR, "limit": 2}),
    )
    .await;
    let first = comments["items"].as_array().unwrap();
    assert_eq!(first.len(), 2, "{comments}");
    assert_eq!(first[0]["path"], "files/f1.txt");
    assert_eq!(first[0]["line"], 6);
    assert_eq!(first[0]["side"], "RIGHT");
    assert_eq!(first[0]["body"], "Why this tweak?");
    assert_eq!(first[1]["side"], "LEFT");
    assert!(first[0].get("in_reply_to_id").is_none());
    assert!(first[0].get("diff_hunk").is_none(), "comments stay slim");
    let rest = ok(
        &s.client,
        "list_pull_request_review_comments",
        json!({"repository": REPO, "number": PR, "limit": 2, "cursor": comments["next_cursor"]}),
    )
    .await;
    assert_eq!(rest["items"][0]["path"], "src/lib.rs", "{rest}");
    assert_eq!(rest["items"][0]["line"], 13);
    let root = first[0]["id"].as_u64().unwrap();

    let reply = ok(
        &s.client,
        "reply_to_review_comment",
        json!({"repository": REPO, "number": PR, "commentId": root, "body": "It reads better."}),
    )
    .await;
    assert_eq!(reply["in_reply_to_id"], root, "{reply}");
    // A reply to the reply joins the same thread.
    let again = ok(
        &s.client,
        "reply_to_review_comment",
        json!({"repository": REPO, "number": PR, "commentId": reply["id"], "body": "Agreed."}),
    )
    .await;
    assert_eq!(again["in_reply_to_id"], root, "{again}");
    let all = ok(
        &s.client,
        "list_pull_request_review_comments",
        json!({"repository": REPO, "number": PR}),
    )
    .await;
    let thread: Vec<&Value> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == root || c["in_reply_to_id"] == root)
        .collect();
    assert_eq!(thread.len(), 3, "{all}");
    assert_eq!(thread[2]["body"], "Agreed.");
    assert_eq!(thread[2]["path"], "files/f1.txt");

    let missing = err(
        &s.client,
        "reply_to_review_comment",
        json!({"repository": REPO, "number": PR, "commentId": 999, "body": "?"}),
    )
    .await;
    assert!(
        missing.contains("list_pull_request_review_comments"),
        "{missing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewers_are_requested_and_title_and_state_change() {
    let s = setup(&[]).await;
    let requested = ok(
        &s.client,
        "request_reviewers",
        json!({"repository": REPO, "number": PR, "reviewers": ["bob"], "teamReviewers": ["core"]}),
    )
    .await;
    assert_eq!(requested["reviewers"], json!(["bob"]), "{requested}");
    assert_eq!(requested["teams"], json!(["core"]));
    let seen = fake_pull(&s.hub, PR).await;
    assert_eq!(seen["requested_reviewers"][0]["login"], "bob", "{seen}");
    assert_eq!(seen["requested_teams"][0]["slug"], "core");

    let stranger = err(
        &s.client,
        "request_reviewers",
        json!({"repository": REPO, "number": PR, "reviewers": ["mallory"]}),
    )
    .await;
    assert!(
        stranger.contains("collaborator") && stranger.contains("nobody was requested"),
        "{stranger}"
    );
    let author = err(
        &s.client,
        "request_reviewers",
        json!({"repository": REPO, "number": PR, "reviewers": ["alice"]}),
    )
    .await;
    assert!(author.contains("author"), "{author}");

    let renamed = ok(
        &s.client,
        "update_pull_request",
        json!({"repository": REPO, "number": PR, "title": "Feature 1, reworded"}),
    )
    .await;
    assert_eq!(renamed["title"], "Feature 1, reworded", "{renamed}");
    assert_eq!(renamed["state"], "open");
    let closed = ok(
        &s.client,
        "update_pull_request",
        json!({"repository": REPO, "number": PR, "state": "closed"}),
    )
    .await;
    assert_eq!(closed["state"], "closed", "{closed}");
    let read = ok(
        &s.client,
        "get_pull_request",
        json!({"repository": REPO, "number": PR}),
    )
    .await;
    assert_eq!(read["state"], "closed", "{read}");
    assert_eq!(read["title"], "Feature 1, reworded");

    let nothing = err(
        &s.client,
        "update_pull_request",
        json!({"repository": REPO, "number": PR}),
    )
    .await;
    assert!(nothing.contains("nothing to change"), "{nothing}");
    let bad_base = err(
        &s.client,
        "update_pull_request",
        json!({"repository": REPO, "number": PR, "base": "no-such-branch"}),
    )
    .await;
    assert!(bad_base.contains("list_branches"), "{bad_base}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_expected_head_is_refused_and_a_current_one_merges_the_base_in() {
    let s = setup(&[]).await;
    ok(
        &s.client,
        "create_branch",
        json!({"repository": REPO, "branchName": "topic"}),
    )
    .await;
    ok(
        &s.client,
        "create_or_update_file",
        json!({"repository": REPO, "path": "TOPIC.md", "content": "topic\n",
               "message": "Add topic", "branch": "topic"}),
    )
    .await;
    let pr = ok(
        &s.client,
        "create_pull_request",
        json!({"repository": REPO, "title": "Topic", "head": "topic"}),
    )
    .await;
    let number = pr["number"].as_u64().unwrap();
    let head = pr["head"]["sha"].as_str().unwrap().to_string();

    let current = err(
        &s.client,
        "update_pull_request_branch",
        json!({"repository": REPO, "number": number}),
    )
    .await;
    assert!(current.contains("no new commits"), "{current}");

    s.hub
        .commit_file(REPO, "main", "MAIN.md", "moved on\n")
        .unwrap();
    let stale = err(
        &s.client,
        "update_pull_request_branch",
        json!({"repository": REPO, "number": number, "expectedHeadSha": "0123456789abcdef0123456789abcdef01234567"}),
    )
    .await;
    assert!(
        stale.contains("expectedHeadSha") && stale.contains("get_pull_request"),
        "{stale}"
    );
    assert_eq!(
        s.hub.branch_head(REPO, "topic").unwrap(),
        head,
        "nothing merged"
    );

    let updated = ok(
        &s.client,
        "update_pull_request_branch",
        json!({"repository": REPO, "number": number, "expectedHeadSha": head}),
    )
    .await;
    assert!(
        updated["message"].as_str().unwrap().contains("Updating"),
        "{updated}"
    );
    let new_head = s.hub.branch_head(REPO, "topic").unwrap();
    assert_ne!(new_head, head);
    let (parents, _) = s.hub.commit_changes(REPO, &new_head).unwrap();
    assert_eq!(parents.len(), 2, "a merge commit");
    let file = ok(
        &s.client,
        "get_file_contents",
        json!({"repository": REPO, "path": "MAIN.md", "ref": "topic"}),
    )
    .await;
    assert!(file.to_string().contains("moved on"), "{file}");

    let conflict = err(
        &s.client,
        "update_pull_request_branch",
        json!({"repository": REPO, "number": PR}),
    )
    .await;
    assert!(conflict.contains("conflict"), "{conflict}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_request_search_finds_only_pull_requests() {
    let s = setup(&[]).await;
    let found = ok(
        &s.client,
        "search_pull_requests",
        json!({"query": "repo:octo/hello parser", "limit": 5}),
    )
    .await;
    let items = found["items"].as_array().unwrap();
    // Pull requests 263, 276 and 289 ("Add feature 13: ... parser"); issues are left out.
    assert_eq!(items.len(), 3, "{found}");
    assert_eq!(found["total_count"], 3, "{found}");
    for it in items {
        assert!(it["html_url"].as_str().unwrap().contains("/pull/"), "{it}");
        assert!(it["number"].as_u64().unwrap() > 250, "{it}");
    }
    assert_eq!(
        route(&s.hub, "GET /search/issues"),
        1,
        "{:?}",
        s.hub.stats().by_route
    );
    // The same words through search_issues also find issues.
    let both = ok(
        &s.client,
        "search_issues",
        json!({"query": "repo:octo/hello parser"}),
    )
    .await;
    assert!(both["total_count"].as_u64().unwrap() > found["total_count"].as_u64().unwrap());

    let wrong = err(
        &s.client,
        "search_pull_requests",
        json!({"query": "repo:octo/hello is:issue"}),
    )
    .await;
    assert!(wrong.contains("search_issues"), "{wrong}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_hides_the_pull_request_writes() {
    let s = setup(&["--read-only"]).await;
    let tools = s.client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for read in [
        "search_pull_requests",
        "list_pull_request_reviews",
        "list_pull_request_review_comments",
    ] {
        assert!(names.contains(&read), "{read}");
    }
    for write in [
        "update_pull_request",
        "update_pull_request_branch",
        "request_reviewers",
        "create_pull_request_review",
        "reply_to_review_comment",
    ] {
        assert!(!names.contains(&write), "{write} is a write");
    }
    let t = tools
        .iter()
        .find(|t| t.name == "list_pull_request_reviews")
        .unwrap();
    assert_eq!(t.title.as_deref(), Some("List pull request reviews"));
}

const GET_PULL: &str = "GET /repos/{owner}/{repo}/pulls/{number}";
const PATCH_PULL: &str = "PATCH /repos/{owner}/{repo}/pulls/{number}";
const GRAPHQL: &str = "POST /graphql";

/// (GET, PATCH, GraphQL) requests of the pull request seen by the fake.
fn pull_requests_seen(hub: &FakeHub) -> (u64, u64, u64) {
    (
        route(hub, GET_PULL),
        route(hub, PATCH_PULL),
        route(hub, GRAPHQL),
    )
}

/// `(action, changes)` of the `github.pull_request.action` events so far.
async fn pull_actions(c: &Client) -> Vec<(String, Value)> {
    let events = read_json(c, "events://github.*").await;
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "github.pull_request.action")
        .map(|e| {
            (
                e["data"]["action"].as_str().unwrap().to_string(),
                e["data"]["changes"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft_changes_through_one_graphql_mutation_and_none_when_already_so() {
    let s = setup(&[]).await;
    s.hub.reset_stats();
    let drafted = ok(
        &s.client,
        "update_pull_request",
        json!({"repository": REPO, "number": PR, "draft": true}),
    )
    .await;
    assert_eq!(drafted["draft"], true, "{drafted}");
    assert_eq!(drafted["number"], PR);
    assert_eq!(
        pull_requests_seen(&s.hub),
        (1, 0, 1),
        "one read for the node id, one mutation: {:?}",
        s.hub.stats().by_route
    );
    assert_eq!(fake_pull(&s.hub, PR).await["draft"], true);
    let read = ok(
        &s.client,
        "get_pull_request",
        json!({"repository": REPO, "number": PR}),
    )
    .await;
    assert_eq!(read["draft"], true, "{read}");

    // Already a draft: a (conditional) read, no mutation.
    s.hub.reset_stats();
    let again = ok(
        &s.client,
        "update_pull_request",
        json!({"repository": REPO, "number": PR, "draft": true}),
    )
    .await;
    assert_eq!(again["draft"], true);
    assert_eq!(pull_requests_seen(&s.hub), (1, 0, 0));
    assert_eq!(s.hub.stats().not_modified, 1, "served by revalidation");

    // Ready for review together with a title: the PATCH's answer carries the node id.
    s.hub.reset_stats();
    let ready = ok(
        &s.client,
        "update_pull_request",
        json!({"repository": REPO, "number": PR, "title": "Feature 1, ready", "draft": false}),
    )
    .await;
    assert_eq!(ready["draft"], false, "{ready}");
    assert_eq!(ready["title"], "Feature 1, ready");
    assert_eq!(pull_requests_seen(&s.hub), (0, 1, 1));
    let stats = s.hub.stats();
    let charged = &stats.by_token["tok-pull…"].charged;
    assert_eq!(charged.get("graphql"), Some(&1), "{charged:?}");
    let seen = fake_pull(&s.hub, PR).await;
    assert_eq!(seen["draft"], false, "{seen}");
    assert_eq!(seen["title"], "Feature 1, ready");

    s.hub.reset_stats();
    let still = ok(
        &s.client,
        "update_pull_request",
        json!({"repository": REPO, "number": PR, "draft": false}),
    )
    .await;
    assert_eq!(still["draft"], false);
    assert_eq!(
        pull_requests_seen(&s.hub),
        (1, 0, 0),
        "already ready: no mutation"
    );

    // An unknown pull request: isError, and nothing reaches GraphQL.
    s.hub.reset_stats();
    let missing = err(
        &s.client,
        "update_pull_request",
        json!({"repository": REPO, "number": 9999, "draft": true}),
    )
    .await;
    assert!(missing.contains("not found"), "{missing}");
    assert_eq!(route(&s.hub, GRAPHQL), 0);

    assert_eq!(
        pull_actions(&s.client).await,
        [
            ("converted_to_draft".to_string(), json!(["draft"])),
            ("edited".to_string(), json!(["title"])),
            ("ready_for_review".to_string(), json!(["draft"])),
        ]
    );
}

/// GitHub Enterprise Server layout: REST under `/api/v3`, GraphQL at `/api/graphql`
/// (the fake refuses `/api/v3/graphql`, as GHES does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft_works_against_an_enterprise_layout() {
    let s = setup_at("/api/v3", &[]).await;
    // Pull request 257 is seeded as a draft.
    let ready = ok(
        &s.client,
        "update_pull_request",
        json!({"repository": REPO, "number": 257, "draft": false}),
    )
    .await;
    assert_eq!(ready["draft"], false, "{ready}");
    assert_eq!(fake_pull(&s.hub, 257).await["draft"], false);
    let drafted = ok(
        &s.client,
        "update_pull_request",
        json!({"repository": REPO, "number": 257, "state": "closed", "draft": true}),
    )
    .await;
    assert_eq!(drafted["draft"], true, "{drafted}");
    assert_eq!(drafted["state"], "closed");
    assert_eq!(route(&s.hub, GRAPHQL), 2, "{:?}", s.hub.stats().by_route);
    assert_eq!(route(&s.hub, "POST (unmatched)"), 0);
}
