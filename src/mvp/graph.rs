//! Workflow graphs: the definition model and the index-based topology every other
//! graph module works on. Templates and conditions are in `graph_template.rs`,
//! validation in `graph_validate.rs`, execution in `graph_run.rs`, storage and the
//! structural analysis behind `optimize_graph` in `graph_store.rs`.
//!
//! Node types: `tool` (call a registered tool by name), `gate` (a condition or the
//! blocker/major counts of upstream outputs), `prp` (a PRP workflow or one phase),
//! `map` (a tool over a list with bounded concurrency). Templates `{{inputs.x}}`,
//! `{{nodes.ID.path}}` and, inside `map`, `{{item}}` / `{{item.path}}`; a string that is
//! exactly one template keeps the referenced JSON type. Conditions are
//! `[!]operand [op operand]` with `==`, `!=`, `>`, `>=`, `<`, `<=`.
//!
//! Owns no execution, storage or validation and never calls tools.

use std::collections::{HashMap, HashSet, VecDeque};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const MAX_NODES: usize = 500;
pub const MAX_EDGES: usize = 5000;
pub const MAX_GRAPHS: usize = 10_000;
/// Runs kept per graph.
pub const RUNS_KEPT: usize = 20;
pub const NODE_TYPES: &[&str] = &["tool", "gate", "prp", "map"];
/// Tools a node may not call (recursion through the graph runner).
pub const FORBIDDEN_NODE_TOOLS: &[&str] = &["execute_graph", "batch"];

pub use super::graph_store::{
    GraphRun, GraphStore, NodeCost, NodeRun, Optimization, OptimizationType, optimize,
};
pub use super::graph_template::{Ref, Scope, parse_ref, refs_in};
pub use super::graph_validate::validate;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct NodeDef {
    /// Unique id (letters, digits, `_`, `-`), used in edges and templates.
    #[schemars(length(min = 1, max = 64))]
    pub id: String,
    /// tool | gate | prp | map.
    pub r#type: String,
    /// tool: {tool, arguments?, timeoutMs?}; gate: {condition?} or {from: [ids],
    /// maxBlockers=0, maxMajors=3}; prp: {blueprint, workspace?, phase?, deterministic?,
    /// gates?}; map: {tool, over: "{{...}}", arguments?, concurrency=4, timeoutMs?}.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct EdgeDef {
    pub from: String,
    pub to: String,
    /// Taken only when true, e.g. `{{nodes.tests.totals.failed}} == 0`; from a failed
    /// node only an edge with a true condition is taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct GraphDef {
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    #[schemars(length(min = 1, max = 500))]
    pub nodes: Vec<NodeDef>,
    #[serde(default)]
    #[schemars(length(max = 5000))]
    pub edges: Vec<EdgeDef>,
    /// Let every client of this server see and run it (default: only its creator).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Graph {
    pub id: String,
    #[serde(flatten)]
    pub def: GraphDef,
    pub created_at: String,
    /// The principal that created it (absent on graphs created before owners were kept:
    /// everyone may use those).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl Graph {
    /// Whether `principal` may see and run this graph.
    pub fn visible_to(&self, principal: &crate::runtime::principal::Principal) -> bool {
        principal.may_access(self.owner.as_deref(), self.def.shared)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Issue {
    /// error | warning
    pub severity: String,
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
}

pub(super) fn issue(code: &str, message: String, nodes: Vec<String>) -> Issue {
    Issue {
        severity: "error".into(),
        code: code.into(),
        message,
        nodes,
    }
}

// ------------------------------------------------------------------ structure

/// Index-based view of a graph's structure.
pub struct Topology {
    pub ids: Vec<String>,
    pub index: HashMap<String, usize>,
    pub succ: Vec<Vec<usize>>,
    pub pred: Vec<Vec<usize>>,
    /// Edge indexes by target.
    pub incoming: Vec<Vec<usize>>,
    pub outgoing: Vec<Vec<usize>>,
}

impl Topology {
    /// Built from a definition whose ids are unique and edges are not dangling.
    pub fn new(def: &GraphDef) -> Self {
        let ids: Vec<String> = def.nodes.iter().map(|n| n.id.clone()).collect();
        let index: HashMap<String, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i))
            .collect();
        let n = ids.len();
        let mut t = Topology {
            ids,
            index,
            succ: vec![Vec::new(); n],
            pred: vec![Vec::new(); n],
            incoming: vec![Vec::new(); n],
            outgoing: vec![Vec::new(); n],
        };
        for (e, edge) in def.edges.iter().enumerate() {
            if let (Some(&a), Some(&b)) = (t.index.get(&edge.from), t.index.get(&edge.to)) {
                t.succ[a].push(b);
                t.pred[b].push(a);
                t.incoming[b].push(e);
                t.outgoing[a].push(e);
            }
        }
        t
    }

    /// A cycle as a path of ids (first id repeated at the end), if any.
    pub fn find_cycle(&self) -> Option<Vec<String>> {
        let n = self.ids.len();
        let mut color = vec![0u8; n];
        for start in 0..n {
            if color[start] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            color[start] = 1;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if let Some(&s) = self.succ[node].get(*next) {
                    *next += 1;
                    match color[s] {
                        0 => {
                            color[s] = 1;
                            stack.push((s, 0));
                        }
                        1 => {
                            let pos = stack.iter().position(|(x, _)| *x == s).unwrap_or(0);
                            let mut path: Vec<String> = stack[pos..]
                                .iter()
                                .map(|(x, _)| self.ids[*x].clone())
                                .collect();
                            path.push(self.ids[s].clone());
                            return Some(path);
                        }
                        _ => {}
                    }
                } else {
                    color[node] = 2;
                    stack.pop();
                }
            }
        }
        None
    }

    /// Topological order (Kahn, ties by definition order); None when cyclic.
    pub fn order(&self) -> Option<Vec<usize>> {
        let n = self.ids.len();
        let mut indeg: Vec<usize> = self.pred.iter().map(Vec::len).collect();
        let mut ready: VecDeque<usize> = (0..n).filter(|i| indeg[*i] == 0).collect();
        let mut out = Vec::with_capacity(n);
        while let Some(i) = ready.pop_front() {
            out.push(i);
            for &s in &self.succ[i] {
                indeg[s] -= 1;
                if indeg[s] == 0 {
                    ready.push_back(s);
                }
            }
        }
        (out.len() == n).then_some(out)
    }

    /// ancestors[i] = every node with a path to i (acyclic graphs).
    pub fn ancestors(&self, order: &[usize]) -> Vec<HashSet<usize>> {
        let mut anc: Vec<HashSet<usize>> = vec![HashSet::new(); self.ids.len()];
        for &i in order {
            let mut set = HashSet::new();
            for &p in &self.pred[i] {
                set.insert(p);
                set.extend(anc[p].iter().copied());
            }
            anc[i] = set;
        }
        anc
    }

    /// Level of each node: 0 for sources, else 1 + max level of its predecessors.
    pub fn levels(&self, order: &[usize]) -> Vec<usize> {
        let mut level = vec![0; self.ids.len()];
        for &i in order {
            level[i] = self.pred[i]
                .iter()
                .map(|p| level[*p] + 1)
                .max()
                .unwrap_or(0);
        }
        level
    }
}
