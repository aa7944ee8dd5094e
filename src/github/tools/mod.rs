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
    events::{EventBus, EventPayload},
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
    events::{ContentsAction, IssueAction, PullRequestAction, WorkflowStatus},
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

type SharedGithub = Arc<Github>;

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
async fn publish<P: EventPayload>(gh: &SharedGithub, event: P, owner: Option<String>) {
    if let Err(e) = gh.events.publish_as(SOURCE, &event, owner).await {
        tracing::warn!(
            event = event.event_type(),
            "could not journal the GitHub event: {e}"
        );
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

impl<T> SearchPage<T> {
    /// A page of items with the totals GitHub put beside them in `envelope`
    /// (`total_count`, `incomplete_results`; absent ones read as 0 and false).
    fn from_envelope(page: Page<T>, envelope: &Value) -> Self {
        SearchPage {
            items: page.items,
            next_cursor: page.next_cursor,
            total_count: envelope
                .get("total_count")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            incomplete_results: envelope
                .get("incomplete_results")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }
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

pub fn all(gh: &SharedGithub) -> Vec<ToolDef> {
    let t = Tools::new("github", gh);
    let read = Hints::read_remote();
    let write = Hints::write_remote();
    vec![
        t.tool(
            "create_pull_request",
            write,
            create_pull_request,
            "Open a pull request from a pushed branch `head` into `base` (default: the default branch). Returns the new pull request: number, state, branches and html_url."
        )
        .titled("Create pull request"),
        t.tool(
            "get_repository_info",
            read,
            get_repository_info,
            "Start here to learn a repository: default branch, visibility, description, topics, license and counts. `includeStats` adds languages; `includeBranches` adds the first branches (continue with `list_branches`)."
        )
        .titled("Get repository info"),
        t.tool(
            "list_issues",
            read,
            list_issues,
            "Find issues (pull requests left out) by state, labels (all must match) and assignee, newest first. Returns number, title, state, labels and dates per issue, no bodies (see `get_issue`); pass `next_cursor` back as `cursor` for more."
        )
        .titled("List issues"),
        t.tool(
            "create_branch",
            write,
            create_branch,
            "Create branch `branchName` at the head of `fromBranch` (default: the default branch), e.g. before opening a pull request. Returns the new ref and its commit SHA."
        )
        .titled("Create branch"),
        t.tool(
            "run_action",
            write.destructive(),
            run_action,
            "Trigger a GitHub Actions workflow (workflow_dispatch) on `ref` with optional string `inputs`; its jobs run whatever they run. Returns whether it was dispatched and where its runs are; follow them with `list_workflow_runs`."
        )
        .titled("Run workflow"),
        t.tool(
            "get_issue",
            read,
            get_issue,
            "Read one issue in full: state, labels, assignees, dates and body (cut at `maxBodyBytes`; `body_truncated` says so)."
        )
        .titled("Get issue"),
        t.tool(
            "create_issue",
            write,
            create_issue,
            "Open an issue with a title and optional body, labels and assignees. Returns the new issue with its number and html_url."
        )
        .titled("Create issue"),
        t.tool(
            "update_issue",
            write.destructive().idempotent(),
            update_issue,
            "Change an issue's title, body, state (open|closed, with stateReason), labels or assignees; given fields and lists replace the current ones. Returns the updated issue."
        )
        .titled("Update issue"),
        t.tool(
            "add_issue_comment",
            write,
            add_issue_comment,
            "Comment on an issue or pull request (Markdown). Returns the comment with its id and html_url."
        )
        .titled("Add issue comment"),
        t.tool(
            "list_issue_comments",
            read,
            list_issue_comments,
            "Read the discussion of an issue or pull request: comments oldest first with author, dates and body; pass `next_cursor` back as `cursor` for more."
        )
        .titled("List issue comments"),
        t.tool(
            "list_pull_requests",
            read,
            list_pull_requests,
            "Find pull requests by state, head and base branch. Returns number, title, state, branches and dates per pull request (details: `get_pull_request`); pass `next_cursor` back as `cursor` for more."
        )
        .titled("List pull requests"),
        t.tool(
            "get_pull_request",
            read,
            get_pull_request,
            "Read one pull request: branches, merge state and mergeability, change counts and body (cut at `maxBodyBytes`). For its changes use `get_pull_request_files` or `get_pull_request_diff`."
        )
        .titled("Get pull request"),
        t.tool(
            "get_pull_request_files",
            read,
            get_pull_request_files,
            "Review a pull request file by file: path, status, additions, deletions and patch (each cut at `maxPatchBytes`); pass `next_cursor` back as `cursor` for more files."
        )
        .titled("Get pull request files"),
        t.tool(
            "get_pull_request_diff",
            read,
            get_pull_request_diff,
            "Read a pull request's whole unified diff, `maxBytes` at a time from `offset`. Returns the text, `total_bytes` and `next_offset` to pass back while more remains."
        )
        .titled("Get pull request diff"),
        t.tool(
            "merge_pull_request",
            write.destructive(),
            merge_pull_request,
            "Merge a pull request into its base (merge, squash or rebase); pass `sha` to merge only if the head has not moved. Returns whether it merged, the merge commit SHA and GitHub's message."
        )
        .titled("Merge pull request"),
        t.tool(
            "get_file_contents",
            read,
            get_file_contents,
            "Read a file or list a directory at `ref` (default: the default branch). Returns the text windowed by `offset`/`maxBytes` (binary as base64) with its SHA, or the directory's entries."
        )
        .titled("Get file contents"),
        t.tool(
            "list_commits",
            read,
            list_commits,
            "History of a branch or SHA, optionally only commits touching `path`, newest first: SHA, title, author and date per commit; pass `next_cursor` back as `cursor` for more."
        )
        .titled("List commits"),
        t.tool(
            "get_commit",
            read,
            get_commit,
            "Read one commit: message, author, date, stats and changed files with patches (cut at `maxPatchBytes`, at most `fileLimit` files)."
        )
        .titled("Get commit"),
        t.tool(
            "compare_commits",
            read,
            compare_commits,
            "Compare two refs (`base...head`): ahead/behind counts, the commits between them and the changed files with patches cut at `maxPatchBytes`."
        )
        .titled("Compare commits"),
        t.tool(
            "list_branches",
            read,
            list_branches,
            "Branches of a repository with their head SHAs and protection; pass `next_cursor` back as `cursor` for more."
        )
        .titled("List branches"),
        t.tool(
            "search_issues",
            read,
            search_issues,
            "Search issues and pull requests with GitHub's query syntax (`repo:o/r is:open label:bug words`). Returns the matches and `total_count`; search allows 30 requests a minute and calls queue rather than fail."
        )
        .titled("Search issues"),
        t.tool(
            "search_code",
            read,
            search_code,
            "Search code with GitHub's query syntax (`repo:o/r fn main`). Returns matching files and `total_count`; code search allows about 9 requests a minute and calls queue rather than fail."
        )
        .titled("Search code"),
        t.tool(
            "search_repositories",
            read,
            search_repositories,
            "Find repositories with GitHub's query syntax (`topic:rust stars:>100`). Returns the matches and `total_count`."
        )
        .titled("Search repositories"),
        t.tool(
            "list_workflow_runs",
            read,
            list_workflow_runs,
            "GitHub Actions runs by branch and status, newest first: id, workflow, status, conclusion, SHA and URL per run; pass `next_cursor` back as `cursor` for more."
        )
        .titled("List workflow runs"),
        t.tool(
            "get_workflow_run",
            read,
            get_workflow_run,
            "One workflow run by id: status, conclusion, branch, SHA, event and html_url; poll it after `run_action`."
        )
        .titled("Get workflow run"),
        t.tool(
            "get_me",
            read,
            get_me,
            "Check which GitHub account the configured credential acts as: login, name, type and URL."
        )
        .titled("Get my account"),
        t.tool(
            "get_rate_limit",
            read,
            get_rate_limit,
            "Check the remaining GitHub budget per bucket (core, search, code_search, graphql), this server's request lanes and any pause after a secondary limit, e.g. before a large job. Costs no budget."
        )
        .titled("Get rate limit"),
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
            write.destructive(),
            rerun_workflow_run,
            "Re-run every job of a completed workflow run as a new attempt. Watch it with `get_workflow_run`."
        )
        .titled("Re-run workflow run"),
        t.tool(
            "rerun_failed_jobs",
            write.destructive(),
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
