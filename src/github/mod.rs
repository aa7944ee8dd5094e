//! The `github` toolset: a GitHub REST client that never trips a limit and never pays
//! twice (lanes per credential, conditional requests, single-flight), and the tools an
//! agent needs daily on top of it.
//!
//! Imports only `runtime` and `config`; never another toolset.

pub mod auth;
pub mod client;
pub mod events;
pub mod limits;
pub mod model;
pub mod tools;

use std::sync::Arc;

use crate::runtime::{Runtime, toolset::Toolset};

pub const INSTRUCTIONS: &str = "github: repositories, issues, pull requests, files, commits, search and Actions over GitHub's REST API. `repository` is \"owner/name\". Lists take `limit` and `cursor`; large texts (diffs, files, patches) come in windows with `next_offset`. Requests are paced per credential to stay inside GitHub's limits and re-reads are served by ETag revalidation at no budget cost; when a limit still applies the error says how long to wait. Without GITHUB_TOKEN (or a GitHub App) every tool answers with what to set.";

#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    #[error("github toolset: {0}")]
    Auth(#[from] auth::AuthError),
}

/// Builds the toolset from the runtime and the GitHub settings in its config.
pub fn toolset(runtime: &Runtime) -> Result<Toolset, GithubError> {
    let client = client::GithubClient::new(runtime, &runtime.config.github)?;
    let github = Arc::new(tools::Github {
        client,
        events: runtime.events.clone(),
    });
    Ok(Toolset::new("github", INSTRUCTIONS, tools::all(&github)))
}
