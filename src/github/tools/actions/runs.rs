//! Workflow and run tools: listing workflows, re-running (all or failed jobs) and
//! cancelling a run, and listing a run's artifacts.
//!
//! Owns these handlers and their registration only (their inputs and outputs are in
//! `mod.rs`); requests go through the client only.

use super::*;

pub(super) fn register(t: &Tools<SharedGithub>) -> Vec<ToolDef> {
    let t = &t.group(ACTIONS);
    let read = Hints::read_remote();
    let write = Hints::write_remote();
    vec![
        t.tool(
            "list_workflows",
            read,
            list_workflows,
            "GitHub Actions workflows of a repository (id, name, file path, state)."
        )
        .titled("List workflows"),
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
            "Artifacts a workflow run uploaded (name, size, expiry)."
        )
        .titled("List run artifacts"),
    ]
}

pub(in crate::github::tools) async fn list_workflows(
    gh: SharedGithub,
    i: RepoPageIn,
    ctx: CallCtx,
) -> Out<Page<Workflow>> {
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

async fn run_control(
    gh: &SharedGithub,
    ctx: &CallCtx,
    i: RunIdIn,
    action: &'static str,
) -> Out<RunControl> {
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
        WorkflowStatus::Run {
            repository: &repo,
            run_id: run,
            status,
        },
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

pub(in crate::github::tools) async fn rerun_workflow_run(
    gh: SharedGithub,
    i: RunIdIn,
    ctx: CallCtx,
) -> Out<RunControl> {
    run_control(&gh, &ctx, i, "rerun").await
}

pub(in crate::github::tools) async fn rerun_failed_jobs(
    gh: SharedGithub,
    i: RunIdIn,
    ctx: CallCtx,
) -> Out<RunControl> {
    run_control(&gh, &ctx, i, "rerun_failed_jobs").await
}

pub(in crate::github::tools) async fn cancel_workflow_run(
    gh: SharedGithub,
    i: RunIdIn,
    ctx: CallCtx,
) -> Out<RunControl> {
    run_control(&gh, &ctx, i, "cancel").await
}

pub(in crate::github::tools) async fn list_workflow_run_artifacts(
    gh: SharedGithub,
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
