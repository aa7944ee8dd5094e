//! The `mvp` toolset: workflow graphs over every registered tool, PRP runs with real
//! gates, teaching examples, workspace tools (`read_file`, `test_runner`,
//! `code_analysis`, `run_command`) on a secure executor, and `health`.
//!
//! Imports only `runtime` and `config`; never another toolset. Graph
//! `tool` nodes reach other toolsets' tools through the runtime registry by name.
//!
//! State (graphs and runs, PRP runs, teaching examples) is journaled under
//! `<state-dir>/mvp/` and replayed on start.

pub mod coverage;
pub mod events;
pub mod exec;
pub mod graph;
pub mod graph_run;
pub mod graph_store;
pub mod graph_template;
pub mod graph_validate;
pub mod health;
pub mod lint;
pub mod prp;
pub mod prp_store;
pub mod runners;
pub mod sandbox;
pub mod teaching;
pub mod test_output;
pub mod tools;
pub mod trace;
pub mod workspace;

use std::sync::Arc;

use crate::{
    config::GithubCredential,
    runtime::{Runtime, toolset::Toolset},
};

pub const INSTRUCTIONS: &str = "mvp: workflow graphs (`create_graph`, `execute_graph`; `tool` nodes call any tool with {{inputs.x}}/{{nodes.ID.field}} templates), PRP workflows (`run_prp_workflow`), teaching examples, and workspace tools (read_file, test_runner, code_analysis, run_command) sandboxed inside the configured roots; and health.";

#[derive(Debug, thiserror::Error)]
pub enum MvpError {
    #[error("mvp toolset: {0}")]
    Workspace(#[from] workspace::WorkspaceError),
    #[error("mvp toolset: {0}")]
    Sandbox(#[from] sandbox::SandboxError),
    #[error("mvp toolset: journal under {dir}: {source}")]
    Journal {
        dir: String,
        source: crate::runtime::store::StoreError,
    },
}

/// What every mvp handler holds.
pub struct Mvp {
    pub runtime: Runtime,
    pub roots: workspace::Roots,
    pub exec: exec::SecureExec,
    pub analysis_cache: runners::AnalysisCache,
    pub graphs: Arc<graph::GraphStore>,
    pub prp: Arc<prp::PrpStore>,
    pub teaching: Arc<teaching::Teaching>,
    pub health: health::HealthProbe,
}

/// Literal secrets of this server's own configuration, for the redactor.
fn known_secrets(runtime: &Runtime) -> Vec<String> {
    let config = &runtime.config;
    let mut known: Vec<String> = config.bearer_tokens().map(str::to_string).collect();
    match &config.github.credential {
        GithubCredential::Token(t) => known.push(t.clone()),
        GithubCredential::App(app) => known.extend(
            app.private_key_pem
                .lines()
                .filter(|l| l.len() >= 16 && !l.starts_with("-----"))
                .map(str::to_string),
        ),
        GithubCredential::None => {}
    }
    known.extend(
        config
            .asbr
            .signature_key
            .iter()
            .map(|s| s.expose().to_string()),
    );
    known
}

/// Paths children must not read: the state directory (journals, the integrations'
/// credential file) and the config file.
fn protected_paths(runtime: &Runtime) -> Vec<std::path::PathBuf> {
    let config = &runtime.config;
    let mut paths = vec![config.state_dir.clone()];
    paths.extend(std::env::var_os("CORTEX_MCP_CONFIG").map(std::path::PathBuf::from));
    paths.push("cortex-mcp.toml".into());
    let _ = std::fs::create_dir_all(&config.state_dir);
    paths
        .into_iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect()
}

/// Builds the toolset: opens (and replays) its journals.
pub fn toolset(runtime: &Runtime) -> Result<Toolset, MvpError> {
    let config = runtime.config.clone();
    let roots = runtime.roots.clone();
    roots.require()?;
    let redactor = exec::Redactor::new(known_secrets(runtime));
    let layout = sandbox::Layout {
        roots: roots.list(),
        protected: protected_paths(runtime),
    };
    let sandbox = Arc::new(sandbox::Sandbox::new(&config.mvp, &layout)?);
    let exec = exec::SecureExec::new(&config.mvp, &runtime.executor, redactor, sandbox)
        .stop_on(runtime.stopping.clone());
    let dir = config.state_dir.join("mvp");
    let policy = config.fsync;
    let journal_err = |source| MvpError::Journal {
        dir: dir.display().to_string(),
        source,
    };
    let backend = runtime.stores.backend("mvp");
    let graphs = Arc::new(graph::GraphStore::open(&*backend, policy).map_err(journal_err)?);
    graphs.follow();
    let prp = Arc::new(
        prp::PrpStore::open(&*backend, policy, config.mvp.prp_history).map_err(journal_err)?,
    );
    prp.follow();
    let teaching = Arc::new(
        teaching::Teaching::open(&*backend, policy, config.mvp.teaching_max_examples)
            .map_err(journal_err)?,
    );
    teaching.follow();
    let health = health::HealthProbe::new(&dir, policy).map_err(journal_err)?;
    let mvp = Arc::new(Mvp {
        runtime: runtime.clone(),
        roots,
        exec,
        analysis_cache: runners::AnalysisCache::default(),
        graphs,
        prp,
        teaching,
        health,
    });
    Ok(Toolset::new("mvp", INSTRUCTIONS, tools::all(&mvp)))
}
