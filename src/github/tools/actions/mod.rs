//! CI tools: the checks of a commit in one summary, workflows, the jobs of a run with
//! their failed steps, job logs (cleaned and windowed; fetched through GitHub's redirect
//! to its log storage, which the shared HTTP client follows without credentials),
//! re-runs, cancel and artifacts.
//!
//! Owns these tools' inputs and outputs; the handlers, each registered beside it, are in
//! `checks.rs`, `jobs.rs`, `logs.rs` and `runs.rs`. Requests go through the client only.

use super::*;
use crate::runtime::page;

use crate::github::client::ACCEPT_JSON;

mod checks;
mod jobs;
mod logs;
mod runs;

pub(super) fn register(t: &Tools<SharedGithub>) -> Vec<ToolDef> {
    [
        checks::register(t),
        runs::register(t),
        jobs::register(t),
        logs::register(t),
    ]
    .concat()
}

fn default_filter() -> JobFilter {
    JobFilter::Latest
}

fn default_log_bytes() -> u32 {
    16 * 1024
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommitChecksIn {
    /// owner/name
    pub repository: String,
    /// Branch, tag or SHA (default: the repository's default branch).
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// Most checks listed (failing ones first); the counts cover all of them.
    #[serde(default = "default_limit_30")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoPageIn {
    /// owner/name
    pub repository: String,
    #[serde(default = "crate::runtime::page::default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Deserialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum JobFilter {
    /// Jobs of the latest attempt.
    Latest,
    /// Jobs of every attempt.
    All,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunJobsIn {
    /// owner/name
    pub repository: String,
    #[schemars(range(min = 1))]
    pub run_id: u64,
    /// `latest` (default) or `all` attempts.
    #[serde(default = "default_filter")]
    pub filter: JobFilter,
    #[serde(default = "crate::runtime::page::default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunPageIn {
    /// owner/name
    pub repository: String,
    #[schemars(range(min = 1))]
    pub run_id: u64,
    #[serde(default = "crate::runtime::page::default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunIdIn {
    /// owner/name
    pub repository: String,
    #[schemars(range(min = 1))]
    pub run_id: u64,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobLogsIn {
    /// owner/name
    pub repository: String,
    /// One job's log (ids from `list_workflow_jobs` or `get_commit_checks`).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub job_id: Option<u64>,
    /// With `failedOnly: true`: the logs of this run's failed jobs.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub run_id: Option<u64>,
    /// Only the failed jobs of `runId` (required with `runId`).
    #[serde(default)]
    pub failed_only: bool,
    /// Keep only the last N lines of each log (after cleaning).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100000))]
    pub tail_lines: Option<u32>,
    /// Byte offset into the (tailed) log of the first job.
    #[serde(default)]
    pub offset: u64,
    /// Bytes of log text returned in all, across jobs (default 16384).
    #[serde(default = "default_log_bytes")]
    #[schemars(range(min = 256, max = 1048576))]
    pub max_bytes: u32,
    /// `next_cursor` of the previous answer: continues where it stopped (the other
    /// arguments except `maxBytes` are then taken from the cursor).
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One check of a commit: a check run (GitHub Actions jobs are check runs) or a
/// commit status.
#[derive(Serialize, JsonSchema)]
pub struct Check {
    /// `check_run` or `status`.
    pub kind: &'static str,
    pub name: String,
    /// success, failure, cancelled, pending, neutral or skipped.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// For GitHub Actions check runs: the job id, for `get_job_logs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<u64>,
}

#[derive(Serialize, JsonSchema, Default)]
pub struct CheckCounts {
    pub total: u64,
    pub success: u64,
    pub failure: u64,
    pub cancelled: u64,
    pub pending: u64,
    pub neutral: u64,
    pub skipped: u64,
}

#[derive(Serialize, JsonSchema)]
pub struct CommitChecks {
    pub sha: String,
    /// failure (any check failed or was cancelled), pending, success, or none (no checks).
    pub state: String,
    pub counts: CheckCounts,
    /// Failing checks first, then pending, then the rest; at most `limit`.
    pub checks: Vec<Check>,
    /// More checks exist than were listed.
    pub checks_truncated: bool,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Workflow {
    pub id: u64,
    pub name: String,
    pub path: String,
    /// active, disabled_manually, ...
    pub state: String,
    pub html_url: String,
}

#[derive(Serialize, JsonSchema)]
pub struct FailedStep {
    pub number: u64,
    pub name: String,
    pub conclusion: String,
}

#[derive(Serialize, JsonSchema)]
pub struct WorkflowJob {
    pub id: u64,
    pub name: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    pub run_attempt: u64,
    pub html_url: String,
    pub steps: u64,
    /// Steps that failed or were cancelled (read their output with `get_job_logs`).
    pub failed_steps: Vec<FailedStep>,
}

#[derive(Serialize, JsonSchema)]
pub struct RunControl {
    pub run_id: u64,
    /// rerun, rerun_failed_jobs or cancel.
    pub action: &'static str,
    pub accepted: bool,
    /// What to do next.
    pub next: String,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Artifact {
    pub id: u64,
    pub name: String,
    pub size_in_bytes: u64,
    pub expired: bool,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct JobLog {
    pub job_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_steps: Vec<String>,
    /// Lines of the cleaned log (before `tailLines`).
    pub total_lines: u64,
    /// Raw log bytes before the part read (only a long log's end is read); lines and
    /// offsets count from there.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped_bytes: u64,
    /// The window: ANSI codes and timestamps stripped, `tailLines` applied.
    pub log: TextWindow,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize, JsonSchema)]
pub struct JobLogs {
    pub logs: Vec<JobLog>,
    /// Pass back as `cursor` to read on (the rest of a log, or the next failed job).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
