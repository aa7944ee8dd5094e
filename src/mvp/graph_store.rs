//! The journaled graph store (graphs and their latest runs, stream `graphs` of the
//! runtime's store, compacted past 32 MiB to the graphs and runs it holds) and the
//! analysis behind `optimize_graph`: parallel levels, the critical path weighted by
//! measured node durations, redundant edges (transitive reduction), estimated speed-up
//! and memory-heavy nodes.
//!
//! Owns storage and analysis only; it neither validates nor runs graphs.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

use parking_lot::Mutex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::graph::{EdgeDef, Graph, MAX_GRAPHS, RUNS_KEPT, Topology};
use crate::runtime::store::{
    Backend, Compaction, Fold, Fsync, Replicated, StoreError, StreamOptions,
};

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

#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Record {
    Graph { graph: Graph },
    Run { run: GraphRun },
}

/// What the records rebuild: the latest [`MAX_GRAPHS`] graphs in order of first
/// registration, each with its latest [`RUNS_KEPT`] runs (a graph registered again starts
/// with no runs; runs of a graph not held are dropped).
#[derive(Default)]
struct Graphs {
    map: HashMap<String, Entry>,
    order: VecDeque<String>,
}

impl Graphs {
    fn apply(&mut self, record: Record) {
        match record {
            Record::Graph { graph } => self.insert_graph(Arc::new(graph)),
            Record::Run { run } => self.insert_run(Arc::new(run)),
        }
    }

    fn insert_graph(&mut self, graph: Arc<Graph>) {
        if !self.map.contains_key(&graph.id) {
            self.order.push_back(graph.id.clone());
        }
        self.map.insert(
            graph.id.clone(),
            Entry {
                graph,
                runs: VecDeque::new(),
            },
        );
        while self.order.len() > MAX_GRAPHS {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }

    fn insert_run(&mut self, run: Arc<GraphRun>) {
        if let Some(e) = self.map.get_mut(&run.graph_id) {
            e.runs.push_back(run);
            while e.runs.len() > RUNS_KEPT {
                e.runs.pop_front();
            }
        }
    }

    /// The records that rebuild this state: each graph, then its runs.
    fn into_records(mut self) -> Vec<Record> {
        let mut out = Vec::new();
        for id in &self.order {
            if let Some(e) = self.map.remove(id) {
                out.push(Record::Graph {
                    graph: Arc::unwrap_or_clone(e.graph),
                });
                out.extend(e.runs.into_iter().map(|r| Record::Run {
                    run: Arc::unwrap_or_clone(r),
                }));
            }
        }
        out
    }
}

/// The compaction rule: the records of what they rebuild ([`Graphs`]).
fn live_records(records: Vec<Record>) -> Vec<Record> {
    let mut graphs = Graphs::default();
    for r in records {
        graphs.apply(r);
    }
    graphs.into_records()
}

/// Log size past which the stream is compacted to the graphs and runs it holds.
const MAX_LOG_BYTES: u64 = 32 * 1024 * 1024;

/// Graphs and their recent runs, kept in the `graphs` stream of the runtime's store.
pub struct GraphStore {
    entries: Mutex<Graphs>,
    log: Replicated<Record>,
}

impl Fold<Record> for GraphStore {
    fn apply(&self, record: Record) {
        self.entries.lock().apply(record);
    }

    fn reset(&self, records: Vec<Record>) {
        let mut graphs = Graphs::default();
        for r in records {
            graphs.apply(r);
        }
        *self.entries.lock() = graphs;
    }
}

impl GraphStore {
    pub fn open(backend: &dyn Backend, policy: Fsync) -> Result<Self, StoreError> {
        Self::open_with(backend, StreamOptions::new(policy, MAX_LOG_BYTES))
    }

    /// [`GraphStore::open`] with explicit stream options (tests use a small log).
    pub fn open_with(backend: &dyn Backend, options: StreamOptions) -> Result<Self, StoreError> {
        let compaction = Compaction::new(live_records);
        let (log, replay) = Replicated::open_now(backend, "graphs", options, compaction)?;
        for (position, reason) in &replay.undecodable {
            tracing::warn!("graphs journal: skipped record {position}: {reason}");
        }
        let mut graphs = Graphs::default();
        for r in replay.into_records() {
            graphs.apply(r);
        }
        Ok(GraphStore {
            entries: Mutex::new(graphs),
            log,
        })
    }

    /// On a shared store, keeps this replica's copy current (see [`Replicated::follow`]).
    pub fn follow(self: &Arc<Self>) {
        self.log.follow(self);
    }

    /// Applies what other replicas wrote before this call (shared store only).
    pub async fn catch_up(&self) {
        self.log.catch_up_or_log(self).await
    }

    pub async fn add_graph(&self, graph: Graph) -> Result<Arc<Graph>, StoreError> {
        let graph = Arc::new(graph);
        let record = Record::Graph {
            graph: (*graph).clone(),
        };
        self.log.append(record, self).await?;
        Ok(graph)
    }

    pub async fn add_run(&self, run: GraphRun) -> Result<Arc<GraphRun>, StoreError> {
        self.log
            .append(Record::Run { run: run.clone() }, self)
            .await?;
        Ok(Arc::new(run))
    }

    /// Makes queued writes (and a compaction under way) durable and closes the stream.
    pub async fn close(&self) {
        self.log.close().await
    }

    pub fn get(&self, id: &str) -> Option<(Arc<Graph>, Vec<Arc<GraphRun>>)> {
        self.entries
            .lock()
            .map
            .get(id)
            .map(|e| (e.graph.clone(), e.runs.iter().cloned().collect()))
    }

    pub fn len(&self) -> usize {
        self.entries.lock().order.len()
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

/// Why a graph cannot be analysed.
#[derive(Debug, thiserror::Error)]
pub enum OptimizeError {
    #[error("the graph has a cycle; run validate_graph")]
    Cycle,
}

/// Structural and measured analysis; `slots` is the parallel run's concurrency.
pub fn optimize(
    graph: &Graph,
    runs: &[Arc<GraphRun>],
    kind: OptimizationType,
    slots: usize,
) -> Result<Optimization, OptimizeError> {
    let topo = Topology::new(&graph.def);
    let order = topo.order().ok_or(OptimizeError::Cycle)?;
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

    fn graph(id: &str) -> Graph {
        let def: super::super::graph::GraphDef =
            serde_json::from_value(json!({"name": id, "nodes": [
                {"id": "a", "type": "gate", "config": {"condition": "true"}}], "edges": []}))
            .unwrap();
        Graph {
            id: id.into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            def,
            owner: Some("stdio".into()),
        }
    }

    fn run(graph_id: &str, n: usize) -> GraphRun {
        GraphRun {
            run_id: format!("{graph_id}-run-{n}"),
            graph_id: graph_id.into(),
            status: "completed".into(),
            parallel: true,
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_ms: n as f64,
            nodes: vec![NodeRun {
                id: "a".into(),
                r#type: "gate".into(),
                status: "succeeded".into(),
                started_at: None,
                start_ms: Some(0.0),
                end_ms: Some(1.0),
                duration_ms: Some(1.0),
                output: Some(json!({"n": n})),
                output_bytes: 8,
                output_truncated: false,
                error: None,
            }],
            error: None,
        }
    }

    fn stored_bytes(dir: &std::path::Path) -> u64 {
        ["graphs.ndjson", "graphs.snapshot.json"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum()
    }

    #[tokio::test]
    async fn many_runs_compact_the_journal_and_the_state_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let options = StreamOptions::new(Fsync::Never, 16 * 1024);
        let store = GraphStore::open_with(
            &crate::runtime::store::LocalBackend::new(dir.path()),
            options,
        )
        .unwrap();
        store.add_graph(graph("g1")).await.unwrap();
        store.add_graph(graph("g2")).await.unwrap();
        let mut appended = 0;
        for n in 0..600 {
            let r = run(["g1", "g2"][n % 2], n);
            appended += serde_json::to_vec(&r).unwrap().len() as u64;
            store.add_run(r).await.unwrap();
        }
        // A graph registered again starts over without runs.
        store.add_graph(graph("g2")).await.unwrap();
        store.add_run(run("g2", 600)).await.unwrap();
        store.close().await;
        let stored = stored_bytes(dir.path());
        assert!(
            stored < appended / 5,
            "{stored} bytes stored for {appended} bytes of runs"
        );
        assert!(dir.path().join("graphs.snapshot.json").exists());

        let store = GraphStore::open_with(
            &crate::runtime::store::LocalBackend::new(dir.path()),
            options,
        )
        .unwrap();
        assert_eq!(store.len(), 2);
        let (g, runs) = store.get("g1").unwrap();
        assert_eq!(
            serde_json::to_value(&*g).unwrap(),
            serde_json::to_value(graph("g1")).unwrap()
        );
        let ids: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
        let want: Vec<String> = (0..600)
            .filter(|n| n % 2 == 0)
            .skip(300 - RUNS_KEPT)
            .map(|n| format!("g1-run-{n}"))
            .collect();
        assert_eq!(ids, want);
        assert_eq!(*runs[RUNS_KEPT - 1], run("g1", 598));
        let (_, runs) = store.get("g2").unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(*runs[0], run("g2", 600));
        store.close().await;
    }
}
