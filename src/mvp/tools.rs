//! The mvp tools: inputs (contract names and defaults kept), handlers and their
//! registration with annotations. Publishes `mvp.metric.tracked`, `mvp.user.action` and
//! `mvp.prp.phase` events.
//!
//! Owns tool semantics only: processes go through `exec.rs`, paths through
//! `workspace.rs`, graphs, PRP and teaching state through their modules.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    Mvp,
    coverage::CoverageWant,
    exec::{self, Command, Output},
    graph::{self, Graph, GraphDef, GraphRun, Issue, NodeRun, Optimization, OptimizationType},
    graph_run,
    health::{Health, Processes},
    prp::{self, PrpInput, PrpRun},
    runners::{self, AnalysisReport, Framework, TestReport, exec_err},
    teaching::{
        self, Example, ExampleContext, ExampleType, Outcome, Pattern, Similarity, UserAction,
    },
    workspace::{self, Encoding, FileWindow, WorkspaceError},
};
use crate::runtime::{
    page::{self, Page},
    registry::{CallCtx, Hints, ToolDef, ToolError, tool},
};

const SOURCE: &str = "cortex-mcp/mvp";

type M = Arc<Mvp>;
type Out<T> = Result<T, ToolError>;

fn ws_err(e: WorkspaceError) -> ToolError {
    match e {
        WorkspaceError::Io { .. } | WorkspaceError::NoRoots(_) => {
            ToolError::Internal(e.to_string())
        }
        other => ToolError::Input(other.to_string()),
    }
}

/// Publishes without making the caller wait for the journal.
fn publish(mvp: &Mvp, kind: &'static str, data: Value) {
    let events = mvp.runtime.events.clone();
    tokio::spawn(async move {
        if let Err(e) = events.publish_value(kind, SOURCE, data).await {
            tracing::warn!(event = kind, "could not publish: {e}");
        }
    });
}

fn track(mvp: &Mvp, name: &str, duration_ms: f64, extra: Value) {
    publish(
        mvp,
        "mvp.metric.tracked",
        json!({"name": name, "durationMs": duration_ms, "detail": extra}),
    );
}

// ------------------------------------------------------------------ read_file

fn default_read_len() -> u64 {
    workspace::DEFAULT_READ_BYTES
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadFileIn {
    /// File path, absolute or relative to the first workspace root.
    #[schemars(length(min = 1, max = 4096))]
    pub path: String,
    /// utf8 (default) or base64.
    #[serde(default)]
    pub encoding: Encoding,
    /// Byte offset to start at (pass `nextOffset` back to read on).
    #[serde(default)]
    pub offset: u64,
    /// Bytes to read (default 262144, at most 1048576).
    #[serde(default = "default_read_len")]
    #[schemars(range(min = 1, max = 1048576))]
    pub length: u64,
}

async fn read_file(mvp: M, input: ReadFileIn, ctx: CallCtx) -> Out<FileWindow> {
    let roots = mvp.roots.clone();
    mvp.runtime
        .executor
        .run_cpu(ctx.deadline, &ctx.cancel, move || {
            workspace::read_window(
                &roots,
                &input.path,
                input.encoding,
                input.offset,
                input.length,
            )
        })
        .await
        .map_err(|e| ToolError::Deadline(e.to_string()))?
        .map_err(ws_err)
}

// ------------------------------------------------------------------ run_command

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunCommandIn {
    /// An allow-listed program name (see `health` → processes.allowList); no paths, no shell.
    #[schemars(length(min = 1, max = 64))]
    pub program: String,
    /// Arguments, passed as-is (no shell expansion); each at most 1000 bytes.
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub args: Vec<String>,
    /// Working directory inside the workspace roots (default: the first root).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Kill the process group after this many milliseconds (default: the server's
    /// exec timeout, 30 s unless configured).
    #[serde(default)]
    #[schemars(range(min = 1, max = 3600000))]
    pub timeout_ms: Option<u64>,
    /// Extra environment variables; names must be allow-listed.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Cap of each of stdout and stderr in bytes (default 1048576).
    #[serde(default)]
    #[schemars(range(min = 256, max = 8388608))]
    pub max_output_bytes: Option<usize>,
}

async fn run_command(mvp: M, input: RunCommandIn, ctx: CallCtx) -> Out<Output> {
    let cwd = mvp.roots.dir(input.cwd.as_deref()).map_err(ws_err)?;
    let timeout = input
        .timeout_ms
        .map(Duration::from_millis)
        .unwrap_or(mvp.exec.default_timeout);
    let mut cmd = Command::new(&input.program, &[], &cwd, timeout);
    cmd.args = input.args;
    cmd.env = input.env;
    cmd.output_cap = input.max_output_bytes.unwrap_or(exec::DEFAULT_OUTPUT_CAP);
    let progress = ctx.progress.clone();
    let lines = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sink: exec::LineSink = Arc::new(move |_, line| {
        let n = lines.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        progress.report(n as f64, None, line.chars().take(200).collect::<String>());
    });
    let out = mvp
        .exec
        .run(&cmd, ctx.deadline, &ctx.cancel, Some(sink))
        .await
        .map_err(exec_err)?;
    track(
        &mvp,
        "run_command",
        out.duration_ms as f64,
        json!({"program": cmd.program, "exitCode": out.exit_code, "timedOut": out.timed_out}),
    );
    Ok(out)
}

// ------------------------------------------------------------------ test_runner

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestRunnerIn {
    /// A test file, directory or name filter passed to the runner.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub test_path: Option<String>,
    /// auto (default) detects from the project files.
    #[serde(default)]
    pub framework: Framework,
    /// Line coverage (jest built-in, vitest with @vitest/coverage-v8, pytest with
    /// pytest-cov, cargo/nextest with cargo-llvm-cov). Omitted (the default, true) is best
    /// effort: a missing coverage tool is named in `coverage.note`. `true` requires it:
    /// a missing tool is an error naming it. `false` skips coverage.
    #[serde(default)]
    #[schemars(extend("default" = true))]
    pub coverage: Option<bool>,
    /// Project directory inside the workspace roots (default: the first root).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Kill the run after this many milliseconds (default 600000, within the request timeout).
    #[serde(default)]
    #[schemars(range(min = 1, max = 3600000))]
    pub timeout_ms: Option<u64>,
}

async fn test_runner(mvp: M, input: TestRunnerIn, ctx: CallCtx) -> Out<TestReport> {
    let dir = mvp.roots.dir(input.cwd.as_deref()).map_err(ws_err)?;
    let report = runners::run_tests(
        &mvp.exec,
        &ctx,
        &dir,
        input.framework,
        input.test_path.as_deref(),
        CoverageWant::from_input(input.coverage),
        input.timeout_ms.map(Duration::from_millis),
    )
    .await?;
    track(
        &mvp,
        "test_runner",
        report.duration_ms as f64,
        json!({"framework": report.framework, "totals": report.totals}),
    );
    Ok(report)
}

// ------------------------------------------------------------------ code_analysis

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CodeAnalysisIn {
    /// Files to lint (inside the roots); default: the whole project.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub files: Option<Vec<String>>,
    /// Project directory inside the workspace roots (default: the first root).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Linter configuration file inside the roots (ruff --config, eslint -c).
    #[serde(default)]
    pub config_path: Option<String>,
}

async fn code_analysis(mvp: M, input: CodeAnalysisIn, ctx: CallCtx) -> Out<AnalysisReport> {
    let dir = mvp.roots.dir(input.cwd.as_deref()).map_err(ws_err)?;
    let mut rel = Vec::new();
    let mut abs = Vec::new();
    for f in input.files.unwrap_or_default() {
        let p = if Path::new(&f).is_absolute() {
            f.clone()
        } else {
            dir.join(&f).display().to_string()
        };
        let canonical = mvp.roots.resolve(&p).map_err(ws_err)?;
        let shown = canonical
            .strip_prefix(&dir)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| canonical.display().to_string());
        rel.push(shown);
        abs.push(canonical);
    }
    let config: Option<PathBuf> = match input.config_path {
        Some(c) => Some(mvp.roots.resolve(&c).map_err(ws_err)?),
        None => None,
    };
    let report = runners::analyse(
        &mvp.runtime.executor,
        &mvp.exec,
        &mvp.analysis_cache,
        &ctx,
        &dir,
        &rel,
        &abs,
        config.as_deref(),
    )
    .await?;
    track(
        &mvp,
        "code_analysis",
        report.duration_ms as f64,
        json!({"tool": report.tool, "errors": report.error_count, "cached": report.cached}),
    );
    Ok(report)
}

// ------------------------------------------------------------------ health

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthIn {}

async fn health(mvp: M, _input: HealthIn, _ctx: CallCtx) -> Out<Health> {
    let (writable, lag, problems, age) = mvp.health.disk().await;
    Ok(Health {
        status: if problems.is_empty() {
            "ok"
        } else {
            "degraded"
        }
        .into(),
        state_dir: mvp.health.dir().display().to_string(),
        state_dir_writable: writable,
        journal_lag_ms: lag.map(|l| (l * 1000.0).round() / 1000.0),
        problems,
        processes: Processes {
            running: mvp.exec.running(),
            started_total: mvp.exec.started_total(),
            max_concurrent: mvp.runtime.config.mvp.exec_max_processes,
            allow_list: mvp.exec.allow_list().to_vec(),
        },
        lanes: mvp.runtime.executor.stats(),
        workspace_roots: mvp
            .roots
            .list()
            .iter()
            .map(|r| r.display().to_string())
            .collect(),
        graphs: mvp.graphs.len(),
        prp_runs: mvp.prp.len(),
        teaching_examples: mvp.teaching.len(),
        probe_age_ms: age,
    })
}

// ------------------------------------------------------------------ graphs

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

async fn create_graph(mvp: M, input: GraphDef, ctx: CallCtx) -> Out<CreatedGraph> {
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
    /// Or a definition {name, nodes, edges?} to check without storing it.
    #[serde(default)]
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

fn stored(mvp: &Mvp, id: &str) -> Out<(Arc<Graph>, Vec<Arc<GraphRun>>)> {
    mvp.graphs.get(id).ok_or_else(|| {
        ToolError::business(format!("no graph `{id}`; create one with create_graph"))
    })
}

async fn validate_graph(mvp: M, input: ValidateGraphIn, ctx: CallCtx) -> Out<Validation> {
    let def = match (input.graph_id, input.graph_definition) {
        (Some(id), None) => stored(&mvp, &id)?.0.def.clone(),
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

async fn execute_graph(mvp: M, input: ExecuteGraphIn, ctx: CallCtx) -> Out<GraphRun> {
    let (g, _) = stored(&mvp, &input.graph_id)?;
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
        json!({"graphId": g.id, "runId": run.run_id, "status": run.status}),
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

async fn get_graph_status(mvp: M, input: GraphStatusIn, _ctx: CallCtx) -> Out<GraphStatus> {
    let (g, runs) = stored(&mvp, &input.graph_id)?;
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

async fn optimize_graph(mvp: M, input: OptimizeGraphIn, _ctx: CallCtx) -> Out<Optimization> {
    let (g, runs) = stored(&mvp, &input.graph_id)?;
    graph::optimize(
        &g,
        &runs,
        input.optimization_type,
        graph_run::PARALLEL_SLOTS,
    )
    .map_err(ToolError::business)
}

// ------------------------------------------------------------------ PRP

async fn run_prp_workflow(mvp: M, input: PrpInput, ctx: CallCtx) -> Out<PrpRun> {
    let events = mvp.clone();
    let title = input.blueprint.title.clone();
    let run = prp::run(&mvp, &ctx, &input, None, move |run_id, record| {
        publish(
            &events,
            "mvp.prp.phase",
            json!({"runId": run_id, "title": title, "phase": record.phase, "passed": record.gate.passed,
                   "blockers": record.gate.blocker_count, "majors": record.gate.major_count}),
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
        json!({"runId": run.run_id, "status": run.status}),
    );
    Ok((*run).clone())
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetPrpRunIn {
    pub run_id: String,
}

async fn get_prp_run(mvp: M, input: GetPrpRunIn, _ctx: CallCtx) -> Out<PrpRun> {
    mvp.prp
        .get(&input.run_id)
        .map(|r| (*r).clone())
        .ok_or_else(|| {
            ToolError::business(format!(
                "no PRP run `{}` (history keeps the latest {}); list them with list_prp_runs",
                input.run_id, mvp.runtime.config.mvp.prp_history
            ))
        })
}

fn default_limit() -> usize {
    20
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListPrpRunsIn {
    /// completed | recycled; default both.
    #[serde(default)]
    pub status: Option<prp::RunStatus>,
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: usize,
    #[serde(default)]
    pub cursor: Option<String>,
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

async fn list_prp_runs(mvp: M, input: ListPrpRunsIn, _ctx: CallCtx) -> Out<Page<PrpRunSummary>> {
    let all: Vec<PrpRunSummary> = mvp
        .prp
        .list()
        .into_iter()
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
    page::offset_page("list_prp_runs", &all, input.limit, input.cursor.as_deref())
        .map_err(|e| ToolError::input(e.to_string()))
}

// ------------------------------------------------------------------ teaching

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CaptureIn {
    /// workflow | validation | decision | correction.
    pub r#type: ExampleType,
    /// Workflow phase, e.g. strategy, build, evaluation.
    #[schemars(length(min = 1, max = 64))]
    pub phase: String,
    #[serde(default = "empty_context")]
    pub context: ExampleContext,
    pub user_action: UserAction,
    pub outcome: Outcome,
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub tags: Vec<String>,
}

fn empty_context() -> ExampleContext {
    ExampleContext {
        description: String::new(),
        state: Default::default(),
    }
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Captured {
    pub example_id: String,
    pub pattern: Pattern,
    pub stored_examples: usize,
}

async fn capture_example(mvp: M, input: CaptureIn, _ctx: CallCtx) -> Out<Captured> {
    if !(0.0..=1.0).contains(&input.outcome.learning_value) {
        return Err(ToolError::input(
            "outcome.learningValue: must be between 0 and 1",
        ));
    }
    let e = Example {
        id: format!("ex-{}", uuid::Uuid::now_v7().simple()),
        r#type: input.r#type,
        phase: input.phase,
        context: input.context,
        user_action: input.user_action,
        outcome: input.outcome,
        tags: input.tags,
        captured_at: chrono::Utc::now().timestamp_millis(),
    };
    let id = e.id.clone();
    publish(
        &mvp,
        "mvp.user.action",
        json!({"exampleId": id, "type": e.r#type, "phase": e.phase, "actionType": e.user_action.r#type, "success": e.outcome.success}),
    );
    let pattern = mvp
        .teaching
        .capture(e)
        .await
        .map_err(|e| ToolError::Internal(format!("journal: {e}")))?;
    Ok(Captured {
        example_id: id,
        pattern,
        stored_examples: mvp.teaching.len(),
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListPatternsIn {
    #[serde(default)]
    pub r#type: Option<ExampleType>,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: usize,
    #[serde(default)]
    pub cursor: Option<String>,
}

async fn list_patterns(mvp: M, input: ListPatternsIn, _ctx: CallCtx) -> Out<Page<Pattern>> {
    let all = mvp.teaching.patterns(input.r#type, input.phase.as_deref());
    page::offset_page("list_patterns", &all, input.limit, input.cursor.as_deref())
        .map_err(|e| ToolError::input(e.to_string()))
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayIn {
    pub example_id: String,
    /// The current state: its `phase`, `description` and other keys are compared with
    /// the example.
    pub state: serde_json::Map<String, Value>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Replay {
    pub example_id: String,
    pub similarity: Similarity,
    /// similarity ≥ 0.6.
    pub applies: bool,
    pub threshold: f64,
    /// The example's action, to repeat when it applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_action: Option<UserAction>,
    pub pattern: Option<Pattern>,
}

async fn replay_example(mvp: M, input: ReplayIn, _ctx: CallCtx) -> Out<Replay> {
    let e = mvp.teaching.get(&input.example_id).ok_or_else(|| {
        ToolError::business(format!(
            "no example `{}` (evicted or never captured)",
            input.example_id
        ))
    })?;
    let sim = teaching::similarity(&e, &input.state);
    let applies = sim.score >= teaching::APPLY_THRESHOLD;
    Ok(Replay {
        example_id: e.id.clone(),
        applies,
        threshold: teaching::APPLY_THRESHOLD,
        suggested_action: applies.then(|| e.user_action.clone()),
        pattern: mvp.teaching.pattern(&e.pattern_key()),
        similarity: sim,
    })
}

// ------------------------------------------------------------------ registration

macro_rules! mvp_tool {
    ($m:expr, $name:literal, $hints:expr, $handler:path, $desc:expr) => {{
        let m = $m.clone();
        tool("mvp", $name, $desc, $hints, move |input, ctx| {
            $handler(m.clone(), input, ctx)
        })
    }};
}

pub fn all(m: &M) -> Vec<ToolDef> {
    let read = Hints::read();
    let write = Hints::write();
    let runs = Hints {
        read_only: false,
        destructive: false,
        idempotent: false,
        open_world: true,
    };
    vec![
        mvp_tool!(
            m,
            "read_file",
            read,
            read_file,
            "Read a file inside the workspace roots: `length` bytes (default 256 KiB, max 1 MiB) from `offset`, as utf8 text or base64. Returns `nextOffset` while more remains. Paths are canonicalised; symlinks or `..` leading outside the roots are refused."
        ),
        mvp_tool!(
            m,
            "run_command",
            runs.destructive(),
            run_command,
            "Run an allow-listed program (no shell; argv passed as-is) in a directory inside the workspace roots, with a reduced environment and a timeout that kills its whole process group. Output is capped and secrets are redacted line by line; progress streams lines. Waits for a process slot within the request timeout."
        ),
        mvp_tool!(
            m,
            "test_runner",
            runs,
            test_runner,
            "Run the project's tests (framework auto|cargo|nextest|vitest|jest|pytest) with a timeout; progress streams as tests finish. Returns {command, durationMs, totals {passed, failed, total}, failures[{name, message}], coverage?}. A compile error is a failure named `build`."
        ),
        mvp_tool!(
            m,
            "code_analysis",
            runs.idempotent(),
            code_analysis,
            "Lint the project (cargo clippy, eslint or ruff, detected from the files) and return {tool, errorCount, warningCount, issues[{filePath, ruleId, severity, message, line, column}], summary}. Cached by the content of the inputs and the config; a missing linter is an error naming it."
        ),
        mvp_tool!(
            m,
            "health",
            read,
            health,
            "Health of the server's parts: state directory writable, journal lag, executor lanes (running, waiting), running child processes (exact), workspace roots and store sizes. The disk probe is cached for 2 s."
        ),
        mvp_tool!(
            m,
            "create_graph",
            write,
            create_graph,
            "Store a workflow graph {name, nodes [{id, type tool|gate|prp|map, config}], edges [{from, to, condition?}]} after validating it (errors refuse it). tool: {tool, arguments} calls any tool of this server; arguments may use {{inputs.X}} and {{nodes.ID.path}}. gate: {condition} or {from: [ids], maxBlockers=0, maxMajors=3}. prp: {blueprint, workspace?, phase?}. map: {tool, over: \"{{...list}}\", arguments with {{item}}, concurrency=4}."
        ),
        mvp_tool!(
            m,
            "validate_graph",
            read,
            validate_graph,
            "Check a stored graph (graphId) or a definition (graphDefinition): cycles with their path, dangling edges, duplicate ids and edges, unknown node types and tools, bad templates and conditions; `strict` adds nodes that can never run or connect to nothing and outputs no one reads."
        ),
        mvp_tool!(
            m,
            "execute_graph",
            runs,
            execute_graph,
            "Run a stored graph with `inputs`. config.parallel runs ready nodes concurrently (default one at a time); config.timeout (ms) stops it and cancels running nodes (their processes are killed). Edges with false conditions are skipped, and so are nodes that lose an input. Progress per node; returns per-node status, timings (ms from start), outputs and errors."
        ),
        mvp_tool!(
            m,
            "get_graph_status",
            read,
            get_graph_status,
            "A graph's last run per node (status, timings, output cut to 2 KiB, error); includeHistory adds summaries of up to 20 earlier runs."
        ),
        mvp_tool!(
            m,
            "optimize_graph",
            read,
            optimize_graph,
            "Analyse a graph with its measured runs: parallel levels, critical path, redundant edges, estimated parallel speed-up, memory-heavy nodes; suggestions for optimizationType performance|memory|cost."
        ),
        mvp_tool!(
            m,
            "run_prp_workflow",
            runs,
            run_prp_workflow,
            "Run a PRP workflow for blueprint {title, description, requirements[]}: strategy → build → evaluation gates; with `workspace` the build gate runs the tests (failures are blockers) and the linter (errors are majors). The evaluation gate traces each requirement to the evidence: its keywords (words of 3+ letters minus common words, lower-cased, a plural -s and one of -ing/-ed/-er/-e stripped, first 5 letters) are matched against the names of the tests that ran, the workspace's test files (path and contents) and the build gate's results; an item holding at least half of the keywords traces it. `gate.trace` lists each requirement with its evidence; each untraced requirement is a major. A gate passes with ≤ maxBlockers (0) blockers and ≤ maxMajors (3) majors; the first failing gate recycles the run. Returns phases, status completed|recycled and the cerebrum decision with reasons. `deterministic` fixes ids and times."
        ),
        mvp_tool!(
            m,
            "get_prp_run",
            read,
            get_prp_run,
            "One PRP run by runId, with its phases, gates and decision."
        ),
        mvp_tool!(
            m,
            "list_prp_runs",
            read,
            list_prp_runs,
            "PRP runs, newest first, optionally by status; continue with `cursor`. History keeps the latest runs (default 1000)."
        ),
        mvp_tool!(
            m,
            "capture_example",
            write,
            capture_example,
            "Capture a teaching example {type workflow|validation|decision|correction, phase, context {description, state}, userAction {type, description, parameters}, outcome {success, learningValue 0-1}}. Updates its pattern `type-phase-actionType` (confidence 0.5+0.1 per example up to 0.9, effectiveness = success ratio) in O(1)."
        ),
        mvp_tool!(
            m,
            "list_patterns",
            read,
            list_patterns,
            "Teaching patterns with their example counts, confidence and effectiveness, by key; filter by type or phase; continue with `cursor`."
        ),
        mvp_tool!(
            m,
            "replay_example",
            read,
            replay_example,
            "Compare a captured example with the current `state`: similarity = 0.3·same phase + 0.4·keyword Jaccard + 0.3·state-key Jaccard. When ≥ 0.6 the example applies and its action is suggested."
        ),
    ]
}
