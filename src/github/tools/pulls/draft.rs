//! A pull request's draft state, which GitHub's REST API cannot change: the GraphQL
//! mutations `convertPullRequestToDraft` and `markPullRequestReadyForReview`, addressed
//! by the pull request's `node_id` (passed as a variable, never written into the
//! document), and what a refusal tells the caller to do. Used by `update_pull_request`.
//!
//! Owns the two mutation documents, their answer and their error wording. Requests go
//! through the client's GraphQL path (same lanes and limits as REST) only.

use super::*;

/// Each document selects what the tool's output needs afterwards.
const CONVERT_TO_DRAFT: &str = "mutation($pullRequestId: ID!) { convertPullRequestToDraft(input: {pullRequestId: $pullRequestId}) { pullRequest { isDraft number updatedAt } } }";
const MARK_READY: &str = "mutation($pullRequestId: ID!) { markPullRequestReadyForReview(input: {pullRequestId: $pullRequestId}) { pullRequest { isDraft number updatedAt } } }";

/// The pull request as a draft mutation left it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DraftState {
    pub is_draft: bool,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// GitHub's webhook action name for a change of the draft state to `draft`.
pub(super) fn action_name(draft: bool) -> &'static str {
    if draft {
        "converted_to_draft"
    } else {
        "ready_for_review"
    }
}

/// Converts the pull request `node_id` to a draft (`draft`) or marks it ready for
/// review (one GraphQL request on the write lane).
pub(super) async fn set_draft(
    gh: &SharedGithub,
    ctx: &CallCtx,
    node_id: &str,
    draft: bool,
) -> Result<DraftState, GhError> {
    let (document, field) = if draft {
        (CONVERT_TO_DRAFT, "convertPullRequestToDraft")
    } else {
        (MARK_READY, "markPullRequestReadyForReview")
    };
    let mut data = gh
        .client
        .graphql(
            ctx,
            LaneKind::Write,
            document,
            json!({"pullRequestId": node_id}),
        )
        .await?;
    let pull = data
        .get_mut(field)
        .and_then(|m| m.get_mut("pullRequest"))
        .map(Value::take)
        .unwrap_or(Value::Null);
    serde_json::from_value(pull)
        .map_err(|e| GhError::Decode(format!("{field}: no `pullRequest.isDraft` ({e})")))
}

/// What to do about a refused GraphQL request, by GitHub's error class and message.
fn advice(kind: &str, message: &str) -> &'static str {
    let message = message.to_ascii_lowercase();
    match kind {
        "NOT_FOUND" => {
            "GitHub's GraphQL API cannot see this pull request with this credential; check the repository and number with get_pull_request and that the token may read it"
        }
        "FORBIDDEN" => {
            "the credential may not change this pull request: it needs write access to pull requests (classic token: `repo` scope; fine-grained token or app: `Pull requests: write`)"
        }
        _ if message.contains("draft") => {
            "the repository does not allow draft pull requests (drafts need a public repository or a paid plan); leave `draft` out"
        }
        _ if message.contains("closed") || message.contains("merged") => {
            "only an open pull request changes its draft state; reopen it first (`state: open`) if it was closed, not merged"
        }
        _ => "read the pull request with get_pull_request and retry only if its state allows it",
    }
}

/// The tool error for a failed draft change of #`number`; `also_set` names the fields
/// the same call already changed through REST (they stay changed).
pub(super) fn draft_error(
    e: GhError,
    repo: &str,
    number: u64,
    draft: bool,
    also_set: &[&str],
) -> ToolError {
    let kept = if also_set.is_empty() {
        String::new()
    } else {
        format!(
            " The other changes ({}) were made; only the draft state is unchanged.",
            also_set.join(", ")
        )
    };
    match e {
        GhError::Graphql { kind, message } => {
            let goal = if draft {
                "convert it to a draft"
            } else {
                "mark it ready for review"
            };
            ToolError::business(format!(
                "#{number} in {repo}: GitHub refused to {goal} ({kind}: {message}); {}.{kept}",
                advice(&kind, &message)
            ))
        }
        other if also_set.is_empty() => other.into(),
        other => match ToolError::from(other) {
            ToolError::Business(m) => ToolError::Business(format!("{m}.{kept}")),
            ToolError::Upstream(m) => ToolError::Upstream(format!("{m}.{kept}")),
            ToolError::Deadline(m) => ToolError::Deadline(format!("{m}.{kept}")),
            t => t,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_says_what_to_do() {
        let refused = |kind: &str, message: &str| {
            draft_error(
                GhError::Graphql {
                    kind: kind.into(),
                    message: message.into(),
                },
                "o/r",
                7,
                true,
                &[],
            )
            .to_string()
        };
        let not_allowed = refused(
            "UNPROCESSABLE",
            "Draft pull requests are not supported in this repository.",
        );
        assert!(
            not_allowed.contains("does not allow draft pull requests")
                && not_allowed.contains("#7 in o/r"),
            "{not_allowed}"
        );
        let forbidden = refused("FORBIDDEN", "Resource not accessible by integration");
        assert!(forbidden.contains("Pull requests: write"), "{forbidden}");
        let missing = refused(
            "NOT_FOUND",
            "Could not resolve to a node with the global id of 'PR_x'",
        );
        assert!(missing.contains("get_pull_request"), "{missing}");
    }

    #[test]
    fn a_partial_update_says_what_was_changed() {
        let e = draft_error(
            GhError::Forbidden {
                message: "Must have admin rights".into(),
            },
            "o/r",
            7,
            false,
            &["title", "body"],
        )
        .to_string();
        assert!(
            e.contains("The other changes (title, body) were made"),
            "{e}"
        );
    }
}
