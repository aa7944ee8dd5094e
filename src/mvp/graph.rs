//! Workflow graphs: the definition model, templates and conditions, validation, the
//! structural analysis behind `optimize_graph`, and the journaled graph store.
//!
//! Node types: `tool` (call a registered tool by name), `gate` (a condition or the
//! blocker/major counts of upstream outputs), `prp` (a PRP workflow or one phase),
//! `map` (a tool over a list with bounded concurrency). Templates `{{inputs.x}}`,
//! `{{nodes.ID.path}}` and, inside `map`, `{{item}}` / `{{item.path}}`; a string that is
//! exactly one template keeps the referenced JSON type. Conditions are
//! `[!]operand [op operand]` with `==`, `!=`, `>`, `>=`, `<`, `<=`.
//!
//! Owns no execution (that is `graph_run.rs`), no storage or optimisation (that is
//! `graph_store.rs`) and never calls tools; the registry is only consulted to check
//! that tool names exist.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::LazyLock,
};

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::runtime::registry::Registry;

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

static TEMPLATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{\{\s*([^{}]*?)\s*\}\}").expect("template regex"));

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
    /// Taken only when true, e.g. `{{nodes.tests.totals.failed}} == 0`. An edge from a
    /// failed node is taken only when it has a condition that is true.
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
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Graph {
    pub id: String,
    #[serde(flatten)]
    pub def: GraphDef,
    pub created_at: String,
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

fn issue(code: &str, message: String, nodes: Vec<String>) -> Issue {
    Issue {
        severity: "error".into(),
        code: code.into(),
        message,
        nodes,
    }
}

// ------------------------------------------------------------------ templates

/// A parsed template reference.
#[derive(Debug, Clone, PartialEq)]
pub enum Ref {
    Input(Vec<String>),
    Node(String, Vec<String>),
    Item(Vec<String>),
}

pub fn parse_ref(raw: &str) -> Result<Ref, String> {
    let parts: Vec<String> = raw.split('.').map(|s| s.trim().to_string()).collect();
    if parts.iter().any(String::is_empty) {
        return Err(format!("`{{{{{raw}}}}}` has an empty path segment"));
    }
    match parts[0].as_str() {
        "inputs" if parts.len() >= 2 => Ok(Ref::Input(parts[1..].to_vec())),
        "inputs" => Ok(Ref::Input(Vec::new())),
        "nodes" if parts.len() >= 2 => Ok(Ref::Node(parts[1].clone(), parts[2..].to_vec())),
        "item" => Ok(Ref::Item(parts[1..].to_vec())),
        other => Err(format!(
            "`{{{{{raw}}}}}` starts with `{other}`; use inputs.NAME, nodes.ID.PATH or item"
        )),
    }
}

/// Every template reference in a JSON value (strings anywhere inside).
pub fn refs_in(value: &Value, out: &mut Vec<Result<Ref, String>>) {
    match value {
        Value::String(s) => {
            for cap in TEMPLATE.captures_iter(s) {
                out.push(parse_ref(&cap[1]));
            }
            if s.contains("{{") && TEMPLATE.find(s).is_none() {
                out.push(Err(format!("`{s}` has an unclosed or empty template")));
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs_in(v, out)),
        Value::Object(o) => o.values().for_each(|v| refs_in(v, out)),
        _ => {}
    }
}

/// What templates can see while a graph runs.
pub struct Scope<'a> {
    pub inputs: &'a Value,
    pub outputs: &'a HashMap<String, Value>,
    pub item: Option<&'a Value>,
}

fn walk_path<'v>(mut v: &'v Value, path: &[String]) -> Option<&'v Value> {
    for seg in path {
        v = match v {
            Value::Object(o) => o.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

impl Scope<'_> {
    pub fn lookup(&self, raw: &str) -> Result<Value, String> {
        let r = parse_ref(raw)?;
        let found = match &r {
            Ref::Input(p) => walk_path(self.inputs, p),
            Ref::Node(id, p) => match self.outputs.get(id) {
                Some(out) => walk_path(out, p),
                None => {
                    return Err(format!(
                        "`{{{{{raw}}}}}`: node `{id}` has no output (it did not run or failed)"
                    ));
                }
            },
            Ref::Item(p) => match self.item {
                Some(item) => walk_path(item, p),
                None => {
                    return Err(format!(
                        "`{{{{{raw}}}}}`: `item` exists only in map arguments"
                    ));
                }
            },
        };
        found
            .cloned()
            .ok_or_else(|| format!("`{{{{{raw}}}}}` does not resolve (no such field)"))
    }

    /// Substitutes templates in a JSON value.
    pub fn render(&self, value: &Value) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) => self.render_str(s)?,
            Value::Array(a) => {
                Value::Array(a.iter().map(|v| self.render(v)).collect::<Result<_, _>>()?)
            }
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    fn render_str(&self, s: &str) -> Result<Value, String> {
        if let Some(cap) = TEMPLATE.captures(s)
            && cap
                .get(0)
                .is_some_and(|m| m.start() == 0 && m.end() == s.len())
        {
            return self.lookup(&cap[1]);
        }
        let mut out = String::new();
        let mut last = 0;
        for cap in TEMPLATE.captures_iter(s) {
            let m = cap.get(0).expect("whole match");
            out.push_str(&s[last..m.start()]);
            match self.lookup(&cap[1])? {
                Value::String(v) => out.push_str(&v),
                other => out.push_str(&other.to_string()),
            }
            last = m.end();
        }
        out.push_str(&s[last..]);
        Ok(Value::String(out))
    }

    /// Evaluates a condition.
    pub fn condition(&self, expr: &str) -> Result<bool, String> {
        let c = parse_condition(expr)?;
        let left = self.operand(&c.left)?;
        let result = match &c.op {
            None => truthy(&left),
            Some((op, right)) => compare(&left, op, &self.operand(right)?),
        };
        Ok(result != c.negate)
    }

    fn operand(&self, o: &Operand) -> Result<Value, String> {
        match o {
            Operand::Template(raw) => self.lookup(raw),
            Operand::Literal(v) => Ok(v.clone()),
        }
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn compare(a: &Value, op: &str, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
        return match op {
            "==" => x == y,
            "!=" => x != y,
            ">" => x > y,
            ">=" => x >= y,
            "<" => x < y,
            "<=" => x <= y,
            _ => false,
        };
    }
    match op {
        "==" => a == b,
        "!=" => a != b,
        _ => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => match op {
                ">" => x > y,
                ">=" => x >= y,
                "<" => x < y,
                "<=" => x <= y,
                _ => false,
            },
            _ => false,
        },
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Template(String),
    Literal(Value),
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    negate: bool,
    left: Operand,
    op: Option<(String, Operand)>,
}

fn tokens(expr: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '{' && chars.get(i + 1) == Some(&'{') {
            let rest: String = chars[i..].iter().collect();
            let end = rest.find("}}").ok_or("unclosed `{{`")?;
            out.push(rest[..end + 2].to_string());
            i += rest[..end + 2].chars().count();
        } else if c == '"' || c == '\'' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != c {
                j += 1;
            }
            if j >= chars.len() {
                return Err("unclosed string".into());
            }
            out.push(chars[i..=j].iter().collect());
            i = j + 1;
        } else if "=!<>".contains(c) {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["==", "!=", ">=", "<="].contains(&two.as_str()) {
                out.push(two);
                i += 2;
            } else {
                out.push(c.to_string());
                i += 1;
            }
        } else {
            let mut j = i;
            while j < chars.len() && !chars[j].is_whitespace() && !"=!<>".contains(chars[j]) {
                j += 1;
            }
            out.push(chars[i..j].iter().collect());
            i = j;
        }
    }
    Ok(out)
}

fn operand(tok: &str) -> Result<Operand, String> {
    if let Some(inner) = tok.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")) {
        parse_ref(inner.trim())?;
        return Ok(Operand::Template(inner.trim().to_string()));
    }
    if (tok.starts_with('"') || tok.starts_with('\'')) && tok.len() >= 2 {
        return Ok(Operand::Literal(Value::String(
            tok[1..tok.len() - 1].to_string(),
        )));
    }
    serde_json::from_str::<Value>(tok)
        .ok()
        .filter(|v| !v.is_object() && !v.is_array())
        .map(Operand::Literal)
        .ok_or_else(|| {
            format!("`{tok}` is not a template, number, quoted string, true, false or null")
        })
}

fn parse_condition(expr: &str) -> Result<Condition, String> {
    let mut toks = tokens(expr).map_err(|e| format!("condition `{expr}`: {e}"))?;
    let negate = toks.first().is_some_and(|t| t == "!");
    if negate {
        toks.remove(0);
    }
    let bad = |why: &str| {
        format!(
            "condition `{expr}`: {why}; write `[!]operand [op operand]`, e.g. `{{{{nodes.t.totals.failed}}}} == 0`"
        )
    };
    match toks.as_slice() {
        [a] => Ok(Condition {
            negate,
            left: operand(a).map_err(|e| bad(&e))?,
            op: None,
        }),
        [a, op, b] if ["==", "!=", ">", ">=", "<", "<="].contains(&op.as_str()) => Ok(Condition {
            negate,
            left: operand(a).map_err(|e| bad(&e))?,
            op: Some((op.clone(), operand(b).map_err(|e| bad(&e))?)),
        }),
        [] => Err(bad("empty")),
        _ => Err(bad("unexpected tokens")),
    }
}

fn condition_refs(expr: &str) -> Result<Vec<Ref>, String> {
    let c = parse_condition(expr)?;
    let mut out = Vec::new();
    for o in std::iter::once(&c.left).chain(c.op.as_ref().map(|(_, r)| r)) {
        if let Operand::Template(raw) = o {
            out.push(parse_ref(raw)?);
        }
    }
    Ok(out)
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

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn config_str<'a>(node: &'a NodeDef, key: &str) -> Option<&'a str> {
    node.config.as_ref()?.get(key)?.as_str()
}

/// Checks a definition; `registry` (when given) checks tool names.
pub fn validate(def: &GraphDef, registry: Option<&Registry>, strict: bool) -> Vec<Issue> {
    let mut issues = Vec::new();
    if def.nodes.len() > MAX_NODES || def.edges.len() > MAX_EDGES {
        issues.push(issue(
            "too_large",
            format!("at most {MAX_NODES} nodes and {MAX_EDGES} edges"),
            vec![],
        ));
        return issues;
    }
    let mut seen = HashSet::new();
    for n in &def.nodes {
        if !valid_id(&n.id) {
            issues.push(issue(
                "bad_id",
                format!(
                    "node id `{}` must be 1-64 letters, digits, `_` or `-`",
                    n.id
                ),
                vec![n.id.clone()],
            ));
        }
        if !seen.insert(n.id.as_str()) {
            issues.push(issue(
                "duplicate_node",
                format!("node id `{}` is used more than once", n.id),
                vec![n.id.clone()],
            ));
        }
    }
    let mut edge_seen = HashSet::new();
    for e in &def.edges {
        for end in [&e.from, &e.to] {
            if !seen.contains(end.as_str()) {
                issues.push(issue(
                    "dangling_edge",
                    format!(
                        "edge {} → {} names node `{end}`, which does not exist",
                        e.from, e.to
                    ),
                    vec![end.clone()],
                ));
            }
        }
        if !edge_seen.insert((e.from.as_str(), e.to.as_str())) {
            issues.push(issue(
                "duplicate_edge",
                format!("edge {} → {} appears more than once", e.from, e.to),
                vec![e.from.clone(), e.to.clone()],
            ));
        }
    }
    let topo = Topology::new(def);
    let order = match topo.find_cycle() {
        Some(path) => {
            issues.push(issue("cycle", format!("cycle: {}", path.join(" → ")), path));
            None
        }
        None => topo.order(),
    };
    let ancestors = order.as_ref().map(|o| topo.ancestors(o));
    let mut referenced: HashSet<String> = HashSet::new();
    for (i, n) in def.nodes.iter().enumerate() {
        check_node(n, registry, &mut issues);
        let mut refs = Vec::new();
        if let Some(cfg) = &n.config {
            refs_in(&Value::Object(cfg.clone()), &mut refs);
        }
        let upstream = ancestors.as_ref().and_then(|a| a.get(i));
        check_refs(
            &n.id,
            refs,
            n.r#type == "map",
            upstream,
            &topo,
            &mut referenced,
            &mut issues,
        );
        if n.r#type == "gate"
            && let Some(from) = n.config.as_ref().and_then(|c| c.get("from"))
        {
            for id in from_ids(from) {
                referenced.insert(id.clone());
                let ok = topo
                    .index
                    .get(&id)
                    .is_some_and(|j| upstream.is_none_or(|u| u.contains(j)));
                if !ok {
                    issues.push(issue(
                        "bad_template",
                        format!("gate `{}` reads `{id}`, which is not upstream of it", n.id),
                        vec![n.id.clone(), id.clone()],
                    ));
                }
            }
        }
    }
    for e in &def.edges {
        let Some(cond) = &e.condition else { continue };
        match condition_refs(cond) {
            Err(m) => issues.push(issue(
                "bad_condition",
                m,
                vec![e.from.clone(), e.to.clone()],
            )),
            Ok(refs) => {
                let Some(&from) = topo.index.get(&e.from) else {
                    continue;
                };
                let up: Option<HashSet<usize>> = ancestors.as_ref().map(|a| {
                    let mut s = a[from].clone();
                    s.insert(from);
                    s
                });
                check_refs(
                    &format!("edge {}→{}", e.from, e.to),
                    refs.into_iter().map(Ok).collect(),
                    false,
                    up.as_ref(),
                    &topo,
                    &mut referenced,
                    &mut issues,
                );
            }
        }
    }
    if strict {
        strict_checks(def, &topo, &referenced, &mut issues);
    }
    issues
}

fn from_ids(from: &Value) -> Vec<String> {
    match from {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => vec![],
    }
}

fn check_node(n: &NodeDef, registry: Option<&Registry>, issues: &mut Vec<Issue>) {
    let bad_config = |m: String| issue("bad_config", m, vec![n.id.clone()]);
    match n.r#type.as_str() {
        "tool" | "map" => {
            match config_str(n, "tool") {
                None => issues.push(bad_config(format!(
                    "{} node `{}` needs config.tool (a tool name)",
                    n.r#type, n.id
                ))),
                Some(t) if FORBIDDEN_NODE_TOOLS.contains(&t) => issues.push(bad_config(format!(
                    "node `{}` may not call `{t}` (graphs do not nest)",
                    n.id
                ))),
                Some(t) => {
                    if let Some(reg) = registry
                        && reg.get(t).is_none()
                    {
                        issues.push(issue(
                            "unknown_tool",
                            format!(
                                "node `{}` calls `{t}`, which is not a tool of this server",
                                n.id
                            ),
                            vec![n.id.clone()],
                        ));
                    }
                }
            }
            if let Some(args) = n.config.as_ref().and_then(|c| c.get("arguments"))
                && !args.is_object()
            {
                issues.push(bad_config(format!(
                    "node `{}`: config.arguments must be an object",
                    n.id
                )));
            }
            if n.r#type == "map" {
                match config_str(n, "over") {
                    Some(o) if TEMPLATE.is_match(o) => {}
                    _ => issues.push(bad_config(format!(
                        "map node `{}` needs config.over, a template naming a list such as \"{{{{inputs.files}}}}\"",
                        n.id
                    ))),
                }
            }
        }
        "gate" => {
            let cfg = n.config.as_ref();
            let has_cond = cfg.and_then(|c| c.get("condition")).is_some();
            let has_from = cfg.and_then(|c| c.get("from")).is_some();
            if !has_cond && !has_from {
                issues.push(bad_config(format!(
                    "gate `{}` needs config.condition or config.from (upstream node ids whose blockers/majors it counts)",
                    n.id
                )));
            }
            if let Some(c) = cfg.and_then(|c| c.get("condition")) {
                match c.as_str() {
                    Some(expr) => {
                        if let Err(m) = parse_condition(expr) {
                            issues.push(issue("bad_condition", m, vec![n.id.clone()]));
                        }
                    }
                    None => issues.push(bad_config(format!(
                        "gate `{}`: condition must be a string",
                        n.id
                    ))),
                }
            }
        }
        "prp" => {
            if n.config.as_ref().and_then(|c| c.get("blueprint")).is_none() {
                issues.push(bad_config(format!(
                    "prp node `{}` needs config.blueprint {{title, description, requirements}}",
                    n.id
                )));
            }
            if let Some(p) = config_str(n, "phase")
                && !["strategy", "build", "evaluation"].contains(&p)
            {
                issues.push(bad_config(format!(
                    "prp node `{}`: phase `{p}` is not strategy, build or evaluation",
                    n.id
                )));
            }
        }
        other => issues.push(issue(
            "unknown_node_type",
            format!(
                "node `{}` has type `{other}`; known types: {}",
                n.id,
                NODE_TYPES.join(", ")
            ),
            vec![n.id.clone()],
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn check_refs(
    owner: &str,
    refs: Vec<Result<Ref, String>>,
    item_allowed: bool,
    upstream: Option<&HashSet<usize>>,
    topo: &Topology,
    referenced: &mut HashSet<String>,
    issues: &mut Vec<Issue>,
) {
    for r in refs {
        match r {
            Err(m) => issues.push(issue("bad_template", format!("{owner}: {m}"), vec![])),
            Ok(Ref::Item(_)) if !item_allowed => issues.push(issue(
                "bad_template",
                format!("{owner}: `{{{{item}}}}` exists only in map nodes"),
                vec![],
            )),
            Ok(Ref::Node(id, _)) => {
                referenced.insert(id.clone());
                match topo.index.get(&id) {
                    None => issues.push(issue(
                        "bad_template",
                        format!("{owner}: template names node `{id}`, which does not exist"),
                        vec![id],
                    )),
                    Some(j) if upstream.is_some_and(|u| !u.contains(j)) => issues.push(issue(
                        "bad_template",
                        format!("{owner}: template reads node `{id}`, which is not upstream (add an edge from it)"),
                        vec![id],
                    )),
                    _ => {}
                }
            }
            Ok(_) => {}
        }
    }
}

fn strict_checks(
    def: &GraphDef,
    topo: &Topology,
    referenced: &HashSet<String>,
    issues: &mut Vec<Issue>,
) {
    if def.nodes.len() > 1 {
        for (i, id) in topo.ids.iter().enumerate() {
            if topo.pred[i].is_empty() && topo.succ[i].is_empty() {
                issues.push(issue(
                    "unreachable",
                    format!("node `{id}` is connected to nothing (no edge reaches or leaves it)"),
                    vec![id.clone()],
                ));
            }
        }
    }
    // Nodes whose condition-guarded incoming edges can never be taken: every incoming
    // edge has a literal-false condition.
    for (i, id) in topo.ids.iter().enumerate() {
        let inc = &topo.incoming[i];
        if !inc.is_empty()
            && inc.iter().all(|e| {
                def.edges[*e]
                    .condition
                    .as_deref()
                    .is_some_and(|c| matches!(c.trim(), "false" | "0" | "null"))
            })
        {
            issues.push(issue(
                "unreachable",
                format!("node `{id}` can never run: every edge into it has a false condition"),
                vec![id.clone()],
            ));
        }
    }
    for (i, n) in def.nodes.iter().enumerate() {
        let produces = matches!(n.r#type.as_str(), "tool" | "map" | "prp");
        if produces && !topo.succ[i].is_empty() && !referenced.contains(&n.id) {
            issues.push(Issue {
                severity: "error".into(),
                code: "unused_output".into(),
                message: format!(
                    "the output of `{}` is read by no template, gate or condition of its {} downstream nodes",
                    n.id,
                    topo.succ[i].len()
                ),
                nodes: vec![n.id.clone()],
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(v: Value) -> GraphDef {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn cycle_is_reported_with_its_path() {
        let g = def(json!({"name": "c", "nodes": [
            {"id": "a", "type": "gate", "config": {"condition": "true"}},
            {"id": "b", "type": "gate", "config": {"condition": "true"}},
            {"id": "c", "type": "gate", "config": {"condition": "true"}}],
            "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "a"}]}));
        let issues = validate(&g, None, false);
        let cycle = issues.iter().find(|i| i.code == "cycle").unwrap();
        assert_eq!(cycle.message, "cycle: a → b → c → a");
    }

    #[test]
    fn templates_conditions_and_strict_checks() {
        let g = def(json!({"name": "t", "nodes": [
            {"id": "a", "type": "tool", "config": {"tool": "x", "arguments": {"p": "{{nodes.b.v}}"}}},
            {"id": "b", "type": "tool", "config": {"tool": "x"}},
            {"id": "c", "type": "wat"},
            {"id": "d", "type": "gate", "config": {"condition": "{{nodes.a.n}} >= 2"}},
            {"id": "e", "type": "tool", "config": {"tool": "x"}}],
            "edges": [{"from": "b", "to": "c"}, {"from": "a", "to": "d"}, {"from": "q", "to": "a"}, {"from": "e", "to": "d"}]}));
        let codes: Vec<String> = validate(&g, None, true)
            .into_iter()
            .map(|i| i.code)
            .collect();
        assert!(codes.contains(&"bad_template".to_string()), "{codes:?}");
        assert!(codes.contains(&"unknown_node_type".to_string()));
        assert!(codes.contains(&"dangling_edge".to_string()));
        assert!(codes.contains(&"unused_output".to_string()));
        let outputs = HashMap::from([("a".to_string(), json!({"n": 3, "s": "x"}))]);
        let inputs = json!({"who": "w"});
        let scope = Scope {
            inputs: &inputs,
            outputs: &outputs,
            item: None,
        };
        assert!(scope.condition("{{nodes.a.n}} >= 2").unwrap());
        assert!(scope.condition("! {{nodes.a.s}} == 'y'").unwrap());
        assert_eq!(scope.render(&json!("{{nodes.a.n}}")).unwrap(), json!(3));
        assert_eq!(
            scope.render(&json!("hi {{inputs.who}}")).unwrap(),
            json!("hi w")
        );
    }

    #[test]
    fn optimize_finds_levels_critical_path_and_redundant_edges() {
        let g = Graph {
            id: "g".into(),
            created_at: String::new(),
            def: def(json!({"name": "o", "nodes": [
                {"id": "a", "type": "gate", "config": {"condition": "true"}},
                {"id": "b", "type": "gate", "config": {"condition": "true"}},
                {"id": "c", "type": "gate", "config": {"condition": "true"}}],
                "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "a", "to": "c"}]})),
        };
        let o = optimize(&g, &[], OptimizationType::Performance, 8).unwrap();
        assert_eq!(o.parallel_levels, vec![vec!["a"], vec!["b"], vec!["c"]]);
        assert_eq!(o.redundant_edges.len(), 1);
        assert_eq!(o.redundant_edges[0].to, "c");
    }
}
