//! The CI and file-change part of an agent's GitHub loop, through a real MCP client
//! (rmcp over stdio) against the fake GitHub (`tools/fakehub`): commit checks, jobs and
//! their logs (fetched through the 302 to the fake's log host, which refuses any
//! request carrying `Authorization`), re-runs and cancel, artifacts, and file writes —
//! one file by blob sha, several in one fast-forward commit.

use crate::common;

use common::*;
use fakehub::{FakeConfig, FakeHub};
use serde_json::{Value, json};

const TOKEN: &str = "tok-loop-0001";
const REPO: &str = "octo/hello";
/// Seeded run whose `test` job fails.
const FAILED_RUN: u64 = 9003;
const FAILED_JOB: u64 = 90032;

struct Setup {
    hub: FakeHub,
    client: Client,
    _state: tempfile::TempDir,
}

async fn setup() -> Setup {
    let hub = fakehub::spawn(FakeConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("fake GitHub starts");
    let state = tempfile::tempdir().unwrap();
    let base = hub.base_url();
    let vars = [("GITHUB_API_URL", base.as_str()), ("GITHUB_TOKEN", TOKEN)];
    let client = stdio_client_env(state.path(), &["--toolsets", "github"], &vars).await;
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
async fn commit_checks_summarise_runs_and_statuses_failures_first() {
    let s = setup().await;
    let run = ok(
        &s.client,
        "get_workflow_run",
        json!({"repository": REPO, "runId": FAILED_RUN}),
    )
    .await;
    let sha = run["head_sha"].as_str().unwrap().to_string();
    s.hub.reset_stats();
    let checks = ok(
        &s.client,
        "get_commit_checks",
        json!({"repository": REPO, "ref": sha}),
    )
    .await;
    assert_eq!(s.hub.stats().requests, 2, "status + one page of check runs");
    assert_eq!(checks["sha"], sha.as_str());
    assert_eq!(checks["state"], "failure");
    assert_eq!(checks["counts"]["total"], 4, "{checks}");
    assert_eq!(checks["counts"]["failure"], 2);
    assert_eq!(checks["counts"]["success"], 2);
    let list = checks["checks"].as_array().unwrap();
    assert_eq!(list[0]["state"], "failure");
    assert_eq!(list[1]["state"], "failure");
    let test = list.iter().find(|c| c["name"] == "test").unwrap();
    assert_eq!(
        test["job_id"], FAILED_JOB,
        "Actions checks carry the job id"
    );
    assert!(
        list.iter()
            .any(|c| c["kind"] == "status" && c["name"] == "ci/coverage")
    );

    // The default branch's head: all jobs green, one deployment status still pending.
    let head = ok(
        &s.client,
        "get_commit_checks",
        json!({"repository": REPO, "limit": 1}),
    )
    .await;
    assert_eq!(head["state"], "pending", "{head}");
    assert_eq!(head["counts"]["pending"], 1);
    assert_eq!(head["counts"]["success"], 4);
    assert_eq!(
        head["checks"][0]["name"], "deploy/preview",
        "pending before green"
    );
    assert_eq!(head["checks"].as_array().unwrap().len(), 1);
    assert_eq!(head["checks_truncated"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_job_logs_follow_the_redirect_without_the_token() {
    let s = setup().await;

    // The fake's log host really refuses a forwarded token (the negative control).
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let api = format!(
        "{}/repos/{REPO}/actions/jobs/{FAILED_JOB}/logs",
        s.hub.base_url()
    );
    let redirect = http.get(&api).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(redirect.status(), 302);
    let location = redirect.headers()["location"].to_str().unwrap().to_string();
    assert!(
        !location.starts_with(&s.hub.base_url()),
        "another origin: {location}"
    );
    let forwarded = http.get(&location).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(forwarded.status(), 400);
    assert_eq!(s.hub.stats().log_authorization_rejected, 1);

    let jobs = ok(
        &s.client,
        "list_workflow_jobs",
        json!({"repository": REPO, "runId": FAILED_RUN}),
    )
    .await;
    let items = jobs["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let test = items.iter().find(|j| j["name"] == "test").unwrap();
    assert_eq!(test["conclusion"], "failure");
    assert_eq!(test["failed_steps"][0]["name"], "Run cargo test --locked");
    assert!(
        items
            .iter()
            .filter(|j| j["name"] != "test")
            .all(|j| j["failed_steps"] == json!([]))
    );

    s.hub.reset_stats();
    let logs = ok(
        &s.client,
        "get_job_logs",
        json!({"repository": REPO, "runId": FAILED_RUN, "failedOnly": true, "tailLines": 12}),
    )
    .await;
    let stats = s.hub.stats();
    assert_eq!(stats.log_requests, 1, "one log download");
    assert_eq!(
        stats.log_authorization_rejected, 0,
        "the token never reaches the log host"
    );
    assert_eq!(stats.requests, 2, "jobs list + one 302");
    let list = logs["logs"].as_array().unwrap();
    assert_eq!(list.len(), 1, "only the failed job: {logs}");
    assert_eq!(list[0]["job_id"], FAILED_JOB);
    assert_eq!(list[0]["name"], "test");
    assert_eq!(list[0]["failed_steps"][0], "Run cargo test --locked");
    let text = list[0]["log"]["text"].as_str().unwrap();
    assert_eq!(text.lines().count(), 12, "{text}");
    assert!(text.contains("panicked at src/lib.rs:2:5"), "{text}");
    assert!(text.contains("src/main.rs:2"));
    assert!(!text.contains('\u{1b}'), "ANSI codes stripped: {text:?}");
    assert!(
        text.lines().all(|l| !l.starts_with("2024-")),
        "timestamps stripped: {text}"
    );
    assert!(logs.get("next_cursor").is_none());

    // Windowed reading: small windows chained by the cursor give the whole cleaned log.
    let whole = ok(
        &s.client,
        "get_job_logs",
        json!({"repository": REPO, "jobId": FAILED_JOB, "maxBytes": 1048576}),
    )
    .await;
    let full = whole["logs"][0]["log"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(full.len() > 4096);
    let mut joined = String::new();
    let mut cursor: Option<String> = None;
    let mut calls = 0;
    loop {
        let mut args = json!({"repository": REPO, "jobId": FAILED_JOB, "maxBytes": 2048});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let page = ok(&s.client, "get_job_logs", args).await;
        let part = page["logs"][0]["log"]["text"].as_str().unwrap();
        assert!(part.len() <= 2048);
        joined.push_str(part);
        calls += 1;
        match page.get("next_cursor").and_then(Value::as_str) {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert!(calls > 2);
    assert_eq!(joined, full);

    let e = err(
        &s.client,
        "get_job_logs",
        json!({"repository": REPO, "runId": FAILED_RUN}),
    )
    .await;
    assert!(e.contains("failedOnly"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_longer_than_the_call_budget_is_read_to_its_end_within_the_budget() {
    let hub = fakehub::spawn(FakeConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("fake GitHub starts");
    // ~3 MiB of coloured, timestamped lines, then the failure at the very end.
    let mut log = String::new();
    for k in 0..40_000 {
        log.push_str(&format!(
            "2024-05-01T10:00:00.0000000Z \u{1b}[32m   Compiling\u{1b}[0m crate-{k} v0.{k}.0 (registry)\n"
        ));
    }
    log.push_str("2024-05-01T10:09:59.0000000Z error: the-final-failure-line\n");
    let raw_len = log.len() as u64;
    assert!(raw_len > 3 << 20);
    assert!(hub.set_job_log(REPO, FAILED_JOB, log));
    let state = tempfile::tempdir().unwrap();
    let base = hub.base_url();
    let vars = [("GITHUB_API_URL", base.as_str()), ("GITHUB_TOKEN", TOKEN)];
    let client = stdio_client_env(
        state.path(),
        &[
            "--toolsets",
            "github",
            "--call-memory-budget-bytes",
            "1048576",
        ],
        &vars,
    )
    .await;
    let logs = ok(
        &client,
        "get_job_logs",
        json!({"repository": REPO, "jobId": FAILED_JOB, "tailLines": 3}),
    )
    .await;
    let job = &logs["logs"][0];
    let text = job["log"]["text"].as_str().unwrap();
    assert!(text.ends_with("error: the-final-failure-line\n"), "{text}");
    assert_eq!(text.lines().count(), 3, "{text}");
    let skipped = job["skipped_bytes"].as_u64().unwrap();
    assert!(
        skipped > raw_len - (1 << 20) && skipped < raw_len,
        "only the end was held: skipped {skipped} of {raw_len}"
    );
    assert!(
        text.lines()
            .all(|l| l.contains("crate-") || l.contains("error:")),
        "whole lines only: {text}"
    );
    assert_eq!(hub.stats().log_requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reruns_cancel_workflows_and_artifacts() {
    let s = setup().await;
    let wf = ok(&s.client, "list_workflows", json!({"repository": REPO})).await;
    assert_eq!(wf["items"][0]["name"], "CI");
    assert_eq!(wf["items"][0]["path"], ".github/workflows/ci.yml");

    let arts = ok(
        &s.client,
        "list_workflow_run_artifacts",
        json!({"repository": REPO, "runId": FAILED_RUN, "limit": 1}),
    )
    .await;
    assert_eq!(arts["items"][0]["name"], "test-report");
    let more = ok(
        &s.client,
        "list_workflow_run_artifacts",
        json!({"repository": REPO, "runId": FAILED_RUN, "cursor": arts["next_cursor"]}),
    )
    .await;
    assert_eq!(more["items"][0]["name"], "failure-logs");

    // A completed run cannot be cancelled.
    let e = err(
        &s.client,
        "cancel_workflow_run",
        json!({"repository": REPO, "runId": FAILED_RUN}),
    )
    .await;
    assert!(e.contains("get_workflow_run"), "{e}");

    let rerun = ok(
        &s.client,
        "rerun_failed_jobs",
        json!({"repository": REPO, "runId": FAILED_RUN}),
    )
    .await;
    assert_eq!(rerun["accepted"], true);
    let jobs = ok(
        &s.client,
        "list_workflow_jobs",
        json!({"repository": REPO, "runId": FAILED_RUN}),
    )
    .await;
    for j in jobs["items"].as_array().unwrap() {
        if j["name"] == "test" {
            assert_ne!(j["status"], "completed", "the failed job runs again: {j}");
        } else {
            assert_eq!(j["conclusion"], "success", "passed jobs are kept: {j}");
        }
    }
    // While it runs, a full re-run is refused and cancel is accepted.
    let e = err(
        &s.client,
        "rerun_workflow_run",
        json!({"repository": REPO, "runId": FAILED_RUN}),
    )
    .await;
    assert!(e.contains("completed"), "{e}");
    ok(
        &s.client,
        "cancel_workflow_run",
        json!({"repository": REPO, "runId": FAILED_RUN}),
    )
    .await;
    let run = ok(
        &s.client,
        "get_workflow_run",
        json!({"repository": REPO, "runId": FAILED_RUN}),
    )
    .await;
    assert_eq!(run["status"], "completed");
    assert_eq!(run["conclusion"], "cancelled");

    let green = ok(
        &s.client,
        "rerun_workflow_run",
        json!({"repository": REPO, "runId": 9001}),
    )
    .await;
    assert_eq!(green["action"], "rerun");
    assert_eq!(
        route(
            &s.hub,
            "POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun"
        ),
        2,
        "one refused, one accepted"
    );
    let e = err(
        &s.client,
        "rerun_workflow_run",
        json!({"repository": REPO, "runId": 123}),
    )
    .await;
    assert!(e.contains("list_workflow_runs"), "{e}");
}

async fn file_text(client: &Client, path: &str, git_ref: &str) -> (String, String) {
    let f = ok(
        client,
        "get_file_contents",
        json!({"repository": REPO, "path": path, "ref": git_ref}),
    )
    .await;
    (
        f["content"]["text"].as_str().unwrap().to_string(),
        f["sha"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_files_makes_one_fast_forward_commit() {
    let s = setup().await;
    let branch = "feature-2";
    let before = s.hub.branch_head(REPO, branch).unwrap();
    s.hub.reset_stats();
    let pushed = ok(
        &s.client,
        "push_files",
        json!({"repository": REPO, "branch": branch, "message": "Fix the greeting",
               "files": [
                   {"path": "src/lib.rs", "content": "pub fn greet(name: &str) -> String {\n    format!(\"Hello, {name}!\")\n}\n"},
                   {"path": "src/main.rs", "content": "fn main() {\n    println!(\"{}\", hello::greet(\"World\"));\n}\n"},
               ],
               "delete": ["features/feature_2.md"]}),
    )
    .await;
    let stats = s.hub.stats();
    assert_eq!(
        stats.requests, 5,
        "ref, base commit, tree, commit, ref update: {:?}",
        stats.by_route
    );
    assert_eq!(
        route(&s.hub, "PATCH /repos/{owner}/{repo}/git/refs/{ref}"),
        1
    );
    let sha = pushed["commit"]["sha"].as_str().unwrap();
    assert_eq!(pushed["parent"], before.as_str());
    assert_eq!(s.hub.branch_head(REPO, branch).as_deref(), Some(sha));
    let (parents, mut changed) = s.hub.commit_changes(REPO, sha).unwrap();
    changed.sort();
    assert_eq!(
        parents,
        vec![before],
        "exactly one new commit on the old head"
    );
    assert_eq!(
        changed,
        ["features/feature_2.md", "src/lib.rs", "src/main.rs"]
    );
    assert_eq!(pushed["deleted"], json!(["features/feature_2.md"]));

    let (lib, _) = file_text(&s.client, "src/lib.rs", branch).await;
    assert!(lib.starts_with("pub fn greet"));
    let (main, _) = file_text(&s.client, "src/main.rs", branch).await;
    assert!(main.contains("greet(\"World\")"));
    let e = err(
        &s.client,
        "get_file_contents",
        json!({"repository": REPO, "path": "features/feature_2.md", "ref": branch}),
    )
    .await;
    assert!(e.contains("not found"), "{e}");
    // The push queued a CI run for the new head.
    let checks = ok(
        &s.client,
        "get_commit_checks",
        json!({"repository": REPO, "ref": sha}),
    )
    .await;
    assert_eq!(checks["counts"]["total"], 3, "{checks}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_files_to_a_moved_branch_fails_and_leaves_it_alone() {
    let s = setup().await;
    let branch = "feature-4";
    let before = s.hub.branch_head(REPO, branch).unwrap();
    s.hub.move_branch_before_next_ref_update(REPO, branch);
    let e = err(
        &s.client,
        "push_files",
        json!({"repository": REPO, "branch": branch, "message": "Late push",
               "files": [{"path": "src/lib.rs", "content": "late\n"}, {"path": "NOTES.md", "content": "late\n"}]}),
    )
    .await;
    assert!(e.contains("moved"), "{e}");
    assert!(e.contains("not forced"), "{e}");
    let now = s.hub.branch_head(REPO, branch).unwrap();
    assert_ne!(now, before);
    assert!(e.contains(&now), "the error names the new head: {e}");
    let (parents, changed) = s.hub.commit_changes(REPO, &now).unwrap();
    assert_eq!(parents, vec![before]);
    assert_eq!(changed, ["CONCURRENT.md"], "only the other push landed");
    let (lib, _) = file_text(&s.client, "src/lib.rs", branch).await;
    assert_ne!(lib, "late\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_file_writes_are_guarded_by_the_blob_sha() {
    let s = setup().await;
    let branch = "feature-5";
    let (_, old_sha) = file_text(&s.client, "README.md", branch).await;
    let current = s
        .hub
        .commit_file(REPO, branch, "README.md", "# hello\n\nChanged by bob.\n")
        .unwrap();
    assert_ne!(current, old_sha);
    let head = s.hub.branch_head(REPO, branch).unwrap();

    let e = err(
        &s.client,
        "create_or_update_file",
        json!({"repository": REPO, "branch": branch, "path": "README.md", "content": "mine\n",
               "message": "Update README", "sha": old_sha}),
    )
    .await;
    assert!(e.contains(&current), "names the current sha: {e}");
    assert_eq!(
        s.hub.branch_head(REPO, branch).unwrap(),
        head,
        "nothing written"
    );

    let e = err(
        &s.client,
        "create_or_update_file",
        json!({"repository": REPO, "branch": branch, "path": "README.md", "content": "mine\n",
               "message": "Update README"}),
    )
    .await;
    assert!(e.contains(&current) && e.contains("already exists"), "{e}");

    let updated = ok(
        &s.client,
        "create_or_update_file",
        json!({"repository": REPO, "branch": branch, "path": "README.md", "content": "mine\n",
               "message": "Update README", "sha": current}),
    )
    .await;
    assert_eq!(updated["created"], false);
    let (text, sha) = file_text(&s.client, "README.md", branch).await;
    assert_eq!(text, "mine\n");
    assert_eq!(updated["sha"], sha.as_str());

    let created = ok(
        &s.client,
        "create_or_update_file",
        json!({"repository": REPO, "branch": branch, "path": "docs/new.md", "content": "new\n",
               "message": "Add docs"}),
    )
    .await;
    assert_eq!(created["created"], true);
    let new_sha = created["sha"].as_str().unwrap().to_string();

    let e = err(
        &s.client,
        "delete_file",
        json!({"repository": REPO, "branch": branch, "path": "docs/new.md", "message": "rm",
               "sha": old_sha}),
    )
    .await;
    assert!(e.contains(&new_sha), "{e}");
    let deleted = ok(
        &s.client,
        "delete_file",
        json!({"repository": REPO, "branch": branch, "path": "docs/new.md", "message": "rm",
               "sha": new_sha}),
    )
    .await;
    let commit = deleted["commit"]["sha"].as_str().unwrap();
    assert_eq!(s.hub.branch_head(REPO, branch).as_deref(), Some(commit));
    let e = err(
        &s.client,
        "get_file_contents",
        json!({"repository": REPO, "path": "docs/new.md", "ref": branch}),
    )
    .await;
    assert!(e.contains("not found"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_hidden_when_read_only() {
    let hub = fakehub::spawn(FakeConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let base = hub.base_url();
    let vars = [("GITHUB_API_URL", base.as_str()), ("GITHUB_TOKEN", TOKEN)];
    let client = stdio_client_env(
        state.path(),
        &["--toolsets", "github", "--read-only"],
        &vars,
    )
    .await;
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for read in ["get_commit_checks", "get_job_logs", "list_workflow_jobs"] {
        assert!(names.contains(&read), "{read}");
    }
    for write in [
        "push_files",
        "create_or_update_file",
        "delete_file",
        "rerun_workflow_run",
        "rerun_failed_jobs",
        "cancel_workflow_run",
    ] {
        assert!(!names.contains(&write), "{write} hidden");
    }
    let t = tools.iter().find(|t| t.name == "get_job_logs").unwrap();
    assert_eq!(t.title.as_deref(), Some("Job logs"));
}

/// The "fix the red build" session of `tools/bench/red_build_bench.py`, step by step with
/// this server's tools, against the fake's `red_build` scenario (a pull request whose CI
/// run failed in `test`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_red_build_session_finds_reads_fixes_and_requests_review() {
    let s = setup().await;
    let made: Value = reqwest::Client::new()
        .post(format!("{}/_fake/control", s.hub.base_url()))
        .json(&json!({"red_build": {"repository": REPO, "branch": "ci-red-test"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let number = made["number"].as_u64().unwrap();

    let pr = ok(
        &s.client,
        "get_pull_request",
        json!({"repository": REPO, "number": number}),
    )
    .await;
    let branch = pr["head"]["ref"].as_str().unwrap().to_string();
    assert_eq!(branch, "ci-red-test");
    s.hub.reset_stats();
    let runs = ok(
        &s.client,
        "list_workflow_runs",
        json!({"repository": REPO, "branch": branch, "status": "failure", "limit": 1}),
    )
    .await;
    assert_eq!(s.hub.stats().requests, 1, "one page of the branch's runs");
    let run_id = runs["items"][0]["id"].as_u64().unwrap();
    assert_eq!(run_id, made["run_id"].as_u64().unwrap());

    let logs = ok(
        &s.client,
        "get_job_logs",
        json!({"repository": REPO, "runId": run_id, "failedOnly": true, "tailLines": 40}),
    )
    .await;
    let text = logs.to_string();
    assert!(
        text.contains("src/lib.rs") && text.contains("src/main.rs"),
        "{text}"
    );

    let mut files = vec![];
    for path in ["src/lib.rs", "src/main.rs"] {
        let (content, _) = file_text(&s.client, path, &branch).await;
        files.push(json!({"path": path, "content": format!("{content}// fixed\n")}));
    }
    let pushed = ok(
        &s.client,
        "push_files",
        json!({"repository": REPO, "branch": branch, "message": "Fix the ordering test",
               "files": files}),
    )
    .await;
    let new_sha = pushed["commit"]["sha"].as_str().unwrap().to_string();
    ok(
        &s.client,
        "add_issue_comment",
        json!({"repository": REPO, "number": number, "body": "Pushed a fix."}),
    )
    .await;
    let asked = ok(
        &s.client,
        "request_reviewers",
        json!({"repository": REPO, "number": number, "reviewers": ["alice"]}),
    )
    .await;
    assert!(asked.to_string().contains("alice"), "{asked}");

    // The push started a new run of the fixed head, not yet completed.
    let newest = ok(
        &s.client,
        "list_workflow_runs",
        json!({"repository": REPO, "branch": branch, "limit": 1}),
    )
    .await;
    let run = &newest["items"][0];
    assert_eq!(run["head_sha"], new_sha.as_str());
    assert_ne!(run["id"].as_u64(), Some(run_id));
    assert_ne!(run["status"], "completed", "{run}");
    assert_eq!(s.hub.stats().secondary_limited, 0);
}
