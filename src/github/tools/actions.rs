//! CI tools: the checks of a commit in one summary, workflows, the jobs of a run with
//! their failed steps, job logs (cleaned and windowed; fetched through GitHub's redirect
//! to its log storage, which the shared HTTP client follows without credentials),
//! re-runs, cancel and artifacts.
//!
//! Owns these tools' inputs, outputs and handlers; requests go through the client only.

use std::sync::LazyLock;

use regex::Regex;

use super::*;
use crate::runtime::page;

use super::super::client::ACCEPT_JSON;

fn default_filter() -> JobFilter {
    JobFilter::Latest
}

fn default_log_bytes() -> u32 {
    16 * 1024
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommitChecksIn {
    /// "owner/name".
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
    /// "owner/name".
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
    /// "owner/name".
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
    /// "owner/name".
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
    /// "owner/name".
    pub repository: String,
    #[schemars(range(min = 1))]
    pub run_id: u64,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobLogsIn {
    /// "owner/name".
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
    /// The window: ANSI codes and timestamps stripped, `tailLines` applied.
    pub log: TextWindow,
}

#[derive(Serialize, JsonSchema)]
pub struct JobLogs {
    pub logs: Vec<JobLog>,
    /// Pass back as `cursor` to read on (the rest of a log, or the next failed job).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// What `get_job_logs` still has to read: jobs (first one from `offset`).
#[derive(Serialize, Deserialize, Clone)]
struct LogCursor {
    r: String,
    j: Vec<LogJob>,
    o: u64,
    t: Option<u32>,
}

#[derive(Serialize, Deserialize, Clone)]
struct LogJob {
    id: u64,
    n: Option<String>,
    c: Option<String>,
    f: Vec<String>,
}

static ANSI: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")
        .expect("ANSI pattern")
});

static STAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z ?").expect("timestamp pattern")
});

/// A job log without ANSI escape codes, leading timestamps and byte-order mark.
pub fn clean_log(raw: &str) -> String {
    let text = raw.trim_start_matches('\u{feff}');
    let text = ANSI.replace_all(text, "");
    STAMP.replace_all(&text, "").replace("\r\n", "\n")
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: Option<u32>) -> &str {
    let Some(n) = n else { return text };
    let body = text.strip_suffix('\n').unwrap_or(text);
    match body.rmatch_indices('\n').nth(n.saturating_sub(1) as usize) {
        Some((i, _)) => &text[i + 1..],
        None => text,
    }
}

fn check_state(status: &str, conclusion: Option<&str>) -> &'static str {
    if status != "completed" {
        return "pending";
    }
    match conclusion.unwrap_or("") {
        "success" => "success",
        "cancelled" => "cancelled",
        "neutral" => "neutral",
        "skipped" => "skipped",
        "stale" => "neutral",
        _ => "failure",
    }
}

fn rank(state: &str) -> u8 {
    match state {
        "failure" | "cancelled" => 0,
        "pending" => 1,
        _ => 2,
    }
}

pub(super) async fn get_commit_checks(
    gh: Gh,
    i: CommitChecksIn,
    ctx: CallCtx,
) -> Out<CommitChecks> {
    #[derive(Deserialize)]
    struct Combined {
        sha: String,
        #[serde(default)]
        statuses: Vec<StatusItem>,
    }
    #[derive(Deserialize)]
    struct StatusItem {
        state: String,
        context: String,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        target_url: Option<String>,
    }
    #[derive(Deserialize)]
    struct App {
        slug: String,
    }
    #[derive(Deserialize)]
    struct Output {
        #[serde(default)]
        title: Option<String>,
    }
    #[derive(Deserialize)]
    struct CheckRun {
        id: u64,
        name: String,
        status: String,
        #[serde(default)]
        conclusion: Option<String>,
        #[serde(default)]
        html_url: Option<String>,
        #[serde(default)]
        details_url: Option<String>,
        #[serde(default)]
        app: Option<App>,
        #[serde(default)]
        output: Option<Output>,
    }
    let repo = repo(&i.repository)?;
    let c = &gh.client;
    let git_ref = match &i.git_ref {
        Some(r) => git_ref("ref", r)?,
        None => c.default_branch(&ctx, &repo).await?,
    };
    let fields = [("repository", repo.as_str()), ("ref", git_ref.as_str())];
    let status_url = c.url("repos/{repository}/commits/{ref}/status", &fields, &[])?;
    let runs_url = c.url(
        "repos/{repository}/commits/{ref}/check-runs",
        &fields,
        &[("per_page", "100".into())],
    )?;
    let keep = |v: Value| serde_json::from_value::<CheckRun>(v).ok();
    let (combined, runs) = tokio::join!(
        c.get_json::<Combined>(&ctx, status_url, LaneKind::Read),
        c.collect(
            &ctx,
            "get_commit_checks",
            runs_url,
            None,
            usize::MAX,
            LaneKind::Read,
            Some("check_runs"),
            keep,
        )
    );
    let combined = combined?;
    let (runs, _) = runs?;
    let mut checks: Vec<Check> = runs
        .items
        .into_iter()
        .map(|r| {
            let actions = r.app.as_ref().is_some_and(|a| a.slug == "github-actions");
            Check {
                kind: "check_run",
                state: check_state(&r.status, r.conclusion.as_deref()).to_string(),
                description: r.output.and_then(|o| o.title).filter(|t| !t.is_empty()),
                url: r.html_url.or(r.details_url),
                job_id: actions.then_some(r.id),
                name: r.name,
            }
        })
        .collect();
    checks.extend(combined.statuses.into_iter().map(|s| {
        Check {
            kind: "status",
            state: match s.state.as_str() {
                "success" => "success",
                "pending" => "pending",
                _ => "failure",
            }
            .to_string(),
            name: s.context,
            description: s.description.filter(|d| !d.is_empty()),
            url: s.target_url,
            job_id: None,
        }
    }));
    let mut counts = CheckCounts {
        total: checks.len() as u64,
        ..Default::default()
    };
    for ch in &checks {
        let slot = match ch.state.as_str() {
            "success" => &mut counts.success,
            "failure" => &mut counts.failure,
            "cancelled" => &mut counts.cancelled,
            "pending" => &mut counts.pending,
            "skipped" => &mut counts.skipped,
            _ => &mut counts.neutral,
        };
        *slot += 1;
    }
    let state = if counts.failure + counts.cancelled > 0 {
        "failure"
    } else if counts.pending > 0 {
        "pending"
    } else if counts.total == 0 {
        "none"
    } else {
        "success"
    };
    checks.sort_by(|a, b| {
        rank(&a.state)
            .cmp(&rank(&b.state))
            .then_with(|| a.name.cmp(&b.name))
    });
    let truncated = checks.len() > i.limit as usize;
    checks.truncate(i.limit as usize);
    Ok(CommitChecks {
        sha: combined.sha,
        state: state.to_string(),
        counts,
        checks,
        checks_truncated: truncated,
    })
}

pub(super) async fn list_workflows(gh: Gh, i: RepoPageIn, ctx: CallCtx) -> Out<Page<Workflow>> {
    let repo = repo(&i.repository)?;
    let url = gh.client.url(
        "repos/{repository}/actions/workflows",
        &[("repository", &repo)],
        &[("per_page", i.limit.to_string())],
    )?;
    let keep = |v: Value| serde_json::from_value::<Workflow>(v).ok();
    let (page, _) = gh
        .client
        .collect(
            &ctx,
            "list_workflows",
            url,
            i.cursor.as_deref(),
            i.limit as usize,
            LaneKind::Read,
            Some("workflows"),
            keep,
        )
        .await?;
    Ok(page)
}

#[derive(Deserialize)]
struct RawStep {
    number: u64,
    name: String,
    #[serde(default)]
    conclusion: Option<String>,
}

#[derive(Deserialize)]
struct RawJob {
    id: u64,
    name: String,
    status: String,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    completed_at: Option<String>,
    #[serde(default)]
    run_attempt: Option<u64>,
    html_url: String,
    #[serde(default, deserialize_with = "null_list")]
    steps: Vec<RawStep>,
}

fn null_list<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl From<RawJob> for WorkflowJob {
    fn from(j: RawJob) -> Self {
        WorkflowJob {
            steps: j.steps.len() as u64,
            failed_steps: j
                .steps
                .into_iter()
                .filter(|s| {
                    matches!(
                        s.conclusion.as_deref(),
                        Some("failure" | "cancelled" | "timed_out")
                    )
                })
                .map(|s| FailedStep {
                    number: s.number,
                    name: s.name,
                    conclusion: s.conclusion.unwrap_or_default(),
                })
                .collect(),
            id: j.id,
            name: j.name,
            status: j.status,
            conclusion: j.conclusion,
            started_at: j.started_at,
            completed_at: j.completed_at,
            run_attempt: j.run_attempt.unwrap_or(1),
            html_url: j.html_url,
        }
    }
}

async fn run_jobs(
    gh: &Gh,
    ctx: &CallCtx,
    repo: &str,
    run_id: u64,
    filter: JobFilter,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Page<WorkflowJob>, ToolError> {
    let filter = match filter {
        JobFilter::Latest => "latest",
        JobFilter::All => "all",
    };
    let url = gh.client.url(
        "repos/{repository}/actions/runs/{run_id}/jobs",
        &[("repository", repo), ("run_id", &run_id.to_string())],
        &[
            ("filter", filter.to_string()),
            ("per_page", limit.clamp(1, 100).to_string()),
        ],
    )?;
    let keep = |v: Value| {
        serde_json::from_value::<RawJob>(v)
            .ok()
            .map(WorkflowJob::from)
    };
    let (page, _) = gh
        .client
        .collect(
            ctx,
            "list_workflow_jobs",
            url,
            cursor,
            limit,
            LaneKind::Read,
            Some("jobs"),
            keep,
        )
        .await
        .map_err(|e| match e {
            GhError::NotFound { .. } => ToolError::business(format!(
                "workflow run {run_id} was not found in {repo}; list runs with list_workflow_runs"
            )),
            other => other.into(),
        })?;
    Ok(page)
}

pub(super) async fn list_workflow_jobs(
    gh: Gh,
    i: RunJobsIn,
    ctx: CallCtx,
) -> Out<Page<WorkflowJob>> {
    let repo = repo(&i.repository)?;
    run_jobs(
        &gh,
        &ctx,
        &repo,
        i.run_id,
        i.filter,
        i.cursor.as_deref(),
        i.limit as usize,
    )
    .await
}

/// One job's raw log text: the API answers 302 to GitHub's log storage, which the
/// shared client follows without any credential header (a cross-origin hop).
async fn job_log_text(gh: &Gh, ctx: &CallCtx, repo: &str, job_id: u64) -> Out<String> {
    let url = gh.client.url(
        "repos/{repository}/actions/jobs/{job_id}/logs",
        &[("repository", repo), ("job_id", &job_id.to_string())],
        &[],
    )?;
    match gh
        .client
        .request(ctx, Method::GET, url, LaneKind::Read, ACCEPT_JSON, None)
        .await
    {
        Ok(reply) => Ok(reply.text()),
        Err(GhError::NotFound { .. }) => Err(ToolError::business(format!(
            "no log for job {job_id} in {repo}: the job does not exist or its logs expired; list jobs with list_workflow_jobs"
        ))),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn get_job_logs(gh: Gh, i: JobLogsIn, ctx: CallCtx) -> Out<JobLogs> {
    let kind = "get_job_logs";
    let mut state = match &i.cursor {
        Some(cur) => {
            let s: LogCursor =
                page::decode(kind, cur).map_err(|e| ToolError::input(format!("cursor: {e}")))?;
            if s.r != repo(&i.repository)? {
                return Err(ToolError::input(
                    "cursor: it belongs to another repository; pass the same `repository`",
                ));
            }
            s
        }
        None => {
            let repo = repo(&i.repository)?;
            let jobs = match (i.job_id, i.run_id, i.failed_only) {
                (Some(id), None, _) => vec![LogJob {
                    id,
                    n: None,
                    c: None,
                    f: vec![],
                }],
                (None, Some(run), true) => {
                    let page =
                        run_jobs(&gh, &ctx, &repo, run, JobFilter::Latest, None, 100).await?;
                    let failed: Vec<LogJob> = page
                        .items
                        .into_iter()
                        .filter(|j| {
                            matches!(
                                j.conclusion.as_deref(),
                                Some("failure" | "timed_out" | "cancelled" | "startup_failure")
                            )
                        })
                        .map(|j| LogJob {
                            id: j.id,
                            n: Some(j.name),
                            c: j.conclusion,
                            f: j.failed_steps.into_iter().map(|s| s.name).collect(),
                        })
                        .collect();
                    if failed.is_empty() {
                        return Err(ToolError::business(format!(
                            "run {run} has no failed jobs (yet); check its state with get_workflow_run or list_workflow_jobs"
                        )));
                    }
                    failed
                }
                (None, Some(_), false) => {
                    return Err(ToolError::input(
                        "runId: pass `failedOnly: true` to read the failed jobs of a run, or a `jobId` (from list_workflow_jobs) for one job",
                    ));
                }
                (Some(_), Some(_), _) => {
                    return Err(ToolError::input(
                        "give either `jobId` or `runId` with `failedOnly: true`, not both",
                    ));
                }
                (None, None, _) => {
                    return Err(ToolError::input(
                        "give `jobId`, or `runId` with `failedOnly: true`",
                    ));
                }
            };
            LogCursor {
                r: repo,
                j: jobs,
                o: i.offset,
                t: i.tail_lines,
            }
        }
    };
    let mut budget = i.max_bytes as usize;
    let mut logs = Vec::new();
    while budget > 0 && !state.j.is_empty() {
        let job = state.j[0].clone();
        let raw = job_log_text(&gh, &ctx, &state.r, job.id).await?;
        let clean = clean_log(&raw);
        let total_lines = clean.lines().count() as u64;
        let text = tail(&clean, state.t);
        let w = window(text, state.o as usize, budget)?;
        budget = budget.saturating_sub(w.text.len());
        let next = w.next_offset;
        logs.push(JobLog {
            job_id: job.id,
            name: job.n,
            conclusion: job.c,
            failed_steps: job.f,
            total_lines,
            log: w,
        });
        match next {
            Some(o) => {
                state.o = o as u64;
                break;
            }
            None => {
                state.j.remove(0);
                state.o = 0;
            }
        }
    }
    let next_cursor = (!state.j.is_empty()).then(|| page::encode(kind, &state));
    Ok(JobLogs { logs, next_cursor })
}

async fn run_control(gh: &Gh, ctx: &CallCtx, i: RunIdIn, action: &'static str) -> Out<RunControl> {
    let repo = repo(&i.repository)?;
    let suffix = match action {
        "rerun" => "rerun",
        "rerun_failed_jobs" => "rerun-failed-jobs",
        _ => "cancel",
    };
    let url = gh.client.url(
        &format!("repos/{{repository}}/actions/runs/{{run_id}}/{suffix}"),
        &[("repository", &repo), ("run_id", &i.run_id.to_string())],
        &[],
    )?;
    let run = i.run_id;
    let result = gh
        .client
        .request(
            ctx,
            Method::POST,
            url,
            LaneKind::Write,
            ACCEPT_JSON,
            Some(&json!({})),
        )
        .await;
    match result {
        Ok(_) => {}
        Err(GhError::NotFound { .. }) => {
            return Err(ToolError::business(format!(
                "workflow run {run} was not found in {repo}; list runs with list_workflow_runs"
            )));
        }
        Err(GhError::Rejected { status, message }) => {
            let hint = match action {
                "cancel" => "it has probably completed already; check it with get_workflow_run",
                "rerun_failed_jobs" => {
                    "a run can be re-run only once it has completed, and only if a job failed; check it with list_workflow_jobs"
                }
                _ => {
                    "a run can be re-run only once it has completed; wait for it (get_workflow_run) or cancel it first"
                }
            };
            return Err(ToolError::business(format!(
                "GitHub refused to {} run {run} ({status}: {message}); {hint}",
                action.replace('_', " ")
            )));
        }
        Err(e) => return Err(e.into()),
    }
    let status = match action {
        "rerun" => "rerun_requested",
        "rerun_failed_jobs" => "rerun_failed_jobs_requested",
        _ => "cancel_requested",
    };
    publish(
        gh,
        "github.workflow.status",
        json!({"repository": repo, "run_id": run, "status": status}),
        ctx.principal.owner(),
    )
    .await;
    Ok(RunControl {
        run_id: run,
        action,
        accepted: true,
        next: match action {
            "cancel" => format!("watch run {run} with get_workflow_run until it reports cancelled"),
            _ => format!(
                "run {run} starts a new attempt; watch it with get_workflow_run and read failures with get_job_logs (runId {run}, failedOnly: true)"
            ),
        },
    })
}

pub(super) async fn rerun_workflow_run(gh: Gh, i: RunIdIn, ctx: CallCtx) -> Out<RunControl> {
    run_control(&gh, &ctx, i, "rerun").await
}

pub(super) async fn rerun_failed_jobs(gh: Gh, i: RunIdIn, ctx: CallCtx) -> Out<RunControl> {
    run_control(&gh, &ctx, i, "rerun_failed_jobs").await
}

pub(super) async fn cancel_workflow_run(gh: Gh, i: RunIdIn, ctx: CallCtx) -> Out<RunControl> {
    run_control(&gh, &ctx, i, "cancel").await
}

pub(super) async fn list_workflow_run_artifacts(
    gh: Gh,
    i: RunPageIn,
    ctx: CallCtx,
) -> Out<Page<Artifact>> {
    let repo = repo(&i.repository)?;
    let url = gh.client.url(
        "repos/{repository}/actions/runs/{run_id}/artifacts",
        &[("repository", &repo), ("run_id", &i.run_id.to_string())],
        &[("per_page", i.limit.to_string())],
    )?;
    let keep = |v: Value| serde_json::from_value::<Artifact>(v).ok();
    let (page, _) = gh
        .client
        .collect(
            &ctx,
            "list_workflow_run_artifacts",
            url,
            i.cursor.as_deref(),
            i.limit as usize,
            LaneKind::Read,
            Some("artifacts"),
            keep,
        )
        .await
        .map_err(|e| match e {
            GhError::NotFound { .. } => ToolError::business(format!(
                "workflow run {} was not found in {repo}; list runs with list_workflow_runs",
                i.run_id
            )),
            other => other.into(),
        })?;
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_lose_colours_and_timestamps() {
        let raw = "\u{feff}2024-01-04T00:00:00.1370000Z \x1b[1m\x1b[32m   Compiling\x1b[0m x\n2024-01-04T00:00:01Z plain\r\nno stamp 2024-01-04T00:00:01Z kept\n";
        assert_eq!(
            clean_log(raw),
            "   Compiling x\nplain\nno stamp 2024-01-04T00:00:01Z kept\n"
        );
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", Some(2)), "b\nc\n");
        assert_eq!(tail("a\nb\nc", Some(2)), "b\nc");
        assert_eq!(tail("a\nb\n", Some(5)), "a\nb\n");
        assert_eq!(tail("a\nb\n", None), "a\nb\n");
    }
}
