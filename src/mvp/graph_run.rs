//! Graph execution: schedules ready nodes (one at a time, or concurrently up to
//! [`PARALLEL_SLOTS`] when `parallel` is set), evaluates edge conditions, runs `tool`
//! and `map` nodes through the runtime registry by name (the same path a client takes),
//! `gate` nodes over upstream outputs and `prp` nodes through the registry's
//! `run_prp_workflow` (one phase: through `prp.rs`, only where that tool is offered). The run's
//! timeout and the client's cancellation reach every running node: node futures are
//! dropped, which kills their child processes. Progress is reported per node.
//!
//! Memory: node outputs are shared (`Arc`), never copied per scheduled node; every
//! result of a nested call is charged to the client call's budget by the registry, the
//! rendered arguments of each call are held against it while the call runs, and a
//! tripped budget ends the run (`failed`, the error names the budget).
//!
//! Owns scheduling and node semantics; it must not know any other toolset.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream::FuturesUnordered};
use serde_json::{Value, json};

use super::{
    Mvp,
    graph::{Graph, GraphRun, NodeDef, NodeRun, Scope, Topology},
    graph_template::TemplateError,
    prp,
};
use crate::runtime::{
    budget::{self, BudgetExceeded},
    progress::Progress,
    registry::{CallCtx, ToolError},
};

/// Nodes running at once when `parallel` is set.
pub const PARALLEL_SLOTS: usize = 16;
/// Output kept per node in the run record (the full output still feeds templates).
pub const MAX_RECORDED_OUTPUT: usize = 16 * 1024;
/// Most items a map node takes.
pub const MAX_MAP_ITEMS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum EdgeState {
    Pending,
    Taken,
    NotTaken,
}

struct NodeResult {
    index: usize,
    output: Option<Value>,
    error: Option<String>,
    start: f64,
    end: f64,
}

fn ms_since(t0: Instant) -> f64 {
    (t0.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

/// Keeps the first [`MAX_RECORDED_OUTPUT`] bytes written and counts the rest.
struct Prefix {
    head: Vec<u8>,
    total: u64,
}

impl std::io::Write for Prefix {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = MAX_RECORDED_OUTPUT.saturating_sub(self.head.len());
        self.head.extend_from_slice(&buf[..room.min(buf.len())]);
        self.total += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The recorded form of an output: the value when its JSON fits, else the first bytes
/// of its text; never builds the whole text of a large output.
fn record_output(v: &Value) -> (Option<Value>, u64, bool) {
    let mut prefix = Prefix {
        head: Vec::new(),
        total: 0,
    };
    let _ = serde_json::to_writer(&mut prefix, v);
    let bytes = prefix.total;
    if bytes <= MAX_RECORDED_OUTPUT as u64 {
        (Some(v.clone()), bytes, false)
    } else {
        let text = match String::from_utf8(prefix.head) {
            Ok(t) => t,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let mut head = e.into_bytes();
                head.truncate(valid);
                String::from_utf8(head).unwrap_or_default()
            }
        };
        (Some(Value::String(text)), bytes, true)
    }
}

/// Runs a graph to the end, the timeout, or cancellation.
pub async fn execute(
    mvp: &Arc<Mvp>,
    graph: &Graph,
    inputs: Value,
    parallel: bool,
    timeout: Option<Duration>,
    ctx: &CallCtx,
) -> GraphRun {
    let run_id = format!("run-{}", uuid::Uuid::now_v7().simple());
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let t0 = Instant::now();
    let topo = Topology::new(&graph.def);
    let n = topo.ids.len();
    let mut nodes: Vec<NodeRun> = graph
        .def
        .nodes
        .iter()
        .map(|d| NodeRun {
            id: d.id.clone(),
            r#type: d.r#type.clone(),
            status: "pending".into(),
            started_at: None,
            start_ms: None,
            end_ms: None,
            duration_ms: None,
            output: None,
            output_bytes: 0,
            output_truncated: false,
            error: None,
        })
        .collect();
    let deadline = match timeout {
        Some(t) => ctx.deadline.min(Instant::now() + t),
        None => ctx.deadline,
    };
    let cancel = ctx.cancel.child_token();
    // Nodes keep the request deadline: the graph's own timeout is enforced below by
    // cancelling them, so a timed-out run reports `timed_out` rather than node errors.
    let node_ctx = CallCtx {
        cancel: cancel.clone(),
        deadline: ctx.deadline,
        progress: Progress::none(),
        in_batch: false,
        ..ctx.clone()
    };
    let inputs = Arc::new(inputs);
    let mut outputs: HashMap<String, Arc<Value>> = HashMap::new();
    let mut edges = vec![EdgeState::Pending; graph.def.edges.len()];
    let mut waiting: Vec<usize> = topo.incoming.iter().map(Vec::len).collect();
    let mut ready: VecDeque<usize> = (0..n).filter(|i| waiting[*i] == 0).collect();
    let slots = if parallel { PARALLEL_SLOTS } else { 1 };
    let mut running = FuturesUnordered::new();
    let mut finished = 0usize;
    let mut end_status: Option<(&str, String)> = None;
    let sleep = tokio::time::sleep_until(deadline.into());
    tokio::pin!(sleep);
    loop {
        while running.len() < slots {
            let Some(i) = ready.pop_front() else { break };
            nodes[i].status = "running".into();
            nodes[i].started_at =
                Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            let def = graph.def.nodes[i].clone();
            let scope_outputs = outputs.clone();
            let (mvp, ctx2, inputs) = (mvp.clone(), node_ctx.clone(), inputs.clone());
            running.push(async move {
                let start = ms_since(t0);
                let scope = Scope {
                    inputs: &inputs,
                    outputs: &scope_outputs,
                    item: None,
                };
                let (output, error) = run_node(&mvp, &def, &scope, &ctx2).await;
                NodeResult {
                    index: i,
                    output,
                    error,
                    start,
                    end: ms_since(t0),
                }
            });
        }
        if running.is_empty() {
            break;
        }
        let result = tokio::select! {
            r = running.next() => r.expect("not empty"),
            _ = ctx.cancel.cancelled() => {
                end_status = Some(("cancelled", "cancelled by the client".into()));
                break;
            }
            _ = &mut sleep => {
                end_status = Some(("timed_out", format!("the graph ran past its timeout ({} ms)", t0.elapsed().as_millis())));
                break;
            }
        };

        finished += 1;
        let i = result.index;
        let node = &mut nodes[i];
        node.start_ms = Some(result.start);
        node.end_ms = Some(result.end);
        node.duration_ms = Some(((result.end - result.start) * 1000.0).round() / 1000.0);
        node.status = if result.error.is_none() {
            "succeeded"
        } else {
            "failed"
        }
        .into();
        node.error = result.error.clone();
        if let Some(out) = result.output {
            let (o, bytes, truncated) = record_output(&out);
            node.output = o;
            node.output_bytes = bytes;
            node.output_truncated = truncated;
            outputs.insert(node.id.clone(), Arc::new(out));
        }
        ctx.progress.report(
            finished as f64,
            Some(n as f64),
            format!("node {} {}", node.id, node.status),
        );
        // A tripped budget ends the run: whatever else runs or waits would be refused.
        if let Some(over) = ctx.budget.exceeded() {
            end_status = Some(("failed", over.to_string()));
            break;
        }
        let ok = result.error.is_none();
        // Decide the node's outgoing edges, then release or skip successors.
        let mut settle: VecDeque<(usize, bool)> = VecDeque::from([(i, ok)]);
        while let Some((src, src_ok)) = settle.pop_front() {
            for &e in &topo.outgoing[src] {
                let edge = &graph.def.edges[e];
                let taken = match (&edge.condition, src_ok) {
                    (None, ok) => ok,
                    (Some(c), _) if nodes[src].status != "skipped" => {
                        let scope = Scope {
                            inputs: &inputs,
                            outputs: &outputs,
                            item: None,
                        };
                        scope.condition(c).unwrap_or(false)
                    }
                    _ => false,
                };
                edges[e] = if taken {
                    EdgeState::Taken
                } else {
                    EdgeState::NotTaken
                };
                let to = topo.index[&edge.to];
                waiting[to] -= 1;
                if waiting[to] == 0 {
                    let all = topo.incoming[to]
                        .iter()
                        .all(|e| edges[*e] == EdgeState::Taken);
                    if all {
                        ready.push_back(to);
                    } else {
                        nodes[to].status = "skipped".into();
                        finished += 1;
                        settle.push_back((to, false));
                    }
                }
            }
        }
    }
    // Stop whatever still runs: dropping the futures kills their processes.
    cancel.cancel();
    drop(running);
    let (status, error) = match end_status {
        Some((s, m)) => {
            for node in nodes.iter_mut() {
                match node.status.as_str() {
                    "running" => {
                        node.status = s.into();
                        node.error = Some(m.clone());
                    }
                    "pending" => node.status = "skipped".into(),
                    _ => {}
                }
            }
            (s.to_string(), Some(m))
        }
        None if nodes.iter().any(|n| n.status == "failed") => ("failed".into(), None),
        None => ("completed".into(), None),
    };
    GraphRun {
        run_id,
        graph_id: graph.id.clone(),
        status,
        parallel,
        started_at,
        duration_ms: ms_since(t0),
        nodes,
        error,
    }
}

fn cfg<'a>(def: &'a NodeDef, key: &str) -> Option<&'a Value> {
    def.config.as_ref()?.get(key)
}

fn node_deadline(def: &NodeDef, ctx: &CallCtx) -> CallCtx {
    let mut c = ctx.clone();
    if let Some(ms) = cfg(def, "timeoutMs").and_then(Value::as_u64) {
        c.deadline = c.deadline.min(Instant::now() + Duration::from_millis(ms));
    }
    c
}

async fn run_node(
    mvp: &Arc<Mvp>,
    def: &NodeDef,
    scope: &Scope<'_>,
    ctx: &CallCtx,
) -> (Option<Value>, Option<String>) {
    let result = match def.r#type.as_str() {
        "tool" => tool_node(def, scope, ctx).await,
        "map" => map_node(def, scope, ctx).await,
        "gate" => gate_node(def, scope),
        "prp" => prp_node(mvp, def, scope, ctx).await,
        other => Err((None, format!("unknown node type `{other}`"))),
    };
    match result {
        Ok(v) => (Some(v), None),
        Err((v, e)) => (v, Some(e)),
    }
}

type NodeOut = Result<Value, (Option<Value>, String)>;

/// Why a `tool` or `map` node's call (or one map item's) failed; its message is the
/// node's (or the item's) `error`.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("arguments must be an object")]
    NotObject,
    #[error("{tool}: {source}")]
    Budget {
        tool: String,
        source: BudgetExceeded,
    },
    #[error("{tool}: {source}")]
    Tool { tool: String, source: ToolError },
}

fn arguments(
    def: &NodeDef,
    scope: &Scope<'_>,
) -> Result<serde_json::Map<String, Value>, CallError> {
    match cfg(def, "arguments") {
        None => Ok(Default::default()),
        Some(v) => match scope.render(v)? {
            Value::Object(o) => Ok(o),
            _ => Err(CallError::NotObject),
        },
    }
}

async fn call_tool(
    tool: &str,
    args: serde_json::Map<String, Value>,
    ctx: &CallCtx,
) -> Result<Value, CallError> {
    // The rendered arguments live until the call ends; they may embed large outputs.
    let _args = ctx
        .budget
        .hold(
            budget::json_size(&args),
            &format!("the arguments of {tool}"),
        )
        .map_err(|source| CallError::Budget {
            tool: tool.to_string(),
            source,
        })?;
    ctx.registry
        .call(tool, args, ctx.clone())
        .await
        .map_err(|source| CallError::Tool {
            tool: tool.to_string(),
            source,
        })
}

async fn tool_node(def: &NodeDef, scope: &Scope<'_>, ctx: &CallCtx) -> NodeOut {
    let tool = cfg(def, "tool").and_then(Value::as_str).unwrap_or_default();
    let args = arguments(def, scope).map_err(|e| (None, e.to_string()))?;
    call_tool(tool, args, &node_deadline(def, ctx))
        .await
        .map_err(|e| (None, e.to_string()))
}

async fn map_node(def: &NodeDef, scope: &Scope<'_>, ctx: &CallCtx) -> NodeOut {
    let tool = cfg(def, "tool")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let over = cfg(def, "over").cloned().unwrap_or(Value::Null);
    let items = match scope.render(&over).map_err(|e| (None, e.to_string()))? {
        Value::Array(a) => a,
        other => {
            return Err((
                None,
                format!("config.over must resolve to a list, got {other}"),
            ));
        }
    };
    if items.len() > MAX_MAP_ITEMS {
        return Err((
            None,
            format!(
                "config.over has {} items; at most {MAX_MAP_ITEMS}",
                items.len()
            ),
        ));
    }
    let concurrency = cfg(def, "concurrency")
        .and_then(Value::as_u64)
        .unwrap_or(4)
        .clamp(1, 16) as usize;
    let ctx = node_deadline(def, ctx);
    let template = cfg(def, "arguments").cloned().unwrap_or(json!({}));
    // Each item's arguments are rendered when its call starts, so at most `concurrency`
    // rendered argument sets exist at once (they may embed large upstream outputs).
    let shared = Arc::new((template, scope.inputs.clone(), scope.outputs.clone()));
    let total = items.len();
    let calls = items.into_iter().enumerate().map(|(index, item)| {
        let (shared, tool, ctx) = (shared.clone(), tool.clone(), ctx.clone());
        async move {
            let (template, inputs, outputs) = &*shared;
            let args = Scope {
                inputs,
                outputs,
                item: Some(&item),
            }
            .render(template);
            let outcome = match args {
                Ok(Value::Object(o)) => call_tool(&tool, o, &ctx).await,
                Ok(_) => Err(CallError::NotObject),
                Err(e) => Err(e.into()),
            };
            match outcome {
                Ok(r) => json!({"index": index, "ok": true, "result": r}),
                Err(e) => json!({"index": index, "ok": false, "error": e.to_string()}),
            }
        }
    });
    let results: Vec<Value> = futures::stream::iter(calls)
        .buffered(concurrency)
        .collect()
        .await;
    let failed = results.iter().filter(|r| r["ok"] == false).count();
    let out = json!({"results": results, "succeeded": total - failed, "failed": failed});
    if failed > 0 {
        Err((Some(out), format!("{failed} of {total} items failed")))
    } else {
        Ok(out)
    }
}

/// Blockers and majors an upstream output carries (PRP runs and gates, test reports,
/// lint reports, gate outputs).
fn counts(v: &Value) -> (u64, u64) {
    let len_or = |k: &str, n: &str| {
        v[n].as_u64()
            .or_else(|| v[k].as_array().map(|a| a.len() as u64))
    };
    let blockers = len_or("blockers", "blockerCount")
        .or_else(|| v["totals"]["failed"].as_u64())
        .or_else(|| {
            v["phases"].as_array().map(|p| {
                p.iter()
                    .map(|ph| ph["gate"]["blockerCount"].as_u64().unwrap_or(0))
                    .sum()
            })
        })
        .unwrap_or(0);
    let majors = len_or("majors", "majorCount")
        .or_else(|| v["errorCount"].as_u64())
        .or_else(|| {
            v["phases"].as_array().map(|p| {
                p.iter()
                    .map(|ph| ph["gate"]["majorCount"].as_u64().unwrap_or(0))
                    .sum()
            })
        })
        .unwrap_or(0);
    (blockers, majors)
}

fn gate_node(def: &NodeDef, scope: &Scope<'_>) -> NodeOut {
    let max_blockers = cfg(def, "maxBlockers").and_then(Value::as_u64).unwrap_or(0);
    let max_majors = cfg(def, "maxMajors").and_then(Value::as_u64).unwrap_or(3);
    let mut reasons = Vec::new();
    let mut passed = true;
    let (mut blockers, mut majors) = (0, 0);
    if let Some(from) = cfg(def, "from") {
        let ids: Vec<String> = match from {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => vec![],
        };
        for id in ids {
            let out = scope
                .outputs
                .get(&id)
                .ok_or_else(|| (None, format!("gate reads `{id}`, which has no output")))?;
            let (b, m) = counts(out);
            blockers += b;
            majors += m;
        }
        if blockers > max_blockers {
            passed = false;
            reasons.push(format!("{blockers} blockers > {max_blockers}"));
        }
        if majors > max_majors {
            passed = false;
            reasons.push(format!("{majors} majors > {max_majors}"));
        }
    }
    if let Some(cond) = cfg(def, "condition").and_then(Value::as_str) {
        let ok = scope.condition(cond).map_err(|e| (None, e.to_string()))?;
        if !ok {
            passed = false;
            reasons.push(format!("condition `{cond}` is false"));
        }
    }
    let out = json!({"passed": passed, "blockers": blockers, "majors": majors, "reasons": reasons});
    if passed {
        Ok(out)
    } else {
        Err((Some(out), format!("gate failed: {}", reasons.join("; "))))
    }
}

/// The tool a `prp` node stands for; the node is reachable only when it is offered.
const PRP_TOOL: &str = "run_prp_workflow";

async fn prp_node(mvp: &Arc<Mvp>, def: &NodeDef, scope: &Scope<'_>, ctx: &CallCtx) -> NodeOut {
    let config = scope
        .render(&Value::Object(def.config.clone().unwrap_or_default()))
        .map_err(|e| (None, e.to_string()))?;
    let phase = config
        .get("phase")
        .and_then(Value::as_str)
        .map(|p| serde_json::from_value::<prp::Phase>(json!(p)))
        .transpose()
        .map_err(|e| (None, format!("phase: {e}")))?;
    let Value::Object(mut args) = config else {
        return Err((None, "prp config must be an object".into()));
    };
    args.remove("phase");
    args.remove("timeoutMs");
    let ctx = node_deadline(def, ctx);
    let out = match phase {
        // The whole workflow is the `run_prp_workflow` tool: called by name through the
        // server's (filtered) registry, like any tool node.
        None => call_tool(PRP_TOOL, args, &ctx)
            .await
            .map_err(|e| (None, e.to_string()))?,
        // One phase has no tool of its own; it runs only where the tool is offered, and
        // the engine reaches tests and lint through the same registry checks.
        Some(phase) => {
            if ctx.registry.get(PRP_TOOL).is_none() {
                return Err((
                    None,
                    format!(
                        "{PRP_TOOL} is not offered by this server (excluded or not selected); a prp node cannot run"
                    ),
                ));
            }
            let input: prp::PrpInput = serde_json::from_value(Value::Object(args))
                .map_err(|e| (None, format!("prp config: {e}")))?;
            let run = prp::run(mvp, &ctx, &input, Some(phase), |_, _| {})
                .await
                .map_err(|e| (None, e.to_string()))?;
            let run = Arc::new(run);
            if let Err(e) = mvp.prp.record(run.clone()).await {
                tracing::warn!("prp run not journaled: {e}");
            }
            serde_json::to_value(&*run).unwrap_or(Value::Null)
        }
    };
    if out["status"] == "recycled" {
        let reasons: Vec<&str> = out["cerebrum"]["reasons"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let message = format!("PRP recycled: {}", reasons.join("; "));
        Err((Some(out), message))
    } else {
        Ok(out)
    }
}
