//! The GitHub tools: inputs (contract names and defaults kept), handlers and their
//! registration with annotations. Writes publish `github.*` events.
//!
//! Owns tool semantics only: requests go through `client.rs`, shapes come from
//! `model.rs`. It must not touch lanes or rate-limit state directly.

use std::{collections::BTreeMap, sync::Arc};

use reqwest::Method;

use schemars::JsonSchema;

use serde::{Deserialize, Serialize};

use serde_json::{Value, json};

use crate::runtime::{
    events::EventBus,
    executor::LaneStats,
    page::Page,
    registry::{CallCtx, Hints, ToolDef, ToolError},
    toolset::Tools,
};

mod actions;
mod files;
mod issues;
mod pulls;
mod repos;

use actions::*;
use files::*;
use issues::*;
use pulls::*;
use repos::*;

use super::{
    client::{ACCEPT_DIFF, GhError, GithubClient, TextWindow, window},
    limits::{Bucket, LaneKind},
    model::*,
};

const SOURCE: &str = "cortex-mcp/github";

const DEFAULT_BODY_BYTES: usize = 16 * 1024;

const DEFAULT_PATCH_BYTES: usize = 4 * 1024;

const DEFAULT_WINDOW_BYTES: usize = 64 * 1024;

/// What every GitHub handler holds.
pub struct Github {
    pub client: GithubClient,
    pub events: EventBus,
}

type Gh = Arc<Github>;

use crate::runtime::toolset::Out;

fn repo(raw: &str) -> Result<String, ToolError> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.len() <= 100
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match raw.trim().split_once('/') {
        Some((owner, name)) if ok_part(owner) && ok_part(name) => Ok(format!("{owner}/{name}")),
        _ => Err(ToolError::input(format!(
            "repository: `{raw}` must be \"owner/name\" (letters, digits, '-', '_', '.')"
        ))),
    }
}

fn git_ref(field: &str, raw: &str) -> Result<String, ToolError> {
    let bad = raw.is_empty()
        || raw.len() > 255
        || raw.contains("..")
        || raw.starts_with('/')
        || raw.ends_with('/')
        || raw
            .chars()
            .any(|c| c.is_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\'));
    if bad {
        return Err(ToolError::input(format!(
            "{field}: `{raw}` is not a valid branch or ref name"
        )));
    }
    Ok(raw.to_string())
}

fn cap(text: Option<String>, max: usize) -> (Option<String>, bool) {
    match text {
        Some(mut t) if t.len() > max => {
            let mut end = max;
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            t.truncate(end);
            (Some(t), true)
        }
        other => (other, false),
    }
}

/// Publishes a GitHub event shown only to `owner`, the caller whose action it records.
async fn publish(gh: &Gh, kind: &str, data: Value, owner: Option<String>) {
    if let Err(e) = gh.events.publish_owned(kind, SOURCE, data, owner).await {
        tracing::warn!(event = kind, "could not journal the GitHub event: {e}");
    }
}

fn default_limit_30() -> u32 {
    30
}

fn default_body() -> u32 {
    DEFAULT_BODY_BYTES as u32
}

fn default_patch() -> u32 {
    DEFAULT_PATCH_BYTES as u32
}

fn default_window() -> u32 {
    DEFAULT_WINDOW_BYTES as u32
}

#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum IssueState {
    Open,
    Closed,
    All,
}

impl IssueState {
    fn as_str(self) -> &'static str {
        match self {
            IssueState::Open => "open",
            IssueState::Closed => "closed",
            IssueState::All => "all",
        }
    }
}

fn default_issue_state() -> IssueState {
    IssueState::Open
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssueNumberIn {
    /// "owner/name".
    pub repository: String,
    #[schemars(range(min = 1))]
    pub number: u64,
    /// Longest body returned, in bytes (default 16384).
    #[serde(default = "default_body")]
    #[schemars(range(min = 256, max = 1048576))]
    pub max_body_bytes: u32,
}

#[derive(Serialize, JsonSchema)]
pub struct SearchPage<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    pub total_count: u64,
    /// GitHub timed out part of the search; results may be missing.
    pub incomplete_results: bool,
}

pub fn all(gh: &Gh) -> Vec<ToolDef> {
    let t = Tools::new("github", gh);
    let read = Hints::read_remote();
    let write = Hints::write_remote();
    vec![
        t.tool(
            "create_pull_request",
            write,
            create_pull_request,
            "Open a pull request from `head` into `base` (default: the repository's default branch). Returns the new pull request's number, state and html_url."
        ),
        t.tool(
            "get_repository_info",
            read,
            get_repository_info,
            "Repository facts (default branch, visibility, description, topics, counts). `includeStats` adds languages; `includeBranches` adds the first page of branches with a cursor for `list_branches`."
        ),
        t.tool(
            "list_issues",
            read,
            list_issues,
            "Issues of a repository (pull requests left out), newest first, filtered by state, labels (all must match) and assignee. Reads only the upstream pages needed for `limit`; continue with `cursor`."
        ),
        t.tool(
            "create_branch",
            write,
            create_branch,
            "Create branch `branchName` at the head of `fromBranch` (default: the repository's default branch)."
        ),
        t.tool(
            "run_action",
            write,
            run_action,
            "Trigger a GitHub Actions workflow (workflow_dispatch) on `ref` with optional string `inputs`. Watch the result with `list_workflow_runs`."
        ),
        t.tool(
            "get_issue",
            read,
            get_issue,
            "One issue with its body (capped by `maxBodyBytes`)."
        ),
        t.tool(
            "create_issue",
            write,
            create_issue,
            "Open an issue with optional body, labels and assignees."
        ),
        t.tool(
            "update_issue",
            write.idempotent(),
            update_issue,
            "Change an issue's title, body, state (open|closed, with stateReason), labels or assignees; given lists replace the current ones."
        ),
        t.tool(
            "add_issue_comment",
            write,
            add_issue_comment,
            "Comment on an issue or pull request."
        ),
        t.tool(
            "list_issue_comments",
            read,
            list_issue_comments,
            "Comments of an issue or pull request, oldest first; continue with `cursor`."
        ),
        t.tool(
            "list_pull_requests",
            read,
            list_pull_requests,
            "Pull requests of a repository by state, head and base; continue with `cursor`."
        ),
        t.tool(
            "get_pull_request",
            read,
            get_pull_request,
            "One pull request: branches, mergeability, change counts and body (capped by `maxBodyBytes`)."
        ),
        t.tool(
            "get_pull_request_files",
            read,
            get_pull_request_files,
            "Files changed by a pull request with per-file patches (each capped by `maxPatchBytes`); continue with `cursor`."
        ),
        t.tool(
            "get_pull_request_diff",
            read,
            get_pull_request_diff,
            "A pull request's unified diff, `maxBytes` at a time from `offset`; pass `next_offset` back to read on."
        ),
        t.tool(
            "merge_pull_request",
            write,
            merge_pull_request,
            "Merge a pull request (merge, squash or rebase), optionally only if its head is still `sha`."
        ),
        t.tool(
            "get_file_contents",
            read,
            get_file_contents,
            "A file's text (windowed by `offset`/`maxBytes`; binary files as base64) or a directory listing, at `ref` or the default branch. One upstream request, revalidated by ETag."
        ),
        t.tool(
            "list_commits",
            read,
            list_commits,
            "Commits from a branch or SHA, optionally touching `path`, newest first; continue with `cursor`."
        ),
        t.tool(
            "get_commit",
            read,
            get_commit,
            "One commit: message, author, stats and changed files with capped patches."
        ),
        t.tool(
            "compare_commits",
            read,
            compare_commits,
            "Compare two refs (`base...head`): ahead/behind counts, commits and changed files with capped patches."
        ),
        t.tool(
            "list_branches",
            read,
            list_branches,
            "Branches of a repository with head SHAs; continue with `cursor`."
        ),
        t.tool(
            "search_issues",
            read,
            search_issues,
            "Search issues and pull requests with GitHub syntax (`repo:o/r is:open label:bug words`). Search is limited to 30 requests a minute; calls queue rather than fail."
        ),
        t.tool(
            "search_code",
            read,
            search_code,
            "Search code with GitHub syntax (`repo:o/r fn main`). Code search is limited to about 9 requests a minute; calls queue rather than fail."
        ),
        t.tool(
            "search_repositories",
            read,
            search_repositories,
            "Search repositories with GitHub syntax (`topic:rust stars:>100`)."
        ),
        t.tool(
            "list_workflow_runs",
            read,
            list_workflow_runs,
            "GitHub Actions runs of a repository by branch and status, newest first; continue with `cursor`."
        ),
        t.tool(
            "get_workflow_run",
            read,
            get_workflow_run,
            "One workflow run: status, conclusion, branch, SHA and html_url."
        ),
        t.tool(
            "get_me",
            read,
            get_me,
            "The account the configured credential acts as."
        ),
        t.tool(
            "get_rate_limit",
            read,
            get_rate_limit,
            "Budgets per bucket (core, search, code_search, graphql) as GitHub reports them, this server's lanes (running, waiting, paused) and any pause after a secondary limit. Costs no primary budget."
        ),
        t.tool(
            "get_commit_checks",
            read,
            get_commit_checks,
            "Is CI green for a ref? One summary of its check runs and commit statuses: overall state, counts, and the checks with failing ones first (Actions checks carry the `job_id` for `get_job_logs`)."
        )
        .titled("Commit checks"),
        t.tool(
            "list_workflows",
            read,
            list_workflows,
            "GitHub Actions workflows of a repository (id, name, file path, state); continue with `cursor`."
        )
        .titled("List workflows"),
        t.tool(
            "list_workflow_jobs",
            read,
            list_workflow_jobs,
            "Jobs of a workflow run with status, conclusion and their failed steps; continue with `cursor`. Use before `get_job_logs`."
        )
        .titled("List jobs of a run"),
        t.tool(
            "get_job_logs",
            read,
            get_job_logs,
            "Why did CI fail? Log text of one job (`jobId`) or of a run's failed jobs (`runId` + `failedOnly: true`), ANSI codes and timestamps stripped, cut by `tailLines` and `offset`/`maxBytes`; continue with `next_cursor`."
        )
        .titled("Job logs"),
        t.tool(
            "rerun_workflow_run",
            write,
            rerun_workflow_run,
            "Re-run every job of a completed workflow run as a new attempt. Watch it with `get_workflow_run`."
        )
        .titled("Re-run workflow run"),
        t.tool(
            "rerun_failed_jobs",
            write,
            rerun_failed_jobs,
            "Re-run only the failed (and cancelled) jobs of a completed workflow run as a new attempt."
        )
        .titled("Re-run failed jobs"),
        t.tool(
            "cancel_workflow_run",
            write.destructive(),
            cancel_workflow_run,
            "Cancel a queued or in-progress workflow run; its unfinished jobs end as cancelled."
        )
        .titled("Cancel workflow run"),
        t.tool(
            "list_workflow_run_artifacts",
            read,
            list_workflow_run_artifacts,
            "Artifacts a workflow run uploaded (name, size, expiry); continue with `cursor`."
        )
        .titled("List run artifacts"),
        t.tool(
            "create_or_update_file",
            write.destructive(),
            create_or_update_file,
            "Write one file's full text in one commit on a branch. Updating needs the file's current blob `sha` (from `get_file_contents`); a stale sha is refused with the current one. For several files use `push_files`."
        )
        .titled("Create or update file"),
        t.tool(
            "delete_file",
            write.destructive(),
            delete_file,
            "Delete one file in one commit on a branch; needs its current blob `sha` (a stale sha is refused with the current one)."
        )
        .titled("Delete file"),
        t.tool(
            "push_files",
            write.destructive(),
            push_files,
            "Write (and optionally delete) several files in ONE commit on an existing branch, fast-forward only: if the branch moved meanwhile nothing is pushed and the error says so. Returns the commit sha."
        )
        .titled("Push files in one commit"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_are_checked() {
        assert_eq!(repo("octo/hello").unwrap(), "octo/hello");
        assert!(repo("octo").is_err());
        assert!(repo("../etc/passwd").is_err());
        assert!(repo("octo/hello/extra").is_err());
        assert!(repo("octo/..").is_err());
    }

    #[test]
    fn ref_names_are_checked() {
        assert!(git_ref("ref", "feature/x").is_ok());
        assert!(git_ref("ref", "a..b").is_err());
    }
}
