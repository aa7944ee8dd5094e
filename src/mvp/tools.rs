//! The mvp tools' registration (names, annotations, descriptions) and the helpers every
//! handler shares (error mapping, event publishing, `mvp.metric.tracked`). Handlers and
//! their inputs (contract names and defaults kept) live in `tools_workspace.rs`,
//! `tools_graph.rs`, `tools_prp.rs` and `tools_teaching.rs`.
//!
//! Owns tool semantics only: processes go through `exec.rs`, paths through
//! `workspace.rs`, graphs, PRP and teaching state through their modules.

use std::sync::Arc;

use super::events::{MetricDetail, MetricTracked};
use crate::runtime::events::EventPayload;

use super::{
    Mvp,
    workspace::{ReadError, WorkspaceError},
};
use crate::runtime::{
    registry::{Hints, ToolDef, ToolError},
    toolset::Tools,
};

const SOURCE: &str = "cortex-mcp/mvp";

pub(super) type M = Arc<Mvp>;
pub(super) use crate::runtime::toolset::Out;

pub(super) fn ws_err(e: WorkspaceError) -> ToolError {
    match e {
        WorkspaceError::Io { .. } | WorkspaceError::NoRoots(_) => {
            ToolError::Internal(e.to_string())
        }
        WorkspaceError::RootGone { .. } => ToolError::business(e.to_string()),
        other => ToolError::Input(other.to_string()),
    }
}

pub(super) fn read_err(e: ReadError) -> ToolError {
    match e {
        ReadError::Workspace(w) => ws_err(w),
        ReadError::Io { .. } => ToolError::Internal(e.to_string()),
        other => ToolError::Input(other.to_string()),
    }
}

/// Publishes an event shown only to `owner` (the caller; `None`: everyone) without
/// making the caller wait for the journal.
pub(super) fn publish<P: EventPayload + 'static>(mvp: &Mvp, data: P, owner: Option<String>) {
    let events = mvp.runtime.events.clone();
    tokio::spawn(async move {
        if let Err(e) = events.publish_as(SOURCE, &data, owner).await {
            tracing::warn!(event = data.event_type(), "could not publish: {e}");
        }
    });
}

pub(super) fn track(
    mvp: &Mvp,
    name: &str,
    duration_ms: f64,
    extra: MetricDetail,
    owner: Option<String>,
) {
    let data = MetricTracked {
        name: name.to_string(),
        duration_ms,
        detail: extra,
    };
    publish(mvp, data, owner);
}

// ------------------------------------------------------------------ registration

pub fn all(m: &M) -> Vec<ToolDef> {
    let t = Tools::new("mvp", m);
    use super::{
        tools_graph::{
            create_graph, execute_graph, get_graph_status, optimize_graph, validate_graph,
        },
        tools_prp::{get_prp_run, list_prp_runs, run_prp_workflow},
        tools_teaching::{capture_example, list_patterns, replay_example},
        tools_workspace::{code_analysis, health, read_file, run_command, test_runner},
    };
    let read = Hints::read();
    let write = Hints::write();
    let runs = Hints {
        read_only: false,
        destructive: false,
        idempotent: false,
        open_world: true,
    };
    vec![
        t.tool(
            "read_file",
            read,
            read_file,
            "Read a file inside the workspace roots: `length` bytes (default 256 KiB, max 1 MiB) from `offset`, as utf8 text or base64. Returns `nextOffset` while more remains. Paths are canonicalised; symlinks or `..` leading outside the roots are refused."
        ),
        t.tool(
            "run_command",
            runs.destructive(),
            run_command,
            "Run an allow-listed program (argv passed as-is, not through a shell) in a directory inside the workspace roots, with a reduced environment and a timeout that kills every process it started. The program runs in a sandbox: the workspace roots read-write, a private TMPDIR, the system read-only, no network unless the operator allowed it, and no access to this server's state directory, config or processes. Output is capped and secrets are redacted line by line; progress streams lines. Waits for a process slot within the request timeout."
        ),
        t.tool(
            "test_runner",
            runs,
            test_runner,
            "Run the project's tests (framework auto|cargo|nextest|vitest|jest|pytest) with a timeout; progress streams as tests finish. Returns {command, durationMs, totals {passed, failed, total}, failures[{name, message}], coverage?}. A compile error is a failure named `build`."
        ),
        t.tool(
            "code_analysis",
            runs.idempotent(),
            code_analysis,
            "Lint the project (cargo clippy, eslint or ruff, detected from the files) and return {tool, errorCount, warningCount, issues[{filePath, ruleId, severity, message, line, column}], summary}. Cached by the content of the inputs and the config; a missing linter is an error naming it."
        ),
        t.tool(
            "health",
            read,
            health,
            "Health of the server's parts: state directory writable, journal lag, executor lanes (running, waiting), running child processes (exact), workspace roots and store sizes. The disk probe is cached for 2 s."
        ),
        t.tool(
            "create_graph",
            write,
            create_graph,
            "Store a workflow graph {name, nodes [{id, type tool|gate|prp|map, config}], edges [{from, to, condition?}]} after validating it (errors refuse it). tool: {tool, arguments} calls any tool of this server; arguments may use {{inputs.X}} and {{nodes.ID.path}}. gate: {condition} or {from: [ids], maxBlockers=0, maxMajors=3}. prp: {blueprint, workspace?, phase?}. map: {tool, over: \"{{...list}}\", arguments with {{item}}, concurrency=4}."
        ),
        t.tool(
            "validate_graph",
            read,
            validate_graph,
            "Check a stored graph (graphId) or a definition (graphDefinition): cycles with their path, dangling edges, duplicate ids and edges, unknown node types and tools, bad templates and conditions; `strict` adds nodes that can never run or connect to nothing and outputs no one reads."
        ),
        t.tool(
            "execute_graph",
            runs,
            execute_graph,
            "Run a stored graph with `inputs`. config.parallel runs ready nodes concurrently (default one at a time); config.timeout (ms) stops it and cancels running nodes (their processes are killed). Edges with false conditions are skipped, and so are nodes that lose an input. Progress per node; returns per-node status, timings (ms from start), outputs and errors."
        ),
        t.tool(
            "get_graph_status",
            read,
            get_graph_status,
            "A graph's last run per node (status, timings, output cut to 2 KiB, error); includeHistory adds summaries of up to 20 earlier runs."
        ),
        t.tool(
            "optimize_graph",
            read,
            optimize_graph,
            "Analyse a graph with its measured runs: parallel levels, critical path, redundant edges, estimated parallel speed-up, memory-heavy nodes; suggestions for optimizationType performance|memory|cost."
        ),
        t.tool(
            "run_prp_workflow",
            runs,
            run_prp_workflow,
            "Run a PRP workflow for blueprint {title, description, requirements[]}: strategy → build → evaluation gates; with `workspace` the build gate runs the tests (failures are blockers) and the linter (errors are majors). The evaluation gate traces each requirement to the evidence: its keywords (words of 3+ letters minus common words, lower-cased, a plural -s and one of -ing/-ed/-er/-e stripped, first 5 letters) are matched against the names of the tests that ran, the workspace's test files (path and contents) and the build gate's results; an item holding at least half of the keywords traces it. `gate.trace` lists each requirement with its evidence; each untraced requirement is a major. A gate passes with ≤ maxBlockers (0) blockers and ≤ maxMajors (3) majors; the first failing gate recycles the run. Returns phases, status completed|recycled and the cerebrum decision with reasons. `deterministic` fixes ids and times."
        ),
        t.tool(
            "get_prp_run",
            read,
            get_prp_run,
            "One PRP run by runId, with its phases, gates and decision."
        ),
        t.tool(
            "list_prp_runs",
            read,
            list_prp_runs,
            "PRP runs, newest first, optionally by status; continue with `cursor`. History keeps the latest runs (default 1000)."
        ),
        t.tool(
            "capture_example",
            write,
            capture_example,
            "Capture a teaching example {type workflow|validation|decision|correction, phase, context {description, state}, userAction {type, description, parameters}, outcome {success, learningValue 0-1}}. Updates its pattern `type-phase-actionType` (confidence 0.5+0.1 per example up to 0.9, effectiveness = success ratio) in O(1)."
        ),
        t.tool(
            "list_patterns",
            read,
            list_patterns,
            "Teaching patterns with their example counts, confidence and effectiveness, by key; filter by type or phase; continue with `cursor`."
        ),
        t.tool(
            "replay_example",
            read,
            replay_example,
            "Compare a captured example with the current `state`: similarity = 0.3·same phase + 0.4·keyword Jaccard + 0.3·state-key Jaccard. When ≥ 0.6 the example applies and its action is suggested."
        ),
    ]
}
