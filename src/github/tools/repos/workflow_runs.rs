//! Workflow-run handlers: dispatching a workflow and reading its runs.
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
            "run_action",
            write.destructive(),
            run_action,
            "Trigger a GitHub Actions workflow (workflow_dispatch) on `ref` with optional string `inputs`; its jobs run whatever they run. Returns whether it was dispatched and where its runs are; follow them with `list_workflow_runs`."
        )
        .titled("Run workflow"),
        t.tool(
            "list_workflow_runs",
            read,
            list_workflow_runs,
            "GitHub Actions runs by branch and status, newest first: id, workflow, status, conclusion, SHA and URL per run."
        )
        .titled("List workflow runs"),
        t.tool(
            "get_workflow_run",
            read,
            get_workflow_run,
            "One workflow run by id: status, conclusion, branch, SHA, event and html_url; poll it after `run_action`."
        )
        .titled("Get workflow run"),
    ]
}

pub(in crate::github::tools) async fn run_action(
    gh: SharedGithub,
    i: RunActionIn,
    ctx: CallCtx,
) -> Out<ActionDispatched> {
    let repo = repo(&i.repository)?;
    let git_ref = match &i.git_ref {
        Some(r) => git_ref("ref", r)?,
        None => gh.client.default_branch(&ctx, &repo).await?,
    };
    let workflow = i.workflow.trim();
    if workflow.is_empty() || workflow.contains('/') {
        return Err(ToolError::input(
            "workflow: give the workflow file name (e.g. ci.yml) or its numeric id",
        ));
    }
    let c = &gh.client;
    let url = c.url(
        "repos/{repository}/actions/workflows/{workflow}/dispatches",
        &[("repository", &repo), ("workflow", workflow)],
        &[],
    )?;
    let body = json!({"ref": git_ref, "inputs": i.inputs.unwrap_or_default()});
    c.request(
        &ctx,
        Method::POST,
        url,
        LaneKind::Write,
        crate::github::client::ACCEPT_JSON,
        Some(&body),
    )
    .await?;
    publish(
        &gh,
        WorkflowStatus::Dispatched {
            repository: &repo,
            workflow: &i.workflow,
            git_ref: &git_ref,
            status: "dispatched",
        },
        ctx.principal.owner(),
    )
    .await;
    Ok(ActionDispatched {
        dispatched: true,
        workflow: i.workflow,
        runs_url: format!("https://github.com/{repo}/actions"),
        git_ref,
    })
}

pub(in crate::github::tools) async fn list_workflow_runs(
    gh: SharedGithub,
    i: ListRunsIn,
    ctx: CallCtx,
) -> Out<SearchPage<WorkflowRun>> {
    let repo = repo(&i.repository)?;
    let mut query = vec![("per_page", i.limit.to_string())];
    if let Some(b) = i.branch {
        query.push(("branch", b));
    }
    if let Some(s) = i.status {
        query.push(("status", s));
    }
    let url = gh.client.url(
        "repos/{repository}/actions/runs",
        &[("repository", &repo)],
        &query,
    )?;
    let keep = |v: Value| serde_json::from_value::<WorkflowRun>(v).ok();
    let (page, envelope) = gh
        .client
        .collect(
            &ctx,
            "list_workflow_runs",
            url,
            i.cursor.as_deref(),
            i.limit as usize,
            LaneKind::Read,
            Some("workflow_runs"),
            keep,
        )
        .await?;
    Ok(SearchPage::from_envelope(page, &envelope))
}

pub(in crate::github::tools) async fn get_workflow_run(
    gh: SharedGithub,
    i: GetRunIn,
    ctx: CallCtx,
) -> Out<WorkflowRun> {
    let repo = repo(&i.repository)?;
    let url = gh.client.url(
        "repos/{repository}/actions/runs/{run_id}",
        &[("repository", &repo), ("run_id", &i.run_id.to_string())],
        &[],
    )?;
    Ok(gh.client.get_json(&ctx, url, LaneKind::Read).await?)
}
