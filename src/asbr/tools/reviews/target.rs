//! What a review runs over, for `create_review`: a pull request checked out through the
//! github tools (by name, `pr_checkout.rs`) or a local directory inside the workspace
//! roots, with its scope (paths, and for an incremental review the files modified since
//! the last completed one).
//!
//! Owns resolving `repositoryUrl`/`pullRequestId` into a [`ReviewTarget`]; it must not run
//! reviewers or record anything (`reviews/run.rs`).

use std::sync::Arc;

use super::CreateReviewIn;
use super::{A, Out};
use crate::asbr::{
    pr_checkout::{self, CheckoutError},
    reviews::{self, ScopeMode},
    scan::{self, ScanError},
};
use crate::runtime::{
    principal::Principal,
    registry::{CallCtx, ToolError},
};

/// "owner/name" from "owner/name", "https://github.com/owner/name" or "...name.git".
fn owner_repo(url: &str) -> Option<String> {
    let u = url.trim().trim_end_matches('/').trim_end_matches(".git");
    let u = ["https://github.com/", "http://github.com/", "github.com/"]
        .iter()
        .find_map(|p| u.strip_prefix(p))
        .unwrap_or(u);
    let parts: Vec<&str> = u.split('/').collect();
    let valid = parts.len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && *p != ".."
                && *p != "."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    valid.then(|| u.to_string())
}

fn looks_remote(url: &str) -> bool {
    let u = url.trim();
    ["http://", "https://", "git@", "ssh://", "git://"]
        .iter()
        .any(|p| u.starts_with(p))
}

const HOW_TO_POINT: &str = "give a local directory inside the workspace roots, or \"owner/name\" with pullRequestId to review a pull request";

/// What a review runs over.
pub(super) struct ReviewTarget {
    pub(super) root: std::path::PathBuf,
    /// repository_path of the review: the directory, or "owner/name#N".
    pub(super) label: String,
    pub(super) scope: Arc<reviews::Scope>,
    pub(super) pull_request: Option<reviews::PullRequestSource>,
    pub(super) incremental_since: Option<reviews::IncrementalBase>,
    /// A scratch checkout to delete when the review is done.
    pub(super) scratch: Option<std::path::PathBuf>,
}

pub(super) async fn review_target(
    a: &A,
    i: &CreateReviewIn,
    id: &str,
    ctx: &CallCtx,
) -> Out<ReviewTarget> {
    match i.pull_request_id {
        Some(number) => pull_request_target(a, i, number, id, ctx).await,
        None => {
            if i.scope == ScopeMode::Incremental {
                // The base of an incremental review may have been made on another replica.
                a.reviews.catch_up().await;
            }
            local_target(a, i, &ctx.principal)
        }
    }
}

async fn pull_request_target(
    a: &A,
    i: &CreateReviewIn,
    number: u64,
    id: &str,
    ctx: &CallCtx,
) -> Out<ReviewTarget> {
    let Some(repository) = owner_repo(&i.repository_url) else {
        return Err(ToolError::input(format!(
            "repositoryUrl: with pullRequestId, give the GitHub repository as \"owner/name\" (got `{}`)",
            i.repository_url
        )));
    };
    if ctx.registry.get("get_pull_request").is_none() {
        return Err(ToolError::Business(format!(
            "pullRequestId: reviewing {repository}#{number} reads it through the github toolset, which is not enabled; start the server with github in --toolsets (and GITHUB_TOKEN set), or check the pull request out locally and pass its directory without pullRequestId"
        )));
    }
    let dir = a.checkouts.join(id);
    let checkout = match pr_checkout::fetch(ctx, &repository, number, &dir).await {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(match e {
                CheckoutError::Github { .. } => ToolError::Upstream(format!(
                    "pull request {repository}#{number} could not be read through the github toolset: {e}"
                )),
                CheckoutError::Shape { .. } => ToolError::Upstream(e.to_string()),
                CheckoutError::Io { .. } | CheckoutError::Write(_) => {
                    ToolError::Internal(e.to_string())
                }
            });
        }
    };
    let scope = reviews::Scope::new(&checkout.root, &i.paths)?.only_files(checkout.files.clone());
    Ok(ReviewTarget {
        scope: Arc::new(scope),
        label: format!("{repository}#{number}"),
        pull_request: Some(reviews::PullRequestSource {
            repository,
            pull_request_id: number,
            head_sha: checkout.head_sha,
            files: checkout.files.len() as u64,
            skipped: checkout.skipped,
        }),
        incremental_since: None,
        scratch: Some(checkout.root.clone()),
        root: checkout.root,
    })
}

fn local_target(a: &A, i: &CreateReviewIn, principal: &Principal) -> Out<ReviewTarget> {
    if looks_remote(&i.repository_url) {
        return Err(ToolError::input(format!(
            "repositoryUrl: `{}` is remote; {HOW_TO_POINT}",
            i.repository_url
        )));
    }
    let root = match scan::resolve_target(&a.scanner.roots, &i.repository_url) {
        Ok(root) => root,
        Err(ScanError::NotFound(_)) if owner_repo(&i.repository_url).is_some() => {
            return Err(ToolError::input(format!(
                "repositoryUrl: `{}` is not a local directory; {HOW_TO_POINT}",
                i.repository_url
            )));
        }
        Err(ScanError::Path(m) | ScanError::NotFound(m)) => {
            return Err(ToolError::input(format!("repositoryUrl: {m}")));
        }
        Err(e) => return Err(e.into()),
    };
    let label = root.display().to_string();
    let mut scope = reviews::Scope::new(&root, &i.paths)?;
    let mut incremental_since = None;
    if i.scope == ScopeMode::Incremental
        && let Some(base) = a.reviews.last_completed(&label, principal)
        && let Ok(at) = chrono::DateTime::parse_from_rfc3339(&base.created_at)
    {
        scope = scope.modified_since(std::time::SystemTime::from(at));
        incremental_since = Some(base);
    }
    Ok(ReviewTarget {
        root,
        label,
        scope: Arc::new(scope),
        pull_request: None,
        incremental_since,
        scratch: None,
    })
}
