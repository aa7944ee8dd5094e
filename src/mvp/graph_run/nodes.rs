//! The node kinds of a graph run: `tool` and `map` nodes call tools through the
//! registry by name, `gate` nodes judge upstream outputs, `prp` nodes run one PRP
//! phase; plus each node's own deadline and how a call's failure reads.
//!
//! Owns node semantics only; scheduling, progress and the run record stay in
//! `graph_run.rs`. It must not know any other toolset.

use super::*;

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

pub(super) async fn run_node(
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
