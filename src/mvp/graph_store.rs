//! The journaled graph store (graphs and their latest runs, stream `graphs`) and the
//! analysis behind `optimize_graph`: parallel levels, the critical path weighted by
//! measured node durations, redundant edges (transitive reduction), estimated speed-up
//! and memory-heavy nodes.
//!
//! Owns storage and analysis only; it neither validates nor runs graphs.

use std::{
    collections::{HashMap, VecDeque},
    path::Path,
    sync::Arc,
};

use parking_lot::Mutex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::graph::{EdgeDef, Graph, MAX_GRAPHS, RUNS_KEPT, Topology};
use crate::runtime::journal::{FsyncPolicy, Journal, JournalError, JournalOptions};

// ------------------------------------------------------------------ store

/// Per node outcome of a run, as journaled and reported.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeRun {
    pub id: String,
    pub r#type: String,
    /// pending | running | succeeded | failed | skipped | cancelled | timed_out
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Milliseconds from the run's start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// The node's output (capped; see `outputTruncated`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    pub output_bytes: u64,
    pub output_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GraphRun {
    pub run_id: String,
    pub graph_id: String,
    /// completed | failed | cancelled | timed_out
    pub status: String,
    pub parallel: bool,
    pub started_at: String,
    pub duration_ms: f64,
    pub nodes: Vec<NodeRun>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

struct Entry {
    graph: Arc<Graph>,
    runs: VecDeque<Arc<GraphRun>>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Record {
    Graph { graph: Graph },
    Run { run: GraphRun },
}

/// Graphs and their recent runs, journaled in the `graphs` stream.
pub struct GraphStore {
    entries: Mutex<(HashMap<String, Entry>, VecDeque<String>)>,
    journal: Journal,
}

impl GraphStore {
    pub fn open(dir: &Path, policy: FsyncPolicy) -> Result<Self, JournalError> {
        let options = JournalOptions {
            policy,
            max_segment_bytes: 32 * 1024 * 1024,
        };
        let (journal, records) = Journal::open_with(dir, "graphs", options)?;
        let store = GraphStore {
            entries: Mutex::new((HashMap::new(), VecDeque::new())),
            journal,
        };
        for r in records {
            match serde_json::from_value::<Record>(r) {
                Ok(Record::Graph { graph }) => store.insert_graph(Arc::new(graph)),
                Ok(Record::Run { run }) => store.insert_run(Arc::new(run)),
                Err(e) => tracing::warn!("graphs journal: skipped a record: {e}"),
            }
        }
        Ok(store)
    }

    fn insert_graph(&self, graph: Arc<Graph>) {
        let mut guard = self.entries.lock();
        let (map, order) = &mut *guard;
        if !map.contains_key(&graph.id) {
            order.push_back(graph.id.clone());
        }
        map.insert(
            graph.id.clone(),
            Entry {
                graph,
                runs: VecDeque::new(),
            },
        );
        while order.len() > MAX_GRAPHS {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    fn insert_run(&self, run: Arc<GraphRun>) {
        let mut guard = self.entries.lock();
        if let Some(e) = guard.0.get_mut(&run.graph_id) {
            e.runs.push_back(run);
            while e.runs.len() > RUNS_KEPT {
                e.runs.pop_front();
            }
        }
    }

    pub async fn add_graph(&self, graph: Graph) -> Result<Arc<Graph>, JournalError> {
        let graph = Arc::new(graph);
        self.journal
            .append(&Record::Graph {
                graph: (*graph).clone(),
            })
            .await?;
        self.insert_graph(graph.clone());
        self.maybe_compact().await?;
        Ok(graph)
    }

    pub async fn add_run(&self, run: GraphRun) -> Result<Arc<GraphRun>, JournalError> {
        self.journal
            .append(&Record::Run { run: run.clone() })
            .await?;
        let run = Arc::new(run);
        self.insert_run(run.clone());
        self.maybe_compact().await?;
        Ok(run)
    }

    async fn maybe_compact(&self) -> Result<(), JournalError> {
        if !self.journal.needs_compaction() {
            return Ok(());
        }
        let live: Vec<Value> = {
            let guard = self.entries.lock();
            let (map, order) = &*guard;
            let mut out = Vec::new();
            for id in order {
                if let Some(e) = map.get(id) {
                    out.extend(
                        serde_json::to_value(Record::Graph {
                            graph: (*e.graph).clone(),
                        })
                        .ok(),
                    );
                    for r in &e.runs {
                        out.extend(serde_json::to_value(Record::Run { run: (**r).clone() }).ok());
                    }
                }
            }
            out
        };
        self.journal.compact(live).await
    }

    pub fn get(&self, id: &str) -> Option<(Arc<Graph>, Vec<Arc<GraphRun>>)> {
        let guard = self.entries.lock();
        guard
            .0
            .get(id)
            .map(|e| (e.graph.clone(), e.runs.iter().cloned().collect()))
    }

    pub fn len(&self) -> usize {
        self.entries.lock().1.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// ------------------------------------------------------------------ optimize

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptimizationType {
    #[default]
    Performance,
    Memory,
    Cost,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeCost {
    pub id: String,
    /// Mean measured duration over the kept runs (absent when never measured).
    pub mean_ms: Option<f64>,
    pub max_output_bytes: u64,
    pub level: usize,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Optimization {
    pub graph_id: String,
    pub optimization_type: OptimizationType,
    /// Runs whose measurements were used.
    pub runs_measured: usize,
    /// Nodes that can run together, level by level.
    pub parallel_levels: Vec<Vec<String>>,
    pub critical_path: Vec<String>,
    pub critical_path_ms: f64,
    /// Sum of the node durations (a sequential run).
    pub sequential_ms: f64,
    /// sequential_ms / max(critical_path_ms, sequential_ms / parallel slots).
    pub estimated_speedup: f64,
    /// Edges implied by other paths: removing them changes nothing.
    pub redundant_edges: Vec<EdgeDef>,
    /// Nodes whose largest output reached 64 KiB, largest first (at most five).
    pub memory_heavy_nodes: Vec<NodeCost>,
    pub nodes: Vec<NodeCost>,
    pub suggestions: Vec<String>,
}

/// Output size from which a node counts as memory-heavy: below it, narrowing the node
/// saves less than the run record itself costs.
pub const MEMORY_HEAVY_BYTES: u64 = 64 * 1024;

/// Structural and measured analysis; `slots` is the parallel run's concurrency.
pub fn optimize(
    graph: &Graph,
    runs: &[Arc<GraphRun>],
    kind: OptimizationType,
    slots: usize,
) -> Result<Optimization, String> {
    let topo = Topology::new(&graph.def);
    let order = topo
        .order()
        .ok_or_else(|| "the graph has a cycle; run validate_graph".to_string())?;
    let levels = topo.levels(&order);
    let n = topo.ids.len();
    let mut sum = vec![0.0; n];
    let mut count = vec![0usize; n];
    let mut max_bytes = vec![0u64; n];
    for run in runs {
        for nr in &run.nodes {
            if let Some(&i) = topo.index.get(&nr.id) {
                if let (Some(d), "succeeded" | "failed") = (nr.duration_ms, nr.status.as_str()) {
                    sum[i] += d;
                    count[i] += 1;
                }
                max_bytes[i] = max_bytes[i].max(nr.output_bytes);
            }
        }
    }
    let mean: Vec<Option<f64>> = (0..n)
        .map(|i| (count[i] > 0).then(|| sum[i] / count[i] as f64))
        .collect();
    let weight = |i: usize| mean[i].unwrap_or(0.0);
    // Longest weighted path.
    let mut best = vec![0.0; n];
    let mut prev: Vec<Option<usize>> = vec![None; n];
    for &i in &order {
        let (b, p) = topo.pred[i]
            .iter()
            .map(|&p| (best[p], Some(p)))
            .fold((0.0, None), |acc, x| if x.0 > acc.0 { x } else { acc });
        best[i] = b + weight(i);
        prev[i] = p;
    }
    let end = (0..n)
        .max_by(|a, b| best[*a].total_cmp(&best[*b]))
        .unwrap_or(0);
    let mut path = vec![];
    let mut cur = (n > 0).then_some(end);
    while let Some(i) = cur {
        path.push(topo.ids[i].clone());
        cur = prev[i];
    }
    path.reverse();
    let critical = if n > 0 { best[end] } else { 0.0 };
    let sequential: f64 = (0..n).map(weight).sum();
    let parallel_time = critical.max(sequential / slots.max(1) as f64);
    let speedup = if parallel_time > 0.0 {
        sequential / parallel_time
    } else {
        1.0
    };
    let max_level = levels.iter().copied().max().unwrap_or(0);
    let parallel_levels: Vec<Vec<String>> = (0..=max_level)
        .map(|l| {
            (0..n)
                .filter(|i| levels[*i] == l)
                .map(|i| topo.ids[i].clone())
                .collect()
        })
        .filter(|v: &Vec<String>| !v.is_empty())
        .collect();
    let redundant = redundant_edges(graph, &topo, &order);
    let nodes: Vec<NodeCost> = (0..n)
        .map(|i| NodeCost {
            id: topo.ids[i].clone(),
            mean_ms: mean[i].map(|m| (m * 1000.0).round() / 1000.0),
            max_output_bytes: max_bytes[i],
            level: levels[i],
        })
        .collect();
    let mut heavy: Vec<NodeCost> = nodes
        .iter()
        .filter(|c| c.max_output_bytes >= MEMORY_HEAVY_BYTES)
        .cloned()
        .collect();
    heavy.sort_by_key(|b| std::cmp::Reverse(b.max_output_bytes));
    heavy.truncate(5);
    let mut suggestions = Vec::new();
    if runs.is_empty() {
        suggestions.push("no runs measured yet: run execute_graph once so durations and output sizes can be used".into());
    }
    match kind {
        OptimizationType::Performance => {
            if parallel_levels.iter().any(|l| l.len() > 1) {
                suggestions.push(format!(
                    "run with config.parallel = true: {} levels, estimated speed-up ×{:.2}",
                    parallel_levels.len(),
                    speedup
                ));
            }
            if !path.is_empty() && critical > 0.0 {
                suggestions.push(format!(
                    "the critical path {} takes {:.1} ms; shortening it is the only way to finish sooner",
                    path.join(" → "),
                    critical
                ));
            }
        }
        OptimizationType::Memory => {
            if heavy.is_empty() && !runs.is_empty() {
                suggestions.push(format!(
                    "no node produced {MEMORY_HEAVY_BYTES} bytes or more: memory is not where this graph can gain"
                ));
            }
            for h in &heavy {
                suggestions.push(format!(
                    "`{}` produced up to {} bytes: narrow its arguments (limit, maxBytes) so downstream templates carry less",
                    h.id, h.max_output_bytes
                ));
            }
        }
        OptimizationType::Cost => {
            let mut by_time: Vec<&NodeCost> =
                nodes.iter().filter(|c| c.mean_ms.is_some()).collect();
            by_time.sort_by(|a, b| {
                b.mean_ms
                    .unwrap_or(0.0)
                    .total_cmp(&a.mean_ms.unwrap_or(0.0))
            });
            for c in by_time.iter().take(3) {
                suggestions.push(format!(
                    "`{}` costs {:.1} ms per run: cache or gate it behind a condition if its result rarely changes",
                    c.id,
                    c.mean_ms.unwrap_or(0.0)
                ));
            }
        }
    }
    for e in &redundant {
        suggestions.push(format!(
            "edge {} → {} is implied by another path and can be removed",
            e.from, e.to
        ));
    }
    Ok(Optimization {
        graph_id: graph.id.clone(),
        optimization_type: kind,
        runs_measured: runs.len(),
        parallel_levels,
        critical_path: path,
        critical_path_ms: (critical * 1000.0).round() / 1000.0,
        sequential_ms: (sequential * 1000.0).round() / 1000.0,
        estimated_speedup: (speedup * 100.0).round() / 100.0,
        redundant_edges: redundant,
        memory_heavy_nodes: heavy,
        nodes,
        suggestions,
    })
}

/// Unconditioned edges u→v where v is reachable from u through another successor.
fn redundant_edges(graph: &Graph, topo: &Topology, order: &[usize]) -> Vec<EdgeDef> {
    let n = topo.ids.len();
    // reach[i] = nodes reachable from i, as bitsets.
    let words = n.div_ceil(64);
    let mut reach = vec![vec![0u64; words]; n];
    for &i in order.iter().rev() {
        let mut r = vec![0u64; words];
        for &s in &topo.succ[i] {
            r[s / 64] |= 1 << (s % 64);
            for (w, x) in r.iter_mut().zip(&reach[s]) {
                *w |= x;
            }
        }
        reach[i] = r;
    }
    let mut out = Vec::new();
    for e in &graph.def.edges {
        if e.condition.is_some() {
            continue;
        }
        let (Some(&u), Some(&v)) = (topo.index.get(&e.from), topo.index.get(&e.to)) else {
            continue;
        };
        let implied = topo.succ[u]
            .iter()
            .any(|&w| w != v && reach[w][v / 64] & (1 << (v % 64)) != 0);
        if implied {
            out.push(e.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn optimize_finds_levels_critical_path_and_redundant_edges() {
        let def: super::super::graph::GraphDef = serde_json::from_value(json!({"name": "o", "nodes": [
                {"id": "a", "type": "gate", "config": {"condition": "true"}},
                {"id": "b", "type": "gate", "config": {"condition": "true"}},
                {"id": "c", "type": "gate", "config": {"condition": "true"}}],
                "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "a", "to": "c"}]}))
        .unwrap();
        let g = Graph {
            id: "g".into(),
            created_at: String::new(),
            def,
            owner: None,
        };
        let o = optimize(&g, &[], OptimizationType::Performance, 8).unwrap();
        assert_eq!(o.parallel_levels, vec![vec!["a"], vec!["b"], vec!["c"]]);
        assert_eq!(o.redundant_edges.len(), 1);
        assert_eq!(o.redundant_edges[0].to, "c");
    }
}
