//! Graph validation for `create_graph` and `validate_graph`: duplicate and malformed
//! ids, dangling edges, cycles (reported with their path), unknown node types, unknown
//! or forbidden tools, bad templates and conditions; strict mode adds unreachable nodes
//! and unused outputs.
//!
//! Reads definitions only; the registry is consulted to check that tool names exist.
//! Owns no execution or storage.

use std::collections::HashSet;

use serde_json::Value;

use super::{
    graph::{
        FORBIDDEN_NODE_TOOLS, GraphDef, Issue, MAX_EDGES, MAX_NODES, NODE_TYPES, NodeDef, Topology,
        issue,
    },
    graph_template::{Ref, TEMPLATE, TemplateError, check_condition, condition_refs, refs_in},
};
use crate::runtime::registry::Registry;

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
                m.to_string(),
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
                        if let Err(m) = check_condition(expr) {
                            issues.push(issue("bad_condition", m.to_string(), vec![n.id.clone()]));
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
            // A prp node is the `run_prp_workflow` tool: only where it is offered.
            if let Some(reg) = registry
                && reg.get("run_prp_workflow").is_none()
            {
                issues.push(issue(
                    "unknown_tool",
                    format!(
                        "prp node `{}` needs `run_prp_workflow`, which is not a tool of this server",
                        n.id
                    ),
                    vec![n.id.clone()],
                ));
            }
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
    refs: Vec<Result<Ref, TemplateError>>,
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
    fn templates_types_edges_and_strict_checks() {
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
    }
}
