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

mod nodes;

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
use nodes::run_node;

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
