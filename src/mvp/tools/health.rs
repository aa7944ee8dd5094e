//! The `health` tool: the server's parts (state directory, journal lag, executor lanes,
//! child processes, workspace roots, store sizes).
//!
//! Owns its input, handler and registration; the disk probe is `mvp::health`'s.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{M, Out};
use crate::{
    mvp::health::{Health, Processes, StoreStatus},
    runtime::{
        registry::{CallCtx, Hints, ToolDef},
        toolset::Tools,
    },
};

/// How long `health` waits for the store to answer.
const STORE_PING: std::time::Duration = std::time::Duration::from_secs(1);

pub(super) fn register(t: &Tools<M>) -> Vec<ToolDef> {
    let read = Hints::read();
    vec![
        t.tool(
            "health",
            read,
            health,
            "Check the server's health (state directory, journal lag, lanes, processes and sandbox, workspace roots, stores): ok, or degraded with the problems.",
        )
        .titled("Server health"),
    ]
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthIn {}

pub(super) async fn health(mvp: M, _input: HealthIn, _ctx: CallCtx) -> Out<Health> {
    let (writable, lag, mut problems, age) = mvp.health.disk().await;
    let damage = crate::runtime::damage::reported();
    problems.extend(damage.iter().map(|d| d.describe()));
    if let Some(why) = mvp.exec.sandbox().refused() {
        problems.push(format!("child processes are refused: {why}"));
    }
    let stores = &mvp.runtime.stores;
    let ready = match tokio::time::timeout(STORE_PING, stores.ping()).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            problems.push(format!("the store does not answer: {e}"));
            false
        }
        Err(_) => {
            problems.push(format!(
                "the store ({}) did not answer within {} ms",
                stores.describe(),
                STORE_PING.as_millis()
            ));
            false
        }
    };
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
        damage,
        processes: Processes {
            running: mvp.exec.running(),
            started_total: mvp.exec.started_total(),
            max_concurrent: mvp.runtime.config.mvp.exec_max_processes,
            allow_list: mvp.exec.allow_list().to_vec(),
            sandbox: mvp.exec.sandbox().mechanism().name().into(),
            network: mvp.exec.sandbox().network(),
            pid_namespace: mvp.exec.sandbox().namespaced(),
        },
        lanes: mvp.runtime.executor.stats(),
        workspace_roots: mvp
            .roots
            .list()
            .into_iter()
            .map(|r| r.display().to_string())
            .collect(),
        graphs: mvp.graphs.len(),
        prp_runs: mvp.prp.len(),
        teaching_examples: mvp.teaching.len(),
        probe_age_ms: age,
        store: StoreStatus {
            backend: stores.describe(),
            ready,
        },
    })
}
