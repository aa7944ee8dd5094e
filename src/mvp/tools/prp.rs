//! The PRP tools — `run_prp_workflow`, `get_prp_run`, `list_prp_runs` — with their
//! inputs, handlers and registration; publishes `mvp.prp.phase`.
//!
//! Owns tool semantics only: gates and history are `mvp::prp`'s.

use crate::runtime::tool_tasks::TaskSupport;
use std::sync::Arc;

use crate::mvp::events::{MetricDetail, PrpPhase};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{M, Out, RUNS, publish, track};
use crate::mvp::prp::{self, PrpInput, PrpRun};
use crate::runtime::{
    page::{self, Page},
    registry::{CallCtx, Hints, ToolDef, ToolError},
    toolset::Tools,
};

pub(super) fn register(t: &Tools<M>) -> Vec<ToolDef> {
    let read = Hints::read();
    let runs = RUNS;
    vec![
        t.tool(
            "run_prp_workflow",
            runs.destructive(),
            run_prp_workflow,
            "Run a PRP workflow for a blueprint {title, description, requirements[]} through strategy, build and evaluation gates (with `workspace`, build runs its tests and linter); returns phases, status completed|recycled and the decision.",
        )
        .titled("Run PRP workflow")
        .with_task_support(TaskSupport::Optional),
        t.tool(
            "get_prp_run",
            read,
            get_prp_run,
            "Get one PRP run by `runId` with its phases, gates and decision.",
        )
        .titled("Get PRP run"),
        t.tool(
            "list_prp_runs",
            read,
            list_prp_runs,
            "List PRP runs newest first (the latest are kept), optionally by status.",
        )
        .titled("List PRP runs"),
    ]
}

pub(super) async fn run_prp_workflow(mvp: M, input: PrpInput, ctx: CallCtx) -> Out<PrpRun> {
    let events = mvp.clone();
    let title = input.blueprint.title.clone();
    let owner = ctx.principal.owner();
    let run = prp::run(&mvp, &ctx, &input, None, move |run_id, record| {
        publish(
            &events,
            PrpPhase {
                run_id: run_id.to_string(),
                title: title.clone(),
                phase: record.phase,
                passed: record.gate.passed,
                blockers: record.gate.blocker_count,
                majors: record.gate.major_count,
            },
            owner.clone(),
        );
    })
    .await?;
    let run = Arc::new(run);
    mvp.prp
        .record(run.clone())
        .await
        .map_err(|e| ToolError::Internal(format!("journal: {e}")))?;
    track(
        &mvp,
        "run_prp_workflow",
        run.duration_ms as f64,
        MetricDetail::PrpRun {
            run_id: run.run_id.clone(),
            status: run.status,
        },
        ctx.principal.owner(),
    );
    Ok((*run).clone())
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetPrpRunIn {
    pub run_id: String,
}

pub(super) async fn get_prp_run(mvp: M, input: GetPrpRunIn, ctx: CallCtx) -> Out<PrpRun> {
    mvp.prp.catch_up().await;
    mvp.prp
        .get(&input.run_id)
        .filter(|r| ctx.principal.may_access(r.owner.as_deref(), false))
        .map(|r| (*r).clone())
        .ok_or_else(|| {
            ToolError::business(format!(
                "no PRP run `{}` (history keeps the latest {}); list them with list_prp_runs",
                input.run_id, mvp.runtime.config.mvp.prp_history
            ))
        })
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct ListPrpRunsIn {
        /// completed | recycled; default both.
        #[serde(default)]
        pub status: Option<prp::RunStatus>,
        ..page_args,
    }
}

#[derive(Serialize, JsonSchema, Clone)]
#[serde(rename_all = "camelCase")]
pub struct PrpRunSummary {
    pub run_id: String,
    pub title: String,
    pub status: prp::RunStatus,
    pub decision: prp::Decision,
    pub created_at: String,
    pub duration_ms: u64,
}

pub(super) async fn list_prp_runs(
    mvp: M,
    input: ListPrpRunsIn,
    ctx: CallCtx,
) -> Out<Page<PrpRunSummary>> {
    mvp.prp.catch_up().await;
    let all: Vec<PrpRunSummary> = mvp
        .prp
        .list()
        .into_iter()
        .filter(|r| ctx.principal.may_access(r.owner.as_deref(), false))
        .filter(|r| input.status.is_none_or(|s| s == r.status))
        .map(|r| PrpRunSummary {
            run_id: r.run_id.clone(),
            title: r.title.clone(),
            status: r.status,
            decision: r.cerebrum.decision,
            created_at: r.created_at.clone(),
            duration_ms: r.duration_ms,
        })
        .collect();
    page::offset_page(
        "list_prp_runs",
        &all,
        input.limit as usize,
        input.cursor.as_deref(),
    )
    .map_err(ToolError::from)
}
