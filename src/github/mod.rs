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
#[cfg(feature = "redis")]
pub mod shared_app_token;
#[cfg(feature = "redis")]
pub mod shared_limits;
pub mod tools;

use std::sync::Arc;

use crate::runtime::{Runtime, toolset::Toolset};

pub const INSTRUCTIONS: &str = "github: repositories, issues, pull requests, files, commits, search and Actions. `repository` is \"owner/name\". Long texts (diffs, files) come in windows continued with `next_offset`. Requests are paced per credential; a rate-limit error says when to retry. Without GITHUB_TOKEN each tool says what to set.";

#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    #[error("github toolset: {0}")]
    Auth(#[from] auth::AuthError),
    #[cfg(feature = "redis")]
    #[error("github toolset: {0}")]
    Shared(#[from] shared_limits::SharedLimitsError),
    #[cfg(feature = "redis")]
    #[error("github toolset: {0}")]
    SharedToken(#[from] shared_app_token::SharedTokenError),
}

/// Builds the toolset from the runtime and the GitHub settings in its config. On a
/// shared store the credential's budget, and a GitHub App's installation token, are
/// shared with every replica on it.
pub fn toolset(runtime: &Runtime) -> Result<Toolset, GithubError> {
    let client = client::GithubClient::new(runtime, &runtime.config.github)?;
    #[cfg(feature = "redis")]
    if let crate::config::StoreSettings::Redis { url, prefix, .. } = &runtime.config.store {
        let limits = client.limits();
        let budget = shared_limits::SharedBudget::new(
            url.expose(),
            prefix,
            limits.id(),
            limits::CREDENTIAL_CAP,
        )?;
        limits.share(budget);
        if let (Some(app), Some(key)) = (client.auth().app(), runtime.config.store.key_bytes()) {
            let identity = client.auth().identity();
            let sealer = crate::runtime::sealed::Sealer::new(&key);
            app.share(Arc::new(shared_app_token::SharedAppToken::new(
                url.expose(),
                prefix,
                &identity,
                sealer,
            )?));
        }
    }
    let github = Arc::new(tools::Github {
        client,
        events: runtime.events.clone(),
    });
    Ok(Toolset::new("github", INSTRUCTIONS, tools::all(&github)))
}
