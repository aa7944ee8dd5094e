//! The graph tools — `create_graph`, `validate_graph`, `execute_graph`,
//! `get_graph_status`, `optimize_graph` — with their inputs, views, handlers and
//! registration.
//!
//! Owns tool semantics only: validation, execution and storage are the graph modules'.

use crate::runtime::tool_tasks::TaskSupport;
use std::{sync::Arc, time::Duration};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{M, Out, RUNS, track};
use crate::mvp::events::MetricDetail;
use crate::mvp::{
    Mvp,
    graph::{self, Graph, GraphDef, GraphRun, Issue, NodeRun, Optimization, OptimizationType},
    graph_run,
};
use crate::runtime::{
    principal::Principal,
    registry::{CallCtx, Hints, ToolDef, ToolError},
    toolset::Tools,
};

pub(super) fn register(t: &Tools<M>) -> Vec<ToolDef> {
    let read = Hints::read();
    let write = Hints::write();
    let runs = RUNS;
    vec![
        t.tool(
            "create_graph",
            write,
            create_graph,
            "Validate and store a workflow graph of nodes (tool, gate, prp, map) and edges; `tool` nodes call this server's tools with {{inputs.X}} / {{nodes.ID.path}} templates. Returns the id and any issues.",
        )
        .titled("Create graph"),
        t.tool(
            "validate_graph",
            read,
            validate_graph,
            "Check a stored graph (`graphId`) or a definition (`graphDefinition`) for cycles, dangling edges, duplicate ids, unknown tools and bad templates; `strict` also flags unreachable nodes and unread outputs.",
        )
        .titled("Validate graph"),
        t.tool(
            "execute_graph",
            runs.destructive(),
            execute_graph,
            "Run a stored graph with `inputs`, reporting progress per node; returns each node's status, timings, output and error.",
        )
        .titled("Run graph")
        .with_task_support(TaskSupport::Optional),
        t.tool(
            "get_graph_status",
            read,
            get_graph_status,
            "Get a graph's last run per node (status, timings, output cut to 2 KiB, error); `includeHistory` adds up to 20 earlier runs.",
        )
        .titled("Get graph status"),
        t.tool(
            "optimize_graph",
            read,
            optimize_graph,
            "Suggest how to make a graph faster, leaner or cheaper (`optimizationType`) from its measured runs: parallel levels, critical path, redundant edges, memory-heavy nodes.",
        )
        .titled("Optimize graph"),
    ]
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedGraph {
    pub graph_id: String,
    pub name: String,
    pub nodes: usize,
    pub edges: usize,
    /// Warnings found while validating (errors refuse the graph).
    pub issues: Vec<Issue>,
}

pub(super) async fn create_graph(mvp: M, input: GraphDef, ctx: CallCtx) -> Out<CreatedGraph> {
    let issues = graph::validate(&input, Some(&ctx.registry), false);
    let errors: Vec<&Issue> = issues.iter().filter(|i| i.severity == "error").collect();
    if !errors.is_empty() {
        return Err(ToolError::input(format!(
            "the graph is not valid: {}",
            errors
                .iter()
                .map(|i| i.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    let g = Graph {
        id: format!("graph-{}", uuid::Uuid::now_v7().simple()),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        def: input,
        owner: ctx.principal.owner(),
    };
    let g = mvp
        .graphs
        .add_graph(g)
        .await
        .map_err(|e| ToolError::Internal(format!("journal: {e}")))?;
    Ok(CreatedGraph {
        graph_id: g.id.clone(),
        name: g.def.name.clone(),
        nodes: g.def.nodes.len(),
        edges: g.def.edges.len(),
        issues,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidateGraphIn {
    /// A stored graph to check.
    #[serde(default)]
    pub graph_id: Option<String>,
    /// Or a definition as `create_graph` takes it, checked without storing it.
    // Its schema is create_graph's input, listed beside it; repeating it here would
    // double the bytes of both tools in every tools/list.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub graph_definition: Option<GraphDef>,
    /// Also report nodes connected to nothing or never runnable, and outputs no one reads.
    #[serde(default)]
    pub strict: bool,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    pub valid: bool,
    pub error_count: usize,
    pub issues: Vec<Issue>,
}

/// Graph `id` with its runs when `principal` may see it; another principal's graph
/// answers as a missing one.
/// (Another replica may have registered or run it: its records are applied first.)
async fn stored(
    mvp: &Mvp,
    id: &str,
    principal: &Principal,
) -> Out<(Arc<Graph>, Vec<Arc<GraphRun>>)> {
    mvp.graphs.catch_up().await;
    mvp.graphs
        .get(id)
        .filter(|(g, _)| g.visible_to(principal))
        .ok_or_else(|| {
            ToolError::business(format!("no graph `{id}`; create one with create_graph"))
        })
}

pub(super) async fn validate_graph(
    mvp: M,
    input: ValidateGraphIn,
    ctx: CallCtx,
) -> Out<Validation> {
    let def = match (input.graph_id, input.graph_definition) {
        (Some(id), None) => stored(&mvp, &id, &ctx.principal).await?.0.def.clone(),
        (None, Some(def)) => def,
        _ => {
            return Err(ToolError::input(
                "pass exactly one of graphId or graphDefinition",
            ));
        }
    };
    let issues = graph::validate(&def, Some(&ctx.registry), input.strict);
    let error_count = issues.iter().filter(|i| i.severity == "error").count();
    Ok(Validation {
        valid: error_count == 0,
        error_count,
        issues,
    })
}

#[derive(Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecConfig {
    /// Stop the run after this many milliseconds (running nodes are cancelled).
    #[serde(default)]
    #[schemars(range(min = 1, max = 3600000))]
    pub timeout: Option<u64>,
    /// Run ready nodes concurrently (up to 16 at once); default false.
    #[serde(default)]
    pub parallel: bool,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecuteGraphIn {
    pub graph_id: String,
    /// Values for `{{inputs.NAME}}` templates.
    #[serde(default)]
    pub inputs: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub config: Option<ExecConfig>,
}

pub(super) async fn execute_graph(mvp: M, input: ExecuteGraphIn, ctx: CallCtx) -> Out<GraphRun> {
    let (g, _) = stored(&mvp, &input.graph_id, &ctx.principal).await?;
    let config = input.config.unwrap_or_default();
    let inputs = Value::Object(input.inputs.unwrap_or_default());
    let run = graph_run::execute(
        &mvp,
        &g,
        inputs,
        config.parallel,
        config.timeout.map(Duration::from_millis),
        &ctx,
    )
    .await;
    track(
        &mvp,
        "execute_graph",
        run.duration_ms,
        MetricDetail::GraphRun {
            graph_id: g.id.clone(),
            run_id: run.run_id.clone(),
            status: run.status.clone(),
        },
        ctx.principal.owner(),
    );
    let run = mvp
        .graphs
        .add_run(run)
        .await
        .map_err(|e| ToolError::Internal(format!("journal: {e}")))?;
    if run.status == "cancelled" {
        return Err(ToolError::Cancelled);
    }
    Ok((*run).clone())
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GraphStatusIn {
    pub graph_id: String,
    /// Add summaries of earlier runs (up to 20 kept).
    #[serde(default)]
    pub include_history: bool,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub run_id: String,
    pub status: String,
    pub parallel: bool,
    pub started_at: String,
    pub duration_ms: f64,
    pub failed_nodes: Vec<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphStatus {
    pub graph_id: String,
    pub name: String,
    pub created_at: String,
    pub nodes: usize,
    pub edges: usize,
    /// never_run | the last run's status
    pub status: String,
    /// Per node of the last run: status, timings, truncated output, error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<GraphRunView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<RunSummary>>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphRunView {
    pub run_id: String,
    pub status: String,
    pub duration_ms: f64,
    pub nodes: Vec<NodeRun>,
}

/// Node outputs in status views are cut to this many bytes.
const STATUS_OUTPUT_BYTES: usize = 2048;

pub(super) async fn get_graph_status(
    mvp: M,
    input: GraphStatusIn,
    ctx: CallCtx,
) -> Out<GraphStatus> {
    let (g, runs) = stored(&mvp, &input.graph_id, &ctx.principal).await?;
    let last_run = runs.last().map(|r| GraphRunView {
        run_id: r.run_id.clone(),
        status: r.status.clone(),
        duration_ms: r.duration_ms,
        nodes: r
            .nodes
            .iter()
            .map(|n| {
                let mut n = n.clone();
                if let Some(o) = &n.output {
                    let text = o.to_string();
                    if text.len() > STATUS_OUTPUT_BYTES {
                        let mut end = STATUS_OUTPUT_BYTES;
                        while !text.is_char_boundary(end) {
                            end -= 1;
                        }
                        n.output = Some(Value::String(text[..end].to_string()));
                        n.output_truncated = true;
                    }
                }
                n
            })
            .collect(),
    });
    let history = input.include_history.then(|| {
        runs.iter()
            .rev()
            .map(|r| RunSummary {
                run_id: r.run_id.clone(),
                status: r.status.clone(),
                parallel: r.parallel,
                started_at: r.started_at.clone(),
                duration_ms: r.duration_ms,
                failed_nodes: r
                    .nodes
                    .iter()
                    .filter(|n| n.status == "failed")
                    .map(|n| n.id.clone())
                    .collect(),
            })
            .collect()
    });
    Ok(GraphStatus {
        graph_id: g.id.clone(),
        name: g.def.name.clone(),
        created_at: g.created_at.clone(),
        nodes: g.def.nodes.len(),
        edges: g.def.edges.len(),
        status: runs.last().map_or("never_run".into(), |r| r.status.clone()),
        last_run,
        history,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OptimizeGraphIn {
    pub graph_id: String,
    /// performance (default) | memory | cost.
    #[serde(default)]
    pub optimization_type: OptimizationType,
}

pub(super) async fn optimize_graph(
    mvp: M,
    input: OptimizeGraphIn,
    ctx: CallCtx,
) -> Out<Optimization> {
    let (g, runs) = stored(&mvp, &input.graph_id, &ctx.principal).await?;
    graph::optimize(
        &g,
        &runs,
        input.optimization_type,
        graph_run::PARALLEL_SLOTS,
    )
    .map_err(|e| ToolError::business(e.to_string()))
}
