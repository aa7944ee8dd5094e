//! `list_workflow_jobs`: the jobs of a workflow run with their failed steps, and the
//! paging over them that `get_job_logs` shares.
//!
//! Owns the jobs handler, its registration and GitHub's raw job shape only; requests go
//! through the client only.

use super::*;

pub(super) fn register(t: &Tools<SharedGithub>) -> Vec<ToolDef> {
    let t = &t.group(ACTIONS);
    let read = Hints::read_remote();
    vec![
        t.tool(
            "list_workflow_jobs",
            read,
            list_workflow_jobs,
            "Jobs of a workflow run with status, conclusion and their failed steps. Use before `get_job_logs`."
        )
        .titled("List jobs of a run"),
    ]
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

pub(super) async fn run_jobs(
    gh: &SharedGithub,
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

pub(in crate::github::tools) async fn list_workflow_jobs(
    gh: SharedGithub,
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
